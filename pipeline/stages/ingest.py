"""Ingest stage: read and validate a source image, normalise it to upright sRGB 8-bit RGB, and fit it to the preset.

One decoding path serves two callers:

- ``ingest(job)`` for the pipeline: source bytes -> SHA-256 -> ``Canvas`` at the preset geometry;
- ``load_rgb(source, max_side=...)`` for ``verify`` and ``trace``: the same normalised pixels without a preset.

The path, in order: read the bytes once (size-checked) -> Pillow opens them from memory, by content, restricted to
the formats we support (HEIC/HEIF through pillow-heif, registered on first use; PSD by its composite; a
multi-page TIFF by its first page; camera RAW through rawpy, the optional ``raw`` extra: ``_decode_raw``) ->
header checks (pixel limit, minimum size) -> capture metadata from EXIF (never fatal) ->
for JPEG, libjpeg-turbo decodes at a DCT scale (1/2, 1/4, 1/8) that still covers the target size (Pillow's
``draft()``; a source JPEG in colour is decoded by OpenCV's libjpeg-turbo at the same scale instead, the same pixels,
because that decode also gives libjpeg's warnings of corrupt or missing data, which refuse it: ``_libjpeg_decode``) ->
pixel mode normalised to 8-bit RGB/RGBA (16-bit, palette, greyscale, CMYK incl. Adobe-inverted, LAB) with the
embedded ICC profile converted to sRGB (LittleCMS via PIL.ImageCms) -> alpha flattened onto the background ->
``cv2.resize`` (INTER_AREA to shrink, Lanczos to enlarge) in stored orientation -> EXIF orientation applied on the
smaller array -> centre pad or crop to the preset box.

Every problem with the input is raised as ``ImageError(message, stage="ingest")`` naming the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import re
import stat
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageFile, features

from pipeline.catalog import RAW_SUFFIXES
from pipeline.errors import ImageError
from pipeline.files import SourceBytes
from pipeline.imaging import pngband, productbox
from pipeline.metadata.source import read_described
from pipeline.models import Canvas, CaptureInfo, Fill, ImageJob
from pipeline.presets import CanvasSpec

STAGE = "ingest"

#: Largest source accepted, in pixels (width x height, read from the header before any decoding).
#: 160 MP is above every current single-shot camera sensor (~151 MP) and below Pillow's own hard limit
#: (2 x Image.MAX_IMAGE_PIXELS, ~179 MP by default), so this check is the one that fires, with one clear message.
MAX_PIXELS = 160_000_000
#: Largest source file read into memory (bytes); checked with stat() before reading.
MAX_SOURCE_BYTES = 1 << 30
#: Pillow format ids we decode. Restricting Image.open to these keeps untrusted bytes away from plugins we do
#: not want (e.g. EPS, which would run Ghostscript). AVIF is added when this Pillow build supports it. ("JPEG" also
#: opens multi-picture JPEGs, which Pillow reports as format "MPO".) "HEIF" is pillow-heif's plugin, registered on
#: the first HEIC/HEIF file (``_heif_opener``); "PSD" is Pillow's reader of the composite (merged) image; a TIFF
#: with several pages (or Photoshop layers) is read by its first page, the composite.
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "GIF", "BMP", "PSD") + (
    ("AVIF",) if features.check("avif") else ()
) + ("HEIF",)
_SUPPORTED_TEXT = "JPEG, PNG, WebP, TIFF, GIF, BMP, PSD" + (", AVIF" if "AVIF" in SUPPORTED_FORMATS else "") + (
    ", HEIC/HEIF, RAW (with the raw extra)")
#: Camera RAW files (catalog.RAW_SUFFIXES) are decoded by rawpy/LibRaw, the optional ``raw`` extra. Those RAW
#: formats that are TIFF-structured without a mark of their own (NEF, ARW, PEF, SRW, ...) are told from a TIFF by
#: their suffix; DNG, CR2, CR3, RAF, ORF and RW2 are recognised by content too (``_raw_format``).
RAW_EXTRA_HINT = "RAW needs the raw extra: pip install 'catalogmark[raw]'"
#: EXIF tags (IFD0 / Exif sub-IFD) read into CaptureInfo.
_TAG_ORIENTATION = 0x0112
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_EXIF_IFD = 0x8769
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_BODY_SERIAL = 0xA431
_MAX_TEXT = 128  # longest EXIF text value kept (a malformed or hostile EXIF may hold megabytes)


# ----------------------------------------------------------------------------------------------------------------
# Public API


@dataclass
class Photo:
    """A source photo decoded once for all its exports: 8-bit sRGB pixels in *stored* orientation at a resolution
    that covers every export's geometry (JPEG: DCT-scaled by ``draft``), alpha not yet flattened (the background is
    per preset)."""

    pixels: np.ndarray  # H x W x 3 or 4, uint8, stored orientation
    orientation: int  # EXIF orientation (1-8) still to apply
    capture: CaptureInfo
    source_sha256: str
    source_bytes: int

    @property
    def upright_size(self) -> tuple[int, int]:
        return self.capture.original_width, self.capture.original_height


def read_source(path: str, name: str) -> SourceBytes:
    """Read a source file once (size-checked): its bytes, their SHA-256, and the stat of the descriptor read."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError
            if st.st_size > MAX_SOURCE_BYTES:
                raise ImageError(
                    f"{name}: file too large ({st.st_size:,} bytes; the limit is {MAX_SOURCE_BYTES:,})", stage=STAGE
                )
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except FileNotFoundError:
        raise ImageError(f"{name}: file not found", stage=STAGE) from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a directory, not an image file", stage=STAGE) from None
    except PermissionError:
        raise ImageError(f"{name}: cannot read the file (permission denied)", stage=STAGE) from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot read the file ({exc.strerror or exc})", stage=STAGE) from None
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)", stage=STAGE)
    if len(data) > MAX_SOURCE_BYTES:
        raise ImageError(f"{name}: file too large (over {MAX_SOURCE_BYTES:,} bytes)", stage=STAGE)
    return SourceBytes(data, hashlib.sha256(data).hexdigest(), st)


def check_size(w: int, h: int, spec: CanvasSpec, name: str) -> None:
    """ImageError if an upright ``w`` x ``h`` photo is below the preset's minimum long side on its canvas."""
    plan = plan_geometry(w, h, spec)
    x0, y0, x1, y1 = plan.content_box
    long_side = max(x1 - x0, y1 - y0)
    if spec.min_long_side and long_side < spec.min_long_side:
        raise ImageError(
            f"{name}: image too small: {w}x{h} px gives a {x1 - x0}x{y1 - y0} px photo on the "
            f"{spec.width}x{spec.height} {spec.fit} canvas, below the preset's minimum long side of "
            f"{spec.min_long_side} px" + ("" if spec.upscale else " (the preset does not upscale)"),
            stage=STAGE,
        )


def open_photo(source: SourceBytes, name: str, specs: Sequence[CanvasSpec],
               roles: Sequence[str | None] | None = None, *, describe: bool = False
               ) -> tuple[Photo | None, list[ImageError | None]]:
    """Decode a source once for every canvas in ``specs``; also say, per spec, why the photo cannot go there
    (``None`` where it can; the photo is ``None`` when it can go to none of them, and is then not decoded).

    ``roles`` (one per spec) are the exports' image roles, for a spec's role-dependent ``min_fill``. ``describe``
    (some export keeps the photographer's fields): they are read from the bytes into ``capture.described``.
    The decode covers the largest ``decode_size(...)`` among the specs the photo passes. Raises
    ImageError(stage="ingest") when the file itself is bad (every export of it fails with that message).
    """
    problems: list[ImageError | None] = []

    def target(w: int, h: int) -> tuple[int, int]:
        problems.clear()  # called again when a draft decode falls back to a full one
        best = (0, 0)
        for i, spec in enumerate(specs):
            try:
                check_size(w, h, spec, name)
            except ImageError as exc:
                problems.append(exc)
                continue
            problems.append(None)
            sw, sh = decode_size(w, h, spec.for_role(roles[i] if roles is not None else None))
            best = (max(best[0], sw), max(best[1], sh))
        if best == (0, 0):
            raise _Rejected(list(problems))  # too small for every preset: no need to decode it
        return best

    try:
        pixels, capture = _decode(source.data, name, target=target, check=None, flatten=None, orient=False,
                                  strict=True)
    except _Rejected as rejected:
        return None, rejected.problems
    if describe:
        capture = replace(capture, described=read_described(source.data))
    return Photo(pixels, capture.orientation, capture, source.sha256, len(source.data)), problems


class _Rejected(Exception):
    def __init__(self, problems: list[ImageError | None]) -> None:
        super().__init__("rejected by every preset")
        self.problems = problems


def upright(photo: Photo, size: tuple[int, int], background: tuple[int, int, int]) -> np.ndarray:
    """The whole photo, alpha flattened onto ``background``, resampled to upright ``size`` (w, h)."""
    a = photo.pixels
    if a.shape[2] == 4:
        a = _flatten(a, background)
    need = (size[1], size[0]) if photo.orientation in _SWAPS else size
    try:
        a = _resize(a, need)
    except cv2.error as exc:
        raise ImageError(f"cannot resample to {need[0]}x{need[1]} ({_short(exc)})", stage=STAGE) from None
    return _orient(a, photo.orientation)


def canvas_for(photo: Photo, spec: CanvasSpec, role: str | None = None) -> Canvas:
    """The working canvas of one export: the photo at ``spec``'s geometry (fit / pad / cover), the product
    filling ``min_fill`` of the frame if ``role`` is one of the spec's ``fill_roles``."""
    spec = spec.for_role(role)
    if spec.min_fill:
        return _fill_canvas(photo, spec)
    plan = plan_geometry(*photo.upright_size, spec)
    scaled = upright(photo, plan.scaled, spec.background)
    return Canvas(
        pixels=_place(scaled, plan, spec.background),
        content_box=plan.content_box,
        source_sha256=photo.source_sha256,
        capture=photo.capture,
        source_bytes=photo.source_bytes,
        scaled=plan.scaled,
        offset=plan.offset,
    )


def ingest(job: ImageJob) -> Canvas:
    """One export's canvas from its source file alone (read, validate, decode at its own geometry).

    Raises ImageError(stage="ingest") for any problem with the file.
    """
    name = job.source_display or job.source
    photo, problems = open_photo(read_source(job.source, name), name, [job.preset.canvas], [job.role],
                                 describe=bool(job.preset.metadata.keep))
    if photo is None or problems[0] is not None:
        raise problems[0] or ImageError(f"{name}: cannot be decoded", stage=STAGE)
    return canvas_for(photo, job.preset.canvas, job.role)


def load_rgb(
    source: str | bytes | Path, *, max_side: int | None = None
) -> tuple[np.ndarray, CaptureInfo]:
    """Decode an image (path or bytes) to upright sRGB H x W x 3 uint8, alpha flattened onto white.

    With ``max_side`` the result is downscaled (never enlarged) so its long side is at most ``max_side``, using the
    same fast path as ingest. Raises ImageError(stage="ingest") for a bad file.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data, name = bytes(source), "<bytes>"
        if not data:
            raise ImageError(f"{name}: empty file (0 bytes)", stage=STAGE)
    else:
        name = str(source)
        data = read_source(name, name).data
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")

    def target(w: int, h: int) -> tuple[int, int]:
        if max_side is None or max(w, h) <= max_side:
            return w, h
        s = max_side / max(w, h)
        return _scaled_size(w, h, s)

    return _decode(data, name, target=target, check=None, flatten=(255, 255, 255), orient=True)


# ----------------------------------------------------------------------------------------------------------------
# Geometry (pure functions of sizes; tested with hypothesis)


@dataclass(frozen=True)
class Plan:
    """How an upright source of a given size becomes the canvas."""

    scaled: tuple[int, int]  # size the whole upright source is resampled to (w, h)
    canvas: tuple[int, int]  # final canvas size (w, h)
    offset: tuple[int, int]  # where the scaled image's top-left lands on the canvas (negative = cropped)
    content_box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the photo on the canvas


def _scaled_size(w: int, h: int, s: float) -> tuple[int, int]:
    return max(1, round(w * s)), max(1, round(h * s))


def plan_geometry(w: int, h: int, spec: CanvasSpec) -> Plan:
    """The geometry for an upright ``w`` x ``h`` source on ``spec``.

    - fit: scale to fit inside the box; the canvas is the scaled photo.
    - pad: scale to fit inside the box, then pad to exactly the box, centred.
    - cover: scale to fill the box and centre-crop to it. Without ``upscale``, a source too small to fill the box
      is centre-cropped to the box's aspect ratio at its own resolution (so the canvas is smaller than the box).
    Without ``spec.upscale`` the photo is never enlarged.
    """
    bw, bh = spec.width, spec.height
    if spec.fit in ("fit", "pad"):
        s = min(bw / w, bh / h)
        if not spec.upscale:
            s = min(s, 1.0)
        sw, sh = _scaled_size(w, h, s)
        sw, sh = min(sw, bw), min(sh, bh)  # rounding never pushes the photo past the box
        if spec.fit == "fit":
            return Plan((sw, sh), (sw, sh), (0, 0), (0, 0, sw, sh))
        ox, oy = (bw - sw) // 2, (bh - sh) // 2
        return Plan((sw, sh), (bw, bh), (ox, oy), (ox, oy, ox + sw, oy + sh))
    if spec.fit == "cover":
        s = max(bw / w, bh / h)
        if not spec.upscale:
            s = min(s, 1.0)
        sw, sh = _scaled_size(w, h, s)
        k = min(sw / bw, sh / bh, 1.0)  # < 1 only when the (unenlarged) source cannot fill the box
        cw, ch = (bw, bh) if k >= 1.0 else (min(sw, max(1, round(bw * k))), min(sh, max(1, round(bh * k))))
        ox, oy = -((sw - cw) // 2), -((sh - ch) // 2)
        return Plan((sw, sh), (cw, ch), (ox, oy), (0, 0, cw, ch))
    raise ValueError(f"unknown fit {spec.fit!r}")


def _place(pixels: np.ndarray, plan: Plan, background: tuple[int, int, int]) -> np.ndarray:
    """Pad or crop the scaled upright photo onto the canvas of the plan."""
    cw, ch = plan.canvas
    ox, oy = plan.offset
    h, w = pixels.shape[:2]
    if (w, h) == (cw, ch) and (ox, oy) == (0, 0):
        return np.ascontiguousarray(pixels)
    if w >= cw and h >= ch:  # cover: centre crop (offsets are <= 0)
        return np.ascontiguousarray(pixels[-oy : -oy + ch, -ox : -ox + cw])
    # pad: the photo fits inside the canvas (offsets are >= 0)
    out = _solid(ch, cw, background)
    out[oy : oy + h, ox : ox + w] = pixels
    return out


def _solid(h: int, w: int, colour: tuple[int, int, int]) -> np.ndarray:
    """An H x W x 3 uint8 canvas of one colour. Filled a row at a time: numpy's ``out[:] = colour`` broadcasts a
    3-vector over every pixel, ~30x slower (36 ms against ~1 ms for a 2000 px canvas, measured)."""
    out = np.empty((h, w, 3), np.uint8)
    out.reshape(h, w * 3)[:] = np.tile(np.asarray(colour, np.uint8), w)
    return out


# Product fill (``CanvasSpec.min_fill``): the product's box on the background sets the scale and the centre

#: Pixels added to the product's planned extent, so that the resampled product edge (softened by the filter)
#: still measures at least the target on the canvas.
_FILL_MARGIN_PX = 2


#: A ``min_fill`` canvas is decoded to cover this many times its pad geometry: the fill scale is known only after
#: decoding (it depends on the product's box); 1.5x covers a product spanning >= 57 % of a photo for an 85 % fill,
#: so a 24 MP camera JPEG still gets a DCT-reduced draft decode (1/2 instead of full size for a 2000 px canvas).
#: A product smaller than that in its photo is enlarged from the decoded pixels (bilinear, as any enlargement).
FILL_DECODE_HEADROOM = 1.5


def decode_size(w: int, h: int, spec: CanvasSpec) -> tuple[int, int]:
    """The upright size a decode must cover for ``spec``: ``plan_geometry().scaled``, and for a ``min_fill``
    canvas ``FILL_DECODE_HEADROOM`` times that (never more than the source's own size)."""
    sw, sh = plan_geometry(w, h, spec).scaled
    if spec.min_fill:
        return min(w, math.ceil(sw * FILL_DECODE_HEADROOM)), min(h, math.ceil(sh * FILL_DECODE_HEADROOM))
    return sw, sh


def plan_fill(w: int, h: int, spec: CanvasSpec, box: tuple[float, float, float, float]) -> Plan:
    """The geometry for an upright ``w`` x ``h`` source whose product occupies ``box`` (x0, y0, x1, y1, in source
    pixels) on a ``pad`` canvas with ``min_fill``.

    If the pad plan already gives the product ``min_fill`` of the frame (``max`` of its width and height
    fractions), that plan. Otherwise the photo is scaled so the product's longer extent reaches the target (plus
    ``_FILL_MARGIN_PX``), never so far that the product leaves the frame, never below the pad scale and never
    above ``max(pad scale, max_upscale)``; the product is centred, except that on an axis where the scaled photo
    is larger than the frame it is shifted just enough that the photo still covers the frame (no new band), and
    on an axis where it is smaller the photo stays whole inside the frame. What falls outside the frame is
    trimmed (negative offsets, as with cover; the frame mapping ``u * scaled + offset`` still holds).
    """
    base = plan_geometry(w, h, spec)
    bw, bh = spec.width, spec.height
    x0, y0, x1, y1 = box
    pw, ph = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    s0 = min(base.scaled[0] / w, base.scaled[1] / h)
    frame, extent = (bw, pw) if pw / bw >= ph / bh else (bh, ph)
    if extent * s0 >= spec.min_fill * frame + _FILL_MARGIN_PX:
        return base
    s = (spec.min_fill * frame + _FILL_MARGIN_PX) / extent
    s = min(s, bw / pw, bh / ph)  # the whole product stays in the frame
    s = max(s0, min(s, max(s0, spec.max_upscale)))
    if s <= s0:  # no enlargement possible (the upscale limit): the pad plan itself (its rounding, not s0's)
        return base
    sw, sh = _scaled_size(w, h, s)
    sw, sh = max(sw, base.scaled[0]), max(sh, base.scaled[1])  # rounding never makes it smaller than the pad

    def axis(lo_edge: float, hi_edge: float, size: int, scale: float, box_side: int) -> int:
        ideal = round(box_side / 2 - (lo_edge + hi_edge) / 2 * scale)
        lo, hi = sorted((0, box_side - size))
        return min(max(ideal, lo), hi)

    ox = axis(x0, x1, sw, sw / w, bw)
    oy = axis(y0, y1, sh, sh / h, bh)
    content = (max(0, ox), max(0, oy), min(bw, ox + sw), min(bh, oy + sh))
    return Plan((sw, sh), (bw, bh), (ox, oy), content)


def _orient_view(a: np.ndarray, orientation: int) -> np.ndarray:
    """``_orient`` as a view (no copy; 2-D masks too): the upright image of a stored-orientation array."""
    t = np.swapaxes(a, 0, 1)
    return {2: a[:, ::-1], 3: a[::-1, ::-1], 4: a[::-1], 5: t, 6: t[:, ::-1], 7: t[::-1, ::-1],
            8: t[::-1]}.get(orientation, a)


def _render_window(up: np.ndarray, plan: Plan, background: tuple[int, int, int]) -> np.ndarray:
    """The canvas of ``plan`` from the upright photo ``up`` (any resolution, RGB): only the part of the photo that
    lands on the canvas is cut out and resampled (a photo enlarged and trimmed never exists whole).

    Enlarging is bilinear, not Lanczos: Lanczos rings, leaving off-white halos a few pixels out from a product
    edge on white (a "cut-out artefact" Amazon rejects); a bilinear pixel is exact white wherever its 2 x 2 source
    neighbours are. Shrinking is INTER_AREA, as everywhere."""
    sw, sh = plan.scaled
    ox, oy = plan.offset
    cw, ch = plan.canvas
    dh, dw = up.shape[:2]
    kx, ky = dw / sw, dh / sh  # photo pixels per scaled pixel
    a0, a1 = max(0, int(np.floor(max(0, -ox) * kx))), min(dw, int(np.ceil(min(sw, cw - ox) * kx)))
    b0, b1 = max(0, int(np.floor(max(0, -oy) * ky))), min(dh, int(np.ceil(min(sh, ch - oy) * ky)))
    out = _solid(ch, cw, background)
    if a1 <= a0 or b1 <= b0:
        return out
    px, py = ox + round(a0 / kx), oy + round(b0 / ky)  # where the window's top-left lands
    tw, th = max(1, round((a1 - a0) / kx)), max(1, round((b1 - b0) / ky))
    window = np.ascontiguousarray(up[b0:b1, a0:a1])
    shrinking = tw <= window.shape[1] and th <= window.shape[0]
    try:
        part = cv2.resize(window, (tw, th), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    except cv2.error as exc:
        raise ImageError(f"cannot resample to {tw}x{th} ({_short(exc)})", stage=STAGE) from None
    cx0, cy0, cx1, cy1 = max(0, px), max(0, py), min(cw, px + tw), min(ch, py + th)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0:cy1, cx0:cx1] = part[cy0 - py : cy1 - py, cx0 - px : cx1 - px]
    return out


def _fill_canvas(photo: Photo, spec: CanvasSpec) -> Canvas:
    """``canvas_for`` on a ``min_fill`` canvas: find the product's box on the background in the decoded photo,
    plan with ``plan_fill``, then measure the fill reached on the canvas itself (``Canvas.fill``)."""
    w, h = photo.upright_size
    bg = spec.background
    flat = _flatten(photo.pixels, bg) if photo.pixels.shape[2] == 4 else photo.pixels
    up = _orient_view(flat, photo.orientation)
    dh, dw = up.shape[:2]
    found = productbox.mask_box(_orient_view(productbox.product_mask(flat, bg), photo.orientation))
    fx, fy = w / dw, h / dh
    box = (0.0, 0.0, float(w), float(h)) if found is None else (
        found[0] * fx, found[1] * fy, found[2] * fx, found[3] * fy)
    plan = plan_fill(w, h, spec, box) if found is not None else plan_geometry(w, h, spec)
    if plan == plan_geometry(w, h, spec):
        pixels = _place(upright(photo, plan.scaled, bg), plan, bg)  # the pad canvas, exactly as without min_fill
    else:
        pixels = _render_window(up, plan, bg)
    measured = productbox.product_box(pixels, bg)
    reached = productbox.fill_of(measured, plan.canvas) if measured is not None else 0.0
    fill = Fill(target=spec.min_fill, reached=reached, met=reached >= spec.min_fill,
                box=measured or (0, 0, 0, 0),
                source_fill=productbox.fill_of(found, (dw, dh)) if found is not None else 0.0,
                upscale=max(plan.scaled[0] / w, plan.scaled[1] / h), max_upscale=spec.max_upscale)
    return Canvas(pixels=pixels, content_box=plan.content_box, source_sha256=photo.source_sha256,
                  capture=photo.capture, source_bytes=photo.source_bytes, scaled=plan.scaled, offset=plan.offset,
                  fill=fill)


# ----------------------------------------------------------------------------------------------------------------
# Reading and opening


# Magic numbers, only to name the format in error messages (Pillow decides what actually decodes). Hand-written
# because asking Pillow to identify formats we do not allow would hand untrusted bytes to those plugins.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"II+\x00", 0, "BigTIFF"),
    (b"MM\x00+", 0, "BigTIFF"),
    (b"BM", 0, "BMP"),
    (b"%PDF", 0, "PDF"),
    (b"8BPS", 0, "PSD"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG 2000"),
    (b"\xff\x4f\xff\x51", 0, "JPEG 2000"),
    (b"qoif", 0, "QOI"),
    (b"FUJIFILMCCD-RAW", 0, "RAF"),
    (b"IIRO", 0, "ORF"),
    (b"IIRS", 0, "ORF"),
    (b"MMOR", 0, "ORF"),
    (b"IIU\x00", 0, "RW2"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
_PIL_NAMES = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "TIFF": "TIFF", "GIF": "GIF",
              "BMP": "BMP", "AVIF": "AVIF", "PSD": "PSD", "HEIF": "HEIC/HEIF"}


def sniff_format(data: bytes) -> str | None:
    """A human name for the container format from the first bytes, or None if unrecognised."""
    for magic, at, fmt in _MAGIC:
        if data[at : at + len(magic)] == magic:
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIC/HEIF"
        if brand == b"crx ":
            return "CR3"
        return "ISO media (" + brand.decode("latin-1", "replace").strip() + ")"
    head = data[:256].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg")) and b"<svg" in data[:4096].lower():
        return "SVG"
    return None


def _is_supported_name(fmt: str) -> bool:
    return fmt in {_PIL_NAMES[f] for f in SUPPORTED_FORMATS}


_HEIF_LOCK = threading.Lock()
_heif_registered = False


def _heif_opener(name: str) -> None:
    """Register pillow-heif's Pillow plugin, once per process, on the first HEIC/HEIF file (importing it costs
    ~20 ms and loads libheif, which a run without HEIC never needs). libheif applies the HEIF transforms (irot,
    imir) while decoding, and pillow-heif then resets the EXIF Orientation to 1, so the pixels come out upright
    and ``_read_exif`` reads orientation 1: rotated exactly once. (ISO/IEC 23008-12 makes irot/imir the
    authority; the EXIF Orientation of a HEIF is informative only.)"""
    global _heif_registered
    with _HEIF_LOCK:
        if _heif_registered:
            return
        try:
            import pillow_heif
        except ImportError:
            raise ImageError(f"{name}: HEIC/HEIF needs pillow-heif, which is not installed (pip install "
                             "pillow-heif)", stage=STAGE) from None
        pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
        _heif_registered = True


def _open_formats() -> list[str]:
    # Image.open raises KeyError for a format id that is not registered, so HEIF is offered once registered only
    return [f for f in SUPPORTED_FORMATS if f != "HEIF" or _heif_registered]


def _open(data: bytes, name: str) -> Image.Image:
    """Open from memory by content (the file name's extension is ignored), mapping every failure to ImageError."""
    sniffed = sniff_format(data)
    if sniffed is not None and not _is_supported_name(sniffed):
        raise ImageError(
            f"{name}: unsupported format {sniffed}; supported: {_SUPPORTED_TEXT}", stage=STAGE
        )
    if sniffed == "HEIC/HEIF":
        _heif_opener(name)
    try:
        with warnings.catch_warnings():
            # Our own MAX_PIXELS check below replaces Pillow's soft bomb warning (its hard error is caught below);
            # Pillow also warns about corrupt EXIF while opening a JPEG, which _read_exif tolerates on its own.
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data), formats=_open_formats())
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: decompression bomb refused ({exc})", stage=STAGE) from None
    except Exception as exc:  # Pillow raises UnidentifiedImageError, SyntaxError, struct.error, ... on bad headers
        if sniffed is None:
            raise ImageError(
                f"{name}: not an image (content not recognised as any supported format: {_SUPPORTED_TEXT})",
                stage=STAGE,
            ) from None
        raise ImageError(
            f"{name}: corrupt or truncated {sniffed} file: cannot read its header ({_short(exc)})", stage=STAGE
        ) from None
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageError(f"{name}: invalid image size {w}x{h}", stage=STAGE)
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{name}: decompression bomb refused: {w}x{h} = {w * h / 1e6:.0f} MP is over the limit of "
            f"{MAX_PIXELS / 1e6:.0f} MP",
            stage=STAGE,
        )
    return im


_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")  # "<_io.BytesIO object at 0x7f...>": no help to anyone


def _short(exc: BaseException) -> str:
    """A decoder's exception as a short message, without the Python object reprs Pillow puts in some."""
    text = _REPR.sub("", str(exc)).strip() or type(exc).__name__
    if text == "cannot identify image file":
        text = "no decoder recognises its header"
    return text if len(text) <= 200 else text[:197] + "..."


# ----------------------------------------------------------------------------------------------------------------
# EXIF capture metadata (never fatal)


def _clean_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = re.sub(r"[\x00-\x1f\x7f]", " ", value.replace("\x00", "")).strip()
    return value[:_MAX_TEXT] or None


def _read_exif(im: Image.Image) -> tuple[int, dict[str, str | None]]:
    """(orientation, text fields) from the image's EXIF; malformed or absent EXIF gives what could be read."""
    fields: dict[str, str | None] = {}
    orientation = 1
    if im.format == "PNG" and "exif" not in im.info:
        # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the pixel data: that
        # would undo the band-wise decode of a large PNG. EXIF before the pixel data is in info already.
        return orientation, fields
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on corrupt EXIF; we fall back instead
        try:
            exif = im.getexif()
        except Exception:
            return 1, fields
        return _exif_fields(exif)


def _exif_fields(exif: Image.Exif, *, tiff_ep: bool = False) -> tuple[int, dict[str, str | None]]:
    """(orientation, text fields) of a parsed EXIF; ``tiff_ep``: DateTimeOriginal may also be in IFD0 (TIFF/EP,
    hence DNG and other TIFF-based RAW files)."""
    fields: dict[str, str | None] = {}
    orientation = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            o = exif.get(_TAG_ORIENTATION, 1)
            if isinstance(o, tuple | list) and o:
                o = o[0]
            if isinstance(o, int) and 1 <= o <= 8:
                orientation = o
        except Exception:
            pass
        for key, tag in (("make", _TAG_MAKE), ("model", _TAG_MODEL)):
            try:
                fields[key] = _clean_text(exif.get(tag))
            except Exception:
                fields[key] = None
        try:
            sub = exif.get_ifd(_TAG_EXIF_IFD)
        except Exception:
            sub = {}
        for key, tag in (("datetime_original", _TAG_DATETIME_ORIGINAL), ("serial", _TAG_BODY_SERIAL)):
            try:
                fields[key] = _clean_text(sub.get(tag)) or (_clean_text(exif.get(tag)) if tiff_ep else None)
            except Exception:
                fields[key] = None
    return orientation, fields


# ----------------------------------------------------------------------------------------------------------------
# Colour: ICC -> sRGB with cached LittleCMS transforms

_SRGB: ImageCms.ImageCmsProfile | None = None
_TRANSFORMS: OrderedDict[tuple[bytes, str, str], ImageCms.ImageCmsTransform] = OrderedDict()
_TRANSFORMS_LOCK = threading.Lock()
_TRANSFORMS_MAX = 16
_ICC_SPACE_MODES = {"RGB": ("RGB", "RGBA"), "GRAY": ("L",), "CMYK": ("CMYK",), "LAB": ("LAB",)}


def _srgb() -> ImageCms.ImageCmsProfile:
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB


def _transform(icc: bytes, profile: ImageCms.ImageCmsProfile, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    # Building a LittleCMS transform costs a few ms; catalogs repeat the same few camera profiles, so cache them.
    key = (hashlib.sha256(icc).digest(), in_mode, out_mode)
    with _TRANSFORMS_LOCK:
        cached = _TRANSFORMS.get(key)
        if cached is not None:
            _TRANSFORMS.move_to_end(key)
            return cached
    t = ImageCms.buildTransform(profile, _srgb(), in_mode, out_mode)
    with _TRANSFORMS_LOCK:
        _TRANSFORMS[key] = t
        while len(_TRANSFORMS) > _TRANSFORMS_MAX:
            _TRANSFORMS.popitem(last=False)
    return t


@dataclass
class _Icc:
    profile: ImageCms.ImageCmsProfile | None
    data: bytes
    space: str  # "RGB", "GRAY", "CMYK", "LAB", ...
    description: str | None
    is_srgb: bool


def _read_icc(im: Image.Image) -> _Icc | None:
    data = im.info.get("icc_profile")
    if not data or not isinstance(data, bytes):
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        space = str(profile.profile.xcolor_space).strip().upper()
        desc = _clean_text(ImageCms.getProfileDescription(profile)) or "unnamed ICC profile"
    except Exception:
        return _Icc(None, data, "", "unreadable ICC profile (ignored, assumed sRGB)", False)
    # An sRGB-described profile is (near enough) what we convert to; skipping the identity transform saves
    # 10-40 ms per camera-size image.
    is_srgb = space == "RGB" and desc.lower().startswith("srgb")
    return _Icc(profile, data, space, desc, is_srgb)


def _apply_icc(im: Image.Image, icc: _Icc | None, name: str) -> tuple[Image.Image, str | None]:
    """Convert ``im`` to sRGB with its profile when the profile matches the pixel mode; returns (image, note)."""
    if icc is None:
        return im, None
    if icc.profile is None or icc.is_srgb:
        return im, icc.description
    modes = _ICC_SPACE_MODES.get(icc.space, ())
    if im.mode not in modes:
        return im, f"{icc.description} (ignored: {icc.space or 'unknown'} profile on {im.mode} pixels)"
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    try:
        t = _transform(icc.data, icc.profile, im.mode, out_mode)
        return ImageCms.applyTransform(im, t) or im, icc.description
    except Exception as exc:  # a profile LittleCMS cannot use: keep the pixels, say so in the capture info
        return im, f"{icc.description} (ignored: {_short(exc)})"


# ----------------------------------------------------------------------------------------------------------------
# Pixel modes -> 8-bit RGB / RGBA


def _to_8bit_grey(im: Image.Image, name: str) -> Image.Image:
    """I;16* and I (integer) modes to L, scaling the 16-bit range (Pillow's convert would clip, not scale)."""
    a = np.asarray(im)
    if a.dtype.kind not in "iu":
        raise ImageError(f"{name}: unsupported pixel mode {im.mode}", stage=STAGE)
    a = np.clip(a.astype(np.int64), 0, 65535)
    out = ((a * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(out, "L")


def _normalise(im: Image.Image, icc: _Icc | None, name: str) -> tuple[Image.Image, str | None]:
    """Any supported Pillow mode to 8-bit RGB or RGBA in sRGB. Returns (image, ICC note for CaptureInfo)."""
    mode = im.mode
    note = icc.description if icc else None
    if mode in ("RGB", "RGBA") and "transparency" not in im.info:
        return _apply_icc(im, icc, name)
    if mode == "RGBA" or mode in ("RGBa", "LA", "La", "PA") or (
        mode in ("P", "L", "RGB", "1") and "transparency" in im.info
    ):
        rgba = im.convert("RGBA")
        return _apply_icc(rgba, icc, name)
    if mode in ("P", "RGBX", "YCbCr", "HSV"):
        return _apply_icc(im.convert("RGB"), icc, name)
    if mode in ("L", "1"):
        grey = im if mode == "L" else im.convert("L")
        if icc is not None and icc.space == "GRAY":
            out, note = _apply_icc(grey, icc, name)
            return (out if out.mode == "RGB" else out.convert("RGB")), note
        return grey.convert("RGB"), note
    if mode.startswith("I;16") or mode == "I":
        grey = _to_8bit_grey(im, name)
        if icc is not None and icc.space == "GRAY":
            out, note = _apply_icc(grey, icc, name)
            return (out if out.mode == "RGB" else out.convert("RGB")), note
        return grey.convert("RGB"), note
    if mode == "CMYK":
        if icc is not None and icc.space == "CMYK" and icc.profile is not None:
            return _apply_icc(im, icc, name)
        # No usable CMYK profile: Pillow's naive conversion (R = 255 - min(255, C + K), ...), as most viewers do.
        return im.convert("RGB"), note
    if mode == "LAB":
        if icc is not None and icc.space == "LAB" and icc.profile is not None:
            return _apply_icc(im, icc, name)
        lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
        t = ImageCms.buildTransform(lab, _srgb(), "LAB", "RGB")
        return ImageCms.applyTransform(im, t) or im, note
    raise ImageError(f"{name}: unsupported pixel mode {mode}", stage=STAGE)


def _flatten(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Composite RGBA over an opaque background, exact at alpha 0 and 255 (integer arithmetic, rounded)."""
    a = rgba[..., 3:4].astype(np.uint16)
    rgb = rgba[..., :3].astype(np.uint16)
    bg = np.asarray(background, np.uint16)
    out = (rgb * a + bg * (255 - a) + 127) // 255
    return out.astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------------
# Orientation and resampling


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to a stored-orientation array, giving the upright image (C-contiguous).

    OpenCV's flips and rotations give the same pixels as numpy's views made contiguous (``_orient_view``; the
    ingest tests compare every orientation with Pillow's ``exif_transpose``) in about a quarter of the time: a
    numpy copy of a transposed view walks memory across its rows (62 ms against 14 ms for 6 MP, measured)."""
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return np.ascontiguousarray(a)
    a = np.ascontiguousarray(a)
    if orientation == 2:
        out = cv2.flip(a, 1)
    elif orientation == 3:
        out = cv2.rotate(a, cv2.ROTATE_180)
    elif orientation == 4:
        out = cv2.flip(a, 0)
    elif orientation == 5:
        out = cv2.transpose(a)
    elif orientation == 6:
        out = cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)
    elif orientation == 7:
        out = cv2.transpose(cv2.rotate(a, cv2.ROTATE_180))
    else:
        out = cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return out.reshape(out.shape[:2] + a.shape[2:])  # OpenCV drops a last axis of 1


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    if a.shape[1] == w and a.shape[0] == h:
        return a
    shrinking = w <= a.shape[1] and h <= a.shape[0]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4
    return cv2.resize(a, (w, h), interpolation=interp)


# ----------------------------------------------------------------------------------------------------------------
# Corrupt JPEG data: the decoder's own warnings

#: libjpeg warnings that mean image data is missing or damaged (the decoder fills what it lost with grey or
#: garbage and carries on). "bad ICC marker" is metadata, read on its own (_read_icc), so it is not among them.
_JPEG_DATA_WARNINGS = re.compile(r"^(Corrupt JPEG data: (?!bad ICC marker).*|Premature end of JPEG file"
                                 r"|Invalid SOS parameters for sequential JPEG"
                                 r"|Inconsistent progression sequence for component .*)$")
_STDERR_LOCK = threading.Lock()


_CV_SCALES = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
              8: cv2.IMREAD_REDUCED_COLOR_8}


def _draft_scale(size: tuple[int, int], need: tuple[int, int]) -> int:
    """The DCT scale Pillow's ``JpegImageFile.draft`` picks for ``need`` (the largest of 8, 4, 2, 1 that still
    covers it): the scale the OpenCV decode uses, so both give the same pixels."""
    if need[0] >= size[0] and need[1] >= size[1]:
        return 1
    scale = min(size[0] // max(1, need[0]), size[1] // max(1, need[1]))
    return next(s for s in (8, 4, 2, 1) if scale >= s)


def _libjpeg_warnings(data: bytes) -> list[str]:
    """The warnings libjpeg-turbo gives while decoding ``data`` (``_libjpeg_decode`` at 1/8 scale in grey)."""
    return _libjpeg_decode(data, None)[0]


def _libjpeg_decode(data: bytes, scale: int | None) -> tuple[list[str], np.ndarray | None]:
    """Decode ``data`` with OpenCV's libjpeg-turbo, collecting the warnings it gives: (warnings, RGB pixels at DCT
    ``scale`` in stored orientation, or None if OpenCV cannot decode it). ``scale`` None: 1/8 in grey, for the
    warnings alone (every entropy-coded byte is still decoded; ~3 ms a megapixel), and no pixels.

    Pillow's JPEG decoder discards the warnings (its libjpeg message hook does nothing), and a corrupt scan then
    decodes "fine", the lost part grey. OpenCV's copy prints them on stderr, so file descriptor 2 is captured
    meanwhile; anything else written to it is passed on. At the same scale OpenCV's decode gives the same pixels
    as Pillow's (both libjpeg-turbo, accurate integer DCT, smooth chroma upsampling; checked byte for byte by
    tests/test_ingest.py), so a source JPEG is decoded once, not once by each.
    """
    flags = cv2.IMREAD_REDUCED_GRAYSCALE_8 if scale is None else _CV_SCALES[scale]
    pixels: np.ndarray | None = None
    with _STDERR_LOCK, contextlib.ExitStack() as stack:
        try:
            capture = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except OSError:  # no room for a temp file, or no stderr at all (fd 2 closed): the check cannot be made
            return [], None
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            os.dup2(capture.fileno(), 2)
            with contextlib.suppress(cv2.error):  # OpenCV cannot decode it at all: Pillow decides (and says why)
                pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read(1 << 16).decode("utf-8", "replace")
    found: list[str] = []
    other: list[str] = []
    for line in text.splitlines():
        (found if _JPEG_DATA_WARNINGS.match(line.strip()) else other).append(line)
    if other:
        os.write(2, ("\n".join(other) + "\n").encode("utf-8", "replace"))
    if scale is None or pixels is None or pixels.ndim != 3 or pixels.shape[2] != 3:
        return found, None
    return found, cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels)


def _check_jpeg_data(data: bytes, name: str, scale: int | None = None) -> np.ndarray | None:
    """ImageError if the JPEG decoder reports missing or corrupt image data (a truncated file, a header that
    claims more than the scan holds, random bytes in the scan). With ``scale``, the decode's RGB pixels at that
    DCT scale (None if OpenCV could not decode it: Pillow then does, and says what is wrong)."""
    problems, pixels = _libjpeg_decode(data, scale)
    if problems:
        detail = problems[0].removeprefix("Corrupt JPEG data: ").rstrip(".")
        more = f" (and {len(problems) - 1} more decoder warnings)" if len(problems) > 1 else ""
        raise ImageError(f"{name}: corrupt: {detail[0].lower() + detail[1:]}{more}", stage=STAGE)
    return pixels


# ----------------------------------------------------------------------------------------------------------------
# The shared decode path

_SWAPS = (5, 6, 7, 8)  # orientations that swap width and height


def _reduce_png(data: bytes, name: str, factor: int) -> Image.Image | None:
    """The PNG box-reduced by ``factor`` with bounded memory, or None if it cannot be band-decoded."""
    try:
        return pngband.reduce_png(io.BytesIO(data), factor)
    except pngband.NotBandDecodable:
        return None
    except pngband.PngError as exc:
        raise ImageError(f"{name}: corrupt or truncated PNG data ({_short(exc)})", stage=STAGE) from None


def _decode(
    data: bytes,
    name: str,
    *,
    target: Callable[[int, int], tuple[int, int]],
    check: Callable[[int, int], None] | None,
    flatten: tuple[int, int, int] | None,
    orient: bool,
    use_draft: bool = True,
    strict: bool = False,
) -> tuple[np.ndarray, CaptureInfo]:
    """Bytes -> (sRGB uint8 array covering ``target(upright_w, upright_h)``, CaptureInfo).

    With ``flatten`` (a background colour) and ``orient`` the result is upright RGB at exactly the target size;
    without, it keeps alpha (RGBA) and the stored orientation, and is resampled only by the JPEG draft scale.
    ``strict`` (sources, not suspects): a JPEG whose decoder reports missing or corrupt data is refused.
    """
    raw = _raw_format(data, name)
    if raw is not None:
        return _decode_raw(data, name, raw, target=target, check=check, flatten=flatten, orient=orient)
    im = _open(data, name)
    try:
        return _decode_opened(im, data, name, target=target, check=check, flatten=flatten, orient=orient,
                              use_draft=use_draft, strict=strict)
    finally:
        im.close()


def _decode_opened(
    im: Image.Image,
    data: bytes,
    name: str,
    *,
    target: Callable[[int, int], tuple[int, int]],
    check: Callable[[int, int], None] | None,
    flatten: tuple[int, int, int] | None,
    orient: bool,
    use_draft: bool,
    strict: bool = False,
) -> tuple[np.ndarray, CaptureInfo]:
    fmt = str(im.format or "")
    orientation, fields = _read_exif(im)
    sw0, sh0 = im.size  # stored orientation
    uw, uh = (sh0, sw0) if orientation in _SWAPS else (sw0, sh0)
    if check is not None:
        check(uw, uh)
    tw, th = target(uw, uh)  # upright target size of the whole photo
    need = (th, tw) if orientation in _SWAPS else (tw, th)  # the same in stored orientation
    icc = _read_icc(im)  # read before draft/load: the profile is in the header
    if strict and fmt in ("JPEG", "MPO"):
        # a colour JPEG (one frame) is decoded here once, checked and at its draft scale; others are checked here
        # and decoded by Pillow below (greyscale and CMYK keep Pillow's modes)
        one = fmt == "JPEG" and im.mode == "RGB" and len(getattr(im, "tile", ())) == 1
        scale = _draft_scale((sw0, sh0), need) if use_draft else 1
        pixels = _check_jpeg_data(data, name, scale if one else None)
        if pixels is not None and pixels.shape[:2] == (-(-sh0 // scale), -(-sw0 // scale)):
            return _finish_decoded(Image.fromarray(pixels), icc, name, need=need, flatten=flatten, orient=orient,
                                   orientation=orientation, fields=fields, sizes=((sw0, sh0), (uw, uh)), fmt=fmt)

    drafted = False
    if use_draft and fmt in ("JPEG", "MPO") and (need[0] < sw0 or need[1] < sh0):
        try:
            im.draft(im.mode, need)
            drafted = im.size != (sw0, sh0)
        except Exception:
            drafted = False
    factor = min(sw0 // max(1, need[0]), sh0 // max(1, need[1]))
    if use_draft and fmt == "PNG" and factor >= 2:
        # PNG has no DCT scale: decode band by band, box-reducing each band, so a 100 MP PNG never exists in
        # memory at full size (pngband.py); interlaced files fall back to the full decode below.
        reduced = _reduce_png(data, name, factor)
        if reduced is not None:
            im = reduced
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # set by some other code in this process: a truncated file must not pass
        raise ImageError(f"{name}: cannot check the file for truncation (PIL.ImageFile.LOAD_TRUNCATED_IMAGES is "
                         "set in this process)", stage=STAGE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as in _open: nothing Pillow warns about here is fatal
            im.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: decompression bomb refused ({exc})", stage=STAGE) from None
    except MemoryError:
        raise ImageError(f"{name}: out of memory decoding a {sw0}x{sh0} image", stage=STAGE) from None
    except Exception as exc:
        raise ImageError(f"{name}: corrupt or truncated {_PIL_NAMES.get(fmt, fmt)} data ({_short(exc)})",
                         stage=STAGE) from None
    if drafted and (im.size[0] < need[0] or im.size[1] < need[1]):
        # The DCT-scaled decode came out smaller than the target (cannot happen with Pillow's rounding, but the
        # contract is "never below target"): decode again at full size.
        return _decode(data, name, target=target, check=None, flatten=flatten, orient=orient, use_draft=False)
    return _finish_decoded(im, icc, name, need=need, flatten=flatten, orient=orient, orientation=orientation,
                           fields=fields, sizes=((sw0, sh0), (uw, uh)), fmt=fmt)


def _finish_decoded(im: Image.Image, icc: _Icc | None, name: str, *, need: tuple[int, int],
                    flatten: tuple[int, int, int] | None, orient: bool, orientation: int,
                    fields: dict[str, str | None], sizes: tuple[tuple[int, int], tuple[int, int]],
                    fmt: str) -> tuple[np.ndarray, CaptureInfo]:
    """Decoded pixels (any mode) -> sRGB uint8 -> ``_finish``. ``sizes``: the file's (stored, upright) size."""
    (sw0, sh0), upright_size = sizes
    try:
        norm, icc_note = _normalise(im, icc, name)
        a = np.asarray(norm)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(f"{name}: out of memory converting a {sw0}x{sh0} image", stage=STAGE) from None
    except Exception as exc:
        raise ImageError(f"{name}: cannot convert {im.mode} pixels to sRGB ({_short(exc)})", stage=STAGE) from None
    if a.ndim != 3 or a.dtype != np.uint8 or a.shape[2] not in (3, 4):
        raise ImageError(f"{name}: unexpected decoded pixel layout {a.shape} {a.dtype}", stage=STAGE)
    return _finish(a, name, need=need, flatten=flatten, orient=orient, orientation=orientation, fields=fields,
                   upright_size=upright_size, source_format=fmt if fmt != "MPO" else "JPEG", icc_note=icc_note)


def _finish(a: np.ndarray, name: str, *, need: tuple[int, int], flatten: tuple[int, int, int] | None, orient: bool,
            orientation: int, fields: dict[str, Any], upright_size: tuple[int, int], source_format: str,
            icc_note: str | None) -> tuple[np.ndarray, CaptureInfo]:
    """The end of every decode path (Pillow's and the RAW one): flatten, resample and orient as asked; the
    capture data."""
    if flatten is not None:
        if a.shape[2] == 4:
            a = _flatten(a, flatten)
        try:
            a = _resize(a, need)
        except cv2.error as exc:
            raise ImageError(f"{name}: cannot resample to {need[0]}x{need[1]} ({_short(exc)})",
                             stage=STAGE) from None
    if orient:
        a = _orient(a, orientation)
    capture = CaptureInfo(
        datetime_original=fields.get("datetime_original"),
        make=fields.get("make"),
        model=fields.get("model"),
        serial=fields.get("serial"),
        original_width=upright_size[0],
        original_height=upright_size[1],
        orientation=orientation,
        source_format=source_format,
        icc_profile=icc_note,
    )
    return a, capture


# ----------------------------------------------------------------------------------------------------------------
# Camera RAW through rawpy (LibRaw), the optional ``raw`` extra

#: LibRaw's ``flip`` (bit 0 mirror x, bit 1 mirror y, bit 2 transpose, as dcraw) as the EXIF orientation it means
#: (the inverse of LibRaw's own EXIF -> flip table "50132467")
_RAW_FLIP_TO_EXIF = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}
_TAG_DNG_VERSION = 0xC612


def _raw_format(data: bytes, name: str) -> str | None:
    """The RAW format of ``data`` ("DNG", "CR2", ...), or None if it is not a camera RAW file.

    By content where the format has a mark of its own (DNG: a TIFF whose IFD0 holds DNGVersion; CR2: "CR" after
    the TIFF header; CR3, RAF, ORF, RW2: their magic numbers); a TIFF-structured file named with a RAW suffix
    (NEF, ARW, PEF, SRW, ...) is taken for that RAW format: those have no mark a TIFF reader could tell apart.
    """
    sniffed = sniff_format(data)
    if sniffed in ("CR3", "RAF", "ORF", "RW2"):
        return sniffed
    if sniffed != "TIFF":
        return None
    if data[8:10] == b"CR":
        return "CR2"
    suffix = Path(name).suffix.lower()
    try:
        exif = Image.Exif()
        with warnings.catch_warnings():  # "Corrupt EXIF data" of a damaged TIFF: the decode reports it
            warnings.simplefilter("ignore")
            exif.load(data[:1 << 20])  # IFD0 only, its values from the first MiB (DNGVersion: a 4-byte inline value)
        if _TAG_DNG_VERSION in exif:
            return "DNG"
    except Exception:
        pass
    return suffix[1:].upper() if suffix in RAW_SUFFIXES else None


def _rawpy(name: str) -> Any:
    try:
        import rawpy
    except ImportError:
        raise ImageError(f"{name}: {RAW_EXTRA_HINT}", stage=STAGE) from None
    return rawpy


def _raw_capture(data: bytes, kind: str) -> tuple[int, dict[str, str | None]]:
    """(EXIF orientation, capture fields) from a RAW file's own EXIF, read with Pillow: TIFF-structured RAW files
    (DNG, NEF, CR2, ARW, PEF, SRW; ORF and RW2 behind their own magic number) hold IFD0 + Exif IFD like a TIFF;
    RAF carries a JPEG preview with the camera's EXIF. CR3 keeps EXIF in ISO-media boxes that no library we use
    reads: only LibRaw's timestamp is used for it (``_decode_raw``)."""
    try:
        exif = Image.Exif()
        if kind == "RAF":
            at, length = int.from_bytes(data[84:88], "big"), int.from_bytes(data[88:92], "big")
            with Image.open(io.BytesIO(data[at : at + length]), formats=["JPEG"]) as preview:
                exif = preview.getexif()
        elif kind in ("ORF", "RW2"):
            exif.load((b"II*\x00" if data[:2] == b"II" else b"MM\x00*") + data[4:])  # TIFF behind another magic
        elif kind != "CR3":
            exif.load(data)
        return _exif_fields(exif, tiff_ep=True)
    except Exception:
        return 1, {}


def _decode_raw(
    data: bytes,
    name: str,
    kind: str,
    *,
    target: Callable[[int, int], tuple[int, int]],
    check: Callable[[int, int], None] | None,
    flatten: tuple[int, int, int] | None,
    orient: bool,
) -> tuple[np.ndarray, CaptureInfo]:
    """A camera RAW file -> the same as ``_decode_opened``: developed by LibRaw (rawpy) with the camera's as-shot
    white balance to 8-bit sRGB (sRGB primaries and the sRGB tone curve, gamma 2.4 / toe slope 12.92), in stored
    orientation (``user_flip=0``); the RAW's own flip becomes the EXIF orientation applied like a JPEG's. When the
    target is at most half the sensor size, LibRaw's half-size mode (each 2x2 Bayer block one pixel, no
    demosaicing) is the RAW's draft decode: about 4x faster."""
    rawpy = _rawpy(name)
    try:
        raw = rawpy.imread(io.BytesIO(data))
    except MemoryError:
        raise ImageError(f"{name}: out of memory opening a {kind} file", stage=STAGE) from None
    except rawpy.LibRawFileUnsupportedError:
        raise ImageError(f"{name}: unsupported {kind} file (LibRaw {'.'.join(map(str, rawpy.libraw_version))} "
                         "cannot read it)", stage=STAGE) from None
    except Exception as exc:
        raise ImageError(f"{name}: corrupt or truncated {kind} file: cannot read its header ({_short(exc)})",
                         stage=STAGE) from None
    with raw:
        sizes = raw.sizes
        sw0, sh0 = int(sizes.width), int(sizes.height)
        if sw0 < 1 or sh0 < 1:
            raise ImageError(f"{name}: invalid image size {sw0}x{sh0}", stage=STAGE)
        if sw0 * sh0 > MAX_PIXELS:
            raise ImageError(f"{name}: decompression bomb refused: {sw0}x{sh0} = {sw0 * sh0 / 1e6:.0f} MP is over "
                             f"the limit of {MAX_PIXELS / 1e6:.0f} MP", stage=STAGE)
        exif_orientation, fields = _raw_capture(data, kind)
        orientation = _RAW_FLIP_TO_EXIF.get(int(sizes.flip) & 7, exif_orientation)
        uw, uh = (sh0, sw0) if orientation in _SWAPS else (sw0, sh0)
        if check is not None:
            check(uw, uh)
        tw, th = target(uw, uh)
        need = (th, tw) if orientation in _SWAPS else (tw, th)
        half = 2 * need[0] <= sw0 and 2 * need[1] <= sh0
        if not fields.get("datetime_original"):
            with contextlib.suppress(Exception):
                stamp = raw.other.timestamp  # LibRaw's reading of the capture time (local time, as EXIF)
                if stamp.timestamp() > 86400:  # 0 (the epoch) means "none"
                    fields["datetime_original"] = stamp.strftime("%Y:%m:%d %H:%M:%S")
        try:
            a = raw.postprocess(use_camera_wb=True, output_color=rawpy.ColorSpace.sRGB, output_bps=8,
                                gamma=(2.4, 12.92), user_flip=0, half_size=half)
        except MemoryError:
            raise ImageError(f"{name}: out of memory developing a {sw0}x{sh0} {kind} file", stage=STAGE) from None
        except Exception as exc:
            raise ImageError(f"{name}: corrupt or truncated {kind} data ({_short(exc)})", stage=STAGE) from None
    a = np.ascontiguousarray(a)
    if a.ndim != 3 or a.dtype != np.uint8 or a.shape[2] != 3:
        raise ImageError(f"{name}: unexpected developed pixel layout {a.shape} {a.dtype}", stage=STAGE)
    return _finish(a, name, need=need, flatten=flatten, orient=orient, orientation=orientation, fields=fields,
                   upright_size=(uw, uh), source_format=kind, icc_note=None)


__all__ = ["MAX_PIXELS", "MAX_SOURCE_BYTES", "SUPPORTED_FORMATS", "Photo", "Plan", "canvas_for", "check_size",
           "ingest", "load_rgb", "open_photo", "plan_geometry", "read_source", "sniff_format", "upright"]
