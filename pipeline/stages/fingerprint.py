"""Fingerprint stage: embedded EXIF/XMP/IPTC and the Ed25519-signed claim; embedding, reading and checking them."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import json
import re
import struct
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import imagehash
import numpy as np
from defusedxml import ElementTree as SafeET
from PIL import Image, IptcImagePlugin, PngImagePlugin
from PIL.ExifTags import IFD, TAGS, Base
from PIL.TiffImagePlugin import IFDRational

from pipeline import __version__
from pipeline.errors import ImageError
from pipeline.keys import OwnerKey, PublicKey
from pipeline.models import Canvas, Fingerprint, ImageJob, Marked, Owner

STAGE = "fingerprint"
CLAIM_VERSION = 1
#: Our XMP namespace (and prefix) for the signed claim.
NS_URI = "https://catalogmark.dev/ns/1.0/"
NS_PREFIX = "catalogmark"
#: Largest pHash distance (of 64 bits) between the signed hash and a file's pixels that still counts as
#: "these are the signed pixels". Measured: JPEG q30-95 re-encodes and 50% resizes 0-4 bits, a symmetric
#: 2000 px product-on-white main image after export 6; inverted, flipped, half-inverted or unrelated pixels
#: 32-62. pHash is perceptual: the same layout with different texture can land at ~8 and pass.
PHASH_MAX_DISTANCE = 10
SOFTWARE = f"catalogmark {__version__}"

# Claim key -> XMP property (in our namespace); the claim is rebuilt from these when a file is read, so an
# edit of any one of them breaks the signature. "payload" is omitted from the XMP when None.
_CLAIM_PROPS: tuple[tuple[str, str], ...] = (
    ("v", "ClaimVersion"),
    ("owner", "Owner"),
    ("key", "KeyFingerprint"),
    ("record_id", "RecordID"),
    ("payload", "Payload"),
    ("phash", "PHash"),
    ("source_sha256", "SourceSHA256"),
    ("sku", "SKU"),
    ("preset", "Preset"),
    ("created", "Created"),
)

_NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    NS_PREFIX: NS_URI,
}
_PREFIX_OF = {uri: prefix for prefix, uri in _NAMESPACES.items()}
_RDF = "{" + _NAMESPACES["rdf"] + "}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# Characters XML 1.0 cannot carry at all (not even as character references); removed from every value.
_XML_INVALID = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_EXIF_DATETIME = re.compile(r"^\d{4}:\d{2}:\d{2} \d{2}:\d{2}:\d{2}$")

# IPTC IIM data sets we write: (record, dataset) -> (name, max bytes per the IIM 4.2 spec).
_IPTC_SETS = {
    (1, 90): ("CodedCharacterSet", 32),
    (2, 0): ("ApplicationRecordVersion", 2),
    (2, 5): ("ObjectName", 64),
    (2, 80): ("By-line", 32),
    (2, 110): ("Credit", 32),
    (2, 116): ("CopyrightNotice", 128),
    (2, 120): ("Caption-Abstract", 2000),
}
_IPTC_UTF8 = b"\x1b%G"  # ISO 2022 escape for UTF-8, the value of 1:90
_PHOTOSHOP_SIG = b"Photoshop 3.0\x00"


# --------------------------------------------------------------------------------------------------------------
# Helpers


def canonical_json(claim: dict[str, Any]) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(claim, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def xml_clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot represent (control characters, lone surrogates...)."""
    return _XML_INVALID.sub("", text)


def _esc(text: str) -> str:
    """Escape for XML element content; CR as a character reference because XML parsers turn raw CR into LF."""
    return (
        xml_clean(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
        .replace("\r", "&#13;")
    )


def phash_hex(pixels: np.ndarray) -> str:
    """64-bit pHash (imagehash) of RGB or greyscale pixels, as 16 hex chars."""
    return str(imagehash.phash(Image.fromarray(np.ascontiguousarray(pixels))))


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _exif_text(text: str, limit: int = 2000) -> bytes:
    """EXIF 'ASCII' value as UTF-8 bytes (what exiftool and most readers expect; Pillow writes bytes as-is)."""
    raw = xml_clean(text).replace("\x00", "").encode("utf-8")
    return _truncate_utf8(raw, limit)


def _truncate_utf8(raw: bytes, limit: int) -> bytes:
    return raw if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore").encode("utf-8")


def _ascii(text: str) -> str:
    return text.encode("ascii", "ignore").decode("ascii").replace("\x00", "")


def _capture_date(value: str | None) -> str | None:
    """A capture date as EXIF wants it ("YYYY:MM:DD HH:MM:SS"), from EXIF or ISO-8601 text; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if _EXIF_DATETIME.match(value):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.strftime("%Y:%m:%d %H:%M:%S")


def description(job: ImageJob, owner: Owner, record_id: str) -> str:
    return f"{job.sku} — © {owner.name} — record {record_id}"


# --------------------------------------------------------------------------------------------------------------
# Building the blocks


def build_claim(marked: Marked, canvas: Canvas, job: ImageJob, owner: Owner, key: OwnerKey, *,
                record_id: str, timestamp: datetime) -> dict[str, Any]:
    """The signed fields. Strings lose XML-invalid characters so the claim survives the XMP round trip exactly."""
    return {
        "v": CLAIM_VERSION,
        "owner": xml_clean(owner.name),
        "key": key.fingerprint,
        "record_id": xml_clean(record_id),
        "payload": None if marked.payload is None else f"{marked.payload:010x}",
        "phash": phash_hex(marked.pixels),
        "source_sha256": canvas.source_sha256,
        "sku": xml_clean(job.sku),
        "preset": xml_clean(job.preset.name),
        "created": _utc(timestamp).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def build_exif(marked: Marked, canvas: Canvas, job: ImageJob, owner: Owner, *, record_id: str,
               timestamp: datetime) -> bytes:
    """EXIF built from scratch (never copied from the source): no thumbnail (IFD1), GPS, MakerNote or serials.

    Serialised with Pillow's ``Image.Exif`` rather than piexif: piexif 1.1.3 (unmaintained since 2019) writes
    the Exif sub-IFD without its 4-byte next-IFD offset, so the first out-of-line value overlaps the IFD
    (``exiftool -validate``: "Value for ExifIFD tag ... overlaps IFD") and values are not word-aligned.
    Pillow writes a conformant TIFF structure. IFD0 text tags take UTF-8 bytes as-is (their type is known);
    Exif sub-IFD tags get ``str`` values (ASCII-only here) so Pillow types them ASCII.
    """
    h, w = marked.pixels.shape[:2]
    policy = job.preset.metadata
    exif = Image.Exif()
    exif[Base.ImageDescription] = _exif_text(description(job, owner, record_id))
    exif[Base.Orientation] = 1
    exif[Base.XResolution] = IFDRational(72, 1)
    exif[Base.YResolution] = IFDRational(72, 1)
    exif[Base.ResolutionUnit] = 2  # inches
    exif[Base.Software] = _exif_text(SOFTWARE)
    exif[Base.DateTime] = _utc(timestamp).strftime("%Y:%m:%d %H:%M:%S")
    exif[Base.Artist] = _exif_text(owner.name)
    exif[Base.Copyright] = _exif_text(owner.copyright)
    capture = canvas.capture
    if policy.keep_camera:  # make and model only: serial numbers never reach an output
        if capture.make:
            exif[Base.Make] = _exif_text(capture.make, 64)
        if capture.model:
            exif[Base.Model] = _exif_text(capture.model, 64)
    if job.preset.format == "jpeg":
        exif[Base.YCbCrPositioning] = 1  # required for JPEG by EXIF 2.32 (centred: what libjpeg does)
    sub = exif.get_ifd(IFD.Exif)
    sub[Base.ExifVersion] = b"0232"
    if job.preset.format == "jpeg":
        sub[Base.FlashPixVersion] = b"0100"
    if policy.keep_capture_date:
        original = _capture_date(capture.datetime_original)
        if original is not None:
            sub[Base.DateTimeOriginal] = original
    sub[Base.ColorSpace] = 1  # sRGB: ingest converts every canvas to sRGB
    sub[Base.ExifImageWidth] = w
    sub[Base.ExifImageHeight] = h
    sub[Base.ImageUniqueID] = _ascii(record_id)[:32]  # EXIF: 33 bytes incl. NUL
    try:
        return exif.tobytes()
    except (ValueError, TypeError, struct.error) as exc:
        raise ImageError(f"{job.source_display}: cannot build EXIF ({exc})", stage=STAGE) from exc


def _li_alt(text: str) -> str:
    return f'<rdf:Alt><rdf:li xml:lang="x-default">{_esc(text)}</rdf:li></rdf:Alt>'


def build_xmp(claim: dict[str, Any], signature: str, public_key_b64: str, owner: Owner, *, desc: str,
              timestamp: datetime) -> bytes:
    """A complete XMP packet (x:xmpmeta/rdf:RDF), every value escaped; deterministic for the same inputs."""
    ns = "\n".join(f'    xmlns:{p}="{u}"' for p, u in _NAMESPACES.items() if p not in ("x", "rdf"))
    props = [
        f"   <dc:creator><rdf:Seq><rdf:li>{_esc(owner.name)}</rdf:li></rdf:Seq></dc:creator>",
        f"   <dc:rights>{_li_alt(owner.copyright)}</dc:rights>",
        f"   <dc:description>{_li_alt(desc)}</dc:description>",
        "   <xmpRights:Marked>True</xmpRights:Marked>",
    ]
    if owner.url:
        props.append(f"   <xmpRights:WebStatement>{_esc(owner.url)}</xmpRights:WebStatement>")
    props += [
        f"   <xmpRights:UsageTerms>{_li_alt(owner.copyright)}</xmpRights:UsageTerms>",
        f"   <photoshop:Credit>{_esc(owner.name)}</photoshop:Credit>",
        f"   <xmp:CreatorTool>{_esc(SOFTWARE)}</xmp:CreatorTool>",
        f"   <xmp:MetadataDate>{_utc(timestamp).strftime('%Y-%m-%dT%H:%M:%SZ')}</xmp:MetadataDate>",
        "   <plus:CopyrightOwner><rdf:Seq><rdf:li rdf:parseType=\"Resource\">"
        f"<plus:CopyrightOwnerName>{_esc(owner.name)}</plus:CopyrightOwnerName>"
        "</rdf:li></rdf:Seq></plus:CopyrightOwner>",
    ]
    if owner.url:
        props.append(
            "   <plus:Licensor><rdf:Seq><rdf:li rdf:parseType=\"Resource\">"
            f"<plus:LicensorName>{_esc(owner.name)}</plus:LicensorName>"
            f"<plus:LicensorURL>{_esc(owner.url)}</plus:LicensorURL>"
            "</rdf:li></rdf:Seq></plus:Licensor>"
        )
    for claim_key, prop in _CLAIM_PROPS:
        value = claim.get(claim_key)
        if value is None:
            continue
        props.append(f"   <{NS_PREFIX}:{prop}>{_esc(str(value))}</{NS_PREFIX}:{prop}>")
    props.append(f"   <{NS_PREFIX}:Signature>{signature}</{NS_PREFIX}:Signature>")
    props.append(f"   <{NS_PREFIX}:PublicKey>{public_key_b64}</{NS_PREFIX}:PublicKey>")
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        f"{ns}>\n" + "\n".join(props) + "\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return packet.encode("utf-8")


def _iim_dataset(record: int, dataset: int, value: bytes) -> bytes:
    limit = _IPTC_SETS[(record, dataset)][1]
    value = _truncate_utf8(value, limit)
    return struct.pack(">BBBH", 0x1C, record, dataset, len(value)) + value


def build_iptc(owner: Owner, *, desc: str, sku: str) -> bytes:
    """IPTC IIM data sets (the payload of the Photoshop 8BIM 0x0404 resource), UTF-8 declared in 1:90.

    Hand-written: no maintained Python library writes IPTC IIM into a Pillow-encoded JPEG (Pillow only
    reads it; iptcinfo3 is unmaintained and rewrites whole files). The format is a flat list of
    tag-length-value records, a few lines to encode.
    """
    return b"".join(
        [
            _iim_dataset(1, 90, _IPTC_UTF8),
            _iim_dataset(2, 0, struct.pack(">H", 4)),
            _iim_dataset(2, 5, xml_clean(sku).encode("utf-8")),
            _iim_dataset(2, 80, xml_clean(owner.name).encode("utf-8")),
            _iim_dataset(2, 110, xml_clean(owner.name).encode("utf-8")),
            _iim_dataset(2, 116, xml_clean(owner.copyright).encode("utf-8")),
            _iim_dataset(2, 120, xml_clean(desc).encode("utf-8")),
        ]
    )


def _irb(resource_id: int, data: bytes) -> bytes:
    """One Photoshop image resource block: '8BIM', id, empty Pascal name (padded to even), size, data (padded)."""
    pad = b"\x00" if len(data) % 2 else b""
    return b"8BIM" + struct.pack(">H", resource_id) + b"\x00\x00" + struct.pack(">I", len(data)) + data + pad


def app13_segment(iim: bytes) -> bytes:
    """A JPEG APP13 'Photoshop 3.0' segment with the IIM (0x0404) and its MD5 digest (0x0425).

    The digest tells MWG-aware readers (Lightroom, Bridge, exiftool) that IPTC and XMP are in sync.
    """
    body = _PHOTOSHOP_SIG + _irb(0x0404, iim) + _irb(0x0425, hashlib.md5(iim).digest())
    if len(body) + 2 > 0xFFFF:
        raise ImageError(f"IPTC block too large for one JPEG segment ({len(body)} bytes)", stage=STAGE)
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def fingerprint(marked: Marked, canvas: Canvas, job: ImageJob, owner: Owner, key: OwnerKey, *,
                record_id: str, timestamp: datetime) -> Fingerprint:
    """Build and sign the claim and the EXIF/XMP/IPTC blocks the preset asks for (empty bytes when disabled)."""
    policy = job.preset.metadata
    claim = build_claim(marked, canvas, job, owner, key, record_id=record_id, timestamp=timestamp)
    signature = key.sign(canonical_json(claim))
    desc = description(job, owner, record_id)
    exif = build_exif(marked, canvas, job, owner, record_id=record_id, timestamp=timestamp) if policy.exif else b""
    xmp = b""
    if policy.xmp:
        public_b64 = base64.b64encode(key.public.raw).decode("ascii")
        xmp = build_xmp(claim, signature, public_b64, owner, desc=desc, timestamp=timestamp)
    iptc = build_iptc(owner, desc=desc, sku=job.sku) if policy.iptc and job.preset.format == "jpeg" else b""
    return Fingerprint(exif=exif, xmp=xmp, iptc=iptc, claim=claim, signature=signature)


# --------------------------------------------------------------------------------------------------------------
# Embedding (used by the export stage)


def _norm_format(fmt: str) -> str:
    f = fmt.lower()
    return "jpeg" if f == "jpg" else f


def save_kwargs(fp: Fingerprint, fmt: str) -> dict[str, Any]:
    """Keyword arguments for ``PIL.Image.save`` that embed the EXIF and XMP blocks in ``fmt``.

    JPEG: EXIF in APP1, XMP in a second APP1. WebP: EXIF and XMP chunks. PNG: EXIF in an eXIf chunk,
    XMP in an uncompressed iTXt chunk keyed "XML:com.adobe.xmp" (before IDAT). IPTC is added by finalize().
    """
    f = _norm_format(fmt)
    kwargs: dict[str, Any] = {}
    if fp.exif:
        kwargs["exif"] = fp.exif
    if fp.xmp:
        if f == "png":
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", fp.xmp.decode("utf-8"), zip=False)
            kwargs["pnginfo"] = info
        elif f in ("jpeg", "webp"):
            kwargs["xmp"] = fp.xmp
    return kwargs


def finalize(data: bytes, fp: Fingerprint, fmt: str) -> bytes:
    """Post-process encoded bytes for what Pillow cannot write: the IPTC APP13 segment of a JPEG.

    The segment goes right after the leading APP0/APP1 segments (JFIF, EXIF, XMP), where readers look.
    Identity for other formats or when there is no IPTC block.
    """
    if _norm_format(fmt) != "jpeg" or not fp.iptc:
        return data
    if data[:2] != b"\xff\xd8":
        raise ImageError("encoded JPEG does not start with SOI; cannot add IPTC", stage="export")
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] in (0xE0, 0xE1):
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        pos += 2 + length
    if pos > len(data):
        raise ImageError("encoded JPEG has a truncated APP segment; cannot add IPTC", stage="export")
    return data[:pos] + app13_segment(fp.iptc) + data[pos:]


# --------------------------------------------------------------------------------------------------------------
# Reading and checking


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

    @property
    def ok(self) -> bool:
        return self.present and self.signature_valid and self.signer_verified and self.pixels_match


def _text(el: Element) -> str:
    return el.text or ""


def _qname(tag: str) -> str:
    """'{uri}Local' -> 'prefix:Local' for namespaces we know, else unchanged."""
    if tag.startswith("{"):
        uri, local = tag[1:].split("}", 1)
        prefix = _PREFIX_OF.get(uri)
        if prefix:
            return f"{prefix}:{local}"
    return tag


def _xmp_value(el: Element) -> Any:
    """A property element's value: text, list (Seq/Bag), x-default text (Alt), or a dict (struct)."""
    for container in el:
        if container.tag in (_RDF + "Seq", _RDF + "Bag"):
            return [_xmp_value(li) if len(li) else _text(li) for li in container if li.tag == _RDF + "li"]
        if container.tag == _RDF + "Alt":
            items = [li for li in container if li.tag == _RDF + "li"]
            chosen = next((li for li in items if li.get(_XML_LANG) == "x-default"), items[0] if items else None)
            return "" if chosen is None else _text(chosen)
    if len(el) or el.get(_RDF + "parseType") == "Resource":
        struct_el = el[0] if len(el) == 1 and el[0].tag == _RDF + "Description" else el
        out: dict[str, Any] = {_qname(k): v for k, v in struct_el.attrib.items() if not k.startswith(_RDF)}
        for child in struct_el:
            out[_qname(child.tag)] = _xmp_value(child)
        return out
    return _text(el)


def parse_xmp(packet: bytes | str) -> dict[str, Any]:
    """XMP properties as {'prefix:Name': value}; accepts element and attribute forms. Raises ValueError if bad."""
    raw = packet.encode("utf-8") if isinstance(packet, str) else packet
    raw = raw.strip(b"\x00 \t\r\n")
    try:
        root = SafeET.fromstring(raw)
    except Exception as exc:  # defusedxml raises ParseError or its own DefusedXmlException subclasses
        raise ValueError(f"XMP is not well-formed XML ({type(exc).__name__}: {exc})") from exc
    props: dict[str, Any] = {}
    for desc in root.iter(_RDF + "Description"):
        for k, v in desc.attrib.items():
            if not k.startswith(_RDF):
                props.setdefault(_qname(k), v)
        for child in desc:
            props.setdefault(_qname(child.tag), _xmp_value(child))
    return props


def _claim_from_xmp(props: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    version = props.get(f"{NS_PREFIX}:ClaimVersion")
    if version is None:
        return None
    try:
        v = int(str(version).strip())
    except ValueError:
        problems.append(f"catalogmark claim version {version!r} is not a number")
        return None
    if v != CLAIM_VERSION:
        problems.append(f"catalogmark claim version {v} is not supported (this reader knows {CLAIM_VERSION})")
        return None
    claim: dict[str, Any] = {"v": v}
    for claim_key, prop in _CLAIM_PROPS[1:]:
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
    utf8 = info.get((1, 90)) == _IPTC_UTF8
    out: dict[str, str] = {}
    for (record, dataset), raw in info.items():
        name = _IPTC_SETS.get((record, dataset), (f"{record}:{dataset}", 0))[0]
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
    valid = bool(check_key and meta.signature and check_key.verify(canonical_json(claim), meta.signature))
    if not meta.signature:
        problems.append("the claim has no signature")
    elif not valid:
        problems.append("signature does not verify: the claim was altered or signed by another key")
    distance: int | None = None
    if pixels is None:
        problems.append("pixels could not be decoded; the perceptual hash was not checked")
    else:
        try:
            distance = int(imagehash.hex_to_hash(str(claim.get("phash"))) - imagehash.phash(
                Image.fromarray(np.ascontiguousarray(pixels))))
        except (ValueError, TypeError):
            problems.append(f"claim pHash {claim.get('phash')!r} is malformed")
        if distance is not None and distance > PHASH_MAX_DISTANCE:
            problems.append(f"pixels differ from the signed ones (pHash distance {distance}/64 > "
                            f"{PHASH_MAX_DISTANCE}): not the image that was signed")
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
    )
