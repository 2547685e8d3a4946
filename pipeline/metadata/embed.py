"""Embedding per format: what goes into the encoder call, and the post-encode step for what Pillow cannot write.

JPEG: EXIF in APP1, XMP in a second APP1, the sRGB ICC profile in APP2, IPTC in an APP13 inserted after encoding;
the JFIF header says 72 dpi like the EXIF block. WebP: EXIF, XMP and ICCP chunks. PNG: EXIF in an eXIf chunk, XMP in
an uncompressed iTXt chunk keyed "XML:com.adobe.xmp", the profile in iCCP (all before IDAT).
"""

from __future__ import annotations

import struct
from typing import Any

from PIL import PngImagePlugin

from pipeline.errors import ImageError
from pipeline.imaging.icc import SRGB_ICC
from pipeline.metadata.iptc import app13_segment
from pipeline.models import Fingerprint

#: Stage named by the ImageError a malformed encoder output raises.
STAGE = "export"


def _norm_format(fmt: str) -> str:
    f = fmt.lower()
    return "jpeg" if f == "jpg" else f


def save_kwargs(fp: Fingerprint, fmt: str) -> dict[str, Any]:
    """Keyword arguments for ``PIL.Image.save`` that embed the EXIF and XMP blocks and the sRGB profile in ``fmt``.

    IPTC is added by :func:`finalize`.
    """
    f = _norm_format(fmt)
    kwargs: dict[str, Any] = {"icc_profile": SRGB_ICC}
    if f == "jpeg":
        kwargs["dpi"] = (72, 72)  # JFIF density as in EXIF X/YResolution (Pillow's default is 1:1, no unit)
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
        raise ImageError("encoded JPEG does not start with SOI; cannot add IPTC", stage=STAGE)
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] in (0xE0, 0xE1):
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        pos += 2 + length
    if pos > len(data):
        raise ImageError("encoded JPEG has a truncated APP segment; cannot add IPTC", stage=STAGE)
    return data[:pos] + app13_segment(fp.iptc) + data[pos:]
