"""Trace signatures: per-export search keys, per-photo features, the frame between them, bad blobs, the content box."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.imaging import hashes
from pipeline.presets import CanvasSpec
from pipeline.trace import signatures as sg
from tests import synthetic


@pytest.fixture(scope="module")
def product() -> np.ndarray:
    return synthetic.product_shot(1, (600, 520))


@pytest.fixture(scope="module")
def blobs(product: np.ndarray) -> tuple[bytes, bytes]:
    return synthetic.trace_blobs(product)


def _keys(rgb: np.ndarray) -> sg.TraceSignature:
    small = hashes.downscale(rgb, hashes.HASH_SIDE)
    pdq, q = hashes.pdq(small)
    return sg.export_signature(small, width=rgb.shape[1], height=rgb.shape[0], pdq=pdq, pdq_quality=q,
                               phash=hashes.phash(rgb))


def test_search_keys_are_fixed_size_and_features_small(blobs: tuple[bytes, bytes]) -> None:
    keys, feats = blobs
    assert len(keys) == sg.SEARCH_KEYS_SIZE <= 1400
    assert 0 < len(feats) <= 40_000
    photo = sg.PhotoFeatures.from_bytes(feats)
    assert 50 <= len(photo.uv) <= sg.SIFT_MAX
    assert photo.thumbnail[:4] == b"RIFF"  # WebP
    assert len(sg.TraceSignature.from_bytes(keys).sketch_desc) == sg.SKETCH_K


def test_search_keys_reuse_the_exports_own_hashes(product: np.ndarray) -> None:
    small = hashes.downscale(product, hashes.HASH_SIDE)
    pdq, q = hashes.pdq(small)
    ph = hashes.phash(product)
    sig = sg.TraceSignature.from_bytes(sg.export_search_keys(small, width=600, height=520, pdq=pdq, pdq_quality=q,
                                                             phash=ph))
    assert (sig.pdq, sig.pdq_quality, sig.phash) == (pdq, q, ph)
    with pytest.raises(ValueError, match="downscaled"):
        sg.export_search_keys(product, width=600, height=520, pdq=pdq, pdq_quality=q, phash=ph)
    with pytest.raises(ValueError, match="32 bytes"):
        sg.export_search_keys(small, width=600, height=520, pdq=pdq[:8], pdq_quality=q, phash=ph)


def test_round_trip_keeps_every_field(product: np.ndarray) -> None:
    sig = _keys(product)
    back = sg.TraceSignature.from_bytes(sig.search_keys())
    assert (back.width, back.height) == (sig.width, sig.height) == (600, 520)
    assert back.pdq == sig.pdq and back.phash == sig.phash
    assert back.pdq_trim == sig.pdq_trim and back.pdq_regions == sig.pdq_regions
    assert back.pdq_quality == sig.pdq_quality
    assert np.array_equal(back.sketch_desc, sig.sketch_desc)
    # positions are quantised to 1/255 of the side, angles to 360/256 degrees
    assert np.abs(back.sketch_geo[:, 0] - sig.sketch_geo[:, 0]).max() <= 600 / 255
    assert np.abs(back.sketch_geo[:, 1] - sig.sketch_geo[:, 1]).max() <= 520 / 255
    dang = np.abs((back.sketch_geo[:, 2] - sig.sketch_geo[:, 2] + 180) % 360 - 180)
    assert dang.max() <= 360 / 256
    assert np.array_equal(back.sketch_geo[:, 3], sig.sketch_geo[:, 3])
    assert back.search_keys() == sig.search_keys()


def test_photo_features_round_trip(product: np.ndarray) -> None:
    feats = sg.photo_features(product)
    photo = sg.PhotoFeatures.from_bytes(feats)
    assert photo.size == (600, 520) and max(photo.feature_size) == sg.feature_side(600, 520) <= 600
    assert photo.to_bytes() == feats
    assert ((photo.uv >= 0) & (photo.uv <= 1)).all()
    thumb = photo.thumbnail_rgb
    assert thumb is not None and max(thumb.shape[:2]) == sg.THUMB_SIDE
    # feature-frame px -> unit is the inverse of feature_xy
    xy = photo.feature_xy()
    back = np.c_[xy, np.ones(len(xy))] @ photo.to_unit().T
    assert np.allclose(back[:, :2], photo.uv, atol=1e-5)


def test_compute_is_deterministic(product: np.ndarray, blobs: tuple[bytes, bytes]) -> None:
    assert synthetic.trace_blobs(product) == blobs


@pytest.mark.parametrize("blob, match", [
    (b"", "expected"),
    (b"XXXX" + bytes(sg.SEARCH_KEYS_SIZE - 4), "bad magic"),
    (bytes(sg.SEARCH_KEYS_SIZE + 1), "expected"),
])
def test_bad_search_keys_are_rejected(blob: bytes, match: str) -> None:
    with pytest.raises(sg.SignatureError, match=match):
        sg.TraceSignature.from_bytes(blob)


def test_bad_features_are_rejected(blobs: tuple[bytes, bytes]) -> None:
    feats = blobs[1]
    with pytest.raises(sg.SignatureError, match="expected"):
        sg.PhotoFeatures.from_bytes(feats[:-3])
    with pytest.raises(sg.SignatureError, match="bad magic"):
        sg.PhotoFeatures.from_bytes(b"NOPE" + feats[4:])


def test_features_of_the_per_export_format_say_so() -> None:
    old = b"CMF1" + bytes(40)  # what catalogmark wrote before per-photo trace data (keypoints in export pixels)
    with pytest.raises(sg.SignatureError, match="before per-photo"):
        sg.PhotoFeatures.from_bytes(old)


def test_rejects_non_rgb_or_tiny_input() -> None:
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        sg.photo_features(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        sg.photo_features(np.zeros((1, 400, 3), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        sg.export_search_keys(np.zeros((8, 400, 3), np.uint8), width=400, height=8, pdq=bytes(32), pdq_quality=0,
                              phash=bytes(8))


@pytest.mark.parametrize("spec", [
    CanvasSpec(1000, 1000, "pad"), CanvasSpec(500, 700, "cover"), CanvasSpec(400, 400, "fit"),
    CanvasSpec(900, 900, "pad", background=(240, 240, 240)),
], ids=["pad", "cover", "fit", "pad-grey"])
def test_photo_thumbnail_renders_into_the_export_frame(spec: CanvasSpec) -> None:
    photo = synthetic.product_shot(5, (900, 640))
    canvas, frame = synthetic.place_photo(photo, spec)
    keys, feats = synthetic.trace_blobs(canvas, photo)
    view = sg.export_trace(keys, feats, sg.Frame.from_dict(frame))
    assert (view.width, view.height) == (canvas.shape[1], canvas.shape[0])
    thumb = view.thumbnail_rgb()
    assert thumb is not None and thumb.shape[:2] == view.thumb_size[::-1]
    tw, th = view.thumb_size
    ref = hashes.downscale(canvas, max(tw, th)) if max(tw, th) < max(canvas.shape[:2]) else canvas
    assert ref.shape == thumb.shape
    # the rendered thumbnail is the export at thumbnail size (WebP and resampling aside)
    err = np.abs(ref.astype(int) - thumb.astype(int))
    assert np.median(err) <= 2 and np.percentile(err, 99) <= 40
    # keypoints map into the export where the photo's features are
    f2e = view.feature_to_export()
    xy = view.photo.feature_xy()
    ex = np.c_[xy, np.ones(len(xy))] @ f2e.T
    fw, fh = view.photo.feature_size
    sw, sh = frame["scaled"]
    assert np.allclose(ex[:, 0], (xy[:, 0] + 0.5) / fw * sw + frame["offset"][0] - 0.5, atol=1e-3)
    assert np.allclose(ex[:, 1], (xy[:, 1] + 0.5) / fh * sh + frame["offset"][1] - 0.5, atol=1e-3)


def test_frame_from_record() -> None:
    assert sg.frame_of({"extra": {}}) is None and sg.frame_of(None) is None
    f = sg.frame_of({"extra": {"frame": {"scaled": [800, 600], "offset": [100, 200], "canvas": [1000, 1000]}}})
    assert f == sg.Frame((800, 600), (100, 200), (1000, 1000), (255, 255, 255))  # no background recorded: white
    with pytest.raises(sg.SignatureError, match="malformed"):
        sg.frame_of({"extra": {"frame": {"scaled": [800]}}})


def test_content_box_finds_the_picture_inside_padding(product: np.ndarray) -> None:
    padded = synthetic.pad(synthetic.letterbox(product, 16 / 9, (0, 0, 0)), 0.2, (240, 240, 240))
    x0, y0, x1, y1 = sg.content_box(padded)
    # nested borders (grey page, black bars, white studio background) all trimmed down to the product
    ref = sg.content_box(product)
    assert abs((x1 - x0) - (ref[2] - ref[0])) <= 4 and abs((y1 - y0) - (ref[3] - ref[1])) <= 4


def _content_box_by_definition(rgb: np.ndarray, tol: int = 16, min_frac: float = 0.004,
                               rounds: int = 3) -> tuple[int, int, int, int]:
    """content_box written straight from its definition (int16 distances, row/column means), to pin the fast one."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = 0, 0, w, h
    for _ in range(rounds):
        sub = rgb[y0:y1, x0:x1].astype(np.int16)
        sh, sw = sub.shape[:2]
        if sh < 16 or sw < 16:
            break
        bg = np.median(np.concatenate([sub[1], sub[-2], sub[:, 1], sub[:, -2]]), axis=0)
        diff = np.abs(sub - bg).max(axis=2) > tol
        diff[[0, -1], :] = False
        diff[:, [0, -1]] = False
        rows = np.flatnonzero(diff.mean(axis=1) > min_frac)
        cols = np.flatnonzero(diff.mean(axis=0) > min_frac)
        if rows.size == 0 or cols.size == 0:
            break
        rows = np.r_[0, rows] if rows[0] == 1 else rows
        rows = np.r_[rows, sh - 1] if rows[-1] == sh - 2 else rows
        cols = np.r_[0, cols] if cols[0] == 1 else cols
        cols = np.r_[cols, sw - 1] if cols[-1] == sw - 2 else cols
        box = x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1
        if (box[2] - box[0]) < 0.1 * w or (box[3] - box[1]) < 0.1 * h or box == (x0, y0, x1, y1):
            break
        x0, y0, x1, y1 = box
    return x0, y0, x1, y1


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), w=st.integers(16, 90), h=st.integers(16, 90), noise=st.integers(0, 20),
       stripes=st.booleans())
def test_content_box_equals_its_definition(seed: int, w: int, h: int, noise: int, stripes: bool) -> None:
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 256, 3)
    img = np.empty((h, w, 3), np.int64)
    img[:] = bg
    if stripes:  # a faint nested border pattern: distances near tol
        img[1:-1:2] = bg + rng.integers(-20, 21, 3)
    x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    x1, y1 = int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))
    img[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0, 3))
    img += rng.integers(-noise, noise + 1, img.shape)
    rgb = img.clip(0, 255).astype(np.uint8)
    assert sg.content_box(rgb) == _content_box_by_definition(rgb)


def test_content_box_of_blank_or_full_images() -> None:
    assert sg.content_box(np.full((50, 60, 3), 255, np.uint8)) == (0, 0, 60, 50)
    noise = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    assert sg.content_box(noise) == (0, 0, 30, 40)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=st.integers(16, 300), h=st.integers(16, 300), seed=st.integers(0, 2**16))
def test_round_trip_any_size(w: int, h: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(128, 60, (h, w, 3)), 0, 255).astype(np.uint8)
    keys, feats = synthetic.trace_blobs(img)
    back = sg.TraceSignature.from_bytes(keys)
    assert back.search_keys() == keys and sg.PhotoFeatures.from_bytes(feats).to_bytes() == feats
    assert (back.width, back.height) == (w, h)
    x0, y0, x1, y1 = back.trim
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
