"""The keyed, blind, robust invisible watermark: ``embed`` a PAYLOAD_BITS payload into a canvas, ``read`` it back.

Scheme (details in the submodules):

- ``codec``: payload + 26-bit keyed check (truncated HMAC-SHA256) under a K=7 rate-1/3 convolutional code,
  soft-decision Viterbi decoding.
- ``layout``: a keyed tile of 24 x 24 chips of 7 canvas pixels (a 168 px tile repeated over the picture); every
  chip carries a coded bit times a keyed sign; six keyed pilot tones (tile harmonics) ride on top, one set of
  a keyed family of VARIANTS = 32 per export, selected by a keyed hash of the payload (scheme 2: nothing of the
  mark is the same in every export of an owner, so averaging a catalog finds no template; scheme 1 used one
  set per key, still read).
- ``embedder``: the tile rendered smooth (bicubic pulses), shaped by a perceptual mask (strength follows local
  texture; nothing on flat areas, nothing outside ``mask``; capped by a PSNR target and an SSIM budget) and by
  informed embedding (the chips' amplitudes pre-compensate the picture's own interference as the reader will
  see it, so that every coded bit -- the sum of its chips -- reaches a common margin), added equally to R, G
  and B.
- ``chiptest``: the known-payload test, when the payload is known but will not decode (a small product): are
  that export's chips in a picture already in its frame (z, Hoeffding's bound exp(-z**2/2) per test).
- ``reader``: the pilot lines in the spectrum of the whitened suspect give the tiling lattice (scale, aspect,
  rotation, mirror, any crop), every pilot set of the family (and scheme 1's) matched against the same peaks;
  all tiles are folded together; the pilots' phases give candidate shifts, the code picks the aligned one;
  a list Viterbi decodes (its 3 most likely sequences) and the keyed check decides, and a decode through pilot
  set v must have a payload that selects v (5 more check bits). The false-positive probability per picture is at
  most 3 * (legacy decodes + other decodes / 32) * 2**-26: at most MAX_DECODES = 8 decodes of which at most 3
  through scheme 1's set, so <= 3 * (3 + 5/32) * 2**-26 = 1.4e-7 (``WORST_FP``; 4.7e-8 with one candidate per
  decode); an informed read makes one decode, accepted on the check alone: 3 * 2**-26 = 4.5e-8.

Without the key, nobody can find the pilots' meaning, the chip signs or the check: another key reads nothing.
"""

from __future__ import annotations

import numpy as np

from pipeline.invisible.chiptest import ChipTest, chip_test, fold
from pipeline.invisible.codec import CHECK_BITS, CODED_BITS
from pipeline.invisible.embedder import embed_pixels
from pipeline.invisible.layout import SCHEME, VARIANTS
from pipeline.invisible.reader import MAX_DECODES, WORST_FP, Detection, Hint, fp_bound, read_pixels
from pipeline.keys import OwnerKey
from pipeline.models import PAYLOAD_BITS

__all__ = [
    "CHECK_BITS",
    "CODED_BITS",
    "MAX_DECODES",
    "PAYLOAD_BITS",
    "SCHEME",
    "VARIANTS",
    "WORST_FP",
    "ChipTest",
    "Detection",
    "Hint",
    "embed",
    "fp_bound",
    "read",
    "check_payload",
]

SUBKEY_PURPOSE = "invisible"
MIN_SIDE = 16


def _check_rgb(rgb: object, what: str) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"invisible.{what}: expected an H x W x 3 uint8 RGB array, got shape {shape} dtype {dtype}")
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ValueError(f"invisible.{what}: picture too small ({rgb.shape[1]} x {rgb.shape[0]} px)")
    return np.ascontiguousarray(rgb)


def _check_payload(payload: object, what: str) -> int:
    if isinstance(payload, bool) or not isinstance(payload, int | np.integer) or not 0 <= int(payload) < 1 << PAYLOAD_BITS:
        raise ValueError(f"invisible.{what}: payload must be an integer in [0, 2**{PAYLOAD_BITS}), got {payload!r}")
    return int(payload)


def embed(rgb: np.ndarray, key: OwnerKey, payload: int, mask: np.ndarray | None) -> np.ndarray:
    """A new uint8 RGB array carrying ``payload`` (PAYLOAD_BITS bits) under ``key``.

    ``mask`` (bool H x W) is True where pixels may change; pixels outside it are returned bit-identical
    (``None``: all may change, but flat areas are left untouched anyway). Deterministic.
    """
    rgb = _check_rgb(rgb, "embed")
    payload = _check_payload(payload, "embed")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != rgb.shape[:2]:
            raise ValueError(f"invisible.embed: mask shape {mask.shape} does not match the picture {rgb.shape[:2]}")
        mask = mask.astype(bool, copy=False)
    return embed_pixels(rgb, key.subkey(SUBKEY_PURPOSE), payload, mask)


def read(rgb: np.ndarray, key: OwnerKey, *, hint: Hint | None = None) -> Detection:
    """Read the watermark blind from ``rgb`` with ``key`` (or, with ``hint``, in the export's known geometry)."""
    rgb = _check_rgb(rgb, "read")
    return read_pixels(rgb, key.subkey(SUBKEY_PURPOSE), hint)


def check_payload(rgb: np.ndarray, key: OwnerKey, payload: int) -> ChipTest:
    """Whether ``rgb``, in the export's own frame (the export itself, same size), carries the chips ``payload``
    dictates under ``key`` (``chiptest``: ``.present`` at z >= DETECT_Z, false-positive bound ``chiptest.fp_bound``)."""
    rgb = _check_rgb(rgb, "check_payload")
    return chip_test(fold(rgb), key.subkey(SUBKEY_PURPOSE), _check_payload(payload, "check_payload"))
