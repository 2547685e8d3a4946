"""Fonts of the visible mark: Pillow's built-in font or the owner's TTF/OTF/TTC, and which characters each can draw.

Light on purpose (Pillow's ImageFont and fontTools, no OpenCV): the owner profile is checked with it when it is
loaded, before a run starts, so that text a font has no glyph for is a configuration error naming the characters
instead of empty boxes in every export.
"""

from __future__ import annotations

import functools
import hashlib
import io
from pathlib import Path

from PIL import ImageFont

#: What a mark's text is drawn with when the profile names no font: Pillow's built-in scalable font (FreeType,
#: Pillow >= 10.1), the same glyphs everywhere; it covers printable ASCII and little else.
DEFAULT_FONT = "Pillow's built-in font"

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.lru_cache(maxsize=64)
def load(size: int, path: str | None = None) -> Font:
    """The font at ``size`` px: the owner's font file (the first face of a collection), else Pillow's own."""
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size=size, index=0)


@functools.lru_cache(maxsize=8)
def _codepoints(path: str | None) -> frozenset[int]:
    # fontTools reads the font's character map (Pillow has no "has a glyph for" call: a missing character is
    # silently drawn as the .notdef box)
    from fontTools.ttLib import TTFont

    if path is None:
        data = getattr(load(16), "font_bytes", None)
        if not data:  # pragma: no cover - Pillow built without FreeType: its bitmap font draws ASCII only
            return frozenset(range(0x20, 0x7F))
        font = TTFont(io.BytesIO(data), lazy=True)
    else:
        font = TTFont(path, fontNumber=0, lazy=True)
    cmap = font.getBestCmap() or {}
    return frozenset(cmap)


def missing_glyphs(text: str, path: str | None = None) -> list[str]:
    """The distinct characters of ``text`` (in order, spaces excepted) the font has no glyph for."""
    if path is None and all(" " <= ch <= "~" for ch in text):
        return []  # Pillow's own font draws all of printable ASCII (tested): no fontTools import at CLI start-up
    have = _codepoints(path)
    seen: list[str] = []
    for ch in text:
        if ch != " " and ord(ch) not in have and ch not in seen:
            seen.append(ch)
    return seen


def check(path: str | None) -> None:
    """Raise ValueError (with the reason) unless ``path`` is a font file Pillow and fontTools both read."""
    if path is None:
        return
    try:
        load(16, path)
        _codepoints(path)
    except Exception as exc:  # FreeType's OSError "unknown file format", fontTools' TTLibError, ...
        raise ValueError(f"not a font Pillow can draw with ({exc})") from exc


@functools.lru_cache(maxsize=8)
def digest(path: str) -> str:
    """SHA-256 of a font file: part of the rerun key, so changing the font re-exports the marked images."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
