"""The signed claim: its fields, the exact bytes that are signed, signing and verifying them.

The claim is a flat JSON object of strings (plus the integer version); its signed form is the canonical JSON
shared with the ledger (:mod:`pipeline.canonical`) as UTF-8. Every field is also written as one XMP property
(:data:`CLAIM_PROPS`), and a reader rebuilds the claim from those properties alone, so editing any one of them
breaks the signature.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.canonical import canonical_json, payload_hex
from pipeline.imaging.hashes import phash_hex
from pipeline.keys import OwnerKey, PublicKey
from pipeline.metadata.text import xml_clean
from pipeline.models import Canvas, ImageJob, Marked, Owner
from pipeline.timefmt import iso_utc

CLAIM_VERSION = 2

# Claim key -> XMP property (in our namespace); the claim is rebuilt from these when a file is read, so an
# edit of any one of them breaks the signature. "payload" is omitted from the XMP when None.
CLAIM_PROPS: tuple[tuple[str, str], ...] = (
    ("v", "ClaimVersion"),
    ("owner", "Owner"),
    ("copyright", "Copyright"),
    ("key", "KeyFingerprint"),
    ("record_id", "RecordID"),
    ("payload", "Payload"),
    ("phash", "PHash"),
    ("source_sha256", "SourceSHA256"),
    ("sku", "SKU"),
    ("preset", "Preset"),
    ("created", "Created"),
)
# The keys of each claim version a reader accepts: v2 added the copyright notice, so that the public copyright
# fields (EXIF Copyright, XMP dc:rights, IPTC CopyrightNotice) are checked against a signed value too. Files
# exported with v1 claims still verify; only their owner name fields can be checked.
CLAIM_KEYS: dict[int, tuple[str, ...]] = {
    1: tuple(k for k, _ in CLAIM_PROPS if k != "copyright"),
    2: tuple(k for k, _ in CLAIM_PROPS),
}


def build_claim(marked: Marked, canvas: Canvas, job: ImageJob, owner: Owner, key: OwnerKey, *,
                record_id: str, timestamp: datetime) -> dict[str, Any]:
    """The signed fields. Strings lose XML-invalid characters so the claim survives the XMP round trip exactly."""
    return {
        "v": CLAIM_VERSION,
        "owner": xml_clean(owner.name),
        "copyright": xml_clean(owner.copyright),
        "key": key.fingerprint,
        "record_id": xml_clean(record_id),
        "payload": None if marked.payload is None else payload_hex(marked.payload),
        "phash": phash_hex(marked.pixels),
        "source_sha256": canvas.source_sha256,
        "sku": xml_clean(job.sku),
        "preset": xml_clean(job.preset.name),
        "created": iso_utc(timestamp),
    }


def signed_bytes(claim: dict[str, Any]) -> bytes:
    """The exact bytes that are signed: canonical JSON (sorted keys, no spaces), UTF-8."""
    return canonical_json(claim).encode("utf-8")


def sign_claim(claim: dict[str, Any], key: OwnerKey) -> str:
    """The base64 Ed25519 signature of the claim's signed bytes."""
    return key.sign(signed_bytes(claim))


def verify_claim(claim: dict[str, Any], signature: str, key: PublicKey) -> bool:
    """Whether ``signature`` (base64) is ``key``'s Ed25519 signature of the claim's signed bytes."""
    return key.verify(signed_bytes(claim), signature)
