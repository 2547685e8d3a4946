"""Watermark stage (Canvas -> Marked): the keyed visible-mark parameters and the invisible-mark seam.

The visible mark is drawn by :mod:`pipeline.marks.visible` (also used by trace); this stage chooses where and
how (an HMAC of the key and the image identity), composites it, and keeps pure-white backgrounds pure.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import math
from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.errors import ImageError
from pipeline.keys import OwnerKey
from pipeline.marks.visible import WARP_PARAMS, Region, apply_mark
from pipeline.models import PAYLOAD_BITS, Canvas, ImageJob, Marked, Owner, VisibleMark
from pipeline.presets import VisibleStyle

STAGE = "watermark"
log = logging.getLogger(__name__)

# ---- Keyed geometry (changing any of these changes every mark: trace recomputes them, so treat as versioned) ---
PARAMS_VERSION = "v1"
N_CANDIDATES = 16  # keyed candidate centres; the one(s) covering the product most win
NEAR_BEST = 0.9  # candidates scoring >= NEAR_BEST * best are all eligible; the HMAC stream picks among them
NOMINAL_ASPECT = 0.22  # footprint height / width assumed when scoring candidates (visible_params has no owner)


# --------------------------------------------------------------------------------------------------------------
# Keyed parameters


class _KeyedStream:
    """Deterministic uniform numbers from an HMAC digest (HMAC-SHA256 in counter mode).

    Hand-written on purpose instead of numpy's Generator: numpy does not promise the same stream across
    versions, and the owner must be able to recompute a mark's parameters years later.
    """

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0

    def _next64(self) -> int:
        block = hmac.new(self._seed, self._counter.to_bytes(8, "big"), hashlib.sha256).digest()
        self._counter += 1
        return int.from_bytes(block[:8], "big")

    def unit(self) -> float:
        """Uniform in [0, 1)."""
        return (self._next64() >> 11) / float(1 << 53)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.unit()

    def index(self, n: int) -> int:
        return self._next64() % n


def _nominal_half_extent(width: float, rotation: float) -> tuple[float, float]:
    """Half extents (x, y) of the rotated nominal footprint box of a mark ``width`` px wide."""
    w2, h2 = width / 2, width * NOMINAL_ASPECT / 2
    c, s = abs(math.cos(math.radians(rotation))), abs(math.sin(math.radians(rotation)))
    return w2 * c + h2 * s, w2 * s + h2 * c


def _span(lo: float, hi: float, inner_lo: float, inner_hi: float) -> tuple[float, float]:
    """The interval [inner_lo, inner_hi] ∩ [lo, hi]; if empty, the point of [lo, hi] nearest the inner one."""
    if lo > hi:  # the mark is wider than the canvas: centre it
        mid = (lo + hi) / 2
        return mid, mid
    a, b = max(lo, inner_lo), min(hi, inner_hi)
    if a <= b:
        return a, b
    p = min(max((inner_lo + inner_hi) / 2, lo), hi)
    return p, p


def visible_params(
    key: OwnerKey,
    identity: str,
    canvas_size: tuple[int, int],
    style: VisibleStyle,
    product_mask: np.ndarray | None,
) -> VisibleMark:
    """The keyed geometry of one image's visible mark; recomputable from the key, identity and canvas.

    ``identity`` is ``f"{source_sha256}|{job.identity}"``; ``canvas_size`` is (width, height);
    ``product_mask`` (bool, H x W, True = product) steers the mark over the product: ``None`` means
    "anywhere", an all-False mask means "no product" and the mark goes to the canvas centre (ingest
    centres the content). ``tone`` is left at its default: it depends on the pixels, see ``watermark``.
    """
    w, h = int(canvas_size[0]), int(canvas_size[1])
    if w <= 0 or h <= 0:
        raise ImageError(f"cannot place a mark on an empty {w}x{h} canvas", stage=STAGE)
    rng = _KeyedStream(key.mac("position", f"{PARAMS_VERSION}|{identity}"))
    scale = rng.uniform(*style.scale)
    rotation = rng.uniform(-style.rotation, style.rotation)
    opacity = rng.uniform(*style.opacity)
    warp = tuple(rng.uniform(-style.warp, style.warp) for _ in range(WARP_PARAMS))
    cand_u = [(rng.unit(), rng.unit()) for _ in range(N_CANDIDATES)]
    pick = rng.unit()

    hx, hy = _nominal_half_extent(scale * min(w, h), rotation)
    if product_mask is not None:
        if product_mask.shape[:2] != (h, w):
            raise ImageError(f"product mask is {product_mask.shape[1]}x{product_mask.shape[0]}, "
                             f"canvas is {w}x{h}", stage=STAGE)
        mask8 = np.ascontiguousarray(product_mask, dtype=bool).view(np.uint8)
        rx, ry, rw, rh = cv2.boundingRect(mask8)  # of the non-zero pixels
        if rw == 0 or rh == 0:
            return VisibleMark(x=0.5, y=0.5, scale=scale, rotation=rotation, opacity=opacity, warp=warp)
        bx0, bx1, by0, by1 = float(rx), float(rx + rw), float(ry), float(ry + rh)
    else:
        bx0, bx1, by0, by1 = 0.0, float(w), 0.0, float(h)
    # Candidate centres: inside the product's bounding box, kept so the nominal footprint stays on the canvas.
    xlo, xhi = _span(hx, w - hx, bx0, bx1)
    ylo, yhi = _span(hy, h - hy, by0, by1)
    cands = [(xlo + (xhi - xlo) * u, ylo + (yhi - ylo) * v) for u, v in cand_u]
    if product_mask is None:
        cx, cy = cands[int(pick * len(cands))]
    else:
        integral = cv2.integral(mask8)
        scores = []
        for cx, cy in cands:
            x0, x1 = int(max(0, round(cx - hx))), int(min(w, round(cx + hx)))
            y0, y1 = int(max(0, round(cy - hy))), int(min(h, round(cy + hy)))
            area = max(1, (x1 - x0) * (y1 - y0))
            inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
            scores.append(float(inside) / area)
        best = max(scores)
        eligible = [c for c, s in zip(cands, scores, strict=True) if s >= NEAR_BEST * best]
        cx, cy = eligible[int(pick * len(eligible))]
    return VisibleMark(x=cx / w, y=cy / h, scale=scale, rotation=rotation, opacity=opacity, warp=warp)


def payload_id(key: OwnerKey, job: ImageJob, source_sha256: str) -> int:
    """The export's invisible-watermark payload id: PAYLOAD_BITS bits of a keyed HMAC, unique per image and preset."""
    digest = key.mac("payload", f"{source_sha256}|{job.identity}|{job.preset.name}")
    return int.from_bytes(digest, "big") >> (len(digest) * 8 - PAYLOAD_BITS)


def _background(pixels: np.ndarray, colour: Sequence[int]) -> np.ndarray:
    """Bool H x W, True where a pixel is exactly ``colour`` (cv2.inRange: one pass, ~10x numpy's 3 compares)."""
    bound = np.array([int(c) for c in colour], np.uint8)
    return cv2.inRange(np.ascontiguousarray(pixels), bound, bound).view(bool)


def product_mask(pixels: np.ndarray, background: tuple[int, int, int], content_box: Sequence[int]) -> np.ndarray:
    """Bool H x W, True where a pixel is product: inside the content box and not exactly the background colour.

    Deliberately not dilated or smoothed: on pure-white roles only these pixels may change.
    """
    return _inside_box(~_background(pixels, background), content_box)


def _inside_box(mask: np.ndarray, content_box: Sequence[int]) -> np.ndarray:
    h, w = mask.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in content_box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if (x0, y0, x1, y1) != (0, 0, w, h):
        inside = np.zeros_like(mask)
        if x1 > x0 and y1 > y0:
            inside[y0:y1, x0:x1] = True
        mask = mask & inside
    return mask


# --------------------------------------------------------------------------------------------------------------
# The invisible mark's seam and the stage


def _embed_invisible(rgb: np.ndarray, key: OwnerKey, payload: int, mask: np.ndarray | None) -> np.ndarray:
    """The one place the invisible watermark plugs in (imported on first use: the module is heavy)."""
    invisible = importlib.import_module("pipeline.invisible")
    out = invisible.embed(rgb, key, payload, mask)
    if not isinstance(out, np.ndarray) or out.shape != rgb.shape or out.dtype != np.uint8:
        raise ImageError("invisible watermark returned pixels of the wrong shape or type", stage=STAGE)
    return out


def watermark(canvas: Canvas, job: ImageJob, owner: Owner, key: OwnerKey) -> Marked:
    """Apply the marks the preset's policy asks for on this image's role: visible first, then invisible."""
    pixels = canvas.pixels
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ImageError(f"canvas must be H x W x 3 uint8 RGB, got {pixels.shape} {pixels.dtype}", stage=STAGE)
    preset = job.preset
    policy = preset.marks.get(job.role)
    if policy is None:
        raise ImageError(f"{preset.path}: preset {preset.name!r} has no mark policy for role {job.role!r}",
                         stage=STAGE)
    h, w = pixels.shape[:2]
    bg_colour = preset.canvas.background
    pure_white = job.role in preset.pure_white_roles
    identity = f"{canvas.source_sha256}|{job.identity}"

    out = pixels
    visible: VisibleMark | None = None
    payload: int | None = None
    if not (policy.visible or policy.invisible):
        return Marked(pixels=out, content_box=canvas.content_box, visible=None, payload=None)
    background = _background(pixels, bg_colour)
    mask = _inside_box(~background, canvas.content_box) if policy.visible or pure_white else None
    dirty: Region | None = None  # where ``out`` may differ from the canvas
    if policy.visible:
        out = np.array(pixels, copy=True, order="C")
        params = visible_params(key, identity, (w, h), preset.visible_style, mask)
        visible, dirty = apply_mark(out, owner, params, mask if pure_white else None)
    if policy.invisible:
        payload = payload_id(key, job, canvas.source_sha256)
        # Never hand the canvas itself over: whatever embed does, the unmarked canvas must stay as it was.
        base = np.array(out, copy=True, order="C") if out is pixels else out
        out = _embed_invisible(base, key, payload, mask if pure_white else None)
        dirty = (slice(0, h), slice(0, w))

    kept = True
    if dirty is not None:
        # A background pixel is unchanged iff it still has the background colour.
        changed = background[dirty] & ~_background(out[dirty], bg_colour)
        if pure_white and changed.any():
            # The storefront rule is absolute (e.g. Amazon main image): put the background back, and say so.
            log.warning("%s: the marks touched %d background pixels on a pure-white role; restored",
                        job.source_display, int(np.count_nonzero(changed)))
            out[dirty][changed] = np.array(bg_colour, np.uint8)
            changed = background[dirty] & ~_background(out[dirty], bg_colour)
        kept = not bool(changed.any())
    return Marked(pixels=out, content_box=canvas.content_box, visible=visible, payload=payload,
                  background_pixels_kept=kept)
