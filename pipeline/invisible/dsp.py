"""Signal processing shared by the embedder and the reader: rendering the tile, whitening, folding, chip sampling.

The embedder uses the reader's own statistics (``whiten`` + ``fold_aligned`` + ``chip_values``) to predict how
the picture itself will interfere with each chip, and pre-compensates it (informed embedding), so both sides
must compute them identically: that is why they live here.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from pipeline.invisible.layout import CANON, CANON_TILE, TILE

# Whitening, in units of the chip size (so it means the same thing at any scale the picture was resized to).
HP_CHIPS = 0.85  # high-pass: residual = Y - Gaussian(Y, HP_CHIPS * chip)
NORM_CHIPS = 4.3  # local-activity window for the normalisation
NORM_FLOOR = 1.0  # grey levels added to the local activity before dividing (keeps flat areas from exploding)
CLIP = 3.0  # normalised residual clipped to +-CLIP (edges and text must not dominate)
SPECTRAL_CLIP = 2.0  # folded-tile frequencies stronger than this times their ring's median are the picture's
MATCHED_SIGMA = 0.45  # chip sampling: Gaussian matched filter of this many chips


@lru_cache(maxsize=64)
def _rendered(chips_bytes: bytes, px_per_chip: float) -> np.ndarray:
    chips = np.frombuffer(chips_bytes, np.float32).reshape(TILE, TILE)
    pad = 2
    padded = np.pad(chips, pad, mode="wrap")
    n = padded.shape[0]
    size = round(n * px_per_chip)
    big = cv2.resize(padded, (size, size), interpolation=cv2.INTER_CUBIC)
    o = round(pad * px_per_chip)
    p = round(TILE * px_per_chip)
    out = np.ascontiguousarray(big[o : o + p, o : o + p])
    out.setflags(write=False)
    return out


def rendered_tile(chips: np.ndarray, px_per_chip: float) -> np.ndarray:
    """One period of the chip tile rendered at ``px_per_chip`` (``px_per_chip * 2`` must be whole).

    Bicubic interpolation of the chip grid gives each chip a smooth pulse (energy below 1/(2 chip) cycles per
    pixel, which survives JPEG and downscaling) that passes exactly through the chip's value at its centre,
    (j + 0.5) * px_per_chip - 0.5. Read-only, cached.
    """
    return _rendered(np.ascontiguousarray(chips, np.float32).tobytes(), float(px_per_chip))


def tiled(period: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = shape
    p = period.shape[0]
    return np.tile(period, (-(-rows // p), -(-cols // p)))[:rows, :cols]


def whiten_parts(gray: np.ndarray, chip: float, added: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(high-passed luminance, its local activity + NORM_FLOOR); ``chip`` = chip size in pixels of ``gray``.
    ``added``: a power per pixel counted in the activity as if the high-pass carried it too (the embedder's
    prediction of what its mark will add)."""
    y = gray.astype(np.float32, copy=False)
    sigma = HP_CHIPS * chip
    k = 2 * round(2 * sigma) + 1  # truncated at 2 sigma: 2.5x faster than OpenCV's default, same on both sides
    hp = y - cv2.GaussianBlur(y, (k, k), sigma)
    k = max(3, int(round(NORM_CHIPS * chip)) | 1)
    power = hp * hp if added is None else hp * hp + added
    act = np.sqrt(np.maximum(cv2.boxFilter(power, -1, (k, k), borderType=cv2.BORDER_REFLECT), 0.0))
    return hp, act + NORM_FLOOR


def whiten(gray: np.ndarray, chip: float) -> np.ndarray:
    """High-passed luminance divided by its local activity, clipped: the host picture mostly gone, the mark
    roughly unit-SNR wherever it was embedded, flat areas near zero."""
    hp, act = whiten_parts(gray, chip)
    return np.clip(hp / act, -CLIP, CLIP)


def highpass_cyclic(period: np.ndarray, chip: float) -> np.ndarray:
    """What ``whiten``'s high-pass does to a periodic pattern (cyclic, exact)."""
    return period - smooth_cyclic(period, HP_CHIPS * chip)


def fold_aligned(r: np.ndarray, period: int = CANON_TILE) -> np.ndarray:
    """Sum of all ``period``-periodic tiles of ``r`` (origin at pixel 0), zero-padding the last partial tiles."""
    h, w = r.shape
    ny, nx = -(-h // period), -(-w // period)
    if (h, w) != (ny * period, nx * period):
        pad = np.zeros((ny * period, nx * period), np.float32)
        pad[:h, :w] = r
        r = pad
    return np.asarray(r.reshape(ny, period, nx, period).sum(axis=(0, 2)), np.float32)


def smooth_cyclic(folded: np.ndarray, sigma_px: float) -> np.ndarray:
    n0, n1 = folded.shape
    fy = np.fft.fftfreq(n0)[:, None]
    fx = np.fft.rfftfreq(n1)[None, :]
    g = np.exp(-2 * (math.pi * sigma_px) ** 2 * (fx**2 + fy**2))
    return np.fft.irfft2(np.fft.rfft2(folded) * g, s=folded.shape)


@lru_cache(maxsize=4)
def _rings(shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    fy = np.fft.fftfreq(shape[0])[:, None] * shape[0]
    fx = np.fft.rfftfreq(shape[1])[None, :] * shape[1]
    ring = np.rint(np.hypot(fx, fy)).astype(np.intp)
    return ring, int(ring.max()) + 1


def clean_fold(folded: np.ndarray, notch: np.ndarray | None = None) -> np.ndarray:
    """Remove what is periodic in the picture itself (stripes, fabric, grids) from a folded tile.

    The mark's chips are random, so its spectrum in the folded tile is spread evenly over each ring of spatial
    frequency; a picture's periodic structure that happens to fold coherently shows up as a few strong spectral
    peaks. Each frequency's magnitude is limited to SPECTRAL_CLIP times its ring's mean magnitude (the mean
    taken after a first clip, so the peaks do not raise their own limit). ``notch`` (an array of (kx, ky)
    cycles per tile: the pilot tones) is removed entirely: it carries no chip information.
    """
    spec = np.fft.rfft2(folded)
    mag = np.abs(spec)
    ring, n = _rings(folded.shape)
    flat = ring.ravel()
    count = np.maximum(np.bincount(flat, minlength=n), 1)
    clipped = mag
    for _ in range(2):
        mean = np.bincount(flat, weights=clipped.ravel(), minlength=n) / count
        clipped = np.minimum(mag, SPECTRAL_CLIP * mean[ring])
    factor = clipped / np.maximum(mag, 1e-12)
    if notch is not None:
        n0 = folded.shape[0]
        for kx, ky in notch:
            if kx >= 0:
                factor[ky % n0, kx] = 0.0
            if kx <= 0:
                factor[-ky % n0, -kx] = 0.0
    return np.fft.irfft2(spec * factor, s=folded.shape)


def matched(folded: np.ndarray) -> np.ndarray:
    """The folded tile through the chip matched filter (a cyclic Gaussian of MATCHED_SIGMA chips)."""
    return smooth_cyclic(folded, MATCHED_SIGMA * CANON)


def sample_chips(smoothed: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Bilinear samples (TILE x TILE) of a matched-filtered folded tile at the chip centres rolled by ``shift``."""
    n = smoothed.shape[0]
    centres = np.arange(TILE) * CANON + (CANON - 1) / 2
    yy = (centres[:, None] + shift[0]) % n
    xx = (centres[None, :] + shift[1]) % n
    y0, x0 = np.floor(yy).astype(int), np.floor(xx).astype(int)
    wy, wx = yy - y0, xx - x0
    y1, x1 = (y0 + 1) % n, (x0 + 1) % n
    sm = smoothed
    return np.asarray(
        sm[y0, x0] * (1 - wy) * (1 - wx) + sm[y1, x0] * wy * (1 - wx) + sm[y0, x1] * (1 - wy) * wx + sm[y1, x1] * wy * wx
    )


def chip_values(folded: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Soft value of every chip (TILE x TILE) of a folded canonical tile whose pattern is rolled by ``shift``."""
    return sample_chips(matched(folded), shift)
