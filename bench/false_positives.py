"""False positives of the blind watermark read at scale: thousands of pictures that do not carry our mark.

Generated product shots on pure white (``tests.synthetic.product_shot``: every shape, at storefront sizes from 500
to 1600 px, square and not) and photo-like pictures (crops and rescales of ``sample_images/``, plus smooth
gradients with noise, the texture photos have), half of them unmarked and half marked with catalogmark's own
watermark under *other* keys (a thief's catalog marked by another owner must never read as ours). Each is read
blind with the owner key; printed: how many were "found" (the target is zero), how many decoded the right check
by chance, and the analytic per-image false-positive bound the reader reports for its search (the union bound
over every hypothesis it tried: ``pipeline.invisible.reader.fp_bound``), with the expected number of false
positives over the whole set (N x bound) beside the count.

The same pictures also go through the known-payload test (``pipeline.invisible.chiptest`` through
``invisible.check_payload``: what trace asks of a registered copy and verify of a signed export when every decode
missed: are this export's chips here?), each taken as an export of ours with a random payload: printed, how many reached DETECT_Z (the target is zero), the largest z, and
the analytic bound per test (Hoeffding: exp(-z**2 / 2) at the threshold).

    python bench/false_positives.py [--n 10000] [--jobs 2] [--seed 0] [--skip-blind]

``--skip-blind``: only the known-payload test (the pictures are still generated: about 0.2 s a picture on one core).

Deterministic given ``--seed``. About 0.2-0.5 s per read on one core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import invisible  # noqa: E402
from pipeline.keys import OwnerKey  # noqa: E402
from pipeline.models import PAYLOAD_BITS  # noqa: E402

OWNER = OwnerKey(bytes(range(32)))
SIZES = ((500, 500), (800, 800), (1000, 1000), (1200, 1200), (1600, 1600), (1000, 1500), (1500, 1000), (640, 480))


def _samples() -> list[np.ndarray]:
    from PIL import Image

    out = []
    for p in sorted((ROOT / "sample_images").rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
            with Image.open(p) as im:
                im.draft("RGB", (1600, 1600))
                out.append(np.asarray(im.convert("RGB")))
    return out


_PHOTOS: list[np.ndarray] | None = None


def picture(i: int, seed: int) -> tuple[np.ndarray, str]:
    """The i-th test picture and its kind: 70% product shots on white, 30% photo-like."""
    global _PHOTOS
    import cv2

    from tests.synthetic import product_shot

    rng = np.random.default_rng([seed, i])
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    if rng.random() < 0.7:
        return product_shot(int(rng.integers(1 << 31)), (w, h)), "packshot"
    if _PHOTOS is None:
        _PHOTOS = _samples()
    if _PHOTOS and rng.random() < 0.6:
        src = _PHOTOS[int(rng.integers(len(_PHOTOS)))]
        sh, sw = src.shape[:2]
        keep = rng.uniform(0.5, 1.0)
        cw, ch = max(64, int(sw * keep)), max(64, int(sh * keep))
        x0, y0 = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
        crop = np.ascontiguousarray(src[y0:y0 + ch, x0:x0 + cw])
        return cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA), "photo"
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([(xx / w) * 255, (yy / h) * 255, ((xx + yy) / (w + h)) * 255], -1)
    noisy = base + rng.normal(0, rng.uniform(2, 12), base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8), "gradient"


def one(args: tuple[int, int, bool]) -> tuple[str, bool, bool, float, float, float]:
    """(kind, found, marked_by_other, fp_bound, seconds, known-payload z) of picture i."""
    i, seed, blind = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)
    rgb, kind = picture(i, seed)
    other = i % 2 == 1
    if other:  # marked by another owner, with a payload of its own
        rng = np.random.default_rng([seed, i, 7])
        key = OwnerKey(rng.bytes(32))
        rgb = invisible.embed(rgb, key, int(rng.integers(1 << PAYLOAD_BITS)), None)
    h, w = rgb.shape[:2]
    ours = int(np.random.default_rng([seed, i, 11]).integers(1 << PAYLOAD_BITS))
    z = invisible.check_payload(rgb, OWNER, ours).z  # the picture as an export of ours: trace at identity
    if not blind:
        return kind, False, other, 0.0, 0.0, z
    t = time.perf_counter()
    d = invisible.read(rgb, OWNER)
    return kind, bool(d.found), other, float(d.false_positive_probability), time.perf_counter() - t, z


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="pictures read (default 10000)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-blind", action="store_true", help="only trace's known-payload test, not the blind read")
    args = ap.parse_args(argv)
    if args.n < 1 or args.jobs < 1:
        ap.error("--n and --jobs must be at least 1")
    start = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:
        tasks = [(i, args.seed, not args.skip_blind) for i in range(args.n)]
        for k, row in enumerate(pool.map(one, tasks, chunksize=8), 1):
            rows.append(row)
            if k % 500 == 0:
                print(f"  {k}/{args.n} read, {sum(r[1] for r in rows)} found, "
                      f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - start
    found = 0 if args.skip_blind else blind_report(rows, args, wall)
    present = payload_test_report(rows)
    return 0 if found == 0 and present == 0 else 1


def blind_report(rows: list[tuple[str, bool, bool, float, float, float]], args: argparse.Namespace,
                 wall: float) -> int:
    print(f"false positives of the blind read, owner key {OWNER.fingerprint[:16]}, {args.n} pictures, seed "
          f"{args.seed}, {wall:.0f} s wall on {args.jobs} processes")
    print(f"  {'set':<38} {'pictures':>9} {'found':>6} {'bound/image':>12} {'expected':>9}")
    for label, keep in (("unmarked", lambda r: not r[2]), ("marked under other keys", lambda r: r[2])):
        for kind in ("packshot", "photo", "gradient", None):
            sel = [r for r in rows if keep(r) and (kind is None or r[0] == kind)]
            if not sel:
                continue
            bound = max(r[3] for r in sel)
            name = f"{label}, {kind or 'all'}"
            print(f"  {name:<38} {len(sel):>9} {sum(r[1] for r in sel):>6} {bound:>12.2e} "
                  f"{len(sel) * bound:>9.2e}")
    found = sum(r[1] for r in rows)
    bound = max(r[3] for r in rows)
    secs = sorted(r[4] for r in rows)
    print(f"  total: {found} found of {args.n} (target 0); analytic bound per image <= {bound:.2e}, so the expected "
          f"count over the set is <= {args.n * bound:.2e}")
    print(f"  read time per picture: median {secs[len(secs) // 2]:.2f} s, p95 {secs[int(len(secs) * 0.95)]:.2f} s")
    return found


def payload_test_report(rows: list[tuple[str, bool, bool, float, float, float]]) -> int:
    from pipeline.invisible import chiptest

    zs = np.array([r[5] for r in rows])
    present = int(np.sum(zs >= chiptest.DETECT_Z))
    bound = chiptest.fp_bound(chiptest.DETECT_Z)
    print(f"known-payload test (invisible.check_payload: the picture as an export, a random payload of ours), {len(rows)} "
          f"pictures: {present} present at z >= {chiptest.DETECT_Z:g} (target 0); z mean {zs.mean():+.2f}, sd "
          f"{zs.std():.2f}, max {zs.max():+.2f}; analytic bound per test {bound:.2e}, expected count <= "
          f"{len(rows) * bound:.2e}")
    for label, keep in (("unmarked", lambda r: not r[2]), ("marked under other keys", lambda r: r[2])):
        sel = np.array([r[5] for r in rows if keep(r)])
        if sel.size:
            print(f"  {label:<24} {sel.size:>6} pictures, max z {sel.max():+.2f}, "
                  f"{int(np.sum(sel >= chiptest.DETECT_Z))} present")
    return present


if __name__ == "__main__":
    raise SystemExit(main())
