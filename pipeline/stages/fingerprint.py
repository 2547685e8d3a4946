"""Fingerprint stage (Marked -> Fingerprint): the signed claim and the EXIF/XMP/IPTC blocks the preset asks for.

The blocks themselves are built by :mod:`pipeline.metadata` (which also embeds, reads and checks them for the
export stage, ``verify`` and ``trace``); this stage only decides which ones an export gets.
"""

from __future__ import annotations

import base64
from datetime import datetime

from pipeline.keys import OwnerKey
from pipeline.metadata.claim import build_claim, sign_claim
from pipeline.metadata.exif import build_exif
from pipeline.metadata.iptc import build_iptc, iptc_cuts
from pipeline.metadata.text import capture_datetime, description
from pipeline.metadata.xmp import build_xmp
from pipeline.models import Canvas, Fingerprint, ImageJob, Marked, Owner

STAGE = "fingerprint"


def fingerprint(marked: Marked, canvas: Canvas, job: ImageJob, owner: Owner, key: OwnerKey, *,
                record_id: str, timestamp: datetime) -> Fingerprint:
    """Build and sign the claim and the EXIF/XMP/IPTC blocks the preset asks for (empty bytes when disabled)."""
    policy = job.preset.metadata
    claim = build_claim(marked, canvas, job, owner, key, record_id=record_id, timestamp=timestamp)
    signature = sign_claim(claim, key)
    desc = description(job, owner, record_id)
    exif = build_exif(marked, canvas, job, owner, record_id=record_id, timestamp=timestamp) if policy.exif else b""
    xmp = b""
    if policy.xmp:
        public_b64 = base64.b64encode(key.public.raw).decode("ascii")
        created = capture_datetime(canvas.capture.datetime_original) if policy.keep_capture_date else None
        xmp = build_xmp(claim, signature, public_b64, owner, desc=desc, timestamp=timestamp, title=job.sku,
                        date_created=created)
    iptc, cuts = b"", []
    if policy.iptc and job.preset.format == "jpeg":
        iptc, cuts = build_iptc(owner, desc=desc, sku=job.sku), iptc_cuts(owner, desc=desc, sku=job.sku)
    return Fingerprint(exif=exif, xmp=xmp, iptc=iptc, claim=claim, signature=signature, warnings=tuple(cuts))
