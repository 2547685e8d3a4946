"""Generate the committed sample catalog in ``sample_images/`` from scikit-image's CC0 / public-domain photos.

Usage (from the repository root; not run by ``make demo`` — the generated images are committed):

    .venv/bin/python tools/make_sample_images.py [--out sample_images]

What it makes: five SKUs, 14 product-style images in the catalog layout ``sample_images/<SKU>/<file>`` (``main.*`` is
the main image, the rest are gallery images in name order), plus ``sample_images/SOURCES.md`` naming each file's
source photograph and licence. The photographs shipped in the scikit-image wheel are small (300-640 px), so each
is enlarged with Lanczos (and a little seeded grain on photo-like shots) to a realistic 1600-1920 px long side: large
enough for every built-in preset's minimum size (Walmart's 1500 px is the largest).

Cases the pipeline must handle, on purpose:
- main images on pure white (255, 255, 255): MUG-ESPRESSO, POSTER-ASTRO, RUG-STONE (cut-outs / composites);
- a PNG with transparency (RGBA cut-out): ROCKET-MODEL/main.png; a greyscale PNG: DECAL-HORSE/main.png;
- portrait photos stored rotated with EXIF Orientation: POSTER-ASTRO/03_detail.jpg (6), ROCKET-MODEL/03_nose.jpg (8);
- camera-like EXIF (Make, Model, DateTimeOriginal, BodySerialNumber) on several JPEGs, and an embedded EXIF
  thumbnail (the unmarked picture in miniature, which the pipeline must strip) on MUG-ESPRESSO/02_table.jpg;
- a mix of JPEG, PNG and WebP.

Deterministic: fixed seeds (NumPy and OpenCV's RNG for GrabCut), fixed EXIF values and encoder settings, so a rerun
with the same library versions gives byte-identical files. The camera names in the EXIF are fictitious.
"""

from __future__ import annotations

import argparse
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import piexif
from PIL import Image
from skimage import data as skdata

WHITE = (255, 255, 255)

# Licence of each scikit-image picture used, as stated in its docstring in skimage/data/_fetchers.py.
LICENCES = {
    "coffee": ("skimage.data.coffee()", "Coffee cup, photograph by Rachel Michetti, courtesy of Pikolo Espresso Bar",
               "CC0 (\"No copyright restrictions. CC0 by the photographer\")"),
    "rocket": ("skimage.data.rocket()", "Launch of DSCOVR on Falcon 9, photograph by SpaceX",
               "public domain (released into the public domain by SpaceX)"),
    "astronaut": ("skimage.data.astronaut()", "Astronaut Eileen Collins, NASA Great Images database",
                  "public domain (\"No known copyright restrictions, released into the public domain\")"),
    "gravel": ("skimage.data.gravel()", "Gravel texture from CC0Textures (Gravel04)", "CC0"),
    "brick": ("skimage.data.brick()", "Brick wall texture from CC0Textures (Bricks25)", "CC0"),
    "grass": ("skimage.data.grass()", "Grass texture \"Grass 01\" by linolafett (DeviantArt)", "CC0"),
    "horse": ("skimage.data.horse()", "Horse silhouette by Andreas Preuss (marauder), openclipart",
              "CC0 (\"No copyright restrictions. CC0 given by owner\")"),
}


# --------------------------------------------------------------------------------------------------------------
# Helpers


def enlarge(a: np.ndarray, scale: float) -> np.ndarray:
    h, w = a.shape[:2]
    return cv2.resize(a, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LANCZOS4)


def grain(a: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, sigma, a.shape[:2] + (1,)) + rng.normal(0, sigma / 3, a.shape)
    return np.clip(a.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A 0..1 float alpha from a 0/1 mask with a soft edge."""
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma), 0, 1)


def composite(fg: np.ndarray, alpha: np.ndarray, size: tuple[int, int], at: tuple[int, int],
              bg: np.ndarray | None = None) -> np.ndarray:
    """Place ``fg`` (with 0..1 alpha) on a canvas (white unless ``bg`` is given) of ``size`` (w, h) at ``at``."""
    w, h = size
    canvas = np.full((h, w, 3), 255, np.float32) if bg is None else bg.astype(np.float32).copy()
    x, y = at
    fh, fw = fg.shape[:2]
    region = canvas[y : y + fh, x : x + fw]
    a = alpha[..., None]
    canvas[y : y + fh, x : x + fw] = fg.astype(np.float32) * a + region * (1 - a)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def soft_shadow(size: tuple[int, int], box: tuple[int, int, int, int], strength: float = 0.18) -> np.ndarray:
    """A white canvas with a soft floor shadow under ``box`` that fades to pure white well before the edges."""
    w, h = size
    canvas = np.full((h, w, 3), 255, np.float32)
    x0, y0, x1, y1 = box
    m = np.zeros((h, w), np.float32)
    cx, cy = (x0 + x1) // 2, y1 - (y1 - y0) // 40
    cv2.ellipse(m, (cx, cy), ((x1 - x0) // 2, max(8, (y1 - y0) // 22)), 0, 0, 360, 1.0, -1)
    m = cv2.GaussianBlur(m, (0, 0), (x1 - x0) / 25)
    # Keep the outer 60 px exactly white (ramping in over the next 120 px), and drop the faintest tail, so the
    # image border is pure (255, 255, 255) as storefronts demand of main images.
    yy, xx = np.mgrid[0:h, 0:w]
    edge = np.minimum(np.minimum(xx, w - 1 - xx), np.minimum(yy, h - 1 - yy)).astype(np.float32)
    m *= np.clip((edge - 60) / 120, 0, 1)
    m[m < 0.02] = 0
    canvas *= (1 - strength * m)[..., None]
    return canvas


def camera_exif(model: str, serial: str, when: str, *, orientation: int = 1, thumbnail_of: np.ndarray | None = None
                ) -> bytes:
    ex: dict = {
        "0th": {
            piexif.ImageIFD.Make: b"Example Optics",
            piexif.ImageIFD.Model: model.encode(),
            piexif.ImageIFD.Orientation: orientation,
            piexif.ImageIFD.Software: b"make_sample_images.py",
            piexif.ImageIFD.DateTime: when.encode(),
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: when.encode(),
            piexif.ExifIFD.DateTimeDigitized: when.encode(),
            piexif.ExifIFD.BodySerialNumber: serial.encode(),
            piexif.ExifIFD.ExposureTime: (1, 125),
            piexif.ExifIFD.FNumber: (56, 10),
            piexif.ExifIFD.ISOSpeedRatings: 200,
            piexif.ExifIFD.FocalLength: (50, 1),
        },
    }
    if thumbnail_of is not None:
        im = Image.fromarray(thumbnail_of)
        im.thumbnail((160, 120), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80)
        ex["thumbnail"] = buf.getvalue()
        ex["1st"] = {piexif.ImageIFD.Compression: 6, piexif.ImageIFD.XResolution: (72, 1),
                     piexif.ImageIFD.YResolution: (72, 1), piexif.ImageIFD.ResolutionUnit: 2}
    return piexif.dump(ex)


def save_jpeg(path: Path, a: np.ndarray, exif: bytes | None = None, quality: int = 88) -> None:
    kw: dict = {"quality": quality, "subsampling": 2, "optimize": True}
    if exif:
        kw["exif"] = exif
    Image.fromarray(a).save(path, "JPEG", **kw)


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for an upright picture with this EXIF orientation (6: viewer rotates 90 CW)."""
    if orientation == 6:
        return np.ascontiguousarray(np.rot90(upright, 1))
    if orientation == 8:
        return np.ascontiguousarray(np.rot90(upright, -1))
    if orientation == 1:
        return upright
    raise ValueError(orientation)


# --------------------------------------------------------------------------------------------------------------
# Cut-outs


def coffee_cutout() -> tuple[np.ndarray, np.ndarray]:
    """The espresso cup and saucer from skimage's coffee photo: (RGB crop, 0/1 mask)."""
    a = skdata.coffee()
    h, w = a.shape[:2]
    cv2.setRNGSeed(0)
    gc = np.full((h, w), cv2.GC_BGD, np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    gc[(((xx - 278) / 205.0) ** 2 + ((yy - 232) / 160.0) ** 2 <= 1)
       | (((xx - 290) / 125.0) ** 2 + ((yy - 110) / 100.0) ** 2 <= 1)] = cv2.GC_PR_FGD
    gc[((xx - 278) / 160.0) ** 2 + ((yy - 232) / 110.0) ** 2 <= 1] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(a[..., ::-1]), gc, None, bgd, fgd, 6, cv2.GC_INIT_WITH_MASK)
    cut = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    # The saucer rim is an ellipse whose colour is close to the table's: draw it, and keep GrabCut's answer only
    # for the cup rim and spoon that rise above it.
    saucer = np.zeros((h, w), np.uint8)
    cv2.ellipse(saucer, (279, 230), (202, 159), -3, 0, 360, 1, -1)
    mask = saucer | (cut & (yy < 215)).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask)
    mask = (lab == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    x, y, bw, bh = cv2.boundingRect(mask)
    return a[y : y + bh, x : x + bw], mask[y : y + bh, x : x + bw]


def rocket_outline() -> np.ndarray:
    """The Falcon 9's outline in skimage's rocket photo (x, y polygon, original pixels): ogive nose, fairing, body.

    Drawn by hand from the photo rather than thresholded: the lit launch tower and the horizon glow touch the
    rocket, so no colour threshold separates it cleanly.
    """
    tip_x, tip_y, nose_end = 322.5, 126.0, 150.0
    left: list[tuple[float, float]] = []
    for t in np.linspace(0, 1, 24):
        y = tip_y + t * (nose_end - tip_y)
        half = 11.0 * np.sqrt(1 - (1 - t) ** 2)  # elliptical ogive, ~23 px wide fairing (inset: no sky fringe)
        left.append((tip_x - half, y))
    left += [(311.0, 178.0), (313.0, 184.0), (313.0, 405.0)]
    right = [(2 * tip_x - x + (0.5 if y > 150 else 0.0), y) for x, y in reversed(left)]
    right = [(331.0, 405.0), (331.0, 184.0), (334.0, 178.0)] + [p for p in right if p[1] <= nose_end]
    return np.array(left + right, np.float64)


def rocket_cutout(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The rocket enlarged by ``scale``: (RGB, 0..1 anti-aliased alpha), cropped to the outline's bounds."""
    a = skdata.rocket()
    poly = rocket_outline()
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 2
    crop = a[y0:y1, x0:x1]
    big = enlarge(crop, scale)
    ss = 4  # draw the polygon at 4x the output size, then area-average: a smooth edge
    hi = np.zeros((big.shape[0] * ss, big.shape[1] * ss), np.uint8)
    pts = np.round((poly - (x0, y0)) * scale * ss * 16).astype(np.int32)  # 4 fractional bits (shift=4)
    cv2.fillPoly(hi, [pts], 255, lineType=cv2.LINE_8, shift=4)
    alpha = cv2.resize(hi, big.shape[1::-1], interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return big, alpha


def horse_decal(height: int) -> np.ndarray:
    """The horse silhouette as a smooth 0..1 coverage map of the given height (enlarged without jaggies)."""
    m = (~skdata.horse()).astype(np.float32)  # skimage: True = background
    ys, xs = np.nonzero(m)
    m = m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    m = cv2.GaussianBlur(m, (0, 0), 1.0)
    s = height / m.shape[0]
    big = cv2.resize(m, (round(m.shape[1] * s), height), interpolation=cv2.INTER_CUBIC)
    return np.clip((big - 0.5) * 3 + 0.5, 0, 1)  # re-sharpen to a crisp but anti-aliased edge


def texture(name: str) -> np.ndarray:
    g = getattr(skdata, name)()
    return np.repeat(g[..., None], 3, axis=2) if g.ndim == 2 else g


def tint(grey_rgb: np.ndarray, colour: tuple[int, int, int], lift: float = 0.0) -> np.ndarray:
    g = grey_rgb.astype(np.float32) / 255.0
    g = lift + (1 - lift) * g
    return np.clip(g * np.array(colour, np.float32), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------
# The SKUs


def mug(out: Path) -> list[tuple[str, str, str]]:
    d = out / "MUG-ESPRESSO"
    d.mkdir(parents=True)
    rgb, mask = coffee_cutout()
    s = 1500 / max(rgb.shape[:2])
    big = enlarge(rgb, s)
    alpha = feather(cv2.resize(mask.astype(np.float32), big.shape[1::-1], interpolation=cv2.INTER_LINEAR), 1.5)
    alpha[alpha < 0.02] = 0
    size = (1800, 1800)
    at = ((size[0] - big.shape[1]) // 2, (size[1] - big.shape[0]) // 2)
    shadowed = soft_shadow(size, (at[0], at[1], at[0] + big.shape[1], at[1] + big.shape[0]))
    main = composite(big, alpha, size, at, shadowed)
    save_jpeg(d / "main.jpg", main, camera_exif("EX-1 Mark II", "EX1-004217", "2026:03:14 09:26:53"), quality=90)
    scene = grain(enlarge(skdata.coffee(), 3.2), 1.5, seed=11)  # 1920 x 1280
    save_jpeg(d / "02_table.jpg", scene,
              camera_exif("EX-1 Mark II", "EX1-004217", "2026:03:14 09:27:40", thumbnail_of=scene))
    crema = grain(enlarge(skdata.coffee()[70:250, 170:350], 1600 / 180), 1.2, seed=12)
    Image.fromarray(crema).save(d / "03_crema.webp", "WEBP", quality=85, method=4)
    src = "coffee"
    return [("MUG-ESPRESSO/main.jpg", src, "cup and saucer cut out (GrabCut + fitted ellipse) on pure white, soft shadow"),
            ("MUG-ESPRESSO/02_table.jpg", src, "whole photo enlarged, camera EXIF with an embedded EXIF thumbnail"),
            ("MUG-ESPRESSO/03_crema.webp", src, "close-up crop of the crema, WebP")]


def rocket(out: Path) -> list[tuple[str, str, str]]:
    d = out / "ROCKET-MODEL"
    d.mkdir(parents=True)
    big, alpha = rocket_cutout(1700 / 280)
    w, h = 720, 1800
    rgba = np.zeros((h, w, 4), np.uint8)
    x, y = (w - big.shape[1]) // 2, (h - big.shape[0]) // 2
    rgba[y : y + big.shape[0], x : x + big.shape[1], :3] = big
    rgba[y : y + big.shape[0], x : x + big.shape[1], 3] = np.round(alpha * 255).astype(np.uint8)
    rgba[rgba[..., 3] == 0, :3] = 0  # fully transparent pixels carry no colour (and compress well)
    Image.fromarray(rgba, "RGBA").save(d / "main.png", "PNG", optimize=True)
    launch = grain(enlarge(skdata.rocket(), 3.0), 1.5, seed=21)  # 1920 x 1281
    save_jpeg(d / "02_launch.jpg", launch, camera_exif("EX-7", "EX7-110358", "2026:02:11 23:03:42"))
    nose = grain(enlarge(skdata.rocket()[110:330, 250:400], 1800 / 220), 1.2, seed=22)  # portrait 1227 x 1800
    save_jpeg(d / "03_nose.jpg", stored_for_orientation(nose, 8),
              camera_exif("EX-7", "EX7-110358", "2026:02:11 23:04:05", orientation=8))
    src = "rocket"
    return [("ROCKET-MODEL/main.png", src, "rocket cut out, RGBA PNG with a transparent background"),
            ("ROCKET-MODEL/02_launch.jpg", src, "whole photo enlarged, camera EXIF"),
            ("ROCKET-MODEL/03_nose.jpg", src, "portrait crop stored rotated, EXIF Orientation=8")]


def poster(out: Path) -> list[tuple[str, str, str]]:
    d = out / "POSTER-ASTRO"
    d.mkdir(parents=True)
    astro = skdata.astronaut()
    art = enlarge(astro[:, 64:448], 3.0)  # portrait 1152 x 1536
    mat, frame = 70, 28
    fh, fw = art.shape[0] + 2 * (mat + frame), art.shape[1] + 2 * (mat + frame)
    framed = np.zeros((fh, fw, 3), np.uint8)
    framed[:] = (24, 24, 26)
    framed[frame:-frame, frame:-frame] = (246, 244, 238)
    framed[frame + mat : -frame - mat, frame + mat : -frame - mat] = art
    s = 1600 / fh
    framed = enlarge(framed, s)
    size = (1800, 1800)
    at = ((size[0] - framed.shape[1]) // 2, (size[1] - framed.shape[0]) // 2)
    canvas = soft_shadow(size, (at[0], at[1], at[0] + framed.shape[1], at[1] + framed.shape[0]), 0.22)
    main = composite(framed, np.ones(framed.shape[:2], np.float32), size, at, canvas)
    save_jpeg(d / "main.jpg", main, quality=90)
    wall = tint(enlarge(texture("brick"), 1920 / 512)[:1280], (236, 226, 214), lift=0.65)
    small = enlarge(framed, 900 / framed.shape[0])
    room = composite(small, np.ones(small.shape[:2], np.float32), (1920, 1280),
                     ((1920 - small.shape[1]) // 2, 150), wall)
    save_jpeg(d / "02_wall.jpg", grain(room, 1.2, seed=31), camera_exif("EX-1 Mark II", "EX1-004217",
                                                                          "2026:04:02 15:40:10"))
    detail = grain(enlarge(astro[40:440, 100:400], 1800 / 400), 1.2, seed=32)  # portrait 1350 x 1800
    save_jpeg(d / "03_detail.jpg", stored_for_orientation(detail, 6),
              camera_exif("EX-1 Mark II", "EX1-004217", "2026:04:02 15:41:27", orientation=6))
    return [("POSTER-ASTRO/main.jpg", "astronaut", "framed-print mock-up on pure white, soft shadow"),
            ("POSTER-ASTRO/02_wall.jpg", "astronaut + brick", "the framed print on a tinted brick wall, camera EXIF"),
            ("POSTER-ASTRO/03_detail.jpg", "astronaut", "portrait detail crop stored rotated, EXIF Orientation=6")]


def rug(out: Path) -> list[tuple[str, str, str]]:
    d = out / "RUG-STONE"
    d.mkdir(parents=True)
    gravel = tint(enlarge(texture("gravel"), 3.0), (250, 240, 225), lift=0.15)  # 1536 x 1536
    yy, xx = np.mgrid[0:1536, 0:1536].astype(np.float32)
    r = np.hypot(xx - 767.5, yy - 767.5)
    alpha = feather((r <= 740).astype(np.float32), 2.0)
    shade = (1 - 0.18 * np.clip((r - 600) / 140, 0, 1))[..., None]  # darker bevelled rim
    disc = np.clip(gravel * shade, 0, 255).astype(np.uint8)
    size = (1800, 1800)
    at = (132, 120)
    canvas = soft_shadow(size, (at[0], at[1], at[0] + 1536, at[1] + 1536), 0.16)
    save_jpeg(d / "main.jpg", composite(disc, alpha, size, at, canvas), quality=90)
    brick = tint(enlarge(texture("brick"), 3.0), (190, 90, 70), lift=0.2)[:1100]  # 1536 x 1100 runner
    rect = np.zeros(brick.shape[:2], np.float32)
    cv2.rectangle(rect, (40, 40), (brick.shape[1] - 41, brick.shape[0] - 41), 1.0, -1)
    rect = feather(cv2.GaussianBlur(rect, (0, 0), 25) > 0.5, 2.0)
    Image.fromarray(composite(brick, rect, (1700, 1250), (82, 75))).save(d / "02_runner.webp", "WEBP",
                                                                          quality=82, method=4)
    grass = grain(tint(enlarge(texture("grass"), 1600 / 512), (120, 190, 90), lift=0.1), 1.5, seed=41)
    save_jpeg(d / "03_texture.jpg", grass, camera_exif("EX-7", "EX7-110358", "2026:05:20 11:02:33"))
    return [("RUG-STONE/main.jpg", "gravel", "round rug/coaster made from the texture, on pure white"),
            ("RUG-STONE/02_runner.webp", "brick", "a tinted runner variant on white, WebP"),
            ("RUG-STONE/03_texture.jpg", "grass", "full-frame material close-up, camera EXIF")]


def decal(out: Path) -> list[tuple[str, str, str]]:
    d = out / "DECAL-HORSE"
    d.mkdir(parents=True)
    cover = horse_decal(1300)
    h, w = cover.shape
    grey = np.full((1600, 1800), 255, np.float32)
    x, y = (1800 - w) // 2, (1600 - h) // 2
    grey[y : y + h, x : x + w] = 255 * (1 - cover) + 30 * cover
    Image.fromarray(np.round(grey).astype(np.uint8), "L").save(d / "main.png", "PNG", optimize=True)
    wall = tint(enlarge(texture("brick"), 1920 / 512)[:1280], (226, 232, 240), lift=0.7)
    small = horse_decal(900)
    room = composite(np.full(small.shape + (3,), (40, 36, 34), np.uint8), small, (1920, 1280),
                     ((1920 - small.shape[1]) // 2, 190), wall)
    save_jpeg(d / "02_room.jpg", grain(room, 1.2, seed=51))
    return [("DECAL-HORSE/main.png", "horse", "black vinyl decal on white, greyscale (L) PNG"),
            ("DECAL-HORSE/02_room.jpg", "horse + brick", "the decal on a tinted brick wall, no EXIF")]


SKUS: list[Callable[[Path], list[tuple[str, str, str]]]] = [mug, rocket, poster, rug, decal]


def write_sources(out: Path, rows: list[tuple[str, str, str]]) -> None:
    lines = [
        "# Sample catalog: sources and licences",
        "",
        "Generated by `tools/make_sample_images.py` (deterministic) from photographs and textures that ship in the",
        "scikit-image wheel (`skimage/data/`). Each one's licence is as stated in its docstring in",
        "`skimage/data/_fetchers.py` (scikit-image 0.26). All are CC0 or public domain, so these derived images are",
        "licence-clean. The camera names in the EXIF of some JPEGs are fictitious (\"Example Optics\").",
        "",
        "| file | made from | what it is |",
        "|---|---|---|",
    ]
    for path, src, what in rows:
        names = [s.strip() for s in src.split("+")]
        made = " + ".join(f"`{LICENCES[n][0]}`" for n in names)
        lines.append(f"| `{path}` | {made} | {what} |")
    lines += ["", "## Source pictures", "", "| scikit-image function | picture | licence |", "|---|---|---|"]
    for fn, picture, licence in LICENCES.values():
        lines.append(f"| `{fn}` | {picture} | {licence} |")
    lines += ["", "Not used: `skimage.data.stereo_motorcycle()` (Middlebury 2014 stereo data set; its docstring states",
              "no licence), `coins()` and `immunohistochemistry()` (\"no known copyright restrictions\" only).", ""]
    (out / "SOURCES.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "sample_images")
    args = ap.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rows: list[tuple[str, str, str]] = []
    for make in SKUS:
        rows += make(out)
    write_sources(out, rows)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(rows)} images to {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
