"""Watermark stage: the keyed visible mark (HMAC-derived geometry, adaptive contrast) and the invisible-mark seam."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import importlib
import logging
import math
import os
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.errors import ImageError
from pipeline.keys import OwnerKey
from pipeline.models import PAYLOAD_BITS, Canvas, ImageJob, Marked, Owner, VisibleMark
from pipeline.presets import VisibleStyle

STAGE = "watermark"
log = logging.getLogger(__name__)

# ---- Keyed geometry (changing any of these changes every mark: trace recomputes them, so treat as versioned) ---
PARAMS_VERSION = "v1"
N_CANDIDATES = 16  # keyed candidate centres; the one(s) covering the product most win
NEAR_BEST = 0.9  # candidates scoring >= NEAR_BEST * best are all eligible; the HMAC stream picks among them
NOMINAL_ASPECT = 0.22  # footprint height / width assumed when scoring candidates (visible_params has no owner)
WARP_PARAMS = 8  # (dx, dy) of the four corners, as fractions of the mark layer's width / height

# ---- Rendering --------------------------------------------------------------------------------------------------
REF_FONT_SIZE = 100  # text is measured at this size, then rendered once at its final size
LOGO_TEXT_HEIGHT = 1.35  # logo height relative to the text's ink height when both are drawn
GAP = 0.35  # gap between logo and text, relative to the text's ink height
OUTLINE_WIDTH = 0.012  # outline (soft shadow ring) thickness relative to the mark's width
OUTLINE_STRENGTH = 0.85  # outline alpha relative to the mark's opacity
TONE_GREYS = {"light": (250.0, 16.0), "dark": (20.0, 242.0)}  # tone -> (glyph grey, outline grey); neutral marks


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
# Rendering: an unwarped coverage layout at final size, then one perspective warp into the mark's bounding box


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's built-in scalable font (FreeType, Pillow >= 10.1): no system fonts, same glyphs everywhere.
    return ImageFont.load_default(size=size)


def _text_coverage(text: str, size: int) -> np.ndarray:
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    im = Image.new("L", (max(1, int(right - left)), max(1, int(bottom - top))), 0)
    ImageDraw.Draw(im).text((-left, -top), text, fill=255, font=font)
    return np.asarray(im, np.float32) / 255.0


@functools.lru_cache(maxsize=8)
def _logo_coverage_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            rgba = np.asarray(im.convert("RGBA"), np.float32)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: cannot read the watermark logo ({exc})", stage=STAGE) from exc
    alpha = rgba[..., 3] / 255.0
    if alpha.min() < 0.98:  # a transparent logo: its alpha is the ink
        cov = alpha
    else:  # an opaque logo: ink is what differs from the paper (the median border colour)
        lum = rgba[..., :3] @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        border = np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]])
        diff = np.abs(lum - np.median(border))
        cov = diff / diff.max() if diff.max() > 0 else np.ones_like(lum)
    ys, xs = np.nonzero(cov.max(axis=1) > 0.02)[0], np.nonzero(cov.max(axis=0) > 0.02)[0]
    if xs.size == 0:
        raise ImageError(f"{path}: the watermark logo is empty (fully transparent)", stage=STAGE)
    return np.ascontiguousarray(cov[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1])


def _logo_coverage(path: str) -> np.ndarray:
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the watermark logo ({exc.strerror})", stage=STAGE) from exc
    return _logo_coverage_cached(path, mtime, os.path.getsize(path))


def _resize(cov: np.ndarray, width: int, height: int) -> np.ndarray:
    width, height = max(1, width), max(1, height)
    shrink = width < cov.shape[1]
    return cv2.resize(cov, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _mark_text(owner: Owner) -> str:
    # The profile's watermark text; with neither text nor logo configured, the owner's name.
    if owner.watermark_text.strip():
        return owner.watermark_text.strip()
    return "" if owner.watermark_logo else owner.name.strip()


def _layout(owner: Owner, width: float) -> np.ndarray:
    """Ink coverage (float32 0..1) of logo and/or text, ``width`` px wide, unrotated and unwarped."""
    text = _mark_text(owner)
    logo = _logo_coverage(owner.watermark_logo) if owner.watermark_logo else None
    if not text and logo is None:
        raise ImageError("the owner profile has no watermark text, logo or name to draw", stage=STAGE)
    target = max(4.0, width)
    if logo is not None and not text:
        lh = logo.shape[0] * target / logo.shape[1]
        return _resize(logo, round(target), round(lh))
    ref = _text_coverage(text, REF_FONT_SIZE)
    ref_w, ref_h = ref.shape[1], ref.shape[0]
    logo_ref_w = 0.0
    if logo is not None:
        logo_ref_w = LOGO_TEXT_HEIGHT * ref_h * logo.shape[1] / logo.shape[0] + GAP * ref_h
    size = max(4, round(REF_FONT_SIZE * target / (ref_w + logo_ref_w)))
    glyphs = _text_coverage(text, size)
    if logo is None:
        return glyphs
    th = glyphs.shape[0]
    lh = max(1, round(LOGO_TEXT_HEIGHT * th))
    logo_img = _resize(logo, round(lh * logo.shape[1] / logo.shape[0]), lh)
    gap = max(1, round(GAP * th))
    out = np.zeros((lh, logo_img.shape[1] + gap + glyphs.shape[1]), np.float32)
    out[:, :logo_img.shape[1]] = logo_img
    top = (lh - th) // 2
    out[top:top + th, logo_img.shape[1] + gap:] = glyphs
    return out


def _geometry(owner: Owner, mark: VisibleMark, canvas_size: tuple[int, int]
              ) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """Warped (glyph, outline) coverage inside the mark's bounding box, clipped to the canvas, and its origin.

    Returns (x0, y0, glyph, outline) with glyph/outline float32 arrays of the clipped box, or None when the mark
    falls entirely outside the canvas.
    """
    w, h = int(canvas_size[0]), int(canvas_size[1])
    glyph = _layout(owner, mark.scale * min(w, h))
    t = max(1, round(OUTLINE_WIDTH * glyph.shape[1]))
    m = 3 * t + 2
    glyph = cv2.copyMakeBorder(glyph, m, m, m, m, cv2.BORDER_CONSTANT, value=0)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * t + 1, 2 * t + 1))
    ring = cv2.GaussianBlur(cv2.dilate(glyph, kernel), (0, 0), sigmaX=0.6 * t + 0.3)
    outline = np.clip(ring - glyph, 0.0, 1.0)
    lh, lw = glyph.shape
    warp = tuple(mark.warp) + (0.0,) * max(0, WARP_PARAMS - len(mark.warp))
    src = np.array([[0, 0], [lw, 0], [lw, lh], [0, lh]], np.float32)
    rel = src - np.array([lw / 2, lh / 2], np.float32)
    rel = rel + np.array(warp[:WARP_PARAMS], np.float32).reshape(4, 2) * np.array([lw, lh], np.float32)
    th = math.radians(mark.rotation)  # positive = counter-clockwise on screen (y points down)
    rot = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]], np.float32)
    around = (rel @ rot.T).astype(np.float32)  # corners around the mark's centre
    cx, cy = mark.x * w, mark.y * h
    x0, y0 = max(0, math.floor(cx + float(around[:, 0].min()))), max(0, math.floor(cy + float(around[:, 1].min())))
    x1, y1 = min(w, math.ceil(cx + float(around[:, 0].max()))), min(h, math.ceil(cy + float(around[:, 1].max())))
    if x1 <= x0 or y1 <= y0:
        return None
    # Solve the warp around the centre, then translate: the same mark at another place samples identically.
    shift = np.array([[1.0, 0.0, cx - x0], [0.0, 1.0, cy - y0], [0.0, 0.0, 1.0]])
    matrix = shift @ cv2.getPerspectiveTransform(src, around)
    layers = cv2.warpPerspective(np.dstack([glyph, outline]), matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    return x0, y0, np.clip(layers[..., 0], 0, 1), np.clip(layers[..., 1], 0, 1)


def _colourise(glyph: np.ndarray, outline: np.ndarray, tone: str, opacity: float) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied grey level and alpha (H x W each) of the mark: the glyph over its contrasting outline ring."""
    grey, edge = TONE_GREYS[tone]
    a_g = glyph * np.float32(opacity)
    a_o = outline * np.float32(opacity * OUTLINE_STRENGTH) * (1 - a_g)
    return a_g * np.float32(grey) + a_o * np.float32(edge), a_g + a_o


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def _choose_tone(under: np.ndarray, glyph: np.ndarray) -> str:
    """The tone whose glyph grey differs most (mean |Δ luminance|) from the pixels under the glyph."""
    ink = glyph > 0.05
    if not ink.any():
        return "light"
    lum, weights = _luminance(under[ink]), glyph[ink]
    contrast = {tone: float(np.average(np.abs(lum - grey), weights=weights)) for tone, (grey, _) in TONE_GREYS.items()}
    return max(contrast, key=lambda t: (contrast[t], t == "light"))


def render_mark(owner: Owner, mark: VisibleMark, canvas_size: tuple[int, int]) -> np.ndarray:
    """The mark as a full-canvas RGBA uint8 layer (straight alpha), e.g. for trace to re-render a recorded mark.

    Alpha-compositing it over the unmarked canvas reproduces ``watermark``'s visible step (within rounding),
    except that on pure-white roles ``watermark`` also clips it to the product mask.
    """
    w, h = int(canvas_size[0]), int(canvas_size[1])
    layer = np.zeros((h, w, 4), np.uint8)
    geo = _geometry(owner, mark, (w, h))
    if geo is None:
        return layer
    x0, y0, glyph, outline = geo
    premul, alpha = _colourise(glyph, outline, mark.tone, mark.opacity)
    straight = premul / np.maximum(alpha, 1e-6)
    bh, bw = alpha.shape
    layer[y0:y0 + bh, x0:x0 + bw, :3] = np.clip(np.rint(straight), 0, 255).astype(np.uint8)[..., None]
    layer[y0:y0 + bh, x0:x0 + bw, 3] = np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8)
    return layer


Region = tuple[slice, slice]


def _apply_visible(pixels: np.ndarray, owner: Owner, mark: VisibleMark, restrict: np.ndarray | None
                   ) -> tuple[VisibleMark, Region | None]:
    """Composite the mark into ``pixels`` in place, over its bounding box only.

    Returns the mark with its chosen tone, and the region that may have changed (None if nothing could).
    """
    h, w = pixels.shape[:2]
    geo = _geometry(owner, mark, (w, h))
    if geo is None:
        return mark, None
    x0, y0, glyph, outline = geo
    bh, bw = glyph.shape
    region = (slice(y0, y0 + bh), slice(x0, x0 + bw))
    box = pixels[region]
    if restrict is not None:
        keep = restrict[region].astype(np.float32)
        glyph, outline = glyph * keep, outline * keep
    tone = _choose_tone(box, glyph)
    mark = dataclasses.replace(mark, tone=tone)
    premul, alpha = _colourise(glyph, outline, tone, mark.opacity)
    # Where alpha is 0 this is exactly the old value (x * 1.0 + 0.0 in float32), so untouched pixels stay put.
    composite = premul[..., None] + box.astype(np.float32) * (1 - alpha)[..., None]
    box[...] = np.clip(np.rint(composite), 0, 255).astype(np.uint8)
    return mark, region


# --------------------------------------------------------------------------------------------------------------
# The invisible mark's seam and the stage


def _embed_invisible(rgb: np.ndarray, key: OwnerKey, payload: int, mask: np.ndarray | None) -> np.ndarray:
    """The one place the invisible watermark plugs in (imported lazily: the module is heavy and optional here)."""
    try:
        invisible = importlib.import_module("pipeline.invisible")
    except ImportError as exc:
        raise ImageError(f"the preset asks for an invisible watermark but pipeline.invisible is unavailable ({exc})",
                         stage=STAGE) from exc
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
        visible, dirty = _apply_visible(out, owner, params, mask if pure_white else None)
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
