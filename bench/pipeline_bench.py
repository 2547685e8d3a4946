"""Pipeline benchmark: catalogmark vs a bare Pillow decode->resize->encode loop, same files, same run.

Generates a catalog of camera-size JPEGs (24 MP, q92, 4:2:2, camera EXIF with a thumbnail, some stored with
Orientation=6, synthetic grain), then measures images/second for:

  baseline    bare Pillow loop: open -> draft -> LANCZOS thumbnail -> exif_transpose -> JPEG q90 (one process)
  pipeline-1  `catalogmark run` library call with jobs=1 (all five stages + ledger), fresh ledger and output
  pipeline-2  the same with jobs=2 (loky processes)

and prints the ratios against the baseline measured in the same run. Usage:
    python bench/pipeline_bench.py [--images N] [--preset amazon] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import piexif
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import keys, presets, runner  # noqa: E402
from pipeline.models import Owner  # noqa: E402


def make_camera_jpeg(path: Path, seed: int, portrait: bool) -> None:
    rng = np.random.default_rng(seed)
    h, w = 4000, 6000
    # A smooth random scene (low-res noise upscaled) plus grain: JPEG sizes like a real 24 MP q92 file.
    base = rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)
    scene = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    scene += rng.normal(0, 6, (h, w, 1)).astype(np.int16)
    img = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8))
    thumb = io.BytesIO()
    img.resize((160, 120)).save(thumb, "JPEG", quality=70)
    exif = {
        "0th": {piexif.ImageIFD.Make: b"BenchCam", piexif.ImageIFD.Model: b"BC-24",
                piexif.ImageIFD.Orientation: 6 if portrait else 1},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2026:01:02 03:04:05",
                 piexif.ExifIFD.BodySerialNumber: b"SN123456"},
        "1st": {piexif.ImageIFD.Compression: 6}, "thumbnail": thumb.getvalue(),
    }
    if portrait:
        img = img.transpose(Image.Transpose.ROTATE_90)
    img.save(path, "JPEG", quality=92, subsampling=1, exif=piexif.dump(exif))


def baseline(files: list[Path], out: Path, side: int) -> float:
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for f in files:
        with Image.open(f) as im:
            im.draft("RGB", (side, side))
            im.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=None)
            ImageOps.exif_transpose(im).save(out / f.name, "JPEG", quality=90)
    return time.perf_counter() - t


def pipeline_run(src: Path, out: Path, preset_name: str, jobs: int, key: keys.OwnerKey) -> tuple[float, int]:
    owner = Owner("Bench Studio", "(c) 2026 Bench Studio", "https://example.com", "bench.studio")
    opts = runner.RunOptions(
        sources=[str(src)], presets=[presets.load_preset(preset_name)], out_dir=str(out),
        ledger_path=str(out / "ledger.sqlite"), owner=owner, key=key, jobs=jobs, progress=False,
    )
    t = time.perf_counter()
    summary = runner.run(opts)
    elapsed = time.perf_counter() - t
    if summary.failed:
        raise SystemExit(f"benchmark run had failures: {summary.failures[:3]}")
    return elapsed, summary.processed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=int(os.environ.get("BENCH_IMAGES", "16")))
    ap.add_argument("--preset", default="shopify")
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated catalog here (reused if present)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="catalogmark-bench-"))
    src = args.keep or (work / "catalog")
    files = sorted(src.rglob("*.jpg")) if src.exists() else []
    if len(files) < args.images:
        print(f"generating {args.images} camera-size JPEGs (24 MP) in {src} ...", file=sys.stderr)
        for i in range(args.images):
            p = src / f"SKU{i // 4:03d}" / f"img{i % 4}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            if not p.exists():
                make_camera_jpeg(p, i, portrait=(i % 5 == 4))
        files = sorted(src.rglob("*.jpg"))
    files = files[: args.images]
    mb = sum(f.stat().st_size for f in files) / 1e6
    preset = presets.load_preset(args.preset)
    side = max(preset.canvas.width, preset.canvas.height)
    key = keys.OwnerKey(os.urandom(32))

    # Warm the page cache so every variant reads from memory.
    for f in files:
        f.read_bytes()
    rows = []
    t_base = baseline(files, work / "baseline", side)
    rows.append(("baseline: Pillow draft->LANCZOS->JPEG q90, 1 process", t_base))
    for jobs in (1, 2):
        out = work / f"pipe{jobs}"
        t, n = pipeline_run(src, out, args.preset, jobs, key)
        assert n == len(files), (n, len(files))
        rows.append((f"catalogmark run --preset {args.preset} --jobs {jobs} (5 stages + ledger)", t))
    n = len(files)
    print(f"\n{n} images, 6000x4000 JPEG q92, {mb:.0f} MB total; preset {args.preset} ({side} px box); "
          f"{os.cpu_count()} CPUs")
    print(f"{'variant':<66} {'img/s':>7} {'ms/img':>8} {'vs baseline':>12}")
    for name, t in rows:
        print(f"{name:<66} {n / t:7.2f} {1000 * t / n:8.0f} {t_base / t:11.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
