"""`catalogmark verify`: check one file's signed metadata and its invisible watermark (read blind; when that misses,
the signed claim's own payload tested)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import files
from pipeline.canonical import payload_hex
from pipeline.keys import OwnerKey, PublicKey
from pipeline.metadata.check import MetadataCheck, check_claim, metadata_summary
from pipeline.metadata.read import EmbeddedMetadata, read_embedded
from pipeline.progress import printable

BLIND = "blind"  # WatermarkCheck.mode: the payload decoded from the pixels alone
TESTED = "tested"  # ... the blind read missed; the signed claim's payload was tested and its chips are there


@dataclass(frozen=True)
class WatermarkCheck:
    """What verify found of the invisible watermark in one file."""

    found: bool
    payload: int | None = None  # the payload read (or, TESTED, the claim's payload whose chips are there)
    confidence: float = 0.0  # the blind read's confidence (0 when nothing was read)
    reason: str | None = None  # why the watermark could not be looked for (no key, pixels not decoded, ...)
    mode: str | None = None  # BLIND or TESTED when found
    chip_z: float | None = None  # the known-payload test's z (invisible.chiptest), when it was made
    false_positive_probability: float | None = None  # TESTED: Hoeffding's bound at chip_z

    def as_json(self) -> dict[str, Any]:
        """The ``watermark`` object of ``verify --json``: found / payload / confidence always, the rest if set."""
        out: dict[str, Any] = {"found": self.found,
                               "payload": payload_hex(self.payload) if self.found and self.payload is not None
                               else None,
                               "confidence": self.confidence}
        for name in ("reason", "mode", "chip_z", "false_positive_probability"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def describe(self) -> str:
        from pipeline.invisible.chiptest import DETECT_Z

        if self.mode == TESTED:
            return (f"watermark: present, payload {payload_hex(self.payload or 0)} (the signed claim's: the blind "
                    f"read missed, its chips correlate at z = {self.chip_z} ({DETECT_Z:g} needed); false-positive "
                    f"probability at most {self.false_positive_probability:.1e})")
        if self.found:
            return f"watermark: found, payload {payload_hex(self.payload or 0)}, confidence {self.confidence}"
        tail = f" ({self.reason})" if self.reason else f", confidence {self.confidence}"
        if self.chip_z is not None:
            tail += f"; the signed claim's payload tested: z = {self.chip_z}, not present ({DETECT_Z:g} needed)"
        return "watermark: not found" + tail


@dataclass(frozen=True)
class VerifyResult:
    """One file's verification: its signed metadata, its watermark, and a problem reading it (if any)."""

    file: str
    metadata: MetadataCheck
    watermark: WatermarkCheck
    error: str | None = None  # the file could not be read or decoded (names the file)

    @property
    def ok(self) -> bool:
        """A file passes if its claim verifies against a trusted key and matches its pixels, or the watermark is
        found, and none of its public owner fields (EXIF Artist, XMP dc:creator, ...) contradicts its claim."""
        if self.error is not None or self.metadata.altered:  # a signed file whose owner fields were rewritten
            return False
        return self.metadata.ok or self.watermark.found

    def as_json(self) -> dict[str, Any]:
        """One element of ``verify --json``."""
        out: dict[str, Any] = {"file": self.file}
        if self.error is not None:
            out["error"] = self.error
        return out | {"metadata": metadata_summary(self.metadata), "watermark": self.watermark.as_json()}

    def describe(self) -> str:
        """Human-readable lines (``catalogmark verify`` without --json); text from the file system or the file
        itself is escaped (``printable``)."""
        lines = [f"{'OK  ' if self.ok else 'FAIL'} {printable(self.file)}"]
        if self.error is not None:
            lines.append(f"     error: {printable(self.error)}")
        md = self.metadata
        if md.present:
            sig = "valid" if md.signature_valid else "INVALID"
            who = "trusted key" if md.signer_verified else "key embedded in the file (unverified)"
            lines.append(f"     metadata: owner {md.owner!r}, record {md.record_id}, payload {md.payload}, "
                         f"signature {sig} ({who}), pHash distance {md.phash_distance}")
        else:
            lines.append("     metadata: no signed catalogmark claim")
        lines.extend(f"       - {printable(p)}" for p in md.problems)  # altered owner fields among them
        lines.append(f"     {self.watermark.describe()}")
        return "\n".join(lines)


def _not_looked_for(reason: str) -> WatermarkCheck:
    return WatermarkCheck(found=False, reason=reason)


def read_watermark(rgb: np.ndarray, key: OwnerKey | None, claimed: MetadataCheck | None = None) -> WatermarkCheck:
    """The invisible watermark of ``rgb`` with the owner's secret key: read blind; if that misses and ``claimed``
    is a validly signed claim naming a payload, that payload's chips are tested in the pixels as they are
    (``invisible.check_payload``: the file as the export itself; a small product whose payload will not decode
    still shows them)."""
    if key is None:
        return _not_looked_for("no owner key given (--key-file): the invisible watermark needs the secret key")
    from pipeline import invisible  # heavy (OpenCV): only once a watermark is to be read
    from pipeline.invisible import chiptest

    try:
        det = invisible.read(rgb, key)
    except Exception as exc:  # a reader bug or an odd image must not stop verifying the other files
        return _not_looked_for(f"watermark reader failed: {type(exc).__name__}: {exc}")
    confidence = round(float(det.confidence), 4)
    if det.found and det.payload is not None:
        return WatermarkCheck(found=True, payload=int(det.payload), confidence=confidence, mode=BLIND)
    if claimed is None or not (claimed.present and claimed.signature_valid and claimed.payload):
        return WatermarkCheck(found=False, confidence=confidence)
    try:
        payload = int(claimed.payload, 16)
        test = invisible.check_payload(rgb, key, payload)
    except (ValueError, TypeError):  # a signed claim whose payload is not one of ours to test
        return WatermarkCheck(found=False, confidence=confidence)
    z = round(test.z, 2)
    if not test.present:
        return WatermarkCheck(found=False, confidence=confidence, chip_z=z)
    return WatermarkCheck(found=True, payload=payload, confidence=confidence, mode=TESTED, chip_z=z,
                          false_positive_probability=chiptest.fp_bound(test.z))


def verify_file(path: Path, *, public_key: PublicKey | None, key: OwnerKey | None) -> VerifyResult:
    """One file's verification; problems (unreadable, not an image) go in ``error``, never raise.

    ``public_key`` is the key the signature must verify against (if None, the key embedded in the file is
    used and the result says the signer is unverified). ``key`` (the owner's secret) reads the watermark.
    """
    from pipeline.stages.ingest import load_rgb

    path = Path(path)
    name = str(path)

    def unread(error: str, why: str) -> VerifyResult:
        return VerifyResult(name, check_claim(EmbeddedMetadata(), None, public_key), _not_looked_for(why),
                            error=f"{path}: {error}")

    if not path.is_file():
        return unread("is a folder, not an image file" if path.is_dir() else "no such file", "not a file")
    try:  # read once, size-capped: the metadata and the pixels come from the same bytes
        data = files.read_limited(path, files.SUSPECT_MAX_BYTES)
    except OSError as exc:
        return unread(f"cannot read it: {exc.strerror or exc}", "not read")
    meta = read_embedded(data)
    rgb: np.ndarray | None = None
    error = None
    try:
        rgb, _capture = load_rgb(data)
    except Exception as exc:  # ImageError from ingest, or anything a broken file provokes
        msg = str(exc).removeprefix("<bytes>: ")  # the decoder saw bytes; the path is named here
        error = f"{path}: not a readable image: {msg}"
    md = check_claim(meta, rgb, public_key)
    wm = read_watermark(rgb, key, md) if rgb is not None else _not_looked_for("pixels could not be decoded")
    return VerifyResult(name, md, wm, error=error)
