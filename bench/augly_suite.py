"""AugLy's image augmentations as a second attack suite for ``bench/robustness.py``: an attack set nobody here wrote.

Every function of AugLy 1.0.0's functional image API (``augly.image.functional``) is listed with fixed,
deterministic, moderate parameters (seeded where AugLy draws random numbers) and wrapped as ``attack(rgb) -> rgb``
(H x W x 3 uint8 in and out): a result with alpha (opacity, overlays) is shown on white, as a web page shows it.
The fonts, emoji, mask and screenshot templates some functions use are AugLy's own assets, installed inside its
wheel: nothing is fetched. Functions that break on current Pillow / numpy are not hidden: ``skipped()`` names
each with the error it raises here, found by running it (not a fixed list), and ``NOT_ATTACKS`` the ones that are
no augmentation by themselves.

AugLy is a benchmark dependency only (``bench/requirements-robustness.txt``: ``augly==1.0.0``, which needs the
system's libmagic for python-magic); ``available()`` says whether it is installed.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

AugAttack = Callable[[np.ndarray], np.ndarray]

# functions of augly.image.functional that are no attack by themselves
NOT_ATTACKS = {"apply_lambda": "applies a callable it is given (the identity by default): not an augmentation"}

_TEXT = "SALE 50% OFF"  # overlay_text takes indices into its font's code point list
_FONT = "Raleway-ExtraBold.ttf"


def available() -> bool:
    return importlib.util.find_spec("augly") is not None


@functools.cache
def _assets() -> Path:
    from augly import utils

    return Path(utils.ASSETS_BASE_DIR)


@functools.cache
def _asset_image(rel: str) -> Image.Image:
    with Image.open(_assets() / rel) as im:
        return im.convert("RGBA")


def _text_indices(text: str, font: str) -> list[int]:
    """overlay_text's text argument: indices into the code point list AugLy ships beside each font (.pkl)."""
    import pickle

    with open((_assets() / "fonts" / font).with_suffix(".pkl"), "rb") as f:
        codepoints = pickle.load(f)  # noqa: S301 - AugLy's own asset
    return [codepoints.index(ord(c)) for c in text]


class _Lazy:
    """An argument computed only when its augmentation runs (assets are read only by the functions using them)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def _mask(w: int, h: int) -> Image.Image:
    with Image.open(_assets() / "masks" / "dfdc_mask.png") as im:
        return im.convert("L").resize((w, h))


def _blur3(im: Image.Image) -> Image.Image:
    """masked_composite's transform: Gaussian blur radius 3."""
    from PIL import ImageFilter

    return im.filter(ImageFilter.GaussianBlur(3.0))


def _params(rgb: np.ndarray) -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (AugLy function, its keyword arguments) for one input picture (a few depend on its size)."""
    from PIL import ImageFilter

    h, w = rgb.shape[:2]
    return {
        "apply_pil_filter": ("apply_pil_filter", {"filter_type": ImageFilter.EDGE_ENHANCE}),
        "blur": ("blur", {"radius": 2.0}),
        "brightness": ("brightness", {"factor": 1.3}),
        "change_aspect_ratio": ("change_aspect_ratio", {"ratio": 1.2 * w / h}),
        "clip_image_size": ("clip_image_size", {"max_resolution": 640 * 640}),
        "color_jitter": ("color_jitter", {"brightness_factor": 1.1, "contrast_factor": 1.15,
                                          "saturation_factor": 1.2}),
        "contrast": ("contrast", {"factor": 1.3}),
        "convert_color": ("convert_color", {"mode": "P", "palette": Image.Palette.ADAPTIVE, "colors": 256}),
        "crop": ("crop", {"x1": 0.05, "y1": 0.1, "x2": 0.9, "y2": 0.95}),
        "encoding_quality": ("encoding_quality", {"quality": 50}),
        "grayscale": ("grayscale", {}),
        "hflip": ("hflip", {}),
        "masked_composite": ("masked_composite", {"mask": _Lazy(lambda: _mask(w, h)), "transform_function": _blur3}),
        "meme_format": ("meme_format", {"text": "LOL", "caption_height": max(40, h // 8)}),
        "opacity": ("opacity", {"level": 0.7}),
        "overlay_emoji": ("overlay_emoji", {"emoji_size": 0.15, "x_pos": 0.7, "y_pos": 0.7}),
        "overlay_image": ("overlay_image", {"overlay": _Lazy(lambda: _asset_image("twemojis/objects/package.png")),
                                            "opacity": 0.6, "overlay_size": 0.3, "x_pos": 0.1, "y_pos": 0.1}),
        "overlay_onto_background_image": ("overlay_onto_background_image", {
            "background_image": _Lazy(lambda: _asset_image("screenshot_templates/web.png")), "overlay_size": 0.7,
            "x_pos": 0.15, "y_pos": 0.15, "scale_bg": True}),
        "overlay_onto_screenshot": ("overlay_onto_screenshot", {}),
        "overlay_stripes": ("overlay_stripes", {"line_width": 0.1, "line_angle": 30.0, "line_density": 0.4,
                                                "line_opacity": 0.5}),
        "overlay_text": ("overlay_text", {"text": _Lazy(lambda: _text_indices(_TEXT, _FONT)),
                                          "font_file": _Lazy(lambda: str(_assets() / "fonts" / _FONT)),
                                          "font_size": 0.1, "x_pos": 0.05, "y_pos": 0.45}),
        "pad": ("pad", {"w_factor": 0.2, "h_factor": 0.1, "color": (0, 0, 0)}),
        "pad_square": ("pad_square", {"color": (255, 255, 255)}),
        "perspective_transform": ("perspective_transform", {"sigma": 20.0, "seed": 7}),
        "pixelization": ("pixelization", {"ratio": 0.5}),
        "random_noise": ("random_noise", {"var": 0.001, "seed": 7}),  # sigma ~8 grey levels
        "resize": ("resize", {"width": 600, "height": 600}),
        "rotate": ("rotate", {"degrees": 10.0}),
        "saturation": ("saturation", {"factor": 1.5}),
        "scale": ("scale", {"factor": 0.5}),
        "sharpen": ("sharpen", {"factor": 2.0}),
        "shuffle_pixels": ("shuffle_pixels", {"factor": 0.1, "seed": 7}),
        "skew": ("skew", {"skew_factor": 0.15, "axis": 0}),
        "vflip": ("vflip", {}),
    }


# the parameters as a reader sees them (the table's legend); sizes of the picture are w, h
DESCRIPTIONS = {
    "apply_pil_filter": "Pillow EDGE_ENHANCE filter",
    "blur": "Gaussian blur, radius 2",
    "brightness": "brightness x1.3",
    "change_aspect_ratio": "aspect ratio x1.2 (same area)",
    "clip_image_size": "downscaled to at most 640x640 px of area",
    "color_jitter": "brightness x1.1, contrast x1.15, saturation x1.2",
    "contrast": "contrast x1.3",
    "convert_color": "256-colour adaptive palette (GIF-like)",
    "crop": "crop x 5-90 %, y 10-95 %",
    "encoding_quality": "JPEG quality 50",
    "grayscale": "greyscale (luminosity)",
    "hflip": "mirror left-right",
    "masked_composite": "blur radius 3 inside AugLy's face mask",
    "meme_format": "meme caption bar above the picture",
    "opacity": "opacity 0.7, shown on white",
    "overlay_emoji": "emoji, 15 % of the width",
    "overlay_image": "emoji picture at 30 %, opacity 0.6",
    "overlay_onto_background_image": "picture at 70 % on a web-page screenshot",
    "overlay_onto_screenshot": "picture inside AugLy's web screenshot template",
    "overlay_stripes": "stripes at 30 degrees, width 0.1, density 0.4, opacity 0.5",
    "overlay_text": "text 'SALE 50% OFF', 10 % high",
    "pad": "black borders, 20 % left/right, 10 % top/bottom",
    "pad_square": "padded to a square with white",
    "perspective_transform": "perspective warp, sigma 20 px, seed 7",
    "pixelization": "pixelization, ratio 0.5",
    "random_noise": "Gaussian noise, variance 0.001 (sigma ~8 levels), seed 7",
    "resize": "resized to 600x600 (squashes a non-square picture)",
    "rotate": "rotation 10 degrees, borders cropped",
    "saturation": "saturation x1.5",
    "scale": "scaled to 50 %",
    "sharpen": "sharpen x2",
    "shuffle_pixels": "10 % of the pixels shuffled, seed 7",
    "skew": "horizontal skew 0.15",
    "vflip": "mirror top-bottom",
}

NAMES = list(DESCRIPTIONS)


def _to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def apply(name: str, rgb: np.ndarray) -> np.ndarray:
    """AugLy's ``name`` with this suite's parameters on ``rgb``; exceptions are AugLy's own."""
    import augly.image.functional as F

    func, kwargs = _params(rgb)[name]
    kwargs = {k: v.make() if isinstance(v, _Lazy) else v for k, v in kwargs.items()}
    out = getattr(F, func)(Image.fromarray(rgb), **kwargs)
    return _to_rgb(out)


def attack(name: str) -> AugAttack:
    return functools.partial(apply, name)


@functools.cache
def skipped() -> dict[str, str]:
    """The listed augmentations that fail here (on a small test picture), with the error each raises."""
    probe = np.full((96, 128, 3), 200, np.uint8)
    probe[20:70, 30:100] = (40, 90, 160)
    out: dict[str, str] = {}
    for name in NAMES:
        try:
            res = apply(name, probe)
            if res.ndim != 3 or res.shape[2] != 3 or res.dtype != np.uint8:
                raise TypeError(f"returned {res.dtype} {res.shape}")
        except Exception as exc:  # noqa: BLE001 - the reason is reported
            out[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return out


def attacks() -> dict[str, AugAttack]:
    """The AugLy attacks that run here, in the suite's order ("augly:" + the AugLy function name)."""
    bad = skipped()
    return {f"augly:{n}": attack(n) for n in NAMES if n not in bad}


def functional_names() -> list[str]:
    """Every public function of augly.image.functional (to check the suite lists them all)."""
    import inspect

    import augly.image.functional as F

    return sorted(n for n, f in inspect.getmembers(F, inspect.isfunction)
                  if f.__module__ == F.__name__ and not n.startswith("_"))
