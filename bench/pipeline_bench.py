"""`make bench`: catalogmark against a bare Pillow loop and the ImageMagick + exiftool shell loop, same files, same run.

    .venv/bin/python bench/pipeline_bench.py [--images 16] [--rounds 3] [--quick] [--skip-rerun]
                                             [--skip-memory] [--skip-imagemagick] [--rerun-photos 10000]

Everything is a whole process (wall time includes interpreter start-up and imports), started by this driver:

  throughput   generated 24 MP camera-like JPEGs (6000x4000, q92, 4:2:2, camera EXIF with a thumbnail, distinct
               procedural scene + grain per file, some stored with Orientation=6), cached in bench-out/cache/.
               Contestants, interleaved round by round (A, B, C, A, B, C, ...):
                 pipeline      `catalogmark run` (fresh ledger and output folder each round), --jobs 1 and 2
                 bare loop     Pillow: draft decode -> resize -> pad/crop -> encode, the exact exports the
                               pipeline writes (same presets, sizes, fit/pad/cover geometry and count), one decode
                               per export, 1 process and 2 processes (multiprocessing)
                 shell loop    ImageMagick `convert` + `exiftool` per export (only where both are installed)
               each with one preset (aliexpress) and with three (amazon, shopify, ebay).
  rerun        --rerun-photos tiny JPEGs (64x64, 5 per SKU folder) with a bench preset (extends web, 64 px box,
               min_long_side = 0): a first run exports them all, then a no-change rerun and a --check are timed.
  memory       peak RSS of `catalogmark run --jobs 1` (the pipeline runs in-process with one job) on one 50 MP
               JPEG, one 100 MP PNG, and the worst PNGs the pixel limit allows (156 MP 16-bit grey, 144 MP
               1-bit), each in a fresh wrapper process (getrusage(RUSAGE_CHILDREN).ru_maxrss).

Fairness: every contestant gets OMP_NUM_THREADS=1 and friends
(BLAS, OpenCV, ImageMagick, libvips thread pools = 1); one-process contestants are pinned to one CPU with taskset
(--no-pin to turn that off); inputs are read once beforehand so all of them come from the page cache.

Prints a table with the targets and PASS/MISS beside each ratio (a benchmark, not a test: exit status is 0 even on
a MISS), and writes the same as JSON to bench-out/pipeline-bench.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import piexif
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline import PIPELINE_VERSION, __version__  # noqa: E402
from pipeline.presets import Preset, load_preset  # noqa: E402
from pipeline.timefmt import now_iso  # noqa: E402

ONE_PRESET = ("aliexpress",)
THREE_PRESETS = ("amazon", "shopify", "ebay")
OWNER = "Bench Studio"
COPYRIGHT = "(c) 2026 Bench Studio"
GENERATOR_VERSION = 1  # bump when the generated pictures change (the cache folders are named after it)
PHOTOS_PER_SKU = 4  # camera set: main + 3 gallery images per SKU folder
TINY_PER_SKU = 5  # rerun set: 10,000 photos in 2,000 SKU folders
TINY_SIDE = 64
PORTRAIT_EVERY = 8  # photo i is a portrait stored with Orientation=6 when i % 8 == 3 (2 of 16, 1 of 4)

# The targets of the issue: (key, label, target, kind) -- "ratio" is higher-is-better, "seconds"/"mb" lower.
TARGETS = {
    "one_preset_vs_bare": 0.75,
    "three_presets_vs_bare": 1.0,
    "vs_imagemagick": 6.0,
    "jobs2_vs_jobs1": 1.8,
    "rerun_seconds": 10.0,
    "check_seconds": 10.0,
    "peak_rss_mb": 400.0,
}

#: Thread pools of every library any contestant may use, set to 1 for all of them alike.
FAIR_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "OPENCV_FOR_THREADS_NUM": "1",
    "MAGICK_THREAD_LIMIT": "1",
    "VIPS_CONCURRENCY": "1",
    "SOURCE_DATE_EPOCH": "1767225600",  # 2026-01-01: catalogmark's outputs are then deterministic
}

# ------------------------------------------------------------------------------------------------------------------
# The bare Pillow loop: its own process, started like the others. It gets a JSON list of exports and writes each
# with one decode: draft (DCT-scaled) decode -> Pillow resize -> EXIF orientation -> pad / centre crop -> encode.
# The geometry is the pipeline's (pipeline/stages/ingest.py plan_geometry), re-implemented here on purpose so the
# loop imports nothing but Pillow.

BARE_LOOP = r'''
import json, multiprocessing, os, sys, time
from PIL import Image

T = Image.Transpose
ORIENT = {2: [T.FLIP_LEFT_RIGHT], 3: [T.ROTATE_180], 4: [T.FLIP_TOP_BOTTOM], 5: [T.TRANSPOSE],
          6: [T.ROTATE_270], 7: [T.TRANSVERSE], 8: [T.ROTATE_90]}
SWAPS = (5, 6, 7, 8)
FILTERS = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
           "bilinear": Image.Resampling.BILINEAR}
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def plan(w, h, e):
    bw, bh, fit, up = e["width"], e["height"], e["fit"], e["upscale"]
    def scaled(s):
        return max(1, round(w * s)), max(1, round(h * s))
    if fit in ("fit", "pad"):
        s = min(bw / w, bh / h)
        s = s if up else min(s, 1.0)
        sw, sh = scaled(s)
        sw, sh = min(sw, bw), min(sh, bh)
        if fit == "fit":
            return (sw, sh), (sw, sh), (0, 0)
        return (sw, sh), (bw, bh), ((bw - sw) // 2, (bh - sh) // 2)
    s = max(bw / w, bh / h)
    s = s if up else min(s, 1.0)
    sw, sh = scaled(s)
    k = min(sw / bw, sh / bh, 1.0)
    cw, ch = (bw, bh) if k >= 1.0 else (min(sw, max(1, round(bw * k))), min(sh, max(1, round(bh * k))))
    return (sw, sh), (cw, ch), (-((sw - cw) // 2), -((sh - ch) // 2))


def export(e):
    with Image.open(e["src"]) as im:
        orientation = im.getexif().get(0x0112, 1)
        w0, h0 = im.size
        uw, uh = (h0, w0) if orientation in SWAPS else (w0, h0)
        (sw, sh), (cw, ch), (ox, oy) = plan(uw, uh, e)
        need = (sh, sw) if orientation in SWAPS else (sw, sh)
        im.draft("RGB", need)
        img = im.convert("RGB")
    if img.size != need:
        img = img.resize(need, FILTERS[e["filter"]], reducing_gap=None)
    for t in ORIENT.get(orientation, ()):
        img = img.transpose(t)
    if (cw, ch) != (sw, sh) or (ox, oy) != (0, 0):
        if ox >= 0 and oy >= 0:
            canvas = Image.new("RGB", (cw, ch), tuple(e["background"]))
            canvas.paste(img, (ox, oy))
            img = canvas
        else:
            img = img.crop((-ox, -oy, -ox + cw, -oy + ch))
    os.makedirs(os.path.dirname(e["dst"]), exist_ok=True)
    if e["format"] == "jpeg":
        img.save(e["dst"], "JPEG", quality=e["quality"], subsampling=SUBSAMPLING[e["subsampling"]])
    elif e["format"] == "webp":
        img.save(e["dst"], "WEBP", quality=e["quality"])
    else:
        img.save(e["dst"], "PNG")
    return e["key"], img.size[0], img.size[1]


def main():
    spec = json.load(open(sys.argv[1]))
    t = time.perf_counter()
    if spec["processes"] > 1:
        with multiprocessing.get_context("fork").Pool(spec["processes"]) as pool:
            sizes = list(pool.imap_unordered(export, spec["exports"], chunksize=1))
    else:
        sizes = [export(e) for e in spec["exports"]]
    json.dump({"loop_seconds": time.perf_counter() - t, "sizes": sizes}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
'''

# Peak RSS of one command, measured in a fresh process so that RUSAGE_CHILDREN's maximum is that command's alone.
RSS_WRAPPER = r'''
import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"rc": rc, "wall": wall, "maxrss_kb": ru.ru_maxrss, "cpu": ru.ru_utime + ru.ru_stime}, open(sys.argv[1], "w"))
'''

# ------------------------------------------------------------------------------------------------------------------
# Generated inputs


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _scene(w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """A procedural 'photo' at w x h: smooth colour field + random shapes (some blurred) + texture, no grain."""
    sw, sh = max(96, w // 4), max(64, h // 4)
    gy, gx = int(rng.integers(3, 8)), int(rng.integers(4, 12))
    field_ = rng.integers(0, 256, (gy, gx, 3), dtype=np.uint8)
    img = Image.fromarray(field_).resize((sw, sh), Image.Resampling.BICUBIC)
    for layer in range(2):
        over = Image.new("RGBA", (sw, sh), (0, 0, 0, 0))
        draw = ImageDraw.Draw(over)
        for _ in range(int(rng.integers(12, 30))):
            x0, y0 = int(rng.integers(-sw // 8, sw)), int(rng.integers(-sh // 8, sh))
            x1 = x0 + int(rng.integers(sw // 30, sw // 3))
            y1 = y0 + int(rng.integers(sh // 30, sh // 3))
            colour = (*(int(c) for c in rng.integers(0, 256, 3)), int(rng.integers(140, 256)))
            kind = int(rng.integers(0, 4))
            if kind == 0:
                draw.ellipse((x0, y0, x1, y1), fill=colour)
            elif kind == 1:
                draw.rectangle((x0, y0, x1, y1), fill=colour)
            elif kind == 2:
                pts = [(int(rng.integers(x0, x1 + 1)), int(rng.integers(y0, y1 + 1))) for _ in range(5)]
                draw.polygon(pts, fill=colour)
            else:
                draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(2, 12)))
        if layer == 0:  # the background layer out of focus
            over = over.filter(ImageFilter.GaussianBlur(float(rng.uniform(3, 10))))
        img.paste(over, (0, 0), over)
    # mid-frequency texture (fabric, foliage, wood...) so the picture is not flat between the shapes
    tex = rng.standard_normal((sh // 3, sw // 3, 1), dtype=np.float32) * float(rng.uniform(6, 14))
    tex_img = Image.fromarray(np.clip(tex[..., 0] + 128, 0, 255).astype(np.uint8)).resize((sw, sh),
                                                                                        Image.Resampling.BICUBIC)
    a = np.asarray(img, np.int16) + (np.asarray(tex_img, np.int16)[..., None] - 128)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return img.resize((w, h), Image.Resampling.BICUBIC)


def _grain(img: Image.Image, rng: np.random.Generator, luma: float = 4.0, chroma: float = 1.4) -> Image.Image:
    """Sensor-like grain (Gaussian, sigma 4 on luma and 1.4 on chroma), done in row strips."""
    a = np.asarray(img, np.uint8).copy()
    h = a.shape[0]
    step = 512
    for y in range(0, h, step):
        part = a[y : y + step].astype(np.float32)
        n = part.shape[0]
        part += rng.standard_normal((n, part.shape[1], 1), dtype=np.float32) * luma
        part += rng.standard_normal(part.shape, dtype=np.float32) * chroma
        a[y : y + step] = np.clip(part, 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def _camera_exif(i: int, rng: np.random.Generator, thumb_src: Image.Image, orientation: int) -> bytes:
    thumb = io.BytesIO()
    t = thumb_src.copy()
    t.thumbnail((160, 120))
    t.save(thumb, "JPEG", quality=70)
    day, sec = 1 + i % 28, i * 37 % 86400
    stamp = f"2026:01:{day:02d} {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}".encode()
    cameras = [(b"Canon", b"Canon EOS R6m2"), (b"NIKON CORPORATION", b"NIKON Z 6_2"), (b"SONY", b"ILCE-7M4")]
    make, model = cameras[i % len(cameras)]
    exif = {
        "0th": {
            piexif.ImageIFD.Make: make, piexif.ImageIFD.Model: model,
            piexif.ImageIFD.Orientation: orientation,
            piexif.ImageIFD.XResolution: (300, 1), piexif.ImageIFD.YResolution: (300, 1),
            piexif.ImageIFD.ResolutionUnit: 2, piexif.ImageIFD.Software: b"Firmware Ver.1.4.0",
            piexif.ImageIFD.DateTime: stamp,
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: stamp, piexif.ExifIFD.DateTimeDigitized: stamp,
            piexif.ExifIFD.ExposureTime: (1, int(rng.choice([60, 125, 250, 500]))),
            piexif.ExifIFD.FNumber: (int(rng.choice([18, 28, 40, 56, 80])), 10),
            piexif.ExifIFD.ISOSpeedRatings: int(rng.choice([100, 200, 400, 800])),
            piexif.ExifIFD.FocalLength: (int(rng.integers(24, 105)), 1),
            piexif.ExifIFD.LensModel: b"24-105mm F4", piexif.ExifIFD.BodySerialNumber: f"{80210000 + i}".encode(),
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((48, 1), (8, 1), (2000, 100)),
            piexif.GPSIFD.GPSLongitudeRef: b"E", piexif.GPSIFD.GPSLongitude: ((11, 1), (34, 1), (3000, 100)),
        },
        "1st": {piexif.ImageIFD.Compression: 6, piexif.ImageIFD.XResolution: (72, 1),
                piexif.ImageIFD.YResolution: (72, 1), piexif.ImageIFD.ResolutionUnit: 2},
        "thumbnail": thumb.getvalue(),
    }
    return piexif.dump(exif)


def make_camera_jpeg(path: Path, i: int, width: int, height: int, portrait: bool) -> None:
    """A camera-like JPEG: q92, 4:2:2, camera EXIF (+ thumbnail, GPS, serial); portraits stored with Orientation=6."""
    rng = np.random.default_rng([GENERATOR_VERSION, i, width, height])
    dw, dh = (height, width) if portrait else (width, height)  # displayed (upright) size
    disp = _grain(_scene(dw, dh, rng), rng)
    stored = disp.transpose(Image.Transpose.ROTATE_90) if portrait else disp  # Orientation=6 turns it back
    exif = _camera_exif(i, rng, disp, 6 if portrait else 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    stored.save(tmp, "JPEG", quality=92, subsampling=1, exif=exif)
    os.replace(tmp, path)


def make_big_png(path: Path, width: int, height: int) -> None:
    """A large RGB PNG that is cheap to make and compresses well: a smooth gradient plus a few shapes."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    a = np.empty((height, width, 3), np.uint8)
    a[..., 0] = x.astype(np.uint8)
    a[..., 1] = y.astype(np.uint8)
    a[..., 2] = ((x + y) / 2).astype(np.uint8)
    img = Image.fromarray(a)
    del a
    draw = ImageDraw.Draw(img)
    rng = np.random.default_rng([GENERATOR_VERSION, width, height])
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width - 1000)), int(rng.integers(0, height - 1000))
        box = (x0, y0, x0 + int(rng.integers(300, 1000)), y0 + int(rng.integers(300, 1000)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.integers(0, 2) else draw.rectangle)(box, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    img.save(tmp, "PNG", compress_level=1)
    os.replace(tmp, path)


def make_png_streamed(path: Path, width: int, height: int, bit_depth: int) -> None:
    """A greyscale PNG of ``bit_depth`` (1 or 16) written a row at a time (a 156 MP 16-bit image would be 312 MB
    in memory): 64 px tiles of grey levels, so it compresses to a few hundred KB like the file the reliability
    issue found (a 325 KB 156 MP 16-bit PNG took 3.1 GB): what is measured is the decode, not the file read. Written by hand because Pillow cannot write
    a PNG without holding the whole image."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    z = zlib.compressobj(6)
    x = np.arange(width)
    with tmp.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)))
        for y in range(height):
            if bit_depth == 16:
                row = (((x // 64) * 257 + (y // 64) * 3) % 65536).astype(">u2").tobytes()
            else:
                row = np.packbits(((x // 64 + y // 64) % 2).astype(np.uint8)).tobytes()
            data = z.compress(b"\0" + row)
            if data:
                fh.write(chunk(b"IDAT", data))
        fh.write(chunk(b"IDAT", z.flush()) + chunk(b"IEND", b""))
    os.replace(tmp, path)


def camera_catalog(out: Path, n: int, width: int, height: int) -> tuple[Path, list[Path]]:
    """n generated photos (cached, generated once) linked into a catalog folder of exactly n (4 per SKU folder)."""
    cache = out / "cache" / f"camera-{width}x{height}-v{GENERATOR_VERSION}"
    cache.mkdir(parents=True, exist_ok=True)
    files = []
    todo = [i for i in range(n) if not (cache / f"IMG_{i + 1:04d}.jpg").exists()]
    if todo:
        _log(f"generating {len(todo)} camera-like JPEGs ({width}x{height}, q92 4:2:2) into {cache} ...")
    for k, i in enumerate(todo):
        t = time.perf_counter()
        make_camera_jpeg(cache / f"IMG_{i + 1:04d}.jpg", i, width, height, portrait=i % PORTRAIT_EVERY == 3)
        _log(f"  {k + 1}/{len(todo)} IMG_{i + 1:04d}.jpg {time.perf_counter() - t:.1f}s")
    catalog = out / "catalog" / f"camera-{width}x{height}-v{GENERATOR_VERSION}-n{n}"
    for i in range(n):
        src = cache / f"IMG_{i + 1:04d}.jpg"
        dst = catalog / f"SKU{i // PHOTOS_PER_SKU + 1:03d}" / src.name
        _link(src, dst)
        files.append(dst)
    return catalog, files


def _link(src: Path, dst: Path) -> None:
    if dst.exists() and dst.stat().st_ino == src.stat().st_ino:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def tiny_catalog(out: Path, n: int) -> Path:
    """n distinct tiny JPEGs in n/5 SKU folders (cached: made once per n)."""
    root = out / "cache" / f"tiny-{TINY_SIDE}px-n{n}-v{GENERATOR_VERSION}"
    stamp = root / ".complete"
    if stamp.exists():
        return root
    _log(f"generating {n} tiny {TINY_SIDE}x{TINY_SIDE} JPEGs into {root} ...")
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng([GENERATOR_VERSION, n])
    yy, xx = np.mgrid[0:TINY_SIDE, 0:TINY_SIDE].astype(np.int16)
    for i in range(n):
        c0, c1 = rng.integers(0, 200, 3, dtype=np.int16), rng.integers(-2, 3, 3, dtype=np.int16)
        a = c0 + (xx[..., None] * c1) + (yy[..., None] * c1[::-1])
        a = a + rng.integers(0, 40, (TINY_SIDE, TINY_SIDE, 3), dtype=np.int16)
        p = root / f"SKU{i // TINY_PER_SKU + 1:05d}" / f"IMG_{i + 1:05d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(p, "JPEG", quality=85)
    stamp.write_text(f"{n}\n")
    return root


def memory_inputs(out: Path) -> list[tuple[str, Path]]:
    root = out / "cache" / f"memory-v{GENERATOR_VERSION}"
    jpg = root / "jpeg-50mp" / "MEM50" / "IMG_50MP.jpg"
    png = root / "png-100mp" / "MEM100" / "IMG_100MP.png"
    if not jpg.exists():
        _log(f"generating a 50 MP JPEG (8660x5773) into {jpg.parent} ...")
        make_camera_jpeg(jpg, 5000, 8660, 5773, portrait=False)
    if not png.exists():
        _log(f"generating a 100 MP PNG (10000x10000 RGB) into {png.parent} ...")
        make_big_png(png, 10000, 10000)
    # the worst files the limits allow (ingest.MAX_PIXELS = 160 MP): the 16-bit and 1-bit paths
    grey16 = root / "png16-156mp" / "MEM156" / "IMG_156MP_16BIT.png"
    bilevel = root / "png1-144mp" / "MEM144" / "IMG_144MP_1BIT.png"
    if not grey16.exists():
        _log(f"generating a 156 MP 16-bit grey PNG (12500x12480) into {grey16.parent} ...")
        make_png_streamed(grey16, 12500, 12480, 16)
    if not bilevel.exists():
        _log(f"generating a 144 MP 1-bit PNG (12000x12000) into {bilevel.parent} ...")
        make_png_streamed(bilevel, 12000, 12000, 1)
    return [("50 MP JPEG 8660x5773", jpg.parent.parent), ("100 MP PNG 10000x10000", png.parent.parent),
            (f"156 MP 16-bit grey PNG ({grey16.stat().st_size // 1024} KB)", grey16.parent.parent),
            (f"144 MP 1-bit PNG ({bilevel.stat().st_size // 1024} KB)", bilevel.parent.parent)]


# ------------------------------------------------------------------------------------------------------------------
# Running contestants


@dataclass
class Env:
    out: Path
    key: Path
    config: Path
    pin_cpu: int | None  # one-process contestants run on this CPU (taskset), None: not pinned
    base_env: dict[str, str]
    logs: Path


@dataclass
class Round:
    wall: float
    cpu: float
    ok: bool
    note: str = ""


@dataclass
class Contestant:
    key: str
    kind: str  # "pipeline" | "bare" | "imagemagick"
    presets: tuple[str, ...]
    workers: int
    label: str
    photos: int
    exports: int
    run: Callable[[Path, int], Round]  # (fresh output folder, round index) -> Round
    sizes: Callable[[Path], dict[str, tuple[int, int]]] | None = None  # output dims after a round, for checks
    rounds: list[Round] = field(default_factory=list)
    dims: dict[str, tuple[int, int]] | None = None  # output sizes after its first successful round
    dims_error: str = ""

    def rates(self) -> list[float]:
        return [self.photos / r.wall for r in self.rounds if r.ok and r.wall > 0]


def _pipeline_argv() -> list[str]:
    return [sys.executable, "-m", "pipeline"]


def _pinned(argv: list[str], env: Env, workers: int) -> list[str]:
    if env.pin_cpu is None or workers > 1:
        return argv
    return ["taskset", "-c", str(env.pin_cpu), *argv]


def _spawn(argv: list[str], env: Env, log_name: str, *, workers: int = 1) -> tuple[int, float, float, Path, Path]:
    """Run argv as a whole process (pinned if one worker); returns (rc, wall, cpu of children, stdout, stderr)."""
    so, se = env.logs / f"{log_name}.out", env.logs / f"{log_name}.err"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with so.open("wb") as fo, se.open("wb") as fe:
        t = time.perf_counter()
        proc = subprocess.Popen(_pinned(argv, env, workers), stdout=fo, stderr=fe, env=env.base_env,
                                cwd=env.out, start_new_session=True)
        try:
            rc = proc.wait()
        except BaseException:
            _kill(proc)
            raise
        wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rc, wall, cpu, so, se


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):  # the group of the process this driver started (start_new_session=True)
        os.killpg(proc.pid, 9)
    proc.wait()


def _tail(path: Path, lines: int = 4) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])[:600]


def _source_key(path: str | Path) -> str:
    """SKU folder + file name: the same key for the pipeline's manifest and the other contestants' outputs."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def pipeline_contestant(env: Env, catalog: Path, presets: Sequence[str], jobs: int, photos: int) -> Contestant:
    key = f"pipeline-{len(presets)}p-j{jobs}"

    def run(out: Path, r: int) -> Round:
        argv = [*_pipeline_argv(), "run", str(catalog), *sum((["--preset", p] for p in presets), []),
                "--out", str(out), "--ledger", str(out / "ledger.sqlite"), "--key-file", str(env.key),
                "--config", str(env.config), "--jobs", str(jobs), "--json", "--quiet"]
        rc, wall, cpu, so, se = _spawn(argv, env, f"{key}-r{r}", workers=jobs)
        note, ok = "", rc == 0
        try:
            doc = json.loads(so.read_text())
            want = photos * len(presets)
            if doc.get("processed") != want or doc.get("failed"):
                ok = False
                fails = "; ".join(f"{f.get('path')} [{f.get('preset')}] {f.get('stage')}: {f.get('error')}"
                                  for f in doc.get("failures", [])[:3])
                note = f"processed {doc.get('processed')}/{want}, failed {doc.get('failed')}: {fails}"
        except (OSError, ValueError):
            ok = False
        if not ok and not note:
            note = f"exit {rc}: {_tail(se)}"
        return Round(wall, cpu, ok, note)

    def sizes(out: Path) -> dict[str, tuple[int, int]]:
        dims: dict[str, tuple[int, int]] = {}
        for p in presets:
            doc = json.loads((out / p / "manifest.json").read_text())
            for o in doc["outputs"]:
                dims[f"{p}:{_source_key(o['source'])}"] = (int(o["width"]), int(o["height"]))
        return dims

    label = f"catalogmark run, {' + '.join(presets)}, --jobs {jobs}"
    return Contestant(key, "pipeline", tuple(presets), jobs, label, photos, photos * len(presets), run, sizes)


def _export_specs(files: Sequence[Path], presets: Sequence[Preset], out: Path, resample: str) -> list[dict[str, Any]]:
    specs = []
    for preset in presets:
        c = preset.canvas
        for f in files:
            specs.append({
                "key": f"{preset.name}:{_source_key(f)}", "src": str(f),
                "dst": str(out / preset.name / f.parent.name / f"{f.stem}.{preset.extension}"),
                "width": c.width, "height": c.height, "fit": c.fit, "background": list(c.background),
                "upscale": c.upscale, "format": preset.format, "quality": preset.quality,
                "subsampling": preset.subsampling, "filter": resample,
            })
    return specs


def bare_contestant(env: Env, files: Sequence[Path], presets: Sequence[str], processes: int,
                    resample: str, script: Path) -> Contestant:
    key = f"bare-{len(presets)}p-p{processes}"
    loaded = [load_preset(p) for p in presets]
    last: dict[str, Any] = {}

    def run(out: Path, r: int) -> Round:
        spec_path = env.logs / f"{key}.spec.json"
        result_path = env.logs / f"{key}.result.json"
        spec = {"processes": processes, "exports": _export_specs(files, loaded, out, resample)}
        spec_path.write_text(json.dumps(spec))
        result_path.unlink(missing_ok=True)
        rc, wall, cpu, _so, se = _spawn([sys.executable, str(script), str(spec_path), str(result_path)], env,
                                        f"{key}-r{r}", workers=processes)
        ok = rc == 0 and result_path.exists()
        if ok:
            last["result"] = json.loads(result_path.read_text())
            ok = len(last["result"]["sizes"]) == len(spec["exports"])
        return Round(wall, cpu, ok, "" if ok else f"exit {rc}: {_tail(se)}")

    def sizes(out: Path) -> dict[str, tuple[int, int]]:
        return {k: (w, h) for k, w, h in last.get("result", {}).get("sizes", [])}

    how = f"{processes} processes" if processes > 1 else "1 process"
    label = f"bare Pillow loop, {' + '.join(presets)}, {how}"
    return Contestant(key, "bare", tuple(presets), processes, label, len(files), len(files) * len(presets), run,
                      sizes)


def find_imagemagick() -> tuple[list[str] | None, str]:
    """The real ImageMagick (IM7 `magick`, else IM6 `convert`), skipping wrapper scripts that stand in for it."""
    notes = []
    for name in ("magick", "convert"):
        seen = set()
        for d in os.environ.get("PATH", "").split(os.pathsep):
            p = Path(d or ".") / name
            if not (p.is_file() and os.access(p, os.X_OK)):
                continue
            real = p.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                with real.open("rb") as fh:
                    elf = fh.read(4) == b"\x7fELF"
            except OSError:
                continue
            if not elf:
                notes.append(f"{p} is a script, not ImageMagick itself: skipped")
                continue
            try:
                ver = subprocess.run([str(p), "-version"], capture_output=True, text=True, timeout=20).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            if "ImageMagick" in ver:
                return [str(p)], ver.splitlines()[0].strip()
    return None, "; ".join(notes) or "no ImageMagick (magick/convert) on PATH"


def _im_args(preset: Preset) -> list[str]:
    c = preset.canvas
    box = f"{c.width}x{c.height}"
    if c.fit == "cover":
        args = ["-resize", f"{box}^", "-gravity", "center", "-extent", box]
    else:
        args = ["-resize", box if c.upscale else f"{box}>"]
        if c.fit == "pad":
            bg = "rgb({},{},{})".format(*c.background)
            args += ["-background", bg, "-gravity", "center", "-extent", box]
    if preset.format in ("jpeg", "webp"):
        args += ["-quality", str(preset.quality)]
    return args


def imagemagick_script(path: Path, convert: list[str], exiftool: str, presets: Sequence[Preset]) -> None:
    """The shell loop photographers write: per file and preset one `convert`, then one `exiftool` on the output."""
    q = _shq
    lines = [
        "#!/usr/bin/env bash",
        "# ImageMagick + exiftool loop: per photo and storefront, convert (orient, resize/pad, quality), then",
        "# exiftool writes the owner's Artist/Copyright/XMP-dc:Creator/XMP-dc:Rights into the output.",
        "set -euo pipefail",
        'IN=$1; OUT=$2',
        f"OWNER={q(OWNER)}; COPY={q(COPYRIGHT)}",
        'for f in "$IN"/*/*.jpg; do',
        '  sku=${f%/*}; sku=${sku##*/}; name=${f##*/}; stem=${name%.*}',
    ]
    for p in presets:
        lines += [
            f'  o="$OUT/{p.name}/$sku/$stem.{p.extension}"; mkdir -p "${{o%/*}}"',
            f'  {" ".join(q(a) for a in convert)} "$f" -auto-orient {" ".join(q(a) for a in _im_args(p))} "$o"',
            f'  {q(exiftool)} -q -overwrite_original -Artist="$OWNER" -Copyright="$COPY" '
            '-XMP-dc:Creator="$OWNER" -XMP-dc:Rights="$COPY" "$o"',
        ]
    lines.append("done")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)


def _shq(s: str) -> str:
    return s if re.fullmatch(r"[A-Za-z0-9_./:,=+-]+", s) else "'" + s.replace("'", "'\\''") + "'"


def imagemagick_contestant(env: Env, catalog: Path, files: Sequence[Path], presets: Sequence[str],
                           convert: list[str], exiftool: str) -> Contestant:
    key = f"imagemagick-{len(presets)}p"
    loaded = [load_preset(p) for p in presets]
    script = env.logs / f"{key}.sh"
    imagemagick_script(script, convert, exiftool, loaded)

    def run(out: Path, r: int) -> Round:
        rc, wall, cpu, _so, se = _spawn(["bash", str(script), str(catalog), str(out)], env, f"{key}-r{r}")
        want = len(files) * len(presets)
        got = sum(1 for p in loaded for _ in (out / p.name).rglob(f"*.{p.extension}")) if rc == 0 else 0
        ok = rc == 0 and got == want
        return Round(wall, cpu, ok, "" if ok else f"exit {rc}, {got}/{want} outputs: {_tail(se)}")

    def sizes(out: Path) -> dict[str, tuple[int, int]]:
        dims = {}
        for p in loaded:
            for f in files:
                o = out / p.name / f.parent.name / f"{f.stem}.{p.extension}"
                with Image.open(o) as im:
                    dims[f"{p.name}:{_source_key(f)}"] = im.size
        return dims

    label = f"ImageMagick + exiftool loop, {' + '.join(presets)}, 1 process"
    return Contestant(key, "imagemagick", tuple(presets), 1, label, len(files), len(files) * len(presets), run,
                      sizes)


# ------------------------------------------------------------------------------------------------------------------
# Rerun and memory


_RUN_RE = re.compile(r"(\d+) processed, (\d+) skipped, (\d+) failed")
# an all-skipped rerun records no run and says so: "nothing to do: N up to date, F failed (no run recorded)"
_NOTHING_RE = re.compile(r"nothing to do: ()(\d+) up to date, (\d+) failed")
_CHECK_RE = re.compile(r"check: (\d+) up to date, (\d+) missing, (\d+) stale, (\d+) failed")


def rerun_bench(env: Env, photos: int, jobs: int) -> dict[str, Any]:
    src = tiny_catalog(env.out, photos)
    preset = _write_tiny_preset(env.out / "bench-tiny.toml")
    work = env.out / "runs" / f"rerun-{photos}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    base = [*_pipeline_argv(), "run", str(src), "--preset", str(preset), "--out", str(work / "out"),
            "--ledger", str(work / "ledger.sqlite"), "--key-file", str(env.key), "--config", str(env.config),
            "--jobs", str(jobs)]
    res: dict[str, Any] = {"photos": photos, "sku_folders": -(-photos // TINY_PER_SKU), "jobs": jobs,
                           "size": f"{TINY_SIDE}x{TINY_SIDE}", "preset": str(preset)}
    steps = (("first", base, _RUN_RE, (photos, 0, 0)), ("rerun", base, _NOTHING_RE, (0, photos, 0)),
             ("check", [*base, "--check"], _CHECK_RE, (photos, 0, 0, 0)))
    for name, argv, pattern, want in steps:
        _log(f"rerun benchmark: {name} run over {photos} photos ...")
        rc, wall, cpu, so, se = _spawn(argv, env, f"rerun-{name}", workers=jobs)
        m = pattern.search(so.read_text(errors="replace"))
        counts = tuple(int(g or 0) for g in m.groups()) if m else None
        ok = rc == 0 and (counts is None or counts == want)
        note = "" if ok else f"exit {rc}, counts {counts} (expected {want}): {_tail(se)}"
        if ok and counts is None:
            note = "summary line not found (counts unchecked)"
        res[name] = {"seconds": wall, "cpu_seconds": cpu, "ok": ok, "counts": counts, "note": note}
        _log(f"  {name}: {wall:.1f}s{'' if ok else '  ' + note}")
        if name == "first" and not ok:
            break
    return res


def memory_bench(env: Env, presets: Sequence[str]) -> list[dict[str, Any]]:
    inputs = memory_inputs(env.out)
    wrapper = env.logs / "rss_wrapper.py"
    wrapper.write_text(RSS_WRAPPER)
    tiny_src = tiny_catalog(env.out, 5)
    rows = []
    for label, src in [("floor: 5 tiny 64x64 JPEGs (start-up, imports; no target)", tiny_src), *inputs]:
        work = env.out / "runs" / f"memory-{src.name}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        result = work / "rss.json"
        floor = src == tiny_src
        preset_args = ["--preset", str(_write_tiny_preset(env.out / "bench-tiny.toml"))] if floor else \
            sum((["--preset", p] for p in presets), [])
        argv = [sys.executable, str(wrapper), str(result), *_pipeline_argv(), "run", str(src), *preset_args,
                "--out", str(work / "out"), "--ledger", str(work / "ledger.sqlite"), "--key-file", str(env.key),
                "--config", str(env.config), "--jobs", "1", "--json", "--quiet"]
        _log(f"memory: catalogmark run --jobs 1 on {label} ...")
        rc, _wall, _cpu, so, se = _spawn(argv, env, f"memory-{src.name}", workers=1)
        row: dict[str, Any] = {"input": label, "presets": [] if floor else list(presets), "informational": floor}
        try:
            r = json.loads(result.read_text())
            row |= {"peak_rss_mb": r["maxrss_kb"] / 1024, "seconds": r["wall"], "rc": r["rc"]}
            doc = json.loads(so.read_text())
            row["processed"], row["failed"] = doc.get("processed"), doc.get("failed")
            if doc.get("failed"):
                row["note"] = "; ".join(f"[{f.get('preset')}] {f.get('stage')}: {f.get('error')}"
                                        for f in doc.get("failures", [])[:3])
        except (OSError, ValueError, KeyError):
            row |= {"peak_rss_mb": None, "rc": rc, "note": _tail(se)}
        if row.get("rc") not in (0, None) and "note" not in row:
            row["note"] = f"exit {row['rc']}: {_tail(se)}"
        _log(f"  peak RSS {row.get('peak_rss_mb') or 0:.0f} MB")
        rows.append(row)
    return rows


def _write_tiny_preset(path: Path) -> Path:
    """The rerun benchmark's preset: the web preset on a tiny JPEG box, without a minimum size."""
    path.write_text(textwrap.dedent(f"""\
        # Written by bench/pipeline_bench.py: a tiny preset for the no-change rerun benchmark.
        name = "bench-tiny"
        extends = "web"
        format = "jpeg"
        quality = 85

        [canvas]
        width = {TINY_SIDE}
        height = {TINY_SIDE}
        fit = "fit"
        min_long_side = 0
        """))
    return path


# ------------------------------------------------------------------------------------------------------------------
# Report


def _fmt_range(values: Sequence[float], digits: int = 2) -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _ratio(a: Contestant | None, b: Contestant | None) -> dict[str, Any] | None:
    """median(a) / median(b) of images/s over the rounds both finished, plus the per-round ratios (interleaved)."""
    if a is None or b is None:
        return None
    pairs = [(ra, rb) for ra, rb in zip(a.rounds, b.rounds, strict=False) if ra.ok and rb.ok and ra.wall and rb.wall]
    if not pairs:
        return None
    ra_rates = [a.photos / ra.wall for ra, _ in pairs]
    rb_rates = [b.photos / rb.wall for _, rb in pairs]
    per_round = [x / y for x, y in zip(ra_rates, rb_rates, strict=True)]
    return {"value": statistics.median(ra_rates) / statistics.median(rb_rates), "per_round": per_round,
            "a": a.key, "b": b.key}


def _verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    if value is None:
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


def _git_revision() -> str:
    try:
        env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never take the index lock
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             env=env, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, env=env, timeout=10).stdout.strip()
        return (rev + ("+dirty" if dirty else "")) if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_report(args: argparse.Namespace, env: Env, contestants: list[Contestant], files: Sequence[Path],
                 geometry: list[str], rerun: dict[str, Any] | None, memory: list[dict[str, Any]] | None,
                 notes: list[str], imagemagick: str) -> tuple[str, dict[str, Any]]:
    by = {c.key: c for c in contestants}
    mb = sum(f.stat().st_size for f in files) / 1e6
    portraits = sum(1 for i in range(len(files)) if i % PORTRAIT_EVERY == 3)
    out: list[str] = []
    w = out.append
    w("")
    w(f"catalogmark bench  {datetime.now(UTC):%Y-%m-%d %H:%M}Z  catalogmark {__version__} "
      f"(PIPELINE_VERSION {PIPELINE_VERSION}), git {_git_revision()}, Python {platform.python_version()}, "
      f"{os.cpu_count()} CPUs")
    w(f"inputs: {len(files)} generated photos {args.width}x{args.height} JPEG q92 4:2:2 with camera EXIF "
      f"({portraits} stored with Orientation=6), {mb:.0f} MB, median "
      f"{statistics.median(f.stat().st_size for f in files) / 1e6:.1f} MB/file")
    pin = f"one-process runs pinned to CPU {env.pin_cpu}" if env.pin_cpu is not None else "no CPU pinning"
    w(f"method: {args.rounds} interleaved round(s); whole-process wall time incl. start-up; {pin}; "
      f"thread pools = 1 (OMP/BLAS/OpenCV/ImageMagick)")
    w(f"bare loop: Pillow draft decode -> resize ({args.bare_filter}) -> orient -> pad/crop -> encode, one decode "
      "per export; 2 processes = multiprocessing.Pool(2)")
    w(f"imagemagick: {imagemagick}")
    w("")
    w("throughput: source photos per second, median (min-max) over rounds")
    w(f"  {'contestant':<62} {'exports':>7} {'img/s':>20} {'wall s':>8} {'CPU/wall':>8}")
    for c in contestants:
        walls = [r.wall for r in c.rounds if r.ok]
        cpu = [r.cpu / r.wall for r in c.rounds if r.ok and r.wall > 0]
        failed = [r for r in c.rounds if not r.ok]
        line = (f"  {c.label:<62} {c.exports:>7} {_fmt_range(c.rates()):>20} "
                f"{statistics.median(walls) if walls else float('nan'):>8.1f} "
                f"{statistics.median(cpu) if cpu else float('nan'):>8.2f}")
        w(line + (f"   {len(failed)} round(s) FAILED" if failed else ""))
        for r in failed[:1]:
            w(f"      -> {r.note}")

    ratios: list[tuple[str, str, dict[str, Any] | None, float]] = []
    for n, ps in ((1, ONE_PRESET), (3, THREE_PRESETS)):
        tk = "one_preset_vs_bare" if n == 1 else "three_presets_vs_bare"
        what = f"{n} preset{'s' if n > 1 else ''} ({'+'.join(ps)})"
        for j in (1, 2):
            ratios.append((f"pipeline / bare loop, {what}, jobs {j}", tk,
                           _ratio(by.get(f"pipeline-{n}p-j{j}"), by.get(f"bare-{n}p-p{j}")), TARGETS[tk]))
    for n in (1, 3):
        ratios.append((f"pipeline jobs 1 / ImageMagick+exiftool loop, {n} preset{'s' if n > 1 else ''}",
                       "vs_imagemagick", _ratio(by.get(f"pipeline-{n}p-j1"), by.get(f"imagemagick-{n}p")),
                       TARGETS["vs_imagemagick"]))
    for n in (1, 3):
        ratios.append((f"pipeline jobs 2 / jobs 1 scaling, {n} preset{'s' if n > 1 else ''}", "jobs2_vs_jobs1",
                       _ratio(by.get(f"pipeline-{n}p-j2"), by.get(f"pipeline-{n}p-j1")), TARGETS["jobs2_vs_jobs1"]))
    for n in (1, 3):  # context, no target: how the bare loop itself scales
        ratios.append((f"(bare loop 2 / 1 processes, {n} preset{'s' if n > 1 else ''})", "",
                       _ratio(by.get(f"bare-{n}p-p2"), by.get(f"bare-{n}p-p1")), 0.0))

    w("")
    w("ratios (images/s over images/s; per-round range in brackets)")
    w(f"  {'ratio':<66} {'value':>22} {'target':>8} {'result':>6}")
    json_ratios = []
    for label, tk, r, target in ratios:
        value = r["value"] if r else None
        shown = "n/a" if r is None else f"{value:.2f}x" + (
            f" ({min(r['per_round']):.2f}-{max(r['per_round']):.2f})" if len(r["per_round"]) > 1 else "")
        result = _verdict(value, target, True) if tk else ""
        w(f"  {label:<66} {shown:>22} {(f'>= {target:g}x' if tk else ''):>8} {result:>6}")
        json_ratios.append({"label": label, "target_key": tk or None, "target": target if tk else None,
                            "value": value, "per_round": r["per_round"] if r else None,
                            "result": result or None, "numerator": r["a"] if r else None,
                            "denominator": r["b"] if r else None})

    if geometry:
        w("")
        w("geometry check against the pipeline's manifest.json (same presets):")
        for g in geometry:
            w(f"  {g}")

    json_rerun = None
    if rerun is not None:
        w("")
        w(f"no-change rerun: {rerun['photos']} photos {rerun['size']} in {rerun['sku_folders']} SKU folders, "
          f"preset bench-tiny (extends web, {TINY_SIDE} px box), --jobs {rerun['jobs']}")
        w(f"  {'step':<66} {'seconds':>22} {'target':>8} {'result':>6}")
        for step, label, tk in (("first", "first run (exports everything; no target)", ""),
                                ("rerun", "no-change rerun (everything skipped)", "rerun_seconds"),
                                ("check", "--check (everything up to date)", "check_seconds")):
            s = rerun.get(step)
            if s is None:
                w(f"  {label:<66} {'not run':>22}")
                continue
            value = s["seconds"] if s["ok"] else None
            result = (_verdict(value, TARGETS[tk], False) if s["ok"] else "FAILED") if tk else ""
            w(f"  {label:<66} {s['seconds']:>22.1f} {(f'<= {TARGETS[tk]:g} s' if tk else ''):>8} {result:>6}")
            if s["note"]:
                w(f"      -> {s['note']}")
            s["target"], s["result"] = (TARGETS[tk] if tk else None), (result or None)
        json_rerun = rerun

    if memory is not None:
        w("")
        w(f"peak RSS per worker: catalogmark run --jobs 1 (in-process), presets {'+'.join(args.memory_presets)}, "
          "fresh process each")
        w(f"  {'input':<66} {'peak RSS MB':>22} {'target':>8} {'result':>6}")
        for row in memory:
            mbv = row.get("peak_rss_mb")
            ok_run = row.get("rc") == 0 and not row.get("failed")
            if row["informational"]:
                result, tgt = "", ""
            else:
                result = _verdict(mbv, TARGETS["peak_rss_mb"], False) if ok_run and mbv else "FAILED"
                tgt = f"<= {TARGETS['peak_rss_mb']:g}"
            shown = "n/a" if mbv is None else f"{mbv:.0f}" + (f" ({row['seconds']:.1f} s)" if "seconds" in row else "")
            w(f"  {row['input']:<66} {shown:>22} {tgt:>8} {result:>6}")
            if row.get("note"):
                w(f"      -> {row['note']}")
            row["target"], row["result"] = (None if row["informational"] else TARGETS["peak_rss_mb"]), result or None

    if notes:
        w("")
        w("notes:")
        for n in notes:
            w(f"  - {n}")
    w("")
    w(f"JSON: {env.out / 'pipeline-bench.json'}   logs: {env.logs}")

    doc = {
        "when": now_iso(),
        "catalogmark": __version__, "pipeline_version": PIPELINE_VERSION, "git": _git_revision(),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "config": {"images": len(files), "size": [args.width, args.height], "rounds": args.rounds,
                   "bare_filter": args.bare_filter, "pin_cpu": env.pin_cpu, "env": FAIR_ENV,
                   "one_preset": list(ONE_PRESET), "three_presets": list(THREE_PRESETS),
                   "input_mb": mb, "imagemagick": imagemagick},
        "contestants": [{
            "key": c.key, "kind": c.kind, "label": c.label, "presets": list(c.presets), "workers": c.workers,
            "photos": c.photos, "exports": c.exports,
            "rounds": [{"wall": r.wall, "cpu": r.cpu, "ok": r.ok, "note": r.note} for r in c.rounds],
            "images_per_second": {"median": statistics.median(c.rates()), "min": min(c.rates()),
                                  "max": max(c.rates())} if c.rates() else None,
        } for c in contestants],
        "ratios": json_ratios, "geometry": geometry, "rerun": json_rerun, "memory": memory, "notes": notes,
        "targets": TARGETS,
    }
    return "\n".join(out), doc


# ------------------------------------------------------------------------------------------------------------------


def _check_geometry(contestants: list[Contestant]) -> list[str]:
    """Compare every contestant's output sizes with the pipeline's manifest of the same preset set."""
    lines = []
    for c in contestants:
        if c.dims_error:
            lines.append(f"{c.label}: cannot read its outputs ({c.dims_error})")
    for n in (1, 3):
        ref = next((c for c in contestants if c.kind == "pipeline" and len(c.presets) == n and c.dims), None)
        if ref is None or ref.dims is None:
            continue
        want = ref.dims
        for c in contestants:
            if c.kind == "pipeline" or len(c.presets) != n or c.dims is None:
                continue
            got = c.dims
            bad = [k for k in want if got.get(k) != want[k]]
            extra = [k for k in got if k not in want]
            if not bad and not extra:
                lines.append(f"{c.label}: {len(got)} exports, every size equals the pipeline's")
            else:
                shown = ", ".join(f"{k} {got.get(k)} vs {want[k]}" for k in bad[:3])
                lines.append(f"{c.label}: {len(bad)} of {len(want)} sizes differ from the pipeline's"
                             + (f" ({shown})" if shown else "") + (f", {len(extra)} extra" if extra else ""))
    return lines


def _busy_notes(contestants: list[Contestant]) -> list[str]:
    """One-process contestants should get a whole CPU: less means other processes were competing for it."""
    busy = [f"{c.key} {r.cpu / r.wall:.2f}" for c in contestants if c.workers == 1
            for r in c.rounds if r.ok and r.wall > 1.0 and r.cpu / r.wall < 0.9]
    if not busy:
        return []
    return [f"the machine was busy: one-process rounds got less than 0.9 CPU per wall second ({', '.join(busy[:6])}"
            + (", ..." if len(busy) > 6 else "") + "); those rounds were slowed by other load"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=None, help="generated camera photos (default 16; --quick: 4)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; --quick: 1)")
    ap.add_argument("--rerun-photos", type=int, default=None,
                    help="tiny photos for the no-change rerun (default 10000; --quick: 500)")
    ap.add_argument("--rerun-jobs", type=int, default=2, help="--jobs for the rerun benchmark (default 2)")
    ap.add_argument("--size", default="6000x4000", help="camera photo size WxH (default 6000x4000 = 24 MP)")
    ap.add_argument("--quick", action="store_true", help="4 photos, 1 round, rerun over 500 photos")
    ap.add_argument("--skip-rerun", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-imagemagick", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated contestant keys to run (e.g. pipeline-1p-j1,bare-1p-p1)")
    ap.add_argument("--memory-presets", default=",".join(THREE_PRESETS),
                    help="presets for the peak-RSS runs (default amazon,shopify,ebay)")
    ap.add_argument("--bare-filter", choices=("lanczos", "bicubic", "bilinear"), default="lanczos",
                    help="resize filter of the bare Pillow loop (default lanczos)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin one-process contestants to one CPU")
    ap.add_argument("--out-dir", type=Path, default=REPO / "bench-out", help="cache, runs and results (bench-out/)")
    args = ap.parse_args(argv)
    args.images = args.images if args.images is not None else (4 if args.quick else 16)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    args.rerun_photos = args.rerun_photos if args.rerun_photos is not None else (500 if args.quick else 10000)
    try:
        args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size must be WxH, got {args.size!r}")
    args.memory_presets = [p for p in args.memory_presets.split(",") if p]
    if args.images < 1 or args.rounds < 1 or args.rerun_photos < 1:
        ap.error("--images, --rounds and --rerun-photos must be at least 1")
    return args


def make_env(out: Path, no_pin: bool) -> Env:
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    env = dict(os.environ, **FAIR_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("CATALOGMARK_LEDGER", None)
    env.pop("CATALOGMARK_KEY_FILE", None)
    # Every process starts as an installed catalogmark does: from compiled bytecode (pip compiles a wheel at
    # install time). A checkout run with PYTHONDONTWRITEBYTECODE set (this sandbox sets it) would instead compile
    # ~150 modules on every start and in every worker, ~0.2 s each (measured): the package is compiled once here.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "pipeline")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    pin = None
    if not no_pin and shutil.which("taskset") and hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            pin = cpus[-1]
    config = out / "bench-owner.toml"
    config.write_text(f'[owner]\nname = "{OWNER}"\ncopyright = "{COPYRIGHT}"\nurl = "https://example.com/licensing"\n'
                      '\n[watermark]\ntext = "bench.studio"\n')
    key = out / "bench.key"
    e = Env(out, key, config, pin, env, logs)
    if not key.exists():
        rc, _w, _c, _so, se = _spawn([*_pipeline_argv(), "keygen", "--key-file", str(key)], e, "keygen")
        if rc != 0:
            raise SystemExit(f"catalogmark keygen failed: {_tail(se)}")
    return e


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    env = make_env(args.out_dir.resolve(), args.no_pin)
    notes: list[str] = []
    started = time.perf_counter()

    catalog, files = camera_catalog(env.out, args.images, args.width, args.height)
    script = env.logs / "bare_loop.py"
    script.write_text(BARE_LOOP)

    convert, im_version = (None, "skipped (--skip-imagemagick)") if args.skip_imagemagick else find_imagemagick()
    exiftool = shutil.which("exiftool")
    if convert and not exiftool:
        convert, im_version = None, "exiftool not on PATH"
    if convert is None:
        notes.append(f"ImageMagick + exiftool loop skipped: {im_version}"
                     + ("" if args.skip_imagemagick else
                        " (Debian: apt-get install imagemagick libimage-exiftool-perl)"))
    else:
        im_version += f"; exiftool {_version([str(exiftool), '-ver'])}"

    contestants: list[Contestant] = []
    for presets in (ONE_PRESET, THREE_PRESETS):
        for workers in (1, 2):
            contestants.append(pipeline_contestant(env, catalog, presets, workers, len(files)))
            contestants.append(bare_contestant(env, files, presets, workers, args.bare_filter, script))
        if convert is not None and exiftool is not None:
            contestants.append(imagemagick_contestant(env, catalog, files, presets, convert, exiftool))
    if args.only:
        keep = {k.strip() for k in args.only.split(",")}
        contestants = [c for c in contestants if c.key in keep]

    for f in files:  # every contestant reads from the page cache
        f.read_bytes()
    for r in range(args.rounds):
        for c in contestants:
            out = env.out / "runs" / c.key
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            rnd = c.run(out, r)
            c.rounds.append(rnd)
            if rnd.ok and c.dims is None and c.sizes is not None:
                try:
                    c.dims = c.sizes(out)
                except (OSError, ValueError, KeyError) as exc:
                    c.dims_error = str(exc)
            status = f"{c.photos / rnd.wall:.2f} img/s" if rnd.ok else f"FAILED ({rnd.note})"
            _log(f"[round {r + 1}/{args.rounds}] {c.key:<20} {rnd.wall:7.1f}s  {status}")
    geometry = _check_geometry(contestants)
    notes += _busy_notes(contestants)

    rerun = None if args.skip_rerun else rerun_bench(env, args.rerun_photos, args.rerun_jobs)
    memory = None if args.skip_memory else memory_bench(env, args.memory_presets)

    if args.width * args.height != 24_000_000:
        notes.append(f"inputs are {args.width}x{args.height}, not the 24 MP of the targets (--size)")
    notes.append(f"bench wall time {time.perf_counter() - started:.0f} s")
    text, doc = build_report(args, env, contestants, files, geometry, rerun, memory, notes, im_version)
    print(text)
    (env.out / "pipeline-bench.json").write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def _version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
