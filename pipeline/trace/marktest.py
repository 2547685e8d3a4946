"""Known-payload test: does a registered copy carry one given export's invisible-mark chips (a yes/no test with
its own analytic false-positive bound, for when decoding the payload fails).

Decoding a payload blind or informed needs enough signal for 216 coded bits; a small product on a big white
canvas (a fifth of it, a few tiles) or a heavily processed copy leaves too little for that, while its mark is
still there. Once trace has registered the copy against an export it knows that export's payload, so it can ask
a much easier question: are *these* chips in the copy? The copy's whitened residual is folded into the export's
tile exactly as the embedder laid it out (the export frame at half resolution, tile origin at pixel 0), the
folded chip values ``v`` are correlated with the chips the payload dictates ``e`` (the keyed chip sign times the
coded bit), and ``z = sum(v * e) / |v|``.

False positives, analytic: on a picture that does not carry the owner's mark (unmarked, or marked under another
key), ``v`` does not depend on the owner's keyed chip signs, which are independent +-1 per chip, so ``z`` is a
normalised Rademacher sum and Hoeffding's inequality gives P(z >= t) <= exp(-t**2 / 2) for every picture, with
no assumption on its content (``fp_bound``). Trace tests at most one export per registered candidate and counts
every test made (a union bound).

What the bound does not cover: a copy of *another* export of the same owner. Its chips share the key's signs, so
its codeword's agreement with this export's (about half the coded bits, more when their payloads share leading
bits) leaks into ``z``; trace tests every registered candidate and keeps the highest, so a copy of export B that
also aligns with export A (two presets of one photo) names B. The test says "the owner's mark for this export";
the decode, when it succeeds, says it with the payload itself.
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
from pipeline.trace import signatures as sg

DETECT_Z = 6.0  # z at which the export's chips count as present: exp(-18) = 1.5e-8 per test, as an informed decode
MIN_COVERED = 4096  # half-resolution export pixels the copy must cover (a 64 x 64 patch: ~0.6 tile)
ERODE = 9  # half-resolution pixels trimmed off the covered area (warp borders are not picture)


def fp_bound(z: float, tests: int = 1) -> float:
    """Hoeffding's bound on a picture without the owner's mark reaching ``z`` in any of ``tests`` tests."""
    return min(1.0, tests * math.exp(-max(z, 0.0) ** 2 / 2))


@dataclass(frozen=True)
class Folded:
    """A registered copy's whitened residual folded into an export's tile (half resolution)."""

    tile: np.ndarray
    covered: int  # half-resolution export pixels the copy covers (eroded)


@dataclass(frozen=True)
class ChipTest:
    """The correlation of a registered copy with one export's chips."""

    z: float  # ~N(0, 1)-like without the export's mark (Hoeffding: P(z >= t) <= exp(-t^2/2))
    amplitude: float  # mean chip value along the expected chips (the chips' strength in the folded tile)
    covered: int

    @property
    def present(self) -> bool:
        return self.covered >= MIN_COVERED and self.z >= DETECT_Z


def fold_registered(suspect: np.ndarray, matrix: np.ndarray, export_size: tuple[int, int]) -> Folded:
    """The copy warped into the export's frame by ``matrix`` (suspect px -> export px), whitened at the embedder's
    half resolution and folded into its tile."""
    ew, eh = export_size
    # signatures.warp_resampled: bilinear as cv2.warpAffine, area-downscaling first a copy much larger than the
    # export (plain bilinear sampling would alias the picture's detail onto the pilots' frequencies)
    warped = sg.warp_resampled(np.ascontiguousarray(suspect), matrix, (ew, eh))
    cover = sg.warp_resampled(np.full(suspect.shape[:2], 255, np.uint8), matrix, (ew, eh), nearest=True)
    hw, hh = -(-ew // 2), -(-eh // 2)  # the embedder's half resolution: a chip is CANON px
    half = cv2.resize(warped, (hw, hh), interpolation=cv2.INTER_AREA)
    inside = (cv2.resize(cover, (hw, hh), interpolation=cv2.INTER_AREA) > 254).astype(np.uint8)
    covered = cv2.erode(inside, np.ones((ERODE, ERODE), np.uint8))
    gray = cv2.cvtColor(half, cv2.COLOR_RGB2GRAY).astype(np.float32)
    r = dsp.whiten(gray, CANON) * covered
    return Folded(dsp.fold_aligned(r), int(covered.sum()))


def chip_test(folded: Folded, subkey: bytes, payload: int) -> ChipTest:
    """Correlate a folded copy with the chips ``payload`` dictates under ``subkey`` (the export's own pilot set
    cleaned out first: the chips are the same in every pilot variant, the pilots' frequencies carry none)."""
    own = export_layout(subkey, payload)
    values = dsp.chip_values(dsp.clean_fold(folded.tile, own.pilots), (0.0, 0.0)).ravel()
    expected = own.tile(encode_payload(subkey, payload)).ravel()
    norm = float(np.sqrt(np.sum(values * values)))
    z = float(np.sum(values * expected) / norm) if norm > 0 else 0.0
    return ChipTest(z=z, amplitude=float(np.mean(values * expected)), covered=folded.covered)


def correlate(suspect: np.ndarray, matrix: np.ndarray, export_size: tuple[int, int], subkey: bytes,
              payload: int) -> ChipTest:
    """``chip_test`` of ``suspect`` registered by ``matrix`` onto an export of ``export_size`` (w, h)."""
    return chip_test(fold_registered(suspect, matrix, export_size), subkey, payload)
