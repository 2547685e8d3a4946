"""Reading embedded metadata back: EXIF, XMP, IPTC and the catalogmark claim from a file or its bytes.

Never raises: a file is untrusted input, so garbage, truncation or malformed blocks give what could be read
plus ``problems``. The claim is rebuilt from its XMP properties alone (:data:`~pipeline.metadata.claim.CLAIM_PROPS`).
"""

from __future__ import annotations

import contextlib
import io
import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, IptcImagePlugin
from PIL.ExifTags import IFD, TAGS

from pipeline.metadata.claim import CLAIM_KEYS, CLAIM_PROPS
from pipeline.metadata.iptc import IPTC_SETS, IPTC_UTF8
from pipeline.metadata.xmp import NS_PREFIX, parse_xmp


@dataclass
class EmbeddedMetadata:
    """What a file carries. ``present``: any EXIF/XMP/IPTC block was found; ``claim``: the catalogmark claim."""

    present: bool = False
    owner: str | None = None
    copyright: str | None = None
    claim: dict[str, Any] | None = None
    signature: str | None = None
    public_key_b64: str | None = None
    exif: dict[str, Any] = field(default_factory=dict)
    xmp: dict[str, Any] = field(default_factory=dict)
    iptc: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _claim_from_xmp(props: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    version = props.get(f"{NS_PREFIX}:ClaimVersion")
    if version is None:
        return None
    try:
        v = int(str(version).strip())
    except ValueError:
        problems.append(f"catalogmark claim version {version!r} is not a number")
        return None
    if v not in CLAIM_KEYS:
        known = ", ".join(str(k) for k in CLAIM_KEYS)
        problems.append(f"catalogmark claim version {v} is not supported (this reader knows {known})")
        return None
    claim: dict[str, Any] = {"v": v}
    for claim_key, prop in CLAIM_PROPS[1:]:
        if claim_key not in CLAIM_KEYS[v]:
            continue
        value = props.get(f"{NS_PREFIX}:{prop}")
        claim[claim_key] = value if isinstance(value, str) else None
    return claim


def _exif_str(value: Any) -> Any:
    """Pillow decodes EXIF ASCII as Latin-1; we (and most writers) store UTF-8, so undo that when it fits."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif isinstance(value, str):
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            value = value.encode("latin-1").decode("utf-8")
    if isinstance(value, str):
        return value.rstrip("\x00")
    return value


def _read_exif(im: Image.Image) -> dict[str, Any]:
    exif = im.getexif()
    out: dict[str, Any] = {TAGS.get(tag, f"0x{tag:04x}"): _exif_str(v) for tag, v in exif.items()}
    for ifd in (IFD.Exif, IFD.GPSInfo):
        try:
            sub = exif.get_ifd(ifd)
        except Exception:  # malformed sub-IFD: keep what IFD0 gave
            continue
        if ifd == IFD.GPSInfo and sub:
            out["GPSInfo"] = {str(k): str(v) for k, v in sub.items()}
            continue
        out.update({TAGS.get(tag, f"0x{tag:04x}"): _exif_str(v) for tag, v in sub.items() if tag != 0x927C})
    return out


def _read_iptc(im: Image.Image) -> dict[str, str]:
    if not isinstance(im, Image.Image) or getattr(im, "format", None) != "JPEG":
        return {}
    info = IptcImagePlugin.getiptcinfo(im)  # type: ignore[arg-type]
    if not info:
        return {}
    utf8 = info.get((1, 90)) == IPTC_UTF8
    out: dict[str, str] = {}
    for (record, dataset), raw in info.items():
        name = IPTC_SETS.get((record, dataset), (f"{record}:{dataset}", 0))[0]
        value = raw[0] if isinstance(raw, list) and raw else raw
        if (record, dataset) == (2, 0) and isinstance(value, bytes) and len(value) == 2:
            out[name] = str(struct.unpack(">H", value)[0])
        elif isinstance(value, bytes):
            out[name] = value.decode("utf-8" if utf8 else "latin-1", "replace")
    return out


_RAW_XMP = re.compile(rb"<x:xmpmeta[\s>].*?</x:xmpmeta>", re.S)


def _read_with_pillow(raw: bytes, meta: EmbeddedMetadata) -> bytes | None:
    """Fill meta.exif/iptc from what Pillow can open; return the XMP packet if Pillow found one."""
    try:
        with Image.open(io.BytesIO(raw)) as im:
            xmp_info = im.info.get("xmp")
            if isinstance(xmp_info, str):
                xmp_info = xmp_info.encode("utf-8")
            try:
                meta.exif = _read_exif(im)
            except Exception as exc:  # malformed EXIF must not hide the rest
                meta.problems.append(f"EXIF unreadable ({type(exc).__name__})")
            try:
                meta.iptc = _read_iptc(im)
            except Exception as exc:
                meta.problems.append(f"IPTC unreadable ({type(exc).__name__})")
            return xmp_info or None
    except Exception as exc:  # not an image Pillow can open (or a bomb): the caller scans for raw XMP
        meta.problems.append(f"not a readable image ({type(exc).__name__})")
        return None


def read_embedded(data: bytes | Path | str) -> EmbeddedMetadata:
    """Read EXIF, XMP and IPTC from a file or its bytes. Never raises: garbage gives ``present=False``."""
    meta = EmbeddedMetadata()
    if isinstance(data, (Path, str)):
        try:
            raw = Path(data).read_bytes()
        except OSError as exc:
            meta.problems.append(f"cannot read {data}: {exc.strerror or exc}")
            return meta
    else:
        raw = bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about odd EXIF; tolerated here, reported as problems
        xmp_packet = _read_with_pillow(raw, meta)
    if xmp_packet is None:
        found = _RAW_XMP.search(raw)
        xmp_packet = found.group(0) if found else None
    if xmp_packet:
        try:
            meta.xmp = parse_xmp(xmp_packet)
        except ValueError as exc:
            meta.problems.append(str(exc))
    _summarise(meta)
    return meta


def _first(*values: Any) -> str | None:
    for v in values:
        if isinstance(v, list):
            v = next((x for x in v if isinstance(x, str) and x), None)
        if isinstance(v, str) and v:
            return v
    return None


def _summarise(meta: EmbeddedMetadata) -> None:
    x, e, i = meta.xmp, meta.exif, meta.iptc
    meta.present = bool(x or e or i)
    meta.claim = _claim_from_xmp(x, meta.problems)
    sig, pub = x.get(f"{NS_PREFIX}:Signature"), x.get(f"{NS_PREFIX}:PublicKey")
    meta.signature = sig.strip() if isinstance(sig, str) else None
    meta.public_key_b64 = pub.strip() if isinstance(pub, str) else None
    meta.owner = _first(meta.claim.get("owner") if meta.claim else None, x.get("dc:creator"), e.get("Artist"),
                        i.get("By-line"))
    meta.copyright = _first(x.get("dc:rights"), e.get("Copyright"), i.get("CopyrightNotice"))
