"""Text values every metadata block shares, and how they are made safe to write.

XML 1.0 cannot carry some characters at all (not even as character references); they are removed from every
value, in every block, so a value reads back the same from EXIF, XMP and IPTC and the signed claim survives
the XMP round trip exactly.
"""

from __future__ import annotations

import re
from datetime import datetime

from anyascii import anyascii

from pipeline import __version__
from pipeline.models import ImageJob, Owner

SOFTWARE = f"catalogmark {__version__}"

# Characters XML 1.0 cannot carry at all (not even as character references); removed from every value.
_XML_INVALID = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot represent (control characters, lone surrogates...)."""
    return _XML_INVALID.sub("", text)


def ascii_text(text: str) -> str:
    """``text`` for an EXIF ASCII-typed tag (EXIF 2.32: 7-bit ASCII): transliterated by anyascii ("—" -> "-",
    "©" -> "(C)", "Ñandú" -> "Nandu", Cyrillic and CJK romanised), control characters other than tab/LF/CR removed.
    The exact text goes where Unicode is allowed: XMP, IPTC (UTF-8 declared), EXIF XPAuthor/XPComment, UserComment."""
    return "".join(c for c in anyascii(xml_clean(text)) if c in "\t\n\r" or " " <= c <= "~")


def truncate_utf8(raw: bytes, limit: int) -> bytes:
    """UTF-8 ``raw`` cut to at most ``limit`` bytes on a character boundary."""
    return raw if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore").encode("utf-8")


_EXIF_DATETIME = re.compile(r"^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$")


def capture_datetime(value: str | None) -> datetime | None:
    """A source's capture date (EXIF "YYYY:MM:DD HH:MM:SS" or ISO-8601 text) as a naive or aware datetime, or None
    if it is missing or unusable (EXIF's "0000:00:00 00:00:00" placeholder included)."""
    if not value:
        return None
    value = value.strip()
    m = _EXIF_DATETIME.match(value)
    if m:
        value = "{}-{}-{}T{}:{}:{}".format(*m.groups())
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def description(job: ImageJob, owner: Owner, record_id: str, caption: str | None = None) -> str:
    """The description written to EXIF ImageDescription, XMP dc:description and IPTC Caption: our one line, after
    the photographer's own caption (and " — ") when the export keeps it (``[metadata] keep = ["caption"]``)."""
    ours = f"{job.sku} — © {owner.name} — record {record_id}"
    return f"{caption} — {ours}" if caption else ours
