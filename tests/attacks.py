"""The re-upload attack suite: what marketplaces, thieves and screenshots do to a picture, as deterministic functions.

Every attack is ``attack(rgb, seed) -> rgb`` (H x W x 3 uint8 in, uint8 out, made with Pillow/OpenCV), fully
determined by ``seed`` (random crop offsets, banner text placement, noise). ``ATTACKS`` maps a stable name to each
one; the invisible-watermark tests and ``bench/robustness.py`` use it, and the trace bench can too. Parameters
follow issue 3 (the worst case of each required range): JPEG 50, WebP 50, 50 % and 30 % downscales, crops
keeping 80 % of each side, mirror, brightness/contrast/saturation +-25 %, blur sigma 1.5, noise sigma 8, a banner
or logo over <= 20 % of the picture, rotation +-3 degrees with the borders cropped, a 15 % aspect change, a
screenshot inside a web page, and crop + resize + JPEG 70 chains.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

Attack = Callable[[np.ndarray, int], np.ndarray]


def _rng(seed: int, salt: str) -> np.random.Generator:
    return np.random.default_rng([seed, sum(ord(c) * 31**i for i, c in enumerate(salt)) % 2**32])


def _encode(rgb: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, quality=quality)  # Pillow default: 4:2:0 chroma subsampling for JPEG
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    interp = cv2.INTER_AREA if width * height < w * h else cv2.INTER_CUBIC
    return cv2.resize(rgb, (max(8, width), max(8, height)), interpolation=interp)


def _scale(rgb: np.ndarray, fx: float, fy: float | None = None) -> np.ndarray:
    h, w = rgb.shape[:2]
    return _resize(rgb, round(w * fx), round(h * (fx if fy is None else fy)))


def _crop_sides(rgb: np.ndarray, keep: float, seed: int) -> np.ndarray:
    """Keep ``keep`` of each side at a seeded random position."""
    h, w = rgb.shape[:2]
    cw, ch = round(w * keep), round(h * keep)
    rng = _rng(seed, "crop")
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return np.ascontiguousarray(rgb[y : y + ch, x : x + cw])


# ------------------------------------------------------------------------------------------------ encoders


def jpeg50(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    return _encode(rgb, "JPEG", 50)


def jpeg70(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    return _encode(rgb, "JPEG", 70)


def jpeg90(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    return _encode(rgb, "JPEG", 90)


def webp50(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    return _encode(rgb, "WEBP", 50)


# ------------------------------------------------------------------------------------------------ geometry


def scale50(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    return _scale(rgb, 0.5)


def thumb30(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 30 % thumbnail (area resampling, as marketplaces and browsers do)."""
    return _scale(rgb, 0.3)


def crop80(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """A crop keeping 80 % of each side, at a seeded random position."""
    return _crop_sides(rgb, 0.8, seed)


def flip(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mirror image (left-right)."""
    return np.ascontiguousarray(rgb[:, ::-1])


def _rotate_crop(rgb: np.ndarray, degrees: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    out = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = abs(math.radians(degrees))
    f = 1.0 / (math.cos(a) + math.sin(a) * max(w / h, h / w))  # largest inner rectangle of the same aspect
    cw, ch = int(w * f), int(h * f)
    x, y = (w - cw) // 2, (h - ch) // 2
    return np.ascontiguousarray(out[y : y + ch, x : x + cw])


def rotate3(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rotation by +3 or -3 degrees (seeded), borders cropped away."""
    return _rotate_crop(rgb, 3.0 if _rng(seed, "rot").random() < 0.5 else -3.0)


def aspect15(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """Non-uniform rescale: one axis squeezed by 15 % (which axis is seeded)."""
    return _scale(rgb, 1.0, 0.85) if _rng(seed, "aspect").random() < 0.5 else _scale(rgb, 0.85, 1.0)


# ------------------------------------------------------------------------------------------------ photometric


def _enhancer(kind: type[ImageEnhance._Enhance], factor: float) -> Attack:
    """A brightness/contrast/saturation change by ``factor`` (Pillow's ImageEnhance), as an attack."""
    def attack(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
        return np.asarray(kind(Image.fromarray(rgb)).enhance(factor)).copy()
    return attack


def blur15(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gaussian blur, sigma 1.5 px."""
    return cv2.GaussianBlur(rgb, (0, 0), 1.5)


def noise8(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise, sigma 8 grey levels, independent per channel."""
    n = _rng(seed, "noise").normal(0.0, 8.0, rgb.shape)
    return np.clip(rgb.astype(np.float32) + n, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ overlays


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def banner(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """An opaque text banner across the picture covering 18 % of it (top, middle or bottom: seeded)."""
    h, w = rgb.shape[:2]
    rng = _rng(seed, "banner")
    bh = int(0.18 * h)
    y0 = [0, (h - bh) // 2, h - bh][int(rng.integers(0, 3))]
    im = Image.fromarray(rgb.copy())
    draw = ImageDraw.Draw(im)
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    draw.rectangle([0, y0, w, y0 + bh], fill=colour)
    text = ["SALE -50%", "FREE SHIPPING", "BEST PRICE", "HOT DEAL"][int(rng.integers(0, 4))]
    draw.text((w // 12, y0 + bh // 5), text, fill=(255, 255, 255), font=_font(int(bh * 0.55)))
    return np.asarray(im).copy()


def logo(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """A seller's logo (a filled badge with text) pasted over 15 % of the picture at a seeded corner."""
    h, w = rgb.shape[:2]
    rng = _rng(seed, "logo")
    side = int(math.sqrt(0.15 * w * h))
    side = min(side, w, h)
    badge = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(badge)
    colour = tuple(int(c) for c in rng.integers(0, 256, 3)) + (255,)
    draw.rounded_rectangle([0, 0, side - 1, side - 1], radius=side // 6, fill=colour)
    draw.text((side // 8, side // 3), "SHOP", fill=(255, 255, 255, 255), font=_font(side // 4))
    im = Image.fromarray(rgb.copy()).convert("RGBA")
    corner = int(rng.integers(0, 4))
    x = 0 if corner % 2 == 0 else w - side
    y = 0 if corner < 2 else h - side
    im.alpha_composite(badge, (x, y))
    return np.asarray(im.convert("RGB")).copy()


def screenshot(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """The picture shown in a web page and screenshotted: scaled to 55-80 % (seeded), framed by page background,
    a header bar, a side column of text and a thin border, saved losslessly (PNG-like)."""
    rng = _rng(seed, "screenshot")
    s = float(rng.uniform(0.55, 0.8))
    pic = _scale(rgb, s)
    ph, pw = pic.shape[:2]
    margin = int(rng.integers(40, 90))
    side = int(rng.integers(200, 320))
    page_h, page_w = ph + 2 * margin + 60, pw + 2 * margin + side
    bg = tuple(int(c) for c in rng.integers(235, 256, 3))
    page = Image.new("RGB", (page_w, page_h), bg)
    draw = ImageDraw.Draw(page)
    draw.rectangle([0, 0, page_w, 48], fill=(35, 47, 62))
    draw.text((16, 12), "shop.example  >  Home  >  Kitchen  >  Item", fill=(255, 255, 255), font=_font(18))
    top = 60 + margin
    draw.rectangle([margin - 2, top - 2, margin + pw + 1, top + ph + 1], outline=(200, 200, 200), width=2)
    page.paste(Image.fromarray(pic), (margin, top))
    tx = margin * 2 + pw
    for i in range(8):
        draw.text((tx, top + 10 + 28 * i), ["Product title", "$19.99", "In stock", "Add to cart", "Ships today",
                                            "4.5 stars", "Free returns", "Details"][i], fill=(20, 20, 20), font=_font(16))
    return np.asarray(page).copy()


# ------------------------------------------------------------------------------------------------ chains


def crop_resize_jpeg70(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """The marketplace chain: crop keeping 80 % of each side, resize to 60 % (long side), JPEG 70."""
    return jpeg70(_scale(crop80(rgb, seed), 0.6))


def scale50_jpeg70(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    return jpeg70(scale50(rgb))


ATTACKS: dict[str, Attack] = {
    "none": lambda rgb, seed=0: rgb.copy(),
    "jpeg90": jpeg90,
    "jpeg70": jpeg70,
    "jpeg50": jpeg50,
    "webp50": webp50,
    "scale50": scale50,
    "thumb30": thumb30,
    "crop80": crop80,
    "flip": flip,
    "brightness+25": _enhancer(ImageEnhance.Brightness, 1.25),
    "brightness-25": _enhancer(ImageEnhance.Brightness, 0.75),
    "contrast+25": _enhancer(ImageEnhance.Contrast, 1.25),
    "contrast-25": _enhancer(ImageEnhance.Contrast, 0.75),
    "saturation+25": _enhancer(ImageEnhance.Color, 1.25),
    "saturation-25": _enhancer(ImageEnhance.Color, 0.75),
    "blur1.5": blur15,
    "noise8": noise8,
    "banner18": banner,
    "logo15": logo,
    "rotate3": rotate3,
    "aspect15": aspect15,
    "screenshot": screenshot,
    "scale50+jpeg70": scale50_jpeg70,
    "crop80+resize60+jpeg70": crop_resize_jpeg70,
}
