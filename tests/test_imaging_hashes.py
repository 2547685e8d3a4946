"""Tests for the perceptual hashes: pHash bit-identical to imagehash's, PDQ robust to re-encoding, one downscale."""

from __future__ import annotations

import io

import imagehash
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.imaging import hashes


@settings(max_examples=60, deadline=None)
@given(w=st.integers(8, 300), h=st.integers(8, 300), seed=st.integers(0, 2**32 - 1), smooth=st.booleans())
def test_phash_is_bit_identical_to_imagehash(w, h, seed, smooth):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if smooth:  # photos are mostly low-frequency: make the DCT's median comparison meaningful
        a = np.clip(np.cumsum(a.astype(np.int64), axis=1) // (w // 4 + 1), 0, 255).astype(np.uint8)
    assert hashes.phash_hex(a) == str(imagehash.phash(Image.fromarray(a)))
    assert hashes.phash_hex(a[..., 0]) == str(imagehash.phash(Image.fromarray(a[..., 0])))


def test_pdq_survives_jpeg_but_not_another_picture(product_image):
    from tests.conftest import product_on_white

    buf = io.BytesIO()
    Image.fromarray(product_image).save(buf, "JPEG", quality=60)
    jpeg = np.asarray(Image.open(buf).convert("RGB"))
    (a, quality), (b, _) = hashes.pdq(product_image), hashes.pdq(jpeg)
    assert len(a) == 32 and 0 <= quality <= 100
    assert int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum()) <= 31
    other = np.ascontiguousarray(product_on_white((480, 640), seed=7)[:, ::-1])
    assert hashes.phash(product_image) != hashes.phash(other)


def test_dihedral_pdq_starts_with_the_plain_hash(product_image):
    dihedral, quality = hashes.pdq_dihedral(product_image)
    assert dihedral.shape == (8, 32)
    assert dihedral[0].tobytes() == hashes.pdq(product_image)[0] and quality == hashes.pdq(product_image)[1]


def test_downscale_never_enlarges_and_keeps_the_aspect():
    a = np.zeros((300, 1200, 3), np.uint8)
    assert hashes.downscale(a, 512).shape == (128, 512, 3)
    assert hashes.downscale(a, 2000).shape == a.shape
