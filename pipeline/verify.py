"""`catalogmark verify`: check one file's signed metadata and read its invisible watermark blind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline import files
from pipeline.canonical import payload_hex
from pipeline.keys import OwnerKey, PublicKey
from pipeline.metadata.check import check_claim, metadata_summary
from pipeline.metadata.read import EmbeddedMetadata, read_embedded


def _no_watermark(reason: str) -> dict[str, Any]:
    return {"found": False, "payload": None, "confidence": 0.0, "reason": reason}


def read_watermark(rgb: np.ndarray, key: OwnerKey | None) -> dict[str, Any]:
    """The invisible watermark, read blind from the pixels with the owner's secret key."""
    if key is None:
        return _no_watermark("no owner key given (--key-file): the invisible watermark needs the secret key")
    from pipeline import invisible  # heavy (OpenCV): only once a watermark is to be read

    try:
        det = invisible.read(rgb, key)
    except Exception as exc:  # a reader bug or an odd image must not stop verifying the other files
        return _no_watermark(f"watermark reader failed: {type(exc).__name__}: {exc}")
    payload = det.payload
    out: dict[str, Any] = {
        "found": bool(det.found),
        "payload": None if payload is None or not det.found else payload_hex(payload),
        "confidence": round(float(det.confidence), 4),
    }
    return out


def verify_file(path: Path, *, public_key: PublicKey | None, key: OwnerKey | None) -> dict[str, Any]:
    """The ``verify --json`` object for one file; problems (unreadable, not an image) go in "error", never raise.

    ``public_key`` is the key the signature must verify against (if None, the key embedded in the file is
    used and the result says the signer is unverified). ``key`` (the owner's secret) reads the watermark.
    """
    from pipeline.stages.ingest import load_rgb

    path = Path(path)
    result: dict[str, Any] = {"file": str(path)}

    def unread(error: str, why: str) -> dict[str, Any]:
        result["error"] = f"{path}: {error}"
        result["metadata"] = metadata_summary(check_claim(EmbeddedMetadata(), None, public_key))
        result["watermark"] = _no_watermark(why)
        return result

    if not path.is_file():
        return unread("is a folder, not an image file" if path.is_dir() else "no such file", "not a file")
    try:  # read once, size-capped: the metadata and the pixels come from the same bytes
        data = files.read_limited(path, files.SUSPECT_MAX_BYTES)
    except OSError as exc:
        return unread(f"cannot read it: {exc.strerror or exc}", "not read")
    meta = read_embedded(data)
    rgb: np.ndarray | None = None
    try:
        rgb, _capture = load_rgb(data)
    except Exception as exc:  # ImageError from ingest, or anything a broken file provokes
        msg = str(exc).removeprefix("<bytes>: ")  # the decoder saw bytes; the path is named here
        result["error"] = f"{path}: not a readable image: {msg}"
    result["metadata"] = metadata_summary(check_claim(meta, rgb, public_key))
    result["watermark"] = (read_watermark(rgb, key) if rgb is not None
                           else _no_watermark("pixels could not be decoded"))
    return result


def verify_ok(result: dict[str, Any]) -> bool:
    """A file passes if its claim verifies against a trusted key and matches its pixels, or the watermark is found,
    and none of its public owner fields (EXIF Artist, XMP dc:creator, ...) contradicts its signed claim."""
    if "error" in result:
        return False
    md = result.get("metadata", {})
    if md.get("altered_fields"):  # a signed file whose public owner fields were rewritten: never "OK"
        return False
    signed = bool(md.get("present") and md.get("signature_valid") and md.get("signer_verified")
                  and md.get("pixels_match"))
    return signed or bool(result.get("watermark", {}).get("found"))


def describe(result: dict[str, Any]) -> str:
    """Human-readable lines for one result (``catalogmark verify`` without --json)."""
    status = "OK  " if verify_ok(result) else "FAIL"
    lines = [f"{status} {result['file']}"]
    if "error" in result:
        lines.append(f"     error: {result['error']}")
    md = result.get("metadata", {})
    if md.get("present"):
        sig = "valid" if md.get("signature_valid") else "INVALID"
        who = "trusted key" if md.get("signer_verified") else "key embedded in the file (unverified)"
        lines.append(f"     metadata: owner {md.get('owner')!r}, record {md.get('record_id')}, "
                     f"payload {md.get('payload')}, signature {sig} ({who}), pHash distance {md.get('phash_distance')}")
    else:
        lines.append("     metadata: no signed catalogmark claim")
    for problem in md.get("problems", []):
        lines.append(f"       - {problem}")
    wm = result.get("watermark", {})
    if wm.get("found"):
        lines.append(f"     watermark: found, payload {wm.get('payload')}, confidence {wm.get('confidence')}")
    else:
        reason = wm.get("reason")
        lines.append("     watermark: not found" + (f" ({reason})" if reason else
                                                      f", confidence {wm.get('confidence')}"))
    return "\n".join(lines)
