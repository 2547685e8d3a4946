"""Fingerprint stage (Marked -> Fingerprint): the signed claim and the EXIF/XMP/IPTC blocks the preset asks for.

The blocks themselves are built by :mod:`pipeline.metadata` (which also embeds, reads and checks them for the
export stage, ``verify`` and ``trace``); this stage only decides which ones an export gets, and which of the
photographer's own fields (read from the source by :mod:`pipeline.metadata.source`) they carry.
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


def keep_names(job: ImageJob, owner: Owner) -> frozenset[str]:
    """What of the photographer's own metadata an export keeps: its preset's ``[metadata] keep`` and the owner
    profile's, together."""
    return frozenset(job.preset.metadata.keep) | frozenset(owner.keep_metadata)


def fingerprint(marked: Marked, canvas: Canvas, job: ImageJob, owner: Owner, key: OwnerKey, *,
                record_id: str, timestamp: datetime) -> Fingerprint:
    """Build and sign the claim and the EXIF/XMP/IPTC blocks the preset asks for (empty bytes when disabled), with
    the photographer's fields the export keeps (``keep_names``) as the source had them."""
    policy = job.preset.metadata
    claim = build_claim(marked, canvas, job, owner, key, record_id=record_id, timestamp=timestamp)
    signature = sign_claim(claim, key)
    keep, described = keep_names(job, owner), canvas.capture.described
    kept = described.only(keep) if keep and described is not None else None
    caption = kept.caption if kept is not None else None
    desc = description(job, owner, record_id, caption)
    exif = (build_exif(marked, canvas, job, owner, record_id=record_id, timestamp=timestamp, caption=caption)
            if policy.exif else b"")
    xmp = b""
    if policy.xmp:
        public_b64 = base64.b64encode(key.public.raw).decode("ascii")
        created = capture_datetime(canvas.capture.datetime_original) if policy.keep_capture_date else None
        title = kept.title if kept is not None and kept.title else job.sku
        xmp = build_xmp(claim, signature, public_b64, owner, desc=desc, timestamp=timestamp, title=title,
                        date_created=created, kept=kept)
    iptc, cuts = b"", []
    if policy.iptc and job.preset.format == "jpeg":
        iptc = build_iptc(owner, desc=desc, sku=job.sku, kept=kept)
        cuts = iptc_cuts(owner, desc=desc, sku=job.sku, kept=kept)
    return Fingerprint(exif=exif, xmp=xmp, iptc=iptc, claim=claim, signature=signature, warnings=tuple(cuts))
