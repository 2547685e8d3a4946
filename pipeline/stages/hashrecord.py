"""Hash-record stage: cryptographic and perceptual hashes of the exported image, assembled into a ledger Record."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image

from pipeline.canonical import payload_hex
from pipeline.errors import ImageError
from pipeline.imaging import hashes
from pipeline.models import Canvas, Exported, Fingerprint, ImageJob, Marked, Owner, Record
from pipeline.timefmt import iso_utc

STAGE = "hashrecord"


def pixel_sha256(rgb: np.ndarray) -> str:
    """SHA-256 over the decoded pixels (shape and mode prefixed, so a transposed image differs)."""
    h, w = rgb.shape[:2]
    digest = hashlib.sha256(f"catalogmark-pixels:v1:{w}x{h}:RGB8:".encode())
    digest.update(np.ascontiguousarray(rgb, dtype=np.uint8).data)  # the array's own buffer: no copy of the pixels
    return digest.hexdigest()


def decode_output(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))  # no second copy of an RGB output
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
    """Hash the exported bytes and their decoded pixels; return the Record and the decoded pixels downscaled to
    ``hashes.HASH_SIDE`` (what trace's search keys are computed on).

    pHash is the one signed in the claim (of the marked pixels); PDQ is of the decoded output, both computed once.
    ``extra.hashes`` names what computed them (``hashes.hash_versions``: method and library versions).
    """
    pixels = decode_output(exported.data)
    small = hashes.downscale(pixels, hashes.HASH_SIDE)
    pdq, pdq_quality = hashes.pdq(small)
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
        phash=str(fp.claim["phash"]),
        pdq=pdq.hex(),
        pdq_quality=pdq_quality,
        payload=None if marked.payload is None else payload_hex(marked.payload),
        owner=owner.name,
        key_fingerprint=key_fingerprint,
        signature=fp.signature,
        capture=canvas.capture.as_dict() | {"source_bytes": canvas.source_bytes},
        visible_mark=marked.visible.as_dict() if marked.visible else None,
        created_at=iso_utc(timestamp),
        extra=dict(extra or {}) | {"quality": exported.quality, "claim": fp.claim, "hashes": hashes.hash_versions()}
        | ({"fill": canvas.fill.as_dict()} if canvas.fill is not None else {}),
    )
    return record, small
