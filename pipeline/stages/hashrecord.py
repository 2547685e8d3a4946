"""Hash-record stage: cryptographic and perceptual hashes of the exported image, assembled into a ledger Record."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime
from typing import Any

import cv2
import imagehash
import numpy as np
import pdqhash
from PIL import Image

from pipeline.errors import ImageError
from pipeline.models import Canvas, Exported, Fingerprint, ImageJob, Marked, Owner, Record

STAGE = "hashrecord"
PDQ_SIDE = 512  # PDQ is computed on a 512 px downscale: same hash quality, 8x cheaper (perf-baselines §3d)


def pixel_sha256(rgb: np.ndarray) -> str:
    """SHA-256 over the decoded pixels (shape and mode prefixed, so a transposed image differs)."""
    h, w = rgb.shape[:2]
    digest = hashlib.sha256(f"catalogmark-pixels:v1:{w}x{h}:RGB8:".encode())
    digest.update(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def pdq_hex(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ hash (64 hex chars) and quality (0-100) of an RGB image."""
    h, w = rgb.shape[:2]
    scale = PDQ_SIDE / max(h, w)
    small = rgb if scale >= 1 else cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                              interpolation=cv2.INTER_AREA)
    bits, quality = pdqhash.compute(np.ascontiguousarray(small))
    packed = np.packbits(np.asarray(bits, dtype=np.uint8))
    return packed.tobytes().hex(), int(quality)


def phash_hex(rgb: np.ndarray) -> str:
    return str(imagehash.phash(Image.fromarray(rgb)))


def decode_output(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # an output we just encoded must decode; anything else is a bug worth reporting
        raise ImageError(f"encoded output does not decode: {exc}", stage=STAGE) from exc


def hashrecord(
    exported: Exported,
    canvas: Canvas,
    marked: Marked,
    fp: Fingerprint,
    job: ImageJob,
    *,
    owner: Owner,
    key_fingerprint: str,
    record_id: str,
    job_key: str,
    timestamp: datetime,
    extra: dict[str, Any] | None = None,
) -> tuple[Record, np.ndarray]:
    """Hash the exported bytes and their decoded pixels; return the Record and the decoded pixels (for trace data)."""
    pixels = decode_output(exported.data)
    pdq, pdq_quality = pdq_hex(pixels)
    record = Record(
        record_id=record_id,
        job_key=job_key,
        source=job.source_display,
        source_sha256=canvas.source_sha256,
        sku=job.sku,
        role=job.role,
        position=job.position,
        preset=job.preset.name,
        preset_digest=job.preset.digest,
        output=exported.path,
        output_sha256=exported.sha256,
        output_bytes=exported.size_bytes,
        pixel_sha256=pixel_sha256(pixels),
        width=exported.width,
        height=exported.height,
        format=exported.format,
        phash=phash_hex(pixels),
        pdq=pdq,
        pdq_quality=pdq_quality,
        payload=None if marked.payload is None else f"{marked.payload:010x}",
        owner=owner.name,
        key_fingerprint=key_fingerprint,
        signature=fp.signature,
        capture=canvas.capture.as_dict() | {"source_bytes": canvas.source_bytes},
        visible_mark=marked.visible.as_dict() if marked.visible else None,
        created_at=timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        extra=dict(extra or {}) | {"quality": exported.quality, "claim": fp.claim},
    )
    return record, pixels
