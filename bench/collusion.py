"""Collusion benchmark of the invisible watermark: the catalog-averaging attack against scheme 2 and scheme 1.

For the current scheme (one keyed pilot set per export out of a family) and for scheme 1 (the key's one pilot
set in every export, rebuilt by ``tests.collusion.fixed_pilots``), N same-size exports are marked with one key,
the attacker learns the notch from the first 40 and 100 of them (``tests/collusion.py``) and applies the 12 and
48 strongest peaks to each target, re-saved as JPEG 90. Printed: blind and informed (identity registration)
exact-payload recovery, the notch's PSNR, and the blind read time of the unattacked targets.

    python bench/collusion.py [--targets N] [--size PX] [--learn 40,100] [--peaks 12,48] [--skip-old]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from pipeline import invisible  # noqa: E402
from pipeline.keys import OwnerKey  # noqa: E402
from tests import collusion  # noqa: E402

KEY = OwnerKey(bytes(range(32)))


def _embed(rgb: np.ndarray, payload: int, mask: np.ndarray | None) -> np.ndarray:
    return invisible.embed(rgb, KEY, payload, mask)


def _read(rgb: np.ndarray, hint: invisible.Hint | None) -> invisible.Detection:
    return invisible.read(rgb, KEY, hint=hint)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=24)
    ap.add_argument("--size", type=int, default=1200)
    ap.add_argument("--learn", default="40,100")
    ap.add_argument("--peaks", default="12,48")
    ap.add_argument("--skip-old", action="store_true")
    args = ap.parse_args()
    learn = tuple(int(x) for x in args.learn.split(","))
    peaks = tuple(int(x) for x in args.peaks.split(","))
    targets = list(range(1000, 1000 + args.targets))
    print(collusion.HEADER)
    schemes = [("scheme 2", False)] + ([] if args.skip_old else [("scheme 1 (old)", True)])
    for name, old in schemes:
        t0 = time.perf_counter()
        if old:
            with collusion.fixed_pilots():
                rows = collusion.averaging_attack(_embed, _read, size=args.size, learn=learn, peaks=peaks,
                                                  targets=targets)
                clean = [collusion.marked_export(_embed, t, args.size) for t in targets]
        else:
            rows = collusion.averaging_attack(_embed, _read, size=args.size, learn=learn, peaks=peaks, targets=targets)
            clean = [collusion.marked_export(_embed, t, args.size) for t in targets]
        t1 = time.perf_counter()
        found = sum(bool(_read(c, None).payload == collusion.payload_for(t)) for c, t in zip(clean, targets, strict=True))
        read_s = (time.perf_counter() - t1) / len(targets)
        for row in rows:
            print(row.line(name), flush=True)
        print(f"{name}: unattacked blind {found}/{len(targets)}, blind read {read_s:.3f} s/image, "
              f"total {t1 - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
