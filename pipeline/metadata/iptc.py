"""The IPTC IIM encoder: the data sets an output carries and their JPEG APP13 "Photoshop 3.0" carrier.

Hand-written: no maintained Python library writes IPTC IIM into a Pillow-encoded JPEG (Pillow only reads it;
iptcinfo3 is unmaintained and rewrites whole files). The format is a flat list of tag-length-value records,
a few lines to encode.
"""

from __future__ import annotations

import hashlib
import struct

from pipeline.errors import ImageError
from pipeline.metadata.text import truncate_utf8, xml_clean
from pipeline.models import Described, Owner

#: Stage named by the ImageError an oversized block raises.
STAGE = "fingerprint"

#: IPTC IIM data sets we write: (record, dataset) -> (name, max bytes per the IIM 4.2 spec).
IPTC_SETS = {
    (1, 90): ("CodedCharacterSet", 32),
    (2, 0): ("ApplicationRecordVersion", 2),
    (2, 5): ("ObjectName", 64),
    (2, 25): ("Keywords", 64),
    (2, 80): ("By-line", 32),
    (2, 90): ("City", 32),
    (2, 92): ("Sub-location", 32),
    (2, 95): ("Province-State", 32),
    (2, 101): ("Country-PrimaryLocationName", 64),
    (2, 110): ("Credit", 32),
    (2, 116): ("CopyrightNotice", 128),
    (2, 120): ("Caption-Abstract", 2000),
}
IPTC_UTF8 = b"\x1b%G"  # ISO 2022 escape for UTF-8, the value of 1:90
_PHOTOSHOP_SIG = b"Photoshop 3.0\x00"


def _iim_dataset(record: int, dataset: int, value: bytes) -> bytes:
    limit = IPTC_SETS[(record, dataset)][1]
    value = truncate_utf8(value, limit)
    return struct.pack(">BBBH", 0x1C, record, dataset, len(value)) + value


def _text_sets(owner: Owner, desc: str, sku: str, kept: Described | None) -> list[tuple[tuple[int, int], bytes]]:
    """The application record's data sets in ascending order; ``kept``: the photographer's fields the export keeps
    (its title is the ObjectName instead of the SKU, as in XMP dc:title; its caption is part of ``desc``)."""
    k = kept if kept is not None else Described()
    sets = [((2, 5), k.title or sku), *(((2, 25), word) for word in k.keywords), ((2, 80), owner.name),
            ((2, 90), k.city), ((2, 92), k.sublocation), ((2, 95), k.state), ((2, 101), k.country),
            ((2, 110), owner.name), ((2, 116), owner.copyright), ((2, 120), desc)]
    return [(key, xml_clean(value).encode("utf-8")) for key, value in sets if value is not None]


def build_iptc(owner: Owner, *, desc: str, sku: str, kept: Described | None = None) -> bytes:
    """IPTC IIM data sets (the payload of the Photoshop 8BIM 0x0404 resource), UTF-8 declared in 1:90.

    Each value is cut to its IIM maximum on a character boundary (``iptc_cuts`` says which were); XMP carries the
    whole text."""
    sets = [((1, 90), IPTC_UTF8), ((2, 0), struct.pack(">H", 4)), *_text_sets(owner, desc, sku, kept)]
    return b"".join(_iim_dataset(r, d, value) for (r, d), value in sets)


def iptc_cuts(owner: Owner, *, desc: str, sku: str, kept: Described | None = None) -> list[str]:
    """One sentence per IIM field ``build_iptc`` has to cut to its length limit (IIM 4.2), naming what is kept."""
    cuts = []
    for (r, d), value in _text_sets(owner, desc, sku, kept):
        name, limit = IPTC_SETS[(r, d)]
        if len(value) > limit:
            left = truncate_utf8(value, limit).decode("utf-8")
            cuts.append(f"IPTC {name} is cut to its {limit}-byte limit ({len(value)} bytes): {left!r} "
                        "(XMP has the whole text)")
    return cuts


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
