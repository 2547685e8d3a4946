"""The EXIF writer: the EXIF block of an output, built from scratch (never copied from the source).

Serialised with Pillow's ``Image.Exif`` rather than piexif: piexif 1.1.3 (unmaintained since 2019) writes the
Exif sub-IFD without its 4-byte next-IFD offset, so the first out-of-line value overlaps the IFD
(``exiftool -validate``: "Value for ExifIFD tag ... overlaps IFD") and values are not word-aligned. Pillow
writes a conformant TIFF structure.
"""

from __future__ import annotations

import struct
from datetime import datetime

from PIL import Image, TiffTags
from PIL.ExifTags import IFD, Base
from PIL.TiffImagePlugin import IFDRational

from pipeline.errors import ImageError
from pipeline.metadata.text import SOFTWARE, ascii_text, capture_datetime, description, xml_clean
from pipeline.models import Canvas, ImageJob, Marked, Owner
from pipeline.timefmt import utc

# Pillow 13 knows no type for these Exif sub-IFD tags and types a bytes value BYTE; EXIF 2.32 says UNDEFINED
# (exiftool -validate: "Non-standard format (int8u)"). Pillow derives every tag's type from this table, so the
# missing entries are added (only where Pillow has none: a Pillow that knows them wins).
for _tag, _name, _count in ((0x9101, "ComponentsConfiguration", 4), (0x9286, "UserComment", 0)):
    TiffTags.TAGS_V2_GROUPS[IFD.Exif].setdefault(_tag, TiffTags.TagInfo(_tag, _name, TiffTags.UNDEFINED, _count))

#: Stage named by the ImageError a block that cannot be serialised raises.
STAGE = "fingerprint"


def _exif_text(text: str, limit: int = 2000) -> str:
    """An EXIF 'ASCII' value: the text transliterated to 7-bit ASCII (see ``text.ascii_text``), cut to ``limit``."""
    return ascii_text(text)[:limit]


def ucs2_text(text: str, limit: int = 2000) -> str:
    """What the UCS-2 EXIF tags (XP*, UNICODE UserComment) can carry: characters outside the Basic Multilingual
    Plane become U+FFFD (readers decode these tags as UCS-2, so a surrogate pair would read as garbage)."""
    return "".join(c if ord(c) <= 0xFFFF else "\ufffd" for c in xml_clean(text)[:limit])


def _xp_text(text: str) -> bytes:
    """A Windows XP* tag (BYTE): UCS-2LE with a terminating NUL, what Explorer, exiftool and exiv2 read."""
    return ucs2_text(text).encode("utf-16-le") + b"\x00\x00"


def _user_comment(text: str, little_endian: bool) -> bytes:
    """EXIF UserComment (UNDEFINED): the 8-byte character code "UNICODE\\0", then UCS-2 in the block's byte order."""
    return b"UNICODE\x00" + ucs2_text(text).encode("utf-16-le" if little_endian else "utf-16-be")


def image_unique_id(record_id: str) -> str:
    """EXIF ImageUniqueID (an ASCII hex string of exactly 32 digits) of a record: its id's hex digits, left-padded
    with zeros (``r`` + 23 hex digits -> 9 zeros + the 23 digits), so the record id reads back from the tag."""
    digits = "".join(c for c in record_id.lower() if c in "0123456789abcdef")
    return digits[-32:].rjust(32, "0")


def _capture_date(value: str | None) -> str | None:
    """A capture date as EXIF wants it ("YYYY:MM:DD HH:MM:SS"), from EXIF or ISO-8601 text; None if unusable."""
    parsed = capture_datetime(value)
    return None if parsed is None else parsed.strftime("%Y:%m:%d %H:%M:%S")


def build_exif(marked: Marked, canvas: Canvas, job: ImageJob, owner: Owner, *, record_id: str,
               timestamp: datetime, caption: str | None = None) -> bytes:
    """EXIF built from scratch (never copied from the source): no thumbnail (IFD1), GPS, MakerNote or serials.

    ASCII-typed tags carry ASCII (a transliteration); the exact owner name and description are also written as
    XPAuthor / XPComment (IFD0) and UserComment (Exif sub-IFD), the Unicode-capable EXIF places. ``caption``:
    the photographer's, when the export keeps it (the description starts with it, as in XMP and IPTC).
    """
    h, w = marked.pixels.shape[:2]
    policy = job.preset.metadata
    exif = Image.Exif()
    desc = description(job, owner, record_id, caption)
    exif[Base.ImageDescription] = _exif_text(desc)
    exif[Base.Orientation] = 1
    exif[Base.XResolution] = IFDRational(72, 1)
    exif[Base.YResolution] = IFDRational(72, 1)
    exif[Base.ResolutionUnit] = 2  # inches
    exif[Base.Software] = _exif_text(SOFTWARE)
    exif[Base.DateTime] = utc(timestamp).strftime("%Y:%m:%d %H:%M:%S")
    exif[Base.Artist] = _exif_text(owner.name)
    exif[Base.Copyright] = _exif_text(owner.copyright)
    exif[0x9C9D] = _xp_text(owner.name)  # XPAuthor
    exif[0x9C9C] = _xp_text(desc)  # XPComment
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
        sub[Base.ComponentsConfiguration] = b"\x01\x02\x03\x00"  # Y Cb Cr: required for compressed data
    if policy.keep_capture_date:
        original = _capture_date(capture.datetime_original)
        if original is not None:
            sub[Base.DateTimeOriginal] = original
    sub[Base.ColorSpace] = 1  # sRGB: ingest converts every canvas to sRGB
    sub[Base.ExifImageWidth] = w
    sub[Base.ExifImageHeight] = h
    sub[Base.ImageUniqueID] = image_unique_id(record_id)
    sub[Base.UserComment] = _user_comment(desc, little_endian=exif.endian == "<")  # Pillow writes "MM" unless told "<"
    try:
        return exif.tobytes()
    except (ValueError, TypeError, struct.error) as exc:
        raise ImageError(f"{job.source_display}: cannot build EXIF ({exc})", stage=STAGE) from exc
