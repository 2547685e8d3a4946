"""Robustness benchmark of the invisible watermark against the attack suite, next to the `invisible-watermark` package.

For every image of the sample catalog (``sample_images/``, or scikit-image photos if it is absent) and a set of
generated product shots on pure white, the same 40-bit payload is embedded with catalogmark's keyed watermark
and with ``invisible-watermark``'s dwtDct and dwtDctSvd methods; every attack of ``tests/attacks.py`` is applied
and the payload read back blind. Printed per attack: the exact-payload recovery rate of each method, measured in
the same run on the same images. Also printed: PSNR / SSIM of each method, catalogmark's false-positive counts on
unmarked pictures and on pictures marked with another key (with the analytic bound), and embed/read timings
(single OpenCV thread).

    python bench/robustness.py [--quick] [--speed] [--jobs N] [--attacks a,b,...]

``--quick``: a few images and every attack; ``--speed``: only the timing section. The baseline needs
``pip install -r bench/requirements-robustness.txt`` and ``pip install --no-deps invisible-watermark`` (its
metadata requires torch, which dwtDct/dwtDctSvd never use); without it only catalogmark's columns are printed.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import sys
import time
import types
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import invisible  # noqa: E402
from pipeline.keys import OwnerKey  # noqa: E402
from pipeline.models import PAYLOAD_BITS  # noqa: E402
from tests.attacks import ATTACKS  # noqa: E402

KEY = OwnerKey(bytes(range(32)))
OTHER = OwnerKey(bytes(range(100, 132)))
MAX_SIDE = 2000  # canvases are at most this long (presets' range is 800-2600)


# ------------------------------------------------------------------------------------------------ images


def _flatten(im: Image.Image) -> np.ndarray:
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[:2]
    if max(h, w) > MAX_SIDE:
        f = MAX_SIDE / max(h, w)
        rgb = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def catalog_images(limit: int | None) -> list[tuple[str, np.ndarray]]:
    files = sorted(p for p in (ROOT / "sample_images").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    out = []
    for p in files[:limit]:
        with Image.open(p) as im:
            out.append((str(p.relative_to(ROOT / "sample_images")), _flatten(im)))
    if not out:  # no sample catalog: scikit-image's bundled photos
        from skimage import data

        for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")[:limit]:
            rgb = np.ascontiguousarray(getattr(data, name)()[..., :3])
            h, w = rgb.shape[:2]
            f = 1200 / max(h, w)
            out.append((f"skimage:{name}", cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)))
    return out


def product_shots(n: int) -> list[tuple[str, np.ndarray]]:
    """Generated product shots on pure white (the trace module's generator), sizes across the presets' range."""
    from tests.synthetic import product_shot

    sizes = [800, 1000, 1200, 1600, 2000, 900, 1400, 1800]
    return [(f"shot{i}_{sizes[i % len(sizes)]}", product_shot(100 + i, (sizes[i % len(sizes)],) * 2)) for i in range(n)]


def white_mask(rgb: np.ndarray) -> np.ndarray | None:
    """Pure-white roles keep their white pixels: the mask is "not exactly white" when the picture has a white
    background (more than 20 % of pure white pixels), else None (the whole canvas may change)."""
    white = np.all(rgb == 255, axis=2)
    return ~white if white.mean() > 0.2 else None


# ------------------------------------------------------------------------------------------------ methods


def _imwatermark() -> types.ModuleType | None:
    """The invisible-watermark package without its torch-only RivaGAN module (dwtDct/dwtDctSvd never use it)."""
    try:
        import pywt  # noqa: F401
    except ImportError:
        return None
    if "imwatermark.rivaGan" not in sys.modules:
        stub = types.ModuleType("imwatermark.rivaGan")

        class RivaWatermark:  # placeholder for the RivaGAN class the package imports at top level
            def __init__(self, *a: object, **k: object) -> None:
                raise RuntimeError("rivaGan needs torch")

        stub.RivaWatermark = RivaWatermark  # type: ignore[attr-defined]
        sys.modules["imwatermark.rivaGan"] = stub
    try:
        return importlib.import_module("imwatermark")
    except ImportError:
        return None


def _bits(payload: int) -> list[int]:
    return [(payload >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)]


class Ours:
    name = "catalogmark"

    def embed(self, rgb: np.ndarray, payload: int, mask: np.ndarray | None) -> np.ndarray:
        return invisible.embed(rgb, KEY, payload, mask)

    def read(self, rgb: np.ndarray, payload: int) -> bool:
        d = invisible.read(rgb, KEY)
        return bool(d.found and d.payload == payload)


class Baseline:
    def __init__(self, method: str) -> None:
        self.method = method
        self.name = method
        self.mod = _imwatermark()

    def embed(self, rgb: np.ndarray, payload: int, mask: np.ndarray | None) -> np.ndarray:
        assert self.mod is not None
        enc = self.mod.WatermarkEncoder()
        enc.set_watermark("bits", _bits(payload))
        bgr = enc.encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), self.method)
        out = cv2.cvtColor(np.clip(bgr, 0, 255).astype(np.uint8), cv2.COLOR_BGR2RGB)
        if mask is not None:  # same rule as ours: pixels outside the mask stay as they were
            out[~mask] = rgb[~mask]
        return out

    def read(self, rgb: np.ndarray, payload: int) -> bool:
        assert self.mod is not None
        try:
            bits = self.mod.WatermarkDecoder("bits", PAYLOAD_BITS).decode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), self.method)
        except Exception:  # too small, degenerate...: a failed read
            return False
        return [int(b) for b in bits] == _bits(payload)


def methods() -> list[Ours | Baseline]:
    out: list[Ours | Baseline] = [Ours()]
    if _imwatermark() is not None and not os.environ.get("ROBUSTNESS_NO_BASELINE"):
        out += [Baseline("dwtDct"), Baseline("dwtDctSvd")]
    return out


# ------------------------------------------------------------------------------------------------ work


def _psnr_ssim(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import structural_similarity

    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    psnr = 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)
    return psnr, float(structural_similarity(a, b, channel_axis=2, data_range=255))


def run_one(task: tuple[str, np.ndarray, list[str]]) -> dict[str, object]:
    cv2.setNumThreads(1)
    name, rgb, attacks = task
    mask = white_mask(rgb)
    payload = zlib.crc32(name.encode()) & ((1 << PAYLOAD_BITS) - 1)
    result: dict[str, object] = {"name": name, "size": rgb.shape[:2], "ok": {}, "quality": {}, "read_ms": []}
    ok: dict[str, dict[str, bool]] = {}
    for m in methods():
        try:
            marked = m.embed(rgb, payload, mask)
        except Exception as exc:  # the baseline refuses small pictures
            print(f"  {m.name} cannot embed {name}: {exc}", file=sys.stderr)
            ok[m.name] = dict.fromkeys(attacks, False)
            continue
        result["quality"][m.name] = _psnr_ssim(rgb, marked)  # type: ignore[index]
        ok[m.name] = {}
        for a in attacks:
            suspect = ATTACKS[a](marked, zlib.crc32(name.encode()))
            t0 = time.perf_counter()
            ok[m.name][a] = m.read(suspect, payload)
            if isinstance(m, Ours):
                result["read_ms"].append((time.perf_counter() - t0) * 1e3)  # type: ignore[union-attr]
    result["ok"] = ok
    # false positives: the unmarked picture, and the picture marked with another key, read with our key
    fp_unmarked = invisible.read(rgb, KEY)
    other = invisible.embed(rgb, OTHER, payload, mask)
    fp_other = invisible.read(other, KEY)
    result["fp"] = (fp_unmarked.found, fp_other.found, max(fp_unmarked.false_positive_probability,
                                                             fp_other.false_positive_probability))
    white_ok = mask is None or bool(np.all(invisible.embed(rgb, KEY, payload, mask)[~mask] == 255))
    result["white_kept"] = white_ok
    return result


def speed() -> None:
    """Embed and read timings on one core, at the sizes the issue names."""
    cv2.setNumThreads(1)
    from tests.synthetic import product_shot

    print("\nTimings (one OpenCV thread, median of 5):")
    for w, h in ((2000, 2000), (2000, 1500), (1200, 1200), (800, 800)):
        rgb = product_shot(7, (w, h))
        mask = white_mask(rgb)
        invisible.embed(rgb, KEY, 1, mask)
        te, tr = [], []
        for i in range(5):
            t0 = time.perf_counter()
            out = invisible.embed(rgb, KEY, i, mask)
            te.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            invisible.read(out, KEY)
            tr.append(time.perf_counter() - t0)
        print(f"  {w}x{h}: embed {np.median(te) * 1e3:6.1f} ms   read (unattacked) {np.median(tr) * 1e3:6.1f} ms")
    # the read's tail: every attack of the suite on a few marked pictures, one process, nothing else running
    times = []
    for i, rgb in enumerate([product_shot(7, (1600, 1600)), *[im for _n, im in catalog_images(4)]]):
        marked = invisible.embed(rgb, KEY, 0x1234567890, white_mask(rgb))
        for attack in ATTACKS.values():
            suspect = attack(marked, i)
            t0 = time.perf_counter()
            invisible.read(suspect, KEY)
            times.append(time.perf_counter() - t0)
    a = np.array(times) * 1e3
    print(f"  blind read of {len(a)} attacked suspects, one process: mean {a.mean():.0f} ms, "
          f"p95 {np.percentile(a, 95):.0f} ms, max {a.max():.0f} ms")


def report(results: list[dict[str, object]], attacks: list[str], names: list[str]) -> None:
    n = len(results)
    print(f"\nExact-payload recovery over {n} images ({PAYLOAD_BITS}-bit payload, blind read):\n")
    head = f"{'attack':<24}" + "".join(f"{m:>14}" for m in names)
    print(head)
    print("-" * len(head))
    worst_margin = 1.0
    for a in attacks:
        rates = [np.mean([bool(r["ok"][m][a]) for r in results]) for m in names]  # type: ignore[index]
        if len(rates) > 1:
            worst_margin = min(worst_margin, rates[0] - max(rates[1:]))
        print(f"{a:<24}" + "".join(f"{x:>14.0%}" for x in rates))
    print("-" * len(head))
    for m in names:
        q = [r["quality"][m] for r in results if m in r["quality"]]  # type: ignore[operator,index]
        if q:
            ps = [x[0] for x in q]
            ss = [x[1] for x in q]
            print(f"{m:<14} PSNR mean {np.mean(ps):5.2f} dB (min {np.min(ps):5.2f})   SSIM mean {np.mean(ss):.4f} (min {np.min(ss):.4f})")
    fp_u = sum(bool(r["fp"][0]) for r in results)  # type: ignore[index]
    fp_o = sum(bool(r["fp"][1]) for r in results)  # type: ignore[index]
    bound = max(float(r["fp"][2]) for r in results)  # type: ignore[index]
    print(f"catalogmark false positives: unmarked {fp_u}/{n}, other key {fp_o}/{n}; analytic bound per image <= {bound:.2e}")
    print(f"catalogmark white background kept exactly: {sum(bool(r['white_kept']) for r in results)}/{n}")
    ms = [t for r in results for t in r["read_ms"]]  # type: ignore[attr-defined]
    print(f"catalogmark blind read: mean {np.mean(ms):.0f} ms, max {np.max(ms):.0f} ms (attacked suspects, one thread)")
    if len(names) > 1:
        print(f"catalogmark minus best baseline, worst row: {worst_margin:+.0%}")
    print("catalogmark misses by image:")
    for r in results:
        missed = [a for a in attacks if not r["ok"]["catalogmark"][a]]  # type: ignore[index]
        if missed:
            h, w = r["size"]  # type: ignore[misc]
            print(f"  {r['name']} ({w}x{h}): {len(missed)}/{len(attacks)} -- {', '.join(missed)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few images only")
    ap.add_argument("--speed", action="store_true", help="timings only")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--attacks", default="", help="comma-separated subset of: " + ", ".join(ATTACKS))
    ap.add_argument("--no-baseline", action="store_true", help="measure catalogmark only")
    args = ap.parse_args(argv)
    if args.speed:
        speed()
        return 0
    if args.no_baseline:
        os.environ["ROBUSTNESS_NO_BASELINE"] = "1"  # inherited by the worker processes
    attacks = [a for a in args.attacks.split(",") if a] or list(ATTACKS)
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        ap.error(f"unknown attacks: {', '.join(unknown)}")
    images = catalog_images(5 if args.quick else None) + product_shots(3 if args.quick else 8)
    names = [m.name for m in methods()]
    if len(names) == 1 and not args.no_baseline:
        print("invisible-watermark not installed: only catalogmark is measured "
              "(pip install -r bench/requirements-robustness.txt && pip install --no-deps invisible-watermark)")
    t0 = time.time()
    tasks = [(name, rgb, attacks) for name, rgb in images]
    if args.jobs > 1:
        # spawn, not fork: a forked child inherits OpenCV's thread pool mid-state and can hang
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            results = list(ex.map(run_one, tasks))
    else:
        results = [run_one(t) for t in tasks]
    report(results, attacks, names)
    print(f"({len(images)} images x {len(attacks)} attacks in {time.time() - t0:.0f} s)")
    speed()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
