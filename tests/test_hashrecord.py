"""Tests for the hash-record stage: cryptographic and perceptual hashes, and the Record it builds."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import ImageError
from pipeline.imaging import hashes
from pipeline.models import Canvas, CaptureInfo, Exported, Fingerprint, Marked, VisibleMark
from pipeline.stages import hashrecord as hr


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def exported(product_image) -> Exported:
    data = _png(product_image)
    h, w = product_image.shape[:2]
    return Exported("/out/x.png", hashlib.sha256(data).hexdigest(), len(data), w, h, "png", None, data)


def test_pixel_hash_depends_on_pixels_and_shape(product_image):
    a = hr.pixel_sha256(product_image)
    assert a == hr.pixel_sha256(product_image.copy())
    assert a != hr.pixel_sha256(np.ascontiguousarray(product_image.transpose(1, 0, 2)))
    tweaked = product_image.copy()
    tweaked[0, 0, 0] ^= 1
    assert a != hr.pixel_sha256(tweaked)


def test_record_carries_every_hash(exported, product_image, make_job, jpeg_file, owner):
    job = make_job(jpeg_file)
    canvas = Canvas(product_image, (0, 0, 640, 480), "ab" * 32, CaptureInfo(make="Cam", original_width=640), 1234)
    marked = Marked(product_image, (0, 0, 640, 480), VisibleMark(0.5, 0.5, 0.3, 5.0, 0.3), payload=0x12_3456_789A)
    fp = Fingerprint(b"", b"", None, {"v": 1, "phash": "8f373714acfcf4d0"}, "sig==")
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    record, pixels = hr.hashrecord(exported, canvas, marked, fp, job, owner=owner, key_fingerprint="cm1:x",
                                   record_id="r1", job_key="k1", timestamp=ts)
    assert pixels.shape == (384, 512, 3)  # the decoded output at hashes.HASH_SIDE, for trace's search keys
    assert np.array_equal(pixels, hashes.downscale(product_image, hashes.HASH_SIDE))
    assert record.phash == "8f373714acfcf4d0"  # the one signed in the claim, not computed again
    assert (record.pdq, record.pdq_quality) == (hashes.pdq(pixels)[0].hex(), hashes.pdq(pixels)[1])
    assert record.output_sha256 == exported.sha256 and record.source_sha256 == "ab" * 32
    assert record.pixel_sha256 == hr.pixel_sha256(product_image)
    assert record.payload == "123456789a"
    assert record.capture["make"] == "Cam" and record.capture["source_bytes"] == 1234
    assert record.visible_mark["rotation"] == 5.0
    assert record.created_at == "2026-01-01T00:00:00Z"
    assert record.extra["claim"] == {"v": 1, "phash": "8f373714acfcf4d0"}
    # what made the perceptual hashes: the method and the library versions (an upgrade can flip bits)
    made = record.extra["hashes"]
    from importlib.metadata import version

    import cv2
    import PIL

    assert made == {"phash": hashes.PHASH_METHOD, "pdq": hashes.PDQ_METHOD, "pillow": PIL.__version__,
                    "pdqhash": version("pdqhash"), "opencv": cv2.__version__, "numpy": np.__version__}
    assert "OpenCV's DCT" in made["phash"] and "imagehash itself is not used" in made["phash"]


def test_undecodable_output_is_an_image_error():
    with pytest.raises(ImageError, match="does not decode"):
        hr.decode_output(b"not an image")
