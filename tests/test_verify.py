"""Tests for `catalogmark verify`'s library side: VerifyResult's JSON contract (verify --json), ``ok`` and
``describe``, the blind read and the signed claim's payload tested when the blind read misses."""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import invisible, verify
from pipeline.invisible import chiptest
from pipeline.keys import OwnerKey
from pipeline.metadata.embed import finalize, save_kwargs
from pipeline.models import Canvas, CaptureInfo, Marked, Owner
from pipeline.stages.fingerprint import fingerprint
from pipeline.verify import TESTED, VerifyResult
from tests.conftest import product_on_white

PAYLOAD = 0x0A1B2C3D4E
RECORD_ID = "r00112233445566778899aab"
DESIGN_METADATA_KEYS = {"present", "signature_valid", "owner", "payload", "record_id"}
DESIGN_WATERMARK_KEYS = {"found", "payload", "confidence"}


@pytest.fixture
def export_file(tmp_path: Path, owner: Owner, owner_key: OwnerKey, make_preset, make_job):
    """Factory: a real exported file (invisible watermark embedded, metadata signed) -> (path, marked pixels)."""

    def factory(fmt: str = "jpeg", *, size=(1200, 900), watermark: bool = True, name: str = "out",
                key: OwnerKey | None = None) -> tuple[Path, np.ndarray]:
        key = key or owner_key
        rgb = product_on_white(size)
        pixels = invisible.embed(rgb, key, PAYLOAD, None) if watermark else rgb
        preset = make_preset(format=fmt)
        job = make_job(tmp_path / "src.jpg", preset=preset)
        h, w = pixels.shape[:2]
        marked = Marked(pixels, (0, 0, w, h), None, PAYLOAD if watermark else None)
        canvas = Canvas(rgb, (0, 0, w, h), "cd" * 32, CaptureInfo())
        fp = fingerprint(marked, canvas, job, owner, key, record_id=RECORD_ID,
                         timestamp=datetime(2026, 11, 23, tzinfo=UTC))
        buf = io.BytesIO()
        pil = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt]
        Image.fromarray(pixels).save(buf, pil, **({} if fmt == "png" else {"quality": 90}),
                                     **save_kwargs(fp, fmt))
        path = tmp_path / f"{name}.{preset.extension}"
        path.write_bytes(finalize(buf.getvalue(), fp, fmt))
        return path, pixels

    return factory


class Verified(dict):
    """``verify_file``'s result in its JSON form (what ``verify --json`` prints), with the result itself."""

    def __init__(self, result: VerifyResult) -> None:
        super().__init__(result.as_json())
        self.result = result


def verify_file(path: Path, **kw) -> Verified:
    return Verified(verify.verify_file(path, **kw))


def verify_ok(r: Verified) -> bool:
    return r.result.ok


def describe(r: Verified) -> str:
    return r.result.describe()


@dataclass
class FakeDetection:
    found: bool
    payload: int | None
    confidence: float


def assert_contract(result: dict) -> None:
    assert {"file", "metadata", "watermark"} <= set(result)
    assert set(result["metadata"]) >= DESIGN_METADATA_KEYS
    assert set(result["watermark"]) >= DESIGN_WATERMARK_KEYS
    json.dumps(result)  # one JSON document: everything must serialise


def test_public_key_only(export_file, owner_key):
    path, _ = export_file(watermark=False, size=(160, 120))
    r = verify_file(path, public_key=owner_key.public, key=None)
    assert_contract(r)
    assert r["file"] == str(path) and "error" not in r
    expected = {"present": True, "signature_valid": True, "owner": "Example Studio", "payload": None,
                "record_id": RECORD_ID, "signer_verified": True, "pixels_match": True, "problems": []}
    assert {k: r["metadata"][k] for k in expected} == expected
    assert r["watermark"]["found"] is False and r["watermark"]["payload"] is None
    assert r["watermark"]["confidence"] == 0.0 and "key" in r["watermark"]["reason"]
    assert verify_ok(r)
    assert describe(r).startswith("OK")


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_owner_key_reads_metadata_and_watermark(export_file, owner_key, fmt):
    path, _ = export_file(fmt)
    r = verify_file(path, public_key=owner_key.public, key=owner_key)
    assert_contract(r)
    assert r["metadata"]["signature_valid"] and r["metadata"]["payload"] == f"{PAYLOAD:010x}"
    assert r["watermark"]["found"], r
    assert r["watermark"]["payload"] == f"{PAYLOAD:010x}" == r["metadata"]["payload"]
    assert 0.0 < r["watermark"]["confidence"] <= 1.0
    assert verify_ok(r)


def test_stripped_copy_passes_on_the_watermark_alone(export_file, owner_key, other_key, tmp_path):
    path, _ = export_file()
    stripped = tmp_path / "stripped.jpg"
    with Image.open(path) as im:
        im.convert("RGB").save(stripped, "JPEG", quality=88)  # no exif/xmp: metadata gone
    r = verify_file(stripped, public_key=owner_key.public, key=owner_key)
    assert r["metadata"]["present"] is False and not r["metadata"]["signature_valid"]
    assert r["watermark"]["found"] and r["watermark"]["payload"] == f"{PAYLOAD:010x}"
    assert verify_ok(r)
    wrong = verify_file(stripped, public_key=other_key.public, key=other_key)
    assert not wrong["watermark"]["found"] and not verify_ok(wrong)


def test_no_key_at_all_is_not_ok(export_file):
    path, _ = export_file(watermark=False, size=(160, 120))
    r = verify_file(path, public_key=None, key=None)
    assert r["metadata"]["signature_valid"]  # consistent with the key embedded in the file...
    assert not r["metadata"]["signer_verified"]  # ...but nobody said whose key that is
    assert not verify_ok(r)
    assert "unverified" in describe(r)


def test_wrong_public_key_and_replaced_pixels_fail(export_file, owner_key, other_key, tmp_path):
    path, pixels = export_file(watermark=False, size=(160, 120))
    r = verify_file(path, public_key=other_key.public, key=None)
    assert not r["metadata"]["signature_valid"] and not verify_ok(r)
    # Same metadata, pixels half inverted (what test_cli does): the signed pHash no longer matches.
    tampered = tmp_path / "tampered.jpg"
    with Image.open(path) as im:
        exif, xmp = im.info["exif"], im.info["xmp"]
    bad = pixels.copy()
    bad[:, :80] = 255 - bad[:, :80]
    Image.fromarray(bad).save(tampered, "JPEG", quality=90, exif=exif, xmp=xmp)
    r = verify_file(tampered, public_key=owner_key.public, key=None)
    assert r["metadata"]["signature_valid"] and not r["metadata"]["pixels_match"]
    assert not verify_ok(r)
    assert describe(r).startswith("FAIL")


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"])
def test_not_an_image_gives_an_error_not_an_exception(tmp_path, owner_key, content):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    r = verify_file(path, public_key=owner_key.public, key=owner_key)
    assert_contract(r)
    assert "error" in r and str(path) in r["error"]
    assert not r["metadata"]["present"] and not r["watermark"]["found"]
    assert not verify_ok(r)
    assert "error" in describe(r)


def test_missing_file_or_folder(tmp_path, owner_key):
    r = verify_file(tmp_path / "nope.png", public_key=owner_key.public, key=owner_key)
    assert_contract(r)
    assert "no such file" in r["error"] and not verify_ok(r)
    folder = verify_file(tmp_path, public_key=owner_key.public, key=owner_key)
    assert_contract(folder)
    assert "folder" in folder["error"] and not verify_ok(folder)


def test_watermark_reader_result_is_mapped(export_file, owner_key, monkeypatch):
    path, _ = export_file(watermark=False, size=(160, 120))
    monkeypatch.setattr(invisible, "read", lambda rgb, key, hint=None: FakeDetection(True, 0x1F, 0.87654321))
    r = verify_file(path, public_key=None, key=owner_key)
    assert r["watermark"] == {"found": True, "payload": "000000001f", "confidence": 0.8765, "mode": "blind"}
    assert verify_ok(r)  # the watermark alone suffices, even though the signer is unverified
    monkeypatch.setattr(invisible, "read", lambda rgb, key, hint=None: FakeDetection(False, 0x1F, 0.2))
    assert verify_file(path, public_key=None, key=owner_key)["watermark"]["payload"] is None


def test_watermark_reader_failure_is_reported_not_raised(export_file, owner_key, monkeypatch):
    path, _ = export_file(watermark=False, size=(160, 120))

    def boom(rgb, key, hint=None):
        raise RuntimeError("reader exploded")

    monkeypatch.setattr(invisible, "read", boom)
    r = verify_file(path, public_key=owner_key.public, key=owner_key)
    assert r["watermark"]["found"] is False and "reader exploded" in r["watermark"]["reason"]
    assert verify_ok(r)  # the metadata still verifies


# --- public owner fields that disagree with the signed claim ---------------------------------------------------

def _replace_same_length(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) == 1, (old, data.count(old))
    return data.replace(old, new)


def test_intact_export_has_no_altered_fields(export_file, owner_key):
    path, _ = export_file("jpeg")
    result = verify_file(path, public_key=owner_key.public, key=owner_key)
    assert verify_ok(result) and result["metadata"]["altered_fields"] == []


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_a_unicode_owner_as_every_format_writes_it_is_not_an_alteration(tmp_path, owner_key, make_preset,
                                                                         make_job, fmt):
    """EXIF ASCII fields carry a transliteration and IPTC By-line is cut at 32 bytes: both are the signed value
    as the format forces it, not a change."""
    owner = Owner(name="Ñandú Estudio — 東京 «Ünïcødé» Workshop", copyright="© 2026 Ñandú Estudio — 東京. Tous droits réservés.")
    rgb = product_on_white((400, 300))
    job = make_job(tmp_path / "src.jpg", preset=make_preset(format=fmt))
    marked = Marked(rgb, (0, 0, 400, 300), None, None)
    fp = fingerprint(marked, Canvas(rgb, (0, 0, 400, 300), "cd" * 32, CaptureInfo()), job, owner, owner_key,
                     record_id=RECORD_ID, timestamp=datetime(2026, 11, 23, tzinfo=UTC))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt], **save_kwargs(fp, fmt))
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(finalize(buf.getvalue(), fp, fmt))
    result = verify_file(path, public_key=owner_key.public, key=None)
    assert result["metadata"]["signature_valid"], result
    assert result["metadata"]["altered_fields"] == [] and verify_ok(result), result["metadata"]["problems"]


def test_owner_fields_rewritten_in_code_are_named_with_their_new_values(export_file, owner_key, owner, tmp_path):
    """piexif rewrites EXIF Artist and Copyright, a byte edit changes XMP dc:creator: the signed claim is intact,
    yet verify fails and names each field with what it now says (never skipped: no external tool)."""
    import piexif

    path, _ = export_file("jpeg")
    exif = piexif.load(str(path))
    exif["0th"][piexif.ImageIFD.Artist] = b"Copycat Traders"
    exif["0th"][piexif.ImageIFD.Copyright] = b"(c) Copycat Traders"
    piexif.insert(piexif.dump(exif), str(path))
    creator = f"<dc:creator><rdf:Seq><rdf:li>{owner.name}</rdf:li>".encode()
    path.write_bytes(_replace_same_length(path.read_bytes(), creator,
                                          creator.replace(owner.name.encode(), b"Copycat Shop 1")))
    result = verify_file(path, public_key=owner_key.public, key=owner_key)
    md = result["metadata"]
    assert md["signature_valid"] and md["pixels_match"]  # the claim itself is untouched
    assert md["altered_fields"] == [
        {"field": "EXIF Artist", "found": "Copycat Traders", "signed": owner.name},
        {"field": "EXIF Copyright", "found": "(c) Copycat Traders", "signed": owner.copyright},
        {"field": "XMP dc:creator", "found": "Copycat Shop 1", "signed": owner.name},
    ]
    assert "EXIF Artist was changed to 'Copycat Traders' (the signed claim says 'Example Studio')" in md["problems"]
    assert not verify_ok(result)  # even though the invisible watermark is found
    assert result["watermark"]["found"]
    text = describe(result)
    assert text.startswith("FAIL") and "XMP dc:creator was changed to 'Copycat Shop 1'" in text


def test_owner_fields_rewritten_by_exiftool_are_caught(export_file, owner_key, owner, exiftool):
    import subprocess

    path, _ = export_file("jpeg")
    r = subprocess.run([exiftool, "-overwrite_original", "-Artist=Copycat Traders", "-XMP-dc:Creator=Copycat Traders",
                        "-XMP-dc:Rights=(c) Copycat Traders", "-IPTC:By-line=Copycat Traders",
                        "-IPTC:CopyrightNotice=(c) Copycat Traders", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    result = verify_file(path, public_key=owner_key.public, key=owner_key)
    altered = {a["field"]: a["found"] for a in result["metadata"]["altered_fields"]}
    assert altered == {"EXIF Artist": "Copycat Traders", "XMP dc:creator": "Copycat Traders",
                       "XMP dc:rights": "(c) Copycat Traders", "IPTC By-line": "Copycat Traders",
                       "IPTC CopyrightNotice": "(c) Copycat Traders"}
    assert result["metadata"]["signature_valid"] and not verify_ok(result)


# --- a small product: the blind read misses, the signed claim's payload is tested -------------------------------

@pytest.fixture
def small_product_export(tmp_path: Path, owner: Owner, owner_key: OwnerKey, make_preset, make_job):
    """A signed JPEG export of a product covering a fifth of a 720 px white canvas: too few tiles for the payload
    to decode blind, its chips still there."""
    from tests import synthetic

    rgb, mask = synthetic.small_product()
    box = (0, 0, rgb.shape[1], rgb.shape[0])
    pixels = invisible.embed(rgb, owner_key, PAYLOAD, mask)
    job = make_job(tmp_path / "src.jpg", preset=make_preset(format="jpeg"))
    marked = Marked(pixels, box, None, PAYLOAD)
    fp = fingerprint(marked, Canvas(rgb, box, "cd" * 32, CaptureInfo()), job, owner, owner_key,
                     record_id=RECORD_ID, timestamp=datetime(2026, 11, 23, tzinfo=UTC))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90, **save_kwargs(fp, "jpeg"))
    path = tmp_path / "small.jpg"
    path.write_bytes(finalize(buf.getvalue(), fp, "jpeg"))
    return path


def test_a_small_product_whose_payload_will_not_decode_shows_the_claims_chips(small_product_export, owner_key):
    r = verify_file(small_product_export, public_key=owner_key.public, key=owner_key)
    assert_contract(r)
    assert not invisible.read(np.asarray(Image.open(small_product_export).convert("RGB")), owner_key).found
    w = r["watermark"]
    assert w["found"] and w["mode"] == TESTED and w["payload"] == f"{PAYLOAD:010x}" == r["metadata"]["payload"]
    assert w["chip_z"] >= chiptest.DETECT_Z
    assert w["false_positive_probability"] == pytest.approx(chiptest.fp_bound(w["chip_z"]), rel=1e-2)
    assert verify_ok(r)
    assert f"its chips correlate at z = {w['chip_z']}" in describe(r)


def test_the_claims_payload_is_tested_only_under_the_owners_key_and_a_valid_signature(
        small_product_export, owner_key, other_key, tmp_path):
    # another owner's key: its chips are not there (and the signature does not verify against it either)
    r = verify_file(small_product_export, public_key=other_key.public, key=other_key)
    assert not r["watermark"]["found"] and "mode" not in r["watermark"] and not verify_ok(r)
    # the same pixels with the metadata stripped: nothing says which payload to test, and the blind read misses
    stripped = tmp_path / "stripped.png"
    with Image.open(small_product_export) as im:
        im.convert("RGB").save(stripped, "PNG")
    r = verify_file(stripped, public_key=owner_key.public, key=owner_key)
    assert not r["metadata"]["present"] and not r["watermark"]["found"] and "chip_z" not in r["watermark"]
    assert not verify_ok(r)


def test_a_tested_payload_that_is_not_there_says_so(export_file, owner_key):
    """A signed export whose blind read misses and whose chips are not there either (here: the reader and the
    test both see an unmarked picture): not found, with the test's z in the reason line."""
    path, _ = export_file(watermark=False, size=(640, 480))
    with Image.open(path) as im:
        assert im.size == (640, 480)
    claimed = verify.verify_file(path, public_key=owner_key.public, key=owner_key).metadata
    assert claimed.payload is None  # an unmarked export has no payload in its claim: nothing to test
    rgb = np.asarray(Image.open(path).convert("RGB"))
    forged = dataclasses.replace(claimed, payload=f"{PAYLOAD:010x}")
    w = verify.read_watermark(rgb, owner_key, forged)
    assert not w.found and w.chip_z is not None and w.chip_z < chiptest.DETECT_Z
    assert "not present (6 needed)" in w.describe()
