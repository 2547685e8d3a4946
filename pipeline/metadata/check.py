"""Checking a file's claim: its signature against a trusted key (or the file's own), its pHash against the pixels.

The verdict is a :class:`MetadataCheck`; ``ok`` needs a valid signature by a key the caller trusts *and*
pixels within :data:`PHASH_MAX_DISTANCE` of the signed pHash (a signed claim copied onto other pixels fails)
*and* public owner fields (:data:`PUBLIC_FIELDS`) that agree with the signed claim: a thief who rewrites
EXIF Artist or XMP dc:creator keeps a valid signature, but the names a reviewer reads were changed.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.imaging.hashes import phash_hex
from pipeline.keys import PublicKey
from pipeline.metadata.claim import verify_claim
from pipeline.metadata.iptc import IPTC_SETS
from pipeline.metadata.read import EmbeddedMetadata
from pipeline.metadata.text import ascii_text, truncate_utf8

#: Largest pHash distance (of 64 bits) between the signed hash and a file's pixels that still counts as
#: "these are the signed pixels". Measured: JPEG q30-95 re-encodes and 50% resizes 0-4 bits, a symmetric
#: 2000 px product-on-white main image after export 6; inverted, flipped, half-inverted or unrelated pixels
#: 32-62. pHash is perceptual: the same layout with different texture can land at ~8 and pass.
PHASH_MAX_DISTANCE = 10


@dataclass
class MetadataCheck:
    """Result of checking a file's claim: signature, signer and whether the pixels are the signed ones."""

    present: bool  # a catalogmark claim was found
    signature_valid: bool  # the Ed25519 signature over the claim verifies (against the key used)
    owner: str | None
    payload: str | None
    record_id: str | None
    phash_distance: int | None  # bits of 64 between the signed pHash and these pixels
    pixels_match: bool = False  # phash_distance <= PHASH_MAX_DISTANCE
    signer: str | None = None  # fingerprint of the key the signature was checked against
    signer_verified: bool = False  # that key was given by the caller (not taken from the file)
    problems: list[str] = field(default_factory=list)
    altered: list[AlteredField] = field(default_factory=list)  # public owner fields that disagree with the claim

    @property
    def ok(self) -> bool:
        return (self.present and self.signature_valid and self.signer_verified and self.pixels_match
                and not self.altered)


@dataclass(frozen=True)
class AlteredField:
    """A public owner field of a file whose value is not what the signed claim says it was exported with."""

    field: str  # e.g. "EXIF Artist"
    found: str  # what the file says now
    signed: str  # the signed claim's value

    def describe(self) -> str:
        return f"{self.field} was changed to {self.found!r} (the signed claim says {self.signed!r})"

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "found": self.found, "signed": self.signed}


#: The owner fields a marketplace reviewer reads: (label, block of EmbeddedMetadata, key there, claim key).
#: A field that is absent is not checked (presets drop blocks, formats lack IPTC, marketplaces strip
#: metadata); one that is present must carry the signed value as its writer encodes it.
PUBLIC_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("EXIF Artist", "exif", "Artist", "owner"),
    ("EXIF Copyright", "exif", "Copyright", "copyright"),
    ("XMP dc:creator", "xmp", "dc:creator", "owner"),
    ("XMP dc:rights", "xmp", "dc:rights", "copyright"),
    ("IPTC By-line", "iptc", "By-line", "owner"),
    ("IPTC CopyrightNotice", "iptc", "CopyrightNotice", "copyright"),
)
_IPTC_LIMITS = {name: limit for name, limit in IPTC_SETS.values()}


def _as_written(block: str, key: str, signed: str) -> set[str]:
    """The values the exporter writes into ``block``/``key`` for the signed text (exact, and as the format
    forces it: EXIF ASCII transliterated, IPTC cut to its data set's byte limit)."""
    forms = {signed}
    if block == "exif":
        forms |= {ascii_text(signed)[:2000], truncate_utf8(signed.encode("utf-8"), 2000).decode("utf-8")}
    elif block == "iptc":
        forms.add(truncate_utf8(signed.encode("utf-8"), _IPTC_LIMITS[key]).decode("utf-8", "replace"))
    return forms


def public_field_changes(meta: EmbeddedMetadata, claim: dict[str, Any]) -> list[AlteredField]:
    """The public owner fields of ``meta`` (:data:`PUBLIC_FIELDS`) that disagree with ``claim``; a claim key the
    claim does not sign (a v1 claim has no copyright) leaves its fields unchecked."""
    out: list[AlteredField] = []
    for label, block, key, claim_key in PUBLIC_FIELDS:
        signed = claim.get(claim_key)
        value = getattr(meta, block).get(key)
        if not isinstance(signed, str) or value is None:
            continue
        if isinstance(value, list):  # an rdf:Seq: exactly the one signed name
            found = "; ".join(str(v) for v in value)
            if [str(v) for v in value] == [signed]:
                continue
        else:
            found = str(value)
            if found in _as_written(block, key, signed):
                continue
        out.append(AlteredField(label, found, signed))
    return out


def _phash_bits(text: str) -> int:
    """The 64 bits of a claimed pHash; ValueError if it is not one.

    Accepts exactly what ``imagehash.hex_to_hash`` turns into a 64-bit hash (the reader before this one):
    16 to 20 characters that ``int(text, 16)`` parses (so surrounding spaces, ``0x``, ``_`` separators and
    leading zeros pass) to a value below 2**64.
    """
    if not 16 <= len(text) <= 20:
        raise ValueError(f"{len(text)} characters is not a 64-bit hash")
    bits = int(text, 16)
    if not 0 <= bits < 1 << 64:
        raise ValueError("not a 64-bit hash")
    return bits


def check_claim(meta: EmbeddedMetadata, pixels: np.ndarray | None, public_key: PublicKey | None) -> MetadataCheck:
    """Verify the claim's signature (against ``public_key``, else the file's own key) and its pHash vs ``pixels``."""
    claim = meta.claim
    problems: list[str] = []
    if claim is None:
        problems.append("no catalogmark claim in the file's metadata"
                        + (" (other metadata is present)" if meta.present else " (no metadata at all)"))
        return MetadataCheck(False, False, meta.owner, None, None, None, problems=problems + meta.problems)
    signed_by = claim.get("key")
    check_key = public_key
    if public_key is not None:
        if signed_by != public_key.fingerprint:
            problems.append(f"claim names signer {signed_by}, not the expected key {public_key.fingerprint}")
    else:
        try:
            check_key = PublicKey(base64.b64decode(meta.public_key_b64 or "", validate=True))
            if len(check_key.raw) != 32:
                raise ValueError("not 32 bytes")
        except (binascii.Error, ValueError):
            check_key = None
            problems.append("no usable public key embedded in the file; pass the owner's public key")
        if check_key is not None:
            if check_key.fingerprint != signed_by:
                problems.append(f"embedded public key {check_key.fingerprint} is not the claimed signer {signed_by}")
            problems.append(f"signer unverified: checked against the public key embedded in the file "
                            f"({check_key.fingerprint}), not one you trust; pass --public-key or --key-file")
    valid = bool(check_key and meta.signature and verify_claim(claim, meta.signature, check_key))
    if not meta.signature:
        problems.append("the claim has no signature")
    elif not valid:
        problems.append("signature does not verify: the claim was altered or signed by another key")
    distance: int | None = None
    if pixels is None:
        problems.append("pixels could not be decoded; the perceptual hash was not checked")
    else:
        try:
            signed = _phash_bits(str(claim.get("phash")))
            distance = (signed ^ int(phash_hex(pixels), 16)).bit_count()
        except (ValueError, TypeError):
            problems.append(f"claim pHash {claim.get('phash')!r} is malformed")
        if distance is not None and distance > PHASH_MAX_DISTANCE:
            problems.append(f"pixels differ from the signed ones (pHash distance {distance}/64 > "
                            f"{PHASH_MAX_DISTANCE}): not the image that was signed")
    altered = public_field_changes(meta, claim) if valid else []  # an unverified claim vouches for nothing
    problems.extend(a.describe() for a in altered)
    return MetadataCheck(
        present=True,
        signature_valid=valid and signed_by == (check_key.fingerprint if check_key else None),
        owner=claim.get("owner"),
        payload=claim.get("payload"),
        record_id=claim.get("record_id"),
        phash_distance=distance,
        pixels_match=distance is not None and distance <= PHASH_MAX_DISTANCE,
        signer=check_key.fingerprint if check_key else None,
        signer_verified=public_key is not None,
        problems=problems,
        altered=altered,
    )


def metadata_summary(check: MetadataCheck) -> dict[str, Any]:
    """The check as plain JSON: the ``metadata`` object of ``verify --json`` and of trace's signals."""
    return {
        "present": check.present,
        "signature_valid": check.signature_valid,
        "owner": check.owner,
        "payload": check.payload,
        "record_id": check.record_id,
        "signer": check.signer,
        "signer_verified": check.signer_verified,
        "phash_distance": check.phash_distance,
        "pixels_match": check.pixels_match,
        "problems": list(check.problems),
        "altered_fields": [a.as_json() for a in check.altered],
    }
