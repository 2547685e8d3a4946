"""Trace's known-payload test: a copy registered against an export, warped into its frame and tested for that
export's chips (``pipeline.invisible.chiptest``: the fold, the correlation z and its analytic bound).

Trace tests at most one export per registered candidate, counts every test made in the bound (a union bound), and
keeps the highest z: the bound does not cover a copy of *another* export of the same owner (they share the key's
chip signs), so a copy of export B that also aligns with export A (two presets of one photo) must name B.
"""

from __future__ import annotations

import numpy as np

from pipeline.invisible.chiptest import ChipTest, Folded, chip_test, fold
from pipeline.trace import signatures as sg


def fold_registered(suspect: np.ndarray, matrix: np.ndarray, export_size: tuple[int, int]) -> Folded:
    """The copy warped into the export's frame by ``matrix`` (suspect px -> export px), whitened at the embedder's
    half resolution and folded into its tile."""
    ew, eh = export_size
    # signatures.warp_resampled: bilinear as cv2.warpAffine, area-downscaling first a copy much larger than the
    # export (plain bilinear sampling would alias the picture's detail onto the pilots' frequencies)
    warped = sg.warp_resampled(np.ascontiguousarray(suspect), matrix, (ew, eh))
    cover = sg.warp_resampled(np.full(suspect.shape[:2], 255, np.uint8), matrix, (ew, eh), nearest=True)
    return fold(warped, cover)


def correlate(suspect: np.ndarray, matrix: np.ndarray, export_size: tuple[int, int], subkey: bytes,
              payload: int) -> ChipTest:
    """``chip_test`` of ``suspect`` registered by ``matrix`` onto an export of ``export_size`` (w, h)."""
    return chip_test(fold_registered(suspect, matrix, export_size), subkey, payload)
