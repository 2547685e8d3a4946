"""The visible keyed mark as pixels: layout of logo and/or text, outline ring, perspective warp, tone, composite.

A primitive shared by the watermark stage (which chooses the keyed parameters and composites the mark) and trace
(which re-renders a recorded mark to find its footprint). Rendering is deterministic for a given
:class:`~pipeline.models.VisibleMark` and owner profile: the profile's font file, else Pillow's built-in scalable
font (never a system font looked up by name), see :mod:`pipeline.marks.fonts`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings

import cv2
import numpy as np
from PIL import Image, ImageDraw

from pipeline.errors import ImageError
from pipeline.marks import fonts
from pipeline.marks.logo import logo_too_large
from pipeline.models import Owner, VisibleMark

#: Stage named by the ImageError a mark that cannot be drawn raises (an unreadable logo, nothing to draw).
STAGE = "watermark"

#: Warp parameters of a mark: (dx, dy) of the four corners, as fractions of the mark layer's width / height
#: (keyed by the watermark stage; changing it changes every mark).
WARP_PARAMS = 8

REF_FONT_SIZE = 100  # text is measured at this size, then rendered once at its final size
LOGO_TEXT_HEIGHT = 1.35  # logo height relative to the text's ink height when both are drawn
GAP = 0.35  # gap between logo and text, relative to the text's ink height
OUTLINE_WIDTH = 0.012  # outline (soft shadow ring) thickness relative to the mark's width
OUTLINE_STRENGTH = 0.85  # outline alpha relative to the mark's opacity
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 luma (logo ink, mark contrast)
TONE_GREYS = {"light": (250.0, 16.0), "dark": (20.0, 242.0)}  # tone -> (glyph grey, outline grey); neutral marks


# --------------------------------------------------------------------------------------------------------------
# Rendering: an unwarped coverage layout at final size, then one perspective warp into the mark's bounding box


def _text_coverage(text: str, size: int, font_path: str | None = None) -> np.ndarray:
    font = fonts.load(size, font_path)
    left, top, right, bottom = font.getbbox(text)
    im = Image.new("L", (max(1, int(right - left)), max(1, int(bottom - top))), 0)
    ImageDraw.Draw(im).text((-left, -top), text, fill=255, font=font)
    return np.asarray(im, np.float32) / 255.0


@functools.lru_cache(maxsize=8)
def _logo_coverage_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # logo_too_large is the check
            with Image.open(path) as im:
                too_large = logo_too_large(im.size)
                if too_large:
                    raise ImageError(f"{path}: the watermark logo is {too_large}", stage=STAGE)
                im.load()
                rgba8 = np.asarray(im.convert("RGBA"))  # 4 bytes a pixel; float32 only per channel below
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: cannot read the watermark logo ({exc})", stage=STAGE) from exc
    alpha = rgba8[..., 3].astype(np.float32) / 255.0
    if alpha.min() < 0.98:  # a transparent logo: its alpha is the ink
        cov = alpha
    else:  # an opaque logo: ink is what differs from the paper (the median border colour)
        lum = _luminance(rgba8[..., :3].astype(np.float32))
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
    ref = _text_coverage(text, REF_FONT_SIZE, owner.watermark_font)
    ref_w, ref_h = ref.shape[1], ref.shape[0]
    logo_ref_w = 0.0
    if logo is not None:
        logo_ref_w = LOGO_TEXT_HEIGHT * ref_h * logo.shape[1] / logo.shape[0] + GAP * ref_h
    size = max(4, round(REF_FONT_SIZE * target / (ref_w + logo_ref_w)))
    glyphs = _text_coverage(text, size, owner.watermark_font)
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
    """Relative luminance of RGB values (Rec. 709 / sRGB weights on the encoded values), float32."""
    return rgb.astype(np.float32) @ LUMA_WEIGHTS


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


def apply_mark(pixels: np.ndarray, owner: Owner, mark: VisibleMark, restrict: np.ndarray | None
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
