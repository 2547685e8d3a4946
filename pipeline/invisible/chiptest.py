"""Known-payload test of the invisible mark: does a picture in an export's frame carry that export's chips (a yes/no
test with its own analytic false-positive bound, for when decoding the payload fails).

Decoding a payload blind or informed needs enough signal for 216 coded bits; a small product on a big white
canvas (a fifth of it, a few tiles) or a heavily processed copy leaves too little for that, while its mark is
still there. Whoever knows which export a picture should be (trace, once it has registered a copy against an
export; verify, from the file's signed claim) knows that export's payload, so it can ask a much easier question:
are *these* chips in the picture? Its whitened residual is folded into the export's tile exactly as the embedder
laid it out (the export frame at half resolution, tile origin at pixel 0), the folded chip values ``v`` are
correlated with the chips the payload dictates ``e`` (the keyed chip sign times the coded bit), and
``z = sum(v * e) / |v|``.

False positives, analytic: on a picture that does not carry the owner's mark (unmarked, or marked under another
key), ``v`` does not depend on the owner's keyed chip signs, which are independent +-1 per chip, so ``z`` is a
normalised Rademacher sum and Hoeffding's inequality gives P(z >= t) <= exp(-t**2 / 2) for every picture, with
no assumption on its content (``fp_bound``); a caller making several tests counts them all (a union bound).

What the bound does not cover: a picture of *another* export of the same owner. Its chips share the key's signs,
so its codeword's agreement with this export's (about half the coded bits, more when their payloads share leading
bits) leaks into ``z``. The test says "the owner's mark for this export"; the decode, when it succeeds, says it
with the payload itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.invisible import dsp
from pipeline.invisible.codec import encode_payload
from pipeline.invisible.embedder import export_layout
from pipeline.invisible.layout import CANON

DETECT_Z = 6.0  # z at which the export's chips count as present: exp(-18) = 1.5e-8 per test (an informed decode: 4.5e-8)
MIN_COVERED = 4096  # half-resolution export pixels the picture must cover (a 64 x 64 patch: ~0.6 tile)
ERODE = 9  # half-resolution pixels trimmed off the covered area (warp borders are not picture)


def fp_bound(z: float, tests: int = 1) -> float:
    """Hoeffding's bound on a picture without the owner's mark reaching ``z`` in any of ``tests`` tests."""
    return min(1.0, tests * math.exp(-max(z, 0.0) ** 2 / 2))


@dataclass(frozen=True)
class Folded:
    """A picture's whitened residual folded into an export's tile (half resolution)."""

    tile: np.ndarray
    covered: int  # half-resolution export pixels the picture covers (eroded)


@dataclass(frozen=True)
class ChipTest:
    """The correlation of a picture with one export's chips."""

    z: float  # ~N(0, 1)-like without the export's mark (Hoeffding: P(z >= t) <= exp(-t^2/2))
    amplitude: float  # mean chip value along the expected chips (the chips' strength in the folded tile)
    covered: int

    @property
    def present(self) -> bool:
        return self.covered >= MIN_COVERED and self.z >= DETECT_Z


def fold(rgb: np.ndarray, cover: np.ndarray | None = None) -> Folded:
    """``rgb`` (H x W x 3 uint8, already in the export's frame and size) whitened at the embedder's half resolution
    and folded into its tile; ``cover`` (H x W uint8, 255 where ``rgb`` is picture; None: all of it)."""
    eh, ew = rgb.shape[:2]
    hw, hh = -(-ew // 2), -(-eh // 2)  # the embedder's half resolution: a chip is CANON px
    half = cv2.resize(rgb, (hw, hh), interpolation=cv2.INTER_AREA)
    if cover is None:
        inside = np.ones((hh, hw), np.uint8)
    else:
        inside = (cv2.resize(cover, (hw, hh), interpolation=cv2.INTER_AREA) > 254).astype(np.uint8)
    covered = cv2.erode(inside, np.ones((ERODE, ERODE), np.uint8))
    gray = cv2.cvtColor(half, cv2.COLOR_RGB2GRAY).astype(np.float32)
    r = dsp.whiten(gray, CANON) * covered
    return Folded(dsp.fold_aligned(r), int(covered.sum()))


def chip_test(folded: Folded, subkey: bytes, payload: int) -> ChipTest:
    """Correlate a folded picture with the chips ``payload`` dictates under ``subkey`` (the export's own pilot set
    cleaned out first: the chips are the same in every pilot variant, the pilots' frequencies carry none)."""
    own = export_layout(subkey, payload)
    values = dsp.chip_values(dsp.clean_fold(folded.tile, own.pilots), (0.0, 0.0)).ravel()
    expected = own.tile(encode_payload(subkey, payload)).ravel()
    norm = float(np.sqrt(np.sum(values * values)))
    z = float(np.sum(values * expected) / norm) if norm > 0 else 0.0
    return ChipTest(z=z, amplitude=float(np.mean(values * expected)), covered=folded.covered)
