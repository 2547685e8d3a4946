"""Trace signatures: byte round trips, fixed sizes, bad blobs, the content box."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.trace import signatures as sg
from tests import synthetic


@pytest.fixture(scope="module")
def product() -> np.ndarray:
    return synthetic.product_shot(1, (600, 520))


@pytest.fixture(scope="module")
def signature(product: np.ndarray) -> sg.TraceSignature:
    return sg.compute_signature(product)


def test_search_keys_are_fixed_size_and_features_small(signature: sg.TraceSignature) -> None:
    keys, feats = signature.search_keys(), signature.features()
    assert len(keys) == sg.SEARCH_KEYS_SIZE <= 1400
    assert 0 < len(feats) <= 48_000
    assert len(signature.sketch_desc) == sg.SKETCH_K
    assert 50 <= len(signature.kp_xy) <= sg.SIFT_MAX
    assert signature.thumbnail[:4] == b"RIFF"  # WebP


def test_round_trip_keeps_every_field(signature: sg.TraceSignature) -> None:
    back = sg.TraceSignature.from_bytes(signature.search_keys(), signature.features())
    assert (back.width, back.height) == (signature.width, signature.height) == (600, 520)
    assert back.pdq == signature.pdq and back.phash == signature.phash
    assert back.pdq_trim == signature.pdq_trim and back.pdq_regions == signature.pdq_regions
    assert back.pdq_quality == signature.pdq_quality
    assert np.array_equal(back.sketch_desc, signature.sketch_desc)
    # positions are quantised to 1/255 of the side, angles to 360/256 degrees
    assert np.abs(back.sketch_geo[:, 0] - signature.sketch_geo[:, 0]).max() <= 600 / 255
    assert np.abs(back.sketch_geo[:, 1] - signature.sketch_geo[:, 1]).max() <= 520 / 255
    dang = np.abs((back.sketch_geo[:, 2] - signature.sketch_geo[:, 2] + 180) % 360 - 180)
    assert dang.max() <= 360 / 256
    assert np.array_equal(back.sketch_geo[:, 3], signature.sketch_geo[:, 3])
    assert np.array_equal(back.kp_xy, signature.kp_xy) and np.array_equal(back.kp_desc, signature.kp_desc)
    assert back.thumbnail == signature.thumbnail
    thumb = back.thumbnail_rgb()
    assert thumb is not None and max(thumb.shape[:2]) == sg.THUMB_SIDE
    # the blobs themselves are stable
    assert back.search_keys() == signature.search_keys()
    assert back.features() == signature.features()


def test_search_keys_alone_give_no_features(signature: sg.TraceSignature) -> None:
    back = sg.TraceSignature.from_bytes(signature.search_keys())
    assert len(back.kp_xy) == 0 and back.thumbnail == b"" and back.thumbnail_rgb() is None


def test_compute_is_deterministic(product: np.ndarray, signature: sg.TraceSignature) -> None:
    again = sg.compute_signature(product)
    assert again.search_keys() == signature.search_keys()
    assert again.features() == signature.features()


def test_without_features_only_search_keys(product: np.ndarray, signature: sg.TraceSignature) -> None:
    light = sg.compute_signature(product, features=False)
    assert light.search_keys() == signature.search_keys()
    assert len(light.kp_xy) == 0 and light.thumbnail == b""


@pytest.mark.parametrize("blob, match", [
    (b"", "expected"),
    (b"XXXX" + bytes(sg.SEARCH_KEYS_SIZE - 4), "bad magic"),
    (bytes(sg.SEARCH_KEYS_SIZE + 1), "expected"),
])
def test_bad_search_keys_are_rejected(blob: bytes, match: str) -> None:
    with pytest.raises(sg.SignatureError, match=match):
        sg.TraceSignature.from_bytes(blob)


def test_bad_features_are_rejected(signature: sg.TraceSignature) -> None:
    feats = signature.features()
    with pytest.raises(sg.SignatureError, match="expected"):
        sg.TraceSignature.from_bytes(signature.search_keys(), feats[:-3])
    with pytest.raises(sg.SignatureError, match="bad magic"):
        sg.TraceSignature.from_bytes(signature.search_keys(), b"NOPE" + feats[4:])


def test_rejects_non_rgb_or_tiny_input() -> None:
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        sg.compute_signature(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        sg.compute_signature(np.zeros((1, 400, 3), np.uint8))


def test_content_box_finds_the_picture_inside_padding(product: np.ndarray) -> None:
    padded = synthetic.pad(synthetic.letterbox(product, 16 / 9, (0, 0, 0)), 0.2, (240, 240, 240))
    x0, y0, x1, y1 = sg.content_box(padded)
    # nested borders (grey page, black bars, white studio background) all trimmed down to the product
    ref = sg.content_box(product)
    assert abs((x1 - x0) - (ref[2] - ref[0])) <= 4 and abs((y1 - y0) - (ref[3] - ref[1])) <= 4


def test_content_box_of_blank_or_full_images() -> None:
    assert sg.content_box(np.full((50, 60, 3), 255, np.uint8)) == (0, 0, 60, 50)
    noise = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    assert sg.content_box(noise) == (0, 0, 30, 40)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=st.integers(16, 300), h=st.integers(16, 300), seed=st.integers(0, 2**16))
def test_round_trip_any_size(w: int, h: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(128, 60, (h, w, 3)), 0, 255).astype(np.uint8)
    sig = sg.compute_signature(img)
    back = sg.TraceSignature.from_bytes(sig.search_keys(), sig.features())
    assert back.search_keys() == sig.search_keys() and back.features() == sig.features()
    assert (back.width, back.height) == (w, h)
    x0, y0, x1, y1 = back.trim
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
