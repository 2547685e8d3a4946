"""Reading the photographer's own fields from a source photo (keywords, title, caption, location, AI provenance).

Only for the exports whose preset or owner profile keeps them (``[metadata] keep``); every other output's
metadata is built from scratch. The reader looks up these named text fields and nothing else, so GPS, serial
numbers and the embedded thumbnail (the unmarked original in miniature) can never come through it. Where a
field is found, in order (XMP first, as MWG reconciles them, then IPTC IIM, then EXIF where its tag means it):

- keywords: XMP ``dc:subject``, IPTC 2:25 Keywords, EXIF XPKeywords;
- title: XMP ``dc:title``, IPTC 2:05 ObjectName, XMP ``photoshop:Headline``, IPTC 2:105 Headline, EXIF XPTitle;
- caption: XMP ``dc:description``, IPTC 2:120 Caption-Abstract, EXIF ImageDescription (not a camera's
  placeholder such as "OLYMPUS DIGITAL CAMERA");
- location: XMP ``Iptc4xmpCore:Location``, ``photoshop:City`` / ``State`` / ``Country``, IPTC 2:92
  Sub-location, 2:90 City, 2:95 Province-State, 2:101 Country-PrimaryLocationName;
- AI provenance: XMP ``Iptc4xmpExt:DigitalSourceType`` (the IPTC NewsCodes URI Google Merchant Center asks AI
  images to keep; IIM and EXIF have no such field).

A source that is itself a signed catalogmark export gives no title or caption (they would be ours, not the
photographer's). Never raises: a source's metadata is untrusted input; what cannot be read is absent.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from typing import Any

from PIL import Image, IptcImagePlugin

from pipeline.metadata.text import xml_clean
from pipeline.metadata.xmp import NS_PREFIX, parse_xmp
from pipeline.models import Described

#: Formats whose metadata Pillow finds without decoding pixels; anything else (HEIC, RAW, PSD...) is scanned for
#: an XMP packet.
_PILLOW_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "TIFF")
#: Longest value kept (characters): captions, the rest, and the most keywords; XMP must fit one JPEG segment.
CAPTION_MAX = 2000
TEXT_MAX = 256
KEYWORDS_MAX = 100
_XMP_MAX_BYTES = 1 << 20
#: EXIF ImageDescription values cameras write by themselves: not a caption.
_PLACEHOLDERS = frozenset(s.casefold() for s in (
    "OLYMPUS DIGITAL CAMERA", "SONY DSC", "DIGITAL CAMERA", "Exif_JPEG_PICTURE", "KONICA MINOLTA DIGITAL CAMERA",
    "SAMSUNG", "default", "Untitled", "DCIM", "Image", "Picture", "Photo",
))
_TAG_IMAGE_DESCRIPTION, _TAG_XP_TITLE, _TAG_XP_KEYWORDS = 0x010E, 0x9C9B, 0x9C9E
_IPTC_UTF8 = b"\x1b%G"
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clean(value: Any, limit: int = TEXT_MAX, *, lines: bool = False) -> str | None:
    """One value as text safe to write: XML-invalid and control characters out, whitespace collapsed (line breaks
    kept with ``lines``), at most ``limit`` characters; None if nothing is left."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub(" ", xml_clean(value).replace("\x00", ""))
    if lines:
        text = "\n".join(_SPACE.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")).strip()
    else:
        text = _SPACE.sub(" ", text).strip()
    return text[:limit].rstrip() or None


def _keywords(values: Any) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return ()
    out: list[str] = []
    for v in values:
        k = _clean(v, 64)
        if k and k not in out:
            out.append(k)
    return tuple(out[:KEYWORDS_MAX])


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _xmp_packet(im: Image.Image | None, data: bytes) -> bytes | None:
    packet: Any = None
    if im is not None:
        packet = im.info.get("xmp")
        if packet is None and im.format == "TIFF":
            with contextlib.suppress(Exception):
                packet = im.tag_v2.get(700)  # type: ignore[attr-defined]
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    if isinstance(packet, bytes | bytearray) and packet:
        return bytes(packet)
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        return None
    end = data.find(b"</x:xmpmeta>", start, start + _XMP_MAX_BYTES)
    return data[start:end + len(b"</x:xmpmeta>")] if end > 0 else None


def _read_xmp(packet: bytes | None) -> dict[str, Any]:
    if not packet:
        return {}
    try:
        return parse_xmp(packet)
    except ValueError:
        return {}


def _iptc_text(raw: Any, utf8: bool | None) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if not isinstance(item, bytes):
            continue
        if utf8 is None:  # undeclared: most writers use UTF-8 anyway; Latin-1 otherwise
            try:
                out.append(item.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(item.decode("latin-1"))
        else:
            out.append(item.decode("utf-8" if utf8 else "latin-1", "replace"))
    return out


def _read_iptc(im: Image.Image | None) -> dict[tuple[int, int], list[str]]:
    if im is None or im.format not in ("JPEG", "MPO", "TIFF"):
        return {}
    try:
        info = IptcImagePlugin.getiptcinfo(im)  # type: ignore[arg-type]
    except Exception:
        return {}
    if not info:
        return {}
    charset = info.get((1, 90))
    utf8 = True if charset == _IPTC_UTF8 else (None if charset is None else False)
    return {key: _iptc_text(raw, utf8) for key, raw in info.items() if key[0] == 2}


def _exif_ucs2(value: Any) -> str | None:
    """A Windows XP* tag: UCS-2LE bytes (Pillow gives bytes or a tuple of byte values)."""
    if isinstance(value, tuple):
        with contextlib.suppress(TypeError, ValueError):
            value = bytes(value)
    if not isinstance(value, bytes):
        return None
    return value.decode("utf-16-le", "replace").rstrip("\x00")


def _read_exif(im: Image.Image | None) -> dict[int, Any]:
    if im is None or (im.format == "PNG" and "exif" not in im.info):  # a PNG's late eXIf needs a full decode
        return {}
    try:
        exif = im.getexif()
        return {tag: exif.get(tag) for tag in (_TAG_IMAGE_DESCRIPTION, _TAG_XP_TITLE, _TAG_XP_KEYWORDS)}
    except Exception:
        return {}


def _exif_description(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif isinstance(value, str):
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            value = value.encode("latin-1").decode("utf-8")  # Pillow decodes EXIF ASCII as Latin-1
    text = _clean(value, CAPTION_MAX, lines=True)
    return None if text is None or text.casefold() in _PLACEHOLDERS else text


def read_described(data: bytes) -> Described:
    """The photographer's fields of a source file's bytes (see the module docstring for where each is looked up)."""
    im: Image.Image | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd metadata is the source's business: read what can be read
        try:
            im = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
        except Exception:
            im = None
        try:
            x = _read_xmp(_xmp_packet(im, data))
            i = _read_iptc(im)
            e = _read_exif(im)
        finally:
            if im is not None:
                im.close()

    def iptc(dataset: int, limit: int = TEXT_MAX, *, lines: bool = False) -> str | None:
        return _clean(i.get((2, dataset), [None])[0], limit, lines=lines)

    ours = f"{NS_PREFIX}:Signature" in x  # a catalogmark export: its title and caption are ours
    title = None if ours else _first(_clean(x.get("dc:title")), iptc(5), _clean(x.get("photoshop:Headline")),
                                     iptc(105), _clean(_exif_ucs2(e.get(_TAG_XP_TITLE))))
    caption = None if ours else _first(_clean(x.get("dc:description"), CAPTION_MAX, lines=True),
                                       iptc(120, CAPTION_MAX, lines=True),
                                       _exif_description(e.get(_TAG_IMAGE_DESCRIPTION)))
    xp_keywords = _exif_ucs2(e.get(_TAG_XP_KEYWORDS))
    keywords = (_keywords(x.get("dc:subject")) or _keywords(i.get((2, 25), []))
                or _keywords(xp_keywords.split(";") if xp_keywords else []))
    return Described(
        keywords=keywords,
        title=title,
        caption=caption,
        sublocation=_first(_clean(x.get("Iptc4xmpCore:Location")), iptc(92)),
        city=_first(_clean(x.get("photoshop:City")), iptc(90)),
        state=_first(_clean(x.get("photoshop:State")), iptc(95)),
        country=_first(_clean(x.get("photoshop:Country")), iptc(101)),
        digital_source_type=_clean(x.get("Iptc4xmpExt:DigitalSourceType")),
    )
