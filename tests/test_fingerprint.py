"""Tests for the fingerprint stage and the ``pipeline.metadata`` primitives it builds on.

EXIF/XMP/IPTC blocks and the signed claim (built through the stage), embedding (``metadata.embed``), reading
(``metadata.read``) and checking (``metadata.check``); one file because every test starts from the stage's
``build`` fixture.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import piexif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imagehash import phash as imagehash_phash
from PIL import Image

from pipeline.errors import ImageError
from pipeline.imaging.icc import SRGB_ICC
from pipeline.keys import OwnerKey
from pipeline.metadata.check import PHASH_MAX_DISTANCE, check_claim
from pipeline.metadata.claim import signed_bytes
from pipeline.metadata.embed import finalize, save_kwargs
from pipeline.metadata.exif import image_unique_id, ucs2_text
from pipeline.metadata.read import read_embedded
from pipeline.metadata.text import ascii_text, xml_clean
from pipeline.metadata.xmp import parse_xmp
from pipeline.models import Canvas, CaptureInfo, Fingerprint, ImageJob, Marked, Owner
from pipeline.presets import MetadataPolicy
from pipeline.stages.fingerprint import fingerprint
from tests.conftest import product_on_white

TS = datetime(2026, 11, 23, 12, 30, 5, tzinfo=UTC)
RECORD_ID = "r0123456789abcdef0123456"
PAYLOAD = 0x12345ABCDE
SOURCE_SHA = "ab" * 32
PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
NASTY_NAMES = [
    '<Studio & "Sons"> \'quoted\'',
    "Ünïcødé Ståhl & Søn — ©",
    "日本語の写真館",
    "emoji 📷 studio",
    "tab\tnew\nline\rcr",
    "]]> <!-- --> <![CDATA[ &amp; &#x41;",
]


def encode(pixels: np.ndarray, fp: Fingerprint, fmt: str, *, quality: int = 90) -> bytes:
    """What the export stage does: Pillow save with save_kwargs, then finalize."""
    buf = io.BytesIO()
    opts = {} if fmt == "png" else {"quality": quality}
    Image.fromarray(pixels).save(buf, PIL_FORMAT[fmt], **opts, **save_kwargs(fp, fmt))
    return finalize(buf.getvalue(), fp, fmt)


def decode(data: bytes | Path) -> np.ndarray:
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    with Image.open(src) as im:
        return np.asarray(im.convert("RGB"))


def exiftool_json(exiftool: str, *files: Path) -> list[dict]:
    r = subprocess.run([exiftool, "-j", "-G1", "-a", *map(str, files)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


@pytest.fixture
def pixels() -> np.ndarray:
    return product_on_white((160, 120))


@pytest.fixture
def build(owner: Owner, owner_key: OwnerKey, make_preset, make_job, tmp_path: Path, pixels: np.ndarray):
    """Factory: ``build(fmt, owner=..., key=..., metadata=..., capture=..., payload=...)`` -> (Fingerprint, job)."""

    def factory(fmt: str = "jpeg", *, who: Owner | None = None, key: OwnerKey | None = None,
                metadata: MetadataPolicy | None = None, capture: CaptureInfo | None = None,
                payload: int | None = PAYLOAD, px: np.ndarray | None = None, sku: str = "SKU1"):
        px = pixels if px is None else px
        preset = make_preset(format=fmt, metadata=metadata or MetadataPolicy())
        job: ImageJob = make_job(tmp_path / "src.jpg", sku=sku, preset=preset)
        h, w = px.shape[:2]
        canvas = Canvas(px, (0, 0, w, h), SOURCE_SHA, capture or CaptureInfo())
        marked = Marked(px, (0, 0, w, h), None, payload)
        fp = fingerprint(marked, canvas, job, who or owner, key or owner_key, record_id=RECORD_ID, timestamp=TS)
        return fp, job

    return factory


@pytest.fixture
def write(tmp_path: Path, pixels: np.ndarray):
    """Factory: ``write(fp, fmt, name=..., px=...)`` -> path of a real file encoded as the export stage does."""

    def factory(fp: Fingerprint, fmt: str, *, name: str = "out", px: np.ndarray | None = None) -> Path:
        path = tmp_path / f"{name}.{fmt}"
        path.write_bytes(encode(pixels if px is None else px, fp, fmt))
        return path

    return factory


@pytest.fixture
def camera_jpeg(tmp_path: Path) -> Path:
    """A 'camera' JPEG with everything that must never reach an output: thumbnail, GPS, serials, MakerNote."""
    thumb = io.BytesIO()
    Image.fromarray(product_on_white((80, 60), seed=3)).save(thumb, "JPEG", quality=80)
    exif = piexif.dump({
        "0th": {
            piexif.ImageIFD.Make: b"Canon",
            piexif.ImageIFD.Model: b"EOS R5",
            piexif.ImageIFD.ImageDescription: b"SOURCE-SECRET-DESCRIPTION",
            piexif.ImageIFD.Artist: b"Somebody Else",
            piexif.ImageIFD.Orientation: 6,
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: b"2024:05:06 07:08:09",
            piexif.ExifIFD.BodySerialNumber: b"SN-0042424242",
            piexif.ExifIFD.LensSerialNumber: b"LSN-777",
            piexif.ExifIFD.MakerNote: b"MAKERNOTE-SECRET" * 4,
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((52, 1), (22, 1), (1234, 100)),
            piexif.GPSIFD.GPSLongitudeRef: b"E",
            piexif.GPSIFD.GPSLongitude: ((4, 1), (53, 1), (5, 1)),
        },
        "1st": {piexif.ImageIFD.Compression: 6},
        "thumbnail": thumb.getvalue(),
    })
    path = tmp_path / "camera.jpg"
    Image.fromarray(product_on_white((320, 240), seed=3)).save(path, "JPEG", quality=90, exif=exif)
    return path


def capture_of(path: Path) -> CaptureInfo:
    """What ingest keeps from a source's EXIF (including the serial, which goes to the ledger only)."""
    exif = piexif.load(str(path))
    return CaptureInfo(
        datetime_original=exif["Exif"][piexif.ExifIFD.DateTimeOriginal].decode(),
        make=exif["0th"][piexif.ImageIFD.Make].decode(),
        model=exif["0th"][piexif.ImageIFD.Model].decode(),
        serial=exif["Exif"][piexif.ExifIFD.BodySerialNumber].decode(),
        orientation=6,
    )


# ---------------------------------------------------------------------------------------------------------------
# The claim and the blocks


def test_claim_fields_and_signature(build, owner, owner_key, pixels):
    fp, job = build()
    c = fp.claim
    assert c == {
        "v": 2, "owner": owner.name, "copyright": owner.copyright, "key": owner_key.fingerprint, "record_id": RECORD_ID,
        "payload": f"{PAYLOAD:010x}", "phash": str(imagehash_phash(Image.fromarray(pixels))), "source_sha256": SOURCE_SHA, "sku": "SKU1",
        "preset": job.preset.name, "created": "2026-11-23T12:30:05Z",
    }
    assert len(c["phash"]) == 16
    assert signed_bytes(c) == json.dumps(c, sort_keys=True, separators=(",", ":")).encode()
    assert owner_key.public.verify(signed_bytes(c), fp.signature)
    assert build(payload=None)[0].claim["payload"] is None


def test_exif_is_built_from_scratch_without_ifd1(build):
    fp, _ = build()
    exif = piexif.load(fp.exif)
    assert exif["1st"] == {} and exif["thumbnail"] is None and exif["GPS"] == {}
    assert exif["0th"][piexif.ImageIFD.Orientation] == 1
    assert exif["Exif"][piexif.ExifIFD.PixelXDimension] == 160
    assert exif["Exif"][piexif.ExifIFD.PixelYDimension] == 120


def test_metadata_policy_flags(build, pixels):
    off = MetadataPolicy(exif=False, xmp=False, iptc=False)
    fp, _ = build(metadata=off)
    assert fp.exif == b"" and fp.xmp == b"" and fp.iptc == b"" and fp.signature
    assert save_kwargs(fp, "jpeg") == {"icc_profile": SRGB_ICC, "dpi": (72, 72)}  # colour, not metadata: always
    data = encode(pixels, fp, "jpeg")
    meta = read_embedded(data)
    assert not meta.present and meta.claim is None
    assert not check_claim(meta, pixels, None).present
    # IPTC only where the format allows it (JPEG).
    assert build("png")[0].iptc == b"" and build("webp")[0].iptc == b"" and build("jpeg")[0].iptc
    only_xmp = build(metadata=MetadataPolicy(exif=False, iptc=False))[0]
    assert set(save_kwargs(only_xmp, "jpeg")) == {"xmp", "icc_profile", "dpi"}


def test_capture_date_reaches_xmp_date_created_when_kept(build, write, exiftool):
    cap = CaptureInfo(datetime_original="2024:05:06 07:08:09")
    kept = write(build(capture=cap)[0], "jpeg", name="kept")
    dropped = write(build(capture=cap, metadata=MetadataPolicy(keep_capture_date=False))[0], "jpeg", name="dropped")
    kept_meta, dropped_meta = exiftool_json(exiftool, kept, dropped)
    assert kept_meta["XMP-photoshop:DateCreated"] == "2024:05:06 07:08:09"
    assert kept_meta["ExifIFD:DateTimeOriginal"] == "2024:05:06 07:08:09"
    assert "XMP-photoshop:DateCreated" not in dropped_meta and "ExifIFD:DateTimeOriginal" not in dropped_meta


def test_capture_date_and_camera_follow_policy(build):
    cap = CaptureInfo(datetime_original="2024-05-06T07:08:09", make="Canon", model="EOS R5", serial="SN1")
    keep = piexif.load(build(capture=cap, metadata=MetadataPolicy(keep_camera=True))[0].exif)
    assert keep["Exif"][piexif.ExifIFD.DateTimeOriginal] == b"2024:05:06 07:08:09"
    assert keep["0th"][piexif.ImageIFD.Make] == b"Canon" and keep["0th"][piexif.ImageIFD.Model] == b"EOS R5"
    drop = piexif.load(build(capture=cap, metadata=MetadataPolicy(keep_capture_date=False))[0].exif)
    assert piexif.ExifIFD.DateTimeOriginal not in drop["Exif"]
    assert piexif.ImageIFD.Make not in drop["0th"] and piexif.ImageIFD.Model not in drop["0th"]
    junk = CaptureInfo(datetime_original="last tuesday")
    assert piexif.ExifIFD.DateTimeOriginal not in piexif.load(build(capture=junk)[0].exif)["Exif"]


def test_xmp_is_well_formed_and_escaped(build):
    for name in NASTY_NAMES + ["ctrl\x00\x01\x1b chars\ufffe"]:
        who = Owner(name=name, copyright=f"© {name}", url="https://example.com/?a=1&b=<2>")
        fp, _ = build(who=who)
        props = parse_xmp(fp.xmp)  # defusedxml: raises if not well-formed
        assert props["dc:creator"] == [xml_clean(name)]
        assert props["dc:rights"] == xml_clean(f"© {name}")
        assert props["xmpRights:WebStatement"] == "https://example.com/?a=1&b=<2>"
        assert props["catalogmark:Owner"] == fp.claim["owner"] == xml_clean(name)
        assert fp.xmp.startswith(b"<?xpacket begin=") and fp.xmp.endswith(b'<?xpacket end="w"?>')


def test_deterministic(build, pixels):
    for fmt in ("jpeg", "png", "webp"):
        a, _ = build(fmt)
        b, _ = build(fmt)
        assert (a.exif, a.xmp, a.iptc, a.signature, a.claim) == (b.exif, b.xmp, b.iptc, b.signature, b.claim)
        assert encode(pixels, a, fmt) == encode(pixels, b, fmt)


# ---------------------------------------------------------------------------------------------------------------
# Embedding, read back by exiftool (an independent reader)


def test_exiftool_reads_every_block(build, write, exiftool, owner, owner_key):
    files = {fmt: write(build(fmt)[0], fmt) for fmt in ("jpeg", "png", "webp")}
    for fmt, meta in zip(files, exiftool_json(exiftool, *files.values()), strict=True):
        where = f"{fmt}: {meta}"
        assert meta["IFD0:Artist"] == owner.name, where
        assert meta["IFD0:Copyright"] == owner.copyright, where
        assert meta["IFD0:ImageDescription"] == f"SKU1 - (C) {owner.name} - record {RECORD_ID}", where  # ASCII
        assert meta["IFD0:XPComment"] == meta["ExifIFD:UserComment"] == f"SKU1 — © {owner.name} — record {RECORD_ID}"
        assert meta["IFD0:XPAuthor"] == owner.name
        assert meta["IFD0:Software"].startswith("catalogmark ")
        assert meta["IFD0:Orientation"] == "Horizontal (normal)"
        assert meta["IFD0:ModifyDate"] == "2026:11:23 12:30:05"
        assert meta["ExifIFD:ImageUniqueID"] == image_unique_id(RECORD_ID)
        assert (meta["ExifIFD:ExifImageWidth"], meta["ExifIFD:ExifImageHeight"]) == (160, 120)
        assert meta["XMP-dc:Creator"] == owner.name, where
        assert meta["XMP-dc:Rights"] == owner.copyright
        assert meta["XMP-xmpRights:Marked"] is True
        assert meta["XMP-xmpRights:WebStatement"] == owner.url
        assert meta["XMP-plus:LicensorURL"] == owner.url
        assert meta["XMP-dc:Title"] == "SKU1"  # as IPTC ObjectName (MWG)
        assert meta["XMP-iptcCore:CreatorWorkURL"] == owner.url
        assert "XMP-photoshop:DateCreated" not in meta  # no capture date in this source
        assert meta["XMP-catalogmark:Owner"] == owner.name
        assert meta["XMP-catalogmark:RecordID"] == RECORD_ID
        assert meta["XMP-catalogmark:Payload"] == f"{PAYLOAD:010x}"
        assert meta["XMP-catalogmark:KeyFingerprint"] == owner_key.fingerprint
        assert meta["XMP-catalogmark:Signature"] and meta["XMP-catalogmark:PublicKey"]
        assert not any("Warning" in k for k in meta), where
        if fmt == "jpeg":
            assert meta["IPTC:By-line"] == owner.name
            assert meta["IPTC:CopyrightNotice"] == owner.copyright
            assert meta["IPTC:Credit"] == owner.name
            assert meta["IPTC:Caption-Abstract"].startswith("SKU1 — ©")
            assert meta["IPTC:CodedCharacterSet"] == "UTF8"
            assert meta["Photoshop:IPTCDigest"] == meta["File:CurrentIPTCDigest"]  # IPTC and XMP in sync
        else:
            assert not any(k.startswith("IPTC") for k in meta)


NON_ASCII_OWNER = "山田写真館 Студия Ñandú"


def test_non_ascii_owner_is_ascii_in_ascii_tags_and_exact_elsewhere(build, write, exiftool, exiv2, owner):
    who = dataclasses.replace(owner, name=NON_ASCII_OWNER, copyright=f"© 2026 {NON_ASCII_OWNER}")
    files = {fmt: write(build(fmt, who=who)[0], fmt) for fmt in ("jpeg", "png", "webp")}
    for fmt, meta in zip(files, exiftool_json(exiftool, *files.values()), strict=True):
        where = f"{fmt}: {meta}"
        assert meta["IFD0:Artist"] == "ShanTianXieZhenGuan Studiya Nandu", where
        assert meta["IFD0:Copyright"] == "(C) 2026 ShanTianXieZhenGuan Studiya Nandu", where
        assert all(ord(c) < 128 for c in meta["IFD0:ImageDescription"]), where
        assert meta["IFD0:XPAuthor"] == meta["XMP-dc:Creator"] == NON_ASCII_OWNER, where
        assert meta["ExifIFD:UserComment"] == meta["IFD0:XPComment"] == meta["XMP-dc:Description"], where
        assert NON_ASCII_OWNER in meta["ExifIFD:UserComment"]
        assert not any("Warning" in k for k in meta), where
        with Image.open(files[fmt]) as im:  # Pillow reads the ASCII tags as text, not mojibake
            assert im.getexif()[0x013B] == "ShanTianXieZhenGuan Studiya Nandu"
    # exiv2, a second independent reader, agrees on the Unicode tags of the JPEG
    out = subprocess.run([exiv2, "-q", "-K", "Exif.Image.XPAuthor", "-K", "Exif.Photo.UserComment", "-K",
                          "Exif.Image.Artist", "-P", "kt", str(files["jpeg"])],
                         capture_output=True, text=True, check=True).stdout
    values = dict(line.split(None, 1) for line in out.splitlines())
    assert values["Exif.Image.Artist"].strip() == "ShanTianXieZhenGuan Studiya Nandu"
    assert values["Exif.Image.XPAuthor"].strip() == NON_ASCII_OWNER
    assert NON_ASCII_OWNER in values["Exif.Photo.UserComment"]


def test_exiftool_validate_finds_no_structural_problem(build, write, exiftool):
    files = [write(build(fmt)[0], fmt) for fmt in ("jpeg", "png", "webp")]
    r = subprocess.run([exiftool, "-j", "-validate", "-warning", "-a", *map(str, files)],
                       capture_output=True, text=True, check=True)
    for meta in json.loads(r.stdout):
        warnings = meta.get("Warning", [])
        warnings = [warnings] if isinstance(warnings, str) else warnings
        # ComponentsConfiguration needs type UNDEFINED in the Exif sub-IFD, which Pillow cannot write there;
        # it only describes the JPEG's channel order (always YCbCr) and readers do not need it.
        assert [w for w in warnings if "ComponentsConfiguration" not in w] == [], meta


def test_owner_names_survive_exiftool_round_trip(build, write, exiftool):
    files = []
    for i, name in enumerate(NASTY_NAMES):
        fp, _ = build(who=Owner(name=name, copyright=f"(c) {name}", url="https://example.com"))
        files.append(write(fp, "jpeg", name=f"n{i}"))
    for name, meta in zip(NASTY_NAMES, exiftool_json(exiftool, *files), strict=True):
        assert meta["XMP-dc:Creator"] == name
        assert meta["XMP-catalogmark:Owner"] == name
        assert meta["XMP-dc:Rights"] == f"(c) {name}"
        assert meta["IFD0:Artist"] == ascii_text(name) and meta["IFD0:Artist"].isascii()
        assert meta["IFD0:XPAuthor"] == ucs2_text(name)  # the camera emoji is outside UCS-2: U+FFFD
        by_line = name.encode()[:32].decode("utf-8", "ignore")  # IIM caps By-line at 32 bytes
        assert meta["IPTC:By-line"] == by_line


def test_source_thumbnail_gps_and_serials_never_reach_the_output(build, write, exiftool, camera_jpeg):
    src = exiftool_json(exiftool, camera_jpeg)[0]
    assert "IFD1:ThumbnailImage" in src and "GPS:GPSLatitude" in src  # the source really has them
    assert "ExifIFD:SerialNumber" in src and "MakerNotes" in json.dumps(src)
    thumbnail = piexif.load(str(camera_jpeg))["thumbnail"]
    assert thumbnail and thumbnail in camera_jpeg.read_bytes()
    fp, _ = build(capture=capture_of(camera_jpeg), metadata=MetadataPolicy(keep_camera=True))
    outs = [write(fp, fmt) for fmt in ("jpeg", "png", "webp")]
    for meta in exiftool_json(exiftool, *outs):
        flat = json.dumps(meta)
        for leaked in ("Thumbnail", "IFD1", "GPS", "Serial", "SN-0042424242", "LSN-777", "MakerNote",
                       "MAKERNOTE-SECRET", "SOURCE-SECRET", "Somebody Else"):
            assert leaked not in flat, (leaked, meta["SourceFile"])
        assert meta["IFD0:Make"] == "Canon" and meta["IFD0:Model"] == "EOS R5"  # keep_camera
        assert meta["ExifIFD:DateTimeOriginal"] == "2024:05:06 07:08:09"
        assert meta["IFD0:Orientation"] == "Horizontal (normal)"
    for out in outs:
        assert thumbnail[:200] not in out.read_bytes()  # not even the bytes, anywhere


def test_exiftool_rewrite_keeps_the_claim_valid(build, write, exiftool, owner_key, pixels):
    """Other tools (here exiftool adding a keyword) re-serialise XMP; the claim must still verify."""
    for fmt in ("jpeg", "webp"):
        path = write(build(fmt)[0], fmt)
        subprocess.run([exiftool, "-q", "-overwrite_original", "-XMP-dc:Subject+=shoes", str(path)], check=True)
        meta = read_embedded(path)
        assert meta.xmp["dc:subject"] == ["shoes"]
        check = check_claim(meta, decode(path), owner_key.public)
        assert check.signature_valid and check.pixels_match, check.problems


# ---------------------------------------------------------------------------------------------------------------
# finalize / save_kwargs


def _segments(jpeg: bytes) -> list[int]:
    markers, pos = [], 2
    while jpeg[pos] == 0xFF and jpeg[pos + 1] != 0xDA:
        markers.append(jpeg[pos + 1])
        pos += 2 + int.from_bytes(jpeg[pos + 2:pos + 4], "big")
    return markers


def test_finalize_inserts_app13_after_app0_app1(build, pixels):
    fp, _ = build()
    data = encode(pixels, fp, "jpeg")
    markers = _segments(data)
    assert markers[:4] == [0xE0, 0xE1, 0xE1, 0xED], [hex(m) for m in markers]
    assert markers.count(0xED) == 1
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90, **save_kwargs(fp, "jpeg"))
    assert np.array_equal(decode(data), decode(buf.getvalue()))  # same pixels: only a segment was added
    assert finalize(b"abc", fp, "png") == b"abc" and finalize(b"abc", fp, "webp") == b"abc"
    assert finalize(data, dataclasses.replace(fp, iptc=b""), "jpeg") == data
    with pytest.raises(ImageError, match="SOI"):
        finalize(b"not a jpeg", fp, "jpeg")


def test_iptc_values_are_truncated_on_character_boundaries(build, pixels):
    long_name = "Ååå Photo Studio Ünïcødé Long Name GmbH & Co. KG"
    fp, _ = build(who=Owner(name=long_name, copyright="c" * 300))
    iptc = read_embedded(encode(pixels, fp, "jpeg")).iptc
    assert len(iptc["By-line"].encode()) <= 32 and long_name.startswith(iptc["By-line"])
    assert "\ufffd" not in iptc["By-line"]
    assert iptc["CopyrightNotice"] == "c" * 128
    assert iptc["ApplicationRecordVersion"] == "4"
    # every cut is said (the run summary counts them), naming the field, its limit and what is kept
    assert [w.split(" is cut")[0] for w in fp.warnings] == ["IPTC By-line", "IPTC Credit", "IPTC CopyrightNotice"]
    assert "128-byte limit (300 bytes)" in fp.warnings[2]
    assert build()[0].warnings == ()


# ---------------------------------------------------------------------------------------------------------------
# Reading and checking


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_round_trip_verifies(build, write, fmt, owner, owner_key):
    path = write(build(fmt)[0], fmt)
    meta = read_embedded(path)
    assert meta.present and meta.owner == owner.name and meta.copyright == owner.copyright
    assert meta.exif["Artist"] == owner.name and meta.exif["ImageUniqueID"] == image_unique_id(RECORD_ID)
    check = check_claim(meta, decode(path), owner_key.public)
    assert check.ok and check.signature_valid and check.signer_verified and check.problems == []
    assert (check.owner, check.payload, check.record_id) == (owner.name, f"{PAYLOAD:010x}", RECORD_ID)
    assert check.phash_distance is not None and check.phash_distance <= 4


@pytest.mark.parametrize(
    "prop", ["Owner", "Copyright", "RecordID", "Payload", "PHash", "SKU", "Created", "KeyFingerprint", "SourceSHA256", "Preset",
             "Signature", "ClaimVersion"],
)
def test_editing_one_byte_of_an_xmp_value_breaks_the_claim(build, write, prop, owner_key):
    path = write(build()[0], "jpeg")
    data = bytearray(path.read_bytes())
    at = data.index(f"<catalogmark:{prop}>".encode()) + len(prop) + 14
    data[at] = ord("b") if data[at] != ord("b") else ord("c")  # same length: the JPEG stays well-formed
    meta = read_embedded(bytes(data))
    check = check_claim(meta, decode(bytes(data)), owner_key.public)
    assert not check.ok and not check.signature_valid, (prop, check)
    assert check.problems


def test_removing_or_rewriting_claim_fields_breaks_it(build, write, owner_key, pixels):
    fp, _ = build()
    no_payload = fp.xmp.replace(f"<catalogmark:Payload>{PAYLOAD:010x}</catalogmark:Payload>".encode(), b"")
    assert no_payload != fp.xmp
    thief = fp.xmp.replace(b"Example Studio", b"Copycat Store")  # consistently, in every field
    for xmp in (no_payload, thief):
        path = write(dataclasses.replace(fp, xmp=xmp), "png")
        check = check_claim(read_embedded(path), decode(path), owner_key.public)
        assert not check.signature_valid and not check.ok


def test_wrong_public_key_fails(build, write, other_key):
    path = write(build()[0], "jpeg")
    check = check_claim(read_embedded(path), decode(path), other_key.public)
    assert not check.signature_valid and not check.ok
    assert any("not the expected key" in p for p in check.problems)


def test_a_claim_signed_by_someone_else_with_their_key_embedded(build, write, owner_key, other_key):
    fp, _ = build(key=other_key)  # a thief signs a claim naming the owner, with the thief's own key
    path = write(fp, "jpeg")
    meta = read_embedded(path)
    against_owner = check_claim(meta, decode(path), owner_key.public)
    assert not against_owner.signature_valid
    self_signed = check_claim(meta, decode(path), None)  # checks out only against the file's own key
    assert self_signed.signature_valid and not self_signed.signer_verified and not self_signed.ok
    assert self_signed.signer == other_key.fingerprint
    assert any("signer unverified" in p for p in self_signed.problems)


@pytest.mark.parametrize("replacement", ["inverted", "flipped", "blocks", "half_inverted"])
def test_replaced_pixels_fail_the_phash_check(build, write, owner_key, pixels, replacement):
    rng = np.random.default_rng(5)
    half = pixels.copy()
    half[:, :80] = 255 - half[:, :80]
    other = {
        "inverted": 255 - pixels,
        "flipped": np.ascontiguousarray(pixels[::-1]),
        "blocks": np.kron(rng.integers(0, 256, (3, 4, 3)), np.ones((40, 40, 1))).astype(np.uint8),
        "half_inverted": half,
    }[replacement]
    fp, _ = build()
    path = write(fp, "jpeg", px=other)  # the original's metadata on someone else's pixels
    check = check_claim(read_embedded(path), decode(path), owner_key.public)
    assert check.signature_valid  # the claim itself is intact...
    assert not check.pixels_match and not check.ok  # ...but it is not about these pixels
    assert check.phash_distance is not None and check.phash_distance > PHASH_MAX_DISTANCE
    assert any("pHash distance" in p for p in check.problems)


def test_benign_reencoding_and_resizing_still_match(build, owner_key, pixels):
    fp, _ = build()
    data = encode(pixels, fp, "jpeg")
    meta = read_embedded(data)
    small = np.asarray(Image.fromarray(decode(data)).resize((80, 60), Image.Resampling.LANCZOS))
    low_q = io.BytesIO()
    Image.fromarray(pixels).save(low_q, "JPEG", quality=40)
    for px in (small, decode(low_q.getvalue())):
        check = check_claim(meta, px, owner_key.public)
        assert check.pixels_match and check.ok, check


def test_check_without_pixels_or_claim(build, pixels, owner_key):
    fp, _ = build()
    meta = read_embedded(encode(pixels, fp, "jpeg"))
    no_px = check_claim(meta, None, owner_key.public)
    assert no_px.signature_valid and not no_px.pixels_match and not no_px.ok
    plain = io.BytesIO()
    Image.fromarray(pixels).save(plain, "PNG")
    bare = check_claim(read_embedded(plain.getvalue()), pixels, owner_key.public)
    assert not bare.present and not bare.signature_valid and "no catalogmark claim" in bare.problems[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=40), sku=st.text(min_size=1, max_size=12), payload=st.none() | st.integers(0, 2**40 - 1))
def test_any_owner_name_round_trips_and_verifies(build, owner_key, name, sku, payload):
    px = product_on_white((48, 32))
    fp, _ = build(who=Owner(name=name, copyright=f"(c) {name}", url=""), px=px, sku=sku, payload=payload)
    meta = read_embedded(encode(px, fp, "jpeg"))
    assert meta.claim == fp.claim
    assert meta.claim["owner"] == xml_clean(name)
    check = check_claim(meta, px, owner_key.public)
    assert check.signature_valid and check.pixels_match


# ---------------------------------------------------------------------------------------------------------------
# Garbage in: never raises


def test_read_embedded_never_raises_on_garbage(tmp_path, build, pixels):
    good = encode(pixels, build()[0], "jpeg")
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, "PNG")
    bomb_xmp = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
                b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>')
    cases = {
        "empty": b"",
        "text": b"hello, I am not an image\n",
        "random": np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "soi only": b"\xff\xd8",
        "first 40 bytes of a good file": good[:40],
        "good file, pixels replaced by zeros": good[:200] + bytes(len(good) - 200),
        "bad segment length": b"\xff\xd8\xff\xe1\xff\xff" + b"Exif\x00\x00",
        "broken xmp": b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF><unclosed></x:xmpmeta>",
        "entity bomb": bomb_xmp,
        "png with junk": png.getvalue()[:-30] + b"\x00" * 30,
    }
    for name, data in cases.items():
        meta = read_embedded(data)
        assert meta.claim is None, name
        check = check_claim(meta, None, None)
        assert not check.present and not check.signature_valid, name
    assert not read_embedded(b"").present and not read_embedded(b"hello").present
    assert not read_embedded(tmp_path / "missing.jpg").present
    assert read_embedded(bomb_xmp).problems  # defusedxml refused the entities, and said so


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0), flip=st.integers(0, 10_000))
def test_truncated_or_corrupted_files_never_raise(build, pixels, cut, flip):
    good = encode(pixels, build()[0], "jpeg")
    truncated = good[: int(len(good) * cut)]
    meta = read_embedded(truncated)  # must not raise
    check_claim(meta, pixels, None)
    corrupted = bytearray(good)
    corrupted[flip % len(good)] ^= 0xFF
    check_claim(read_embedded(bytes(corrupted)), pixels, None)


def test_truncated_file_still_yields_its_claim(build, pixels, owner_key):
    """The metadata sits before the pixels, so a copy cut short keeps a claim that still verifies."""
    good = encode(pixels, build()[0], "jpeg")
    meta = read_embedded(good[: len(good) // 2])
    assert meta.claim is not None
    assert check_claim(meta, pixels, owner_key.public).ok
