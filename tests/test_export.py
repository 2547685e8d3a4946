"""Tests for the export stage: formats, byte-cap quality search, metadata embedding."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from pipeline.errors import ImageError
from pipeline.imaging.icc import SRGB_DESCRIPTION, SRGB_ICC
from pipeline.metadata.read import read_embedded
from pipeline.models import Canvas, CaptureInfo, Marked
from pipeline.stages import export, fingerprint


@pytest.fixture
def noisy() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)


def _encode(pixels, job, owner, key):
    canvas = Canvas(pixels, (0, 0, pixels.shape[1], pixels.shape[0]), "00" * 32, CaptureInfo())
    marked = Marked(pixels, canvas.content_box, None, 0x1234567890)
    fp = fingerprint.fingerprint(marked, canvas, job, owner, key, record_id="rtest",
                                 timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    return export.encode(marked, fp, job)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_each_format_encodes_with_metadata(fmt, product_image, make_job, make_preset, jpeg_file, owner, owner_key):
    job = make_job(jpeg_file, preset=make_preset(format=fmt, max_bytes=None))
    out = _encode(product_image, job, owner, owner_key)
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.format == {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt]
        assert im.size == (product_image.shape[1], product_image.shape[0])
    meta = read_embedded(out.data)
    assert meta.present and meta.claim and meta.claim["record_id"] == "rtest"
    if fmt == "png":
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(out.data)).convert("RGB")), product_image)


def test_srgb_profile_is_lcms_srgb_and_an_identity() -> None:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(SRGB_ICC))
    assert ImageCms.getProfileDescription(profile).strip() == SRGB_DESCRIPTION
    assert len(SRGB_ICC) < 1024 and SRGB_ICC[36:40] == b"acsp" and SRGB_ICC[16:20] == b"RGB "
    rng = np.random.default_rng(5)
    img = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    out = ImageCms.profileToProfile(img, ImageCms.createProfile("sRGB"), profile)
    assert out is not None
    assert np.abs(np.asarray(out, np.int16) - np.asarray(img, np.int16)).max() <= 1


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_every_format_embeds_the_srgb_profile_and_validates(fmt, product_image, make_job, make_preset, jpeg_file,
                                                            owner, owner_key, tmp_path, exiftool):
    job = make_job(jpeg_file, preset=make_preset(format=fmt, max_bytes=None))
    out = _encode(product_image, job, owner, owner_key)
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.info.get("icc_profile") == SRGB_ICC  # Pillow
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(out.data)
    doc = json.loads(subprocess.run([exiftool, "-j", "-G1", "-a", "-validate", "-warning", "-ICC_Profile:ProfileDescription", str(path)],
                                    capture_output=True, text=True, check=True).stdout)[0]
    assert doc["ICC_Profile:ProfileDescription"] == SRGB_DESCRIPTION  # an independent reader
    assert doc["ExifTool:Validate"] == "OK", {k: v for k, v in doc.items() if "Warning" in k}


def test_byte_cap_lowers_quality_to_fit(noisy, make_job, make_preset, jpeg_file, owner, owner_key):
    uncapped = _encode(noisy, make_job(jpeg_file, preset=make_preset(max_bytes=None, quality=95)), owner, owner_key)
    cap = uncapped.size_bytes // 2
    capped = _encode(noisy, make_job(jpeg_file, preset=make_preset(max_bytes=cap, quality=95, min_quality=10)),
                     owner, owner_key)
    assert capped.size_bytes <= cap < uncapped.size_bytes
    assert 10 <= capped.quality < 95
    # The search finds the highest quality that fits: one step up no longer fits.
    one_up = _encode(noisy, make_job(jpeg_file, preset=make_preset(max_bytes=None, quality=capped.quality + 1)),
                     owner, owner_key)
    assert one_up.size_bytes > cap


def test_impossible_cap_is_a_clear_per_image_error(noisy, make_job, make_preset, jpeg_file, owner, owner_key):
    with pytest.raises(ImageError, match="byte cap"):
        _encode(noisy, make_job(jpeg_file, preset=make_preset(max_bytes=5_000, min_quality=60)), owner, owner_key)
    with pytest.raises(ImageError, match="PNG output"):
        _encode(noisy, make_job(jpeg_file, preset=make_preset(format="png", max_bytes=5_000)), owner, owner_key)


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=20, max_value=95))
def test_cap_always_respected(quality):
    from pipeline.keys import OwnerKey
    from pipeline.models import ImageJob, Owner
    from tests.conftest import FIXED_SECRET, _preset

    rng = np.random.default_rng(quality)
    pixels = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    preset = _preset(max_bytes=40_000, quality=quality, min_quality=5)
    job = ImageJob("/x.jpg", "/x.jpg", "S", "gallery", 1, preset, "/tmp/unused.jpg")
    out = _encode(pixels, job, Owner("O", "(c) O"), OwnerKey(FIXED_SECRET))
    assert out.size_bytes <= 40_000
