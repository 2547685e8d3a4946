"""Tests for ``pipeline.metadata.check``'s pHash comparison against imagehash, the reader it replaced."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pipeline.imaging.hashes import phash_hex
from pipeline.metadata.check import _phash_bits

_PIXELS = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
_REF = imagehash.phash(Image.fromarray(_PIXELS))
_MINE = int(phash_hex(_PIXELS), 16)


def _imagehash_distance(text: str) -> int | None:
    try:
        return int(imagehash.hex_to_hash(text) - _REF)
    except (ValueError, TypeError):
        return None


def _distance(text: str) -> int | None:
    try:
        return (_phash_bits(text) ^ _MINE).bit_count()
    except (ValueError, TypeError):
        return None


@pytest.mark.parametrize("text", [
    str(_REF), str(_REF).upper(), " " + str(_REF), "0x" + str(_REF), "0000" + str(_REF), "00000" + str(_REF),
    str(_REF)[:8] + "_" + str(_REF)[8:], str(_REF)[:-1], "f" * 17, "-" + str(_REF)[1:], "None", "", "zz" * 8,
])
def test_claimed_phash_parses_as_imagehash_did(text):
    assert _distance(text) == _imagehash_distance(text)


@given(st.text(alphabet="0123456789abcdefABCDEFxX_-+ \t", max_size=24))
def test_any_claimed_phash_text_parses_as_imagehash_did(text):
    assert _distance(text) == _imagehash_distance(text)


def test_the_signed_pixels_are_at_distance_zero():
    assert _distance(str(_REF)) == 0
