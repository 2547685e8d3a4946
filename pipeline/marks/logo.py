"""How large a watermark logo may be: one limit, checked from the image header before any pixel is decoded."""

from __future__ import annotations

#: The largest logo read (pixels). A logo is drawn at most across a canvas (a few MP); a bigger one only costs
#: memory (a 156 MP logo took 5.3 GB to read).
LOGO_MAX_PIXELS = 16_000_000


def logo_too_large(size: tuple[int, int]) -> str | None:
    """Why a logo of ``size`` (w, h) is refused, or None when it is within :data:`LOGO_MAX_PIXELS`."""
    w, h = size
    if w * h <= LOGO_MAX_PIXELS:
        return None
    return (f"{w}x{h} = {w * h / 1e6:.0f} MP, more than the {LOGO_MAX_PIXELS / 1e6:.0f} MP a logo may have "
            "(it is drawn at most canvas-wide: scale it down)")
