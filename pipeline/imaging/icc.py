"""The sRGB ICC profile every output embeds (ingest converts every canvas to sRGB; this says so to any reader).

The bytes are Little CMS's built-in sRGB profile (ICC v4, 588 bytes) as Pillow's ``ImageCms.createProfile("sRGB")``
writes it, with the header's creation date fixed at 2026-01-01 00:00:00 so that outputs stay byte-reproducible
(LCMS stamps the current time). Kept as a constant rather than generated at run time for the same reason, and so
that a Pillow/LCMS upgrade cannot change the outputs. ``tests/test_imaging_icc.py`` checks that LCMS reads it as
sRGB and that converting through it is the identity.
"""

from __future__ import annotations

import base64

_SRGB_B64 = (
    "AAACTGxjbXMEQAAAbW50clJHQiBYWVogB+oAAQABAAAAAAAAYWNzcEFQUEwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAPbWAAEA"
    "AAAA0y1sY21zAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALZGVzYwAAAQgAAAA2Y3BydAAA"
    "AUAAAABMd3RwdAAAAYwAAAAUY2hhZAAAAaAAAAAsclhZWgAAAcwAAAAUYlhZWgAAAeAAAAAUZ1hZWgAAAfQAAAAUclRSQwAAAggA"
    "AAAgZ1RSQwAAAggAAAAgYlRSQwAAAggAAAAgY2hybQAAAigAAAAkbWx1YwAAAAAAAAABAAAADGVuVVMAAAAaAAAAHABzAFIARwBC"
    "ACAAYgB1AGkAbAB0AC0AaQBuAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAADAAAAAcAE4AbwAgAGMAbwBwAHkAcgBpAGcAaAB0ACwA"
    "IAB1AHMAZQAgAGYAcgBlAGUAbAB5WFlaIAAAAAAAAPbWAAEAAAAA0y1zZjMyAAAAAAABDEIAAAXe///zJQAAB5MAAP2Q///7of//"
    "/aIAAAPcAADAblhZWiAAAAAAAABvoAAAOPUAAAOQWFlaIAAAAAAAACSfAAAPhAAAtsNYWVogAAAAAAAAYpcAALeHAAAY2XBhcmEA"
    "AAAAAAMAAAACZmYAAPKnAAANWQAAE9AAAApbY2hybQAAAAAAAwAAAACj1wAAVHsAAEzNAACZmgAAJmYAAA9c"
)

#: The profile's bytes (what ``icc_profile=`` of ``PIL.Image.save`` takes).
SRGB_ICC: bytes = base64.b64decode(_SRGB_B64)
#: Its description tag, as exiftool (ICC_Profile:ProfileDescription) and LCMS report it.
SRGB_DESCRIPTION = "sRGB built-in"
