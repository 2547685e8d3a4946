"""Perceptual hashes (pHash, PDQ) and the one area downscale they are computed on: the only hashing code.

pHash is imagehash's algorithm (greyscale, Lanczos to 32x32, 2-D DCT-II, the 8x8 lowest frequencies against their
median) computed here with OpenCV's DCT instead of importing imagehash, whose import pulls in scipy (~0.8 s of
start-up for every CLI call). OpenCV's DCT is orthonormal; scipy's (what imagehash uses) is not: the two differ by
a positive factor per coefficient that is the same for every coefficient except those in row 0 and column 0,
which carry an extra 1/sqrt(2) each. Undoing that gives coefficients proportional to imagehash's, so the median
comparison and the bits are the same (a test checks bit equality with imagehash on random images).
"""

from __future__ import annotations

import functools
import math
from importlib.metadata import PackageNotFoundError, version

import cv2
import numpy as np
import pdqhash
import PIL
from PIL import Image

#: Long side the hashes of an export or a suspect are computed on (PDQ quality is the same as at full size and it
#: is ~8x cheaper; pHash resamples to 32x32 anyway).
HASH_SIDE = 512


def downscale(rgb: np.ndarray, side: int) -> np.ndarray:
    """Area-downscale so the long side is at most ``side`` (never enlarges); a C-contiguous array."""
    h, w = rgb.shape[:2]
    f = side / max(h, w)
    if f >= 1:
        return np.ascontiguousarray(rgb)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


_DC_FIX = np.ones((32, 32))
_DC_FIX[0, :] *= math.sqrt(2.0)
_DC_FIX[:, 0] *= math.sqrt(2.0)


def phash(pixels: np.ndarray) -> bytes:
    """imagehash's 64-bit pHash of RGB or greyscale pixels, as 8 packed bytes (row-major bits)."""
    im = Image.fromarray(np.ascontiguousarray(pixels))
    grey = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    coeffs = (cv2.dct(grey) * _DC_FIX)[:8, :8]
    bits = coeffs > np.median(coeffs)
    return np.packbits(bits.ravel()).tobytes()


def phash_hex(pixels: np.ndarray) -> str:
    """``phash`` as 16 hex characters (the form imagehash prints and the ledger stores)."""
    return phash(pixels).hex()


def pdq(rgb: np.ndarray) -> tuple[bytes, int]:
    """PDQ hash of an RGB image (32 packed bytes) and its quality (0-100)."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), int(quality)


def pdq_dihedral(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """The 8 dihedral PDQ hashes (identity, rotations, flips) as (8, 32) packed bytes from one DCT, and quality."""
    hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return np.stack([np.packbits(np.asarray(h, dtype=np.uint8)) for h in hashes]), int(quality)


#: How pHash and PDQ are computed here, named in every record beside the library versions (hash_versions).
PHASH_METHOD = ("imagehash's pHash algorithm computed by catalogmark (pipeline/imaging/hashes.py): Pillow greyscale "
                "+ Lanczos 32x32, OpenCV's DCT, numpy's median; imagehash itself is not used")
PDQ_METHOD = "pdqhash (Facebook's PDQ) on OpenCV's area downscale to at most 512 px"


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    try:
        pdq_version = version("pdqhash")
    except PackageNotFoundError:  # e.g. a vendored build: say so rather than guess
        pdq_version = "unknown"
    return (("phash", PHASH_METHOD), ("pdq", PDQ_METHOD), ("pillow", PIL.__version__), ("pdqhash", pdq_version),
            ("opencv", cv2.__version__), ("numpy", np.__version__))


def hash_versions() -> dict[str, str]:
    """What computed this process's perceptual hashes: the method of each and the versions of the libraries
    (Pillow, pdqhash, OpenCV, numpy). Every record keeps it (``extra.hashes``): an upgrade of any of them can
    flip hash bits, and trace must know which hashes came from which code."""
    return dict(_versions())
