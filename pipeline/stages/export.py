"""Export stage: encode per preset (format, quality, byte cap) with the metadata (writing is :mod:`pipeline.files`)."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from pipeline.errors import ImageError
from pipeline.metadata import embed
from pipeline.models import Exported, Fingerprint, ImageJob, Marked

STAGE = "export"
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def _encode_once(img: Image.Image, job: ImageJob, fp: Fingerprint, quality: int) -> bytes:
    preset = job.preset
    fmt = preset.format
    opts: dict[str, object] = {}
    if fmt == "jpeg":
        opts = {"quality": quality, "subsampling": _SUBSAMPLING.get(preset.subsampling, 2), "optimize": True}
    elif fmt == "webp":
        opts = {"quality": quality, "method": 4}
    elif fmt == "png":
        opts = {"optimize": False, "compress_level": 9}
    buf = io.BytesIO()
    img.save(buf, _PIL_FORMAT[fmt], **opts, **embed.save_kwargs(fp, fmt))
    return embed.finalize(buf.getvalue(), fp, fmt)


def encode(marked: Marked, fp: Fingerprint, job: ImageJob) -> Exported:
    """Encode the marked canvas with its metadata; for lossy formats search the highest quality under the byte cap."""
    preset = job.preset
    h, w = marked.pixels.shape[:2]
    img = Image.fromarray(marked.pixels, "RGB")
    cap = preset.max_bytes
    quality: int | None = preset.quality if preset.format in ("jpeg", "webp") else None
    data = _encode_once(img, job, fp, preset.quality)
    if cap is not None and len(data) > cap:
        if preset.format == "png":
            raise ImageError(
                f"PNG output is {len(data):,} bytes, over the preset's cap of {cap:,} bytes "
                f"(lossless: no quality to lower; use a JPEG/WebP preset or a smaller canvas)",
                stage=STAGE,
            )
        # Binary search for the highest quality in [min_quality, quality) that fits: output size is
        # monotone enough in quality for libjpeg/libwebp that this finds the best fit in ~log2(range) encodes.
        lo, hi = preset.min_quality, preset.quality - 1
        best: tuple[int, bytes] | None = None
        while lo <= hi:
            mid = (lo + hi) // 2
            candidate = _encode_once(img, job, fp, mid)
            if len(candidate) <= cap:
                best = (mid, candidate)
                lo = mid + 1
            else:
                hi = mid - 1
        if best is None:
            raise ImageError(
                f"cannot fit under the preset's byte cap of {cap:,} bytes even at quality {preset.min_quality}",
                stage=STAGE,
            )
        quality, data = best
    return Exported(
        path=job.output,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        width=w,
        height=h,
        format=preset.format,
        quality=quality,
        data=data,
    )
