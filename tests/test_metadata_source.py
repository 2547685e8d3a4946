"""Tests for pipeline.metadata.source: the photographer's fields read from a source photo, and nothing else.

Sources are built in code: a JPEG with the XMP a DAM or an AI image generator writes (``tests.helpers``), with GPS,
serials and a thumbnail beside it; IPTC-only and EXIF-only files; a PNG; odd XMP forms; garbage.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image

from pipeline.metadata.iptc import app13_segment
from pipeline.metadata.source import read_described
from pipeline.metadata.xmp import parse_xmp
from pipeline.models import Canvas, CaptureInfo, Described, Marked
from pipeline.presets import KEEP_FIELDS, MetadataPolicy
from pipeline.stages.fingerprint import fingerprint, keep_names
from tests.conftest import product_on_white
from tests.helpers import NEVER_CARRIED, PHOTOGRAPHER, photographer_jpeg, photographer_xmp

AI = PHOTOGRAPHER["digital_source_type"]


def _described() -> Described:
    p = PHOTOGRAPHER
    return Described(keywords=tuple(p["keywords"]), title=p["title"], caption=p["caption"],
                     sublocation=p["sublocation"], city=p["city"], state=p["state"], country=p["country"],
                     digital_source_type=AI)


def _jpeg(**save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(product_on_white((64, 48))).save(buf, "JPEG", quality=80, **save)
    return buf.getvalue()


def _with_app13(jpeg: bytes, iim: bytes) -> bytes:
    return jpeg[:2] + app13_segment(iim) + jpeg[2:]


def _iim(*sets: tuple[int, bytes], utf8: bool = True) -> bytes:
    head = struct.pack(">BBBH", 0x1C, 1, 90, 3) + b"\x1b%G" if utf8 else b""
    return head + b"".join(struct.pack(">BBBH", 0x1C, 2, d, len(v)) + v for d, v in sets)


def test_reads_every_field_from_xmp_and_never_gps_serials_or_thumbnail(tmp_path: Path) -> None:
    src = photographer_jpeg(tmp_path / "ai.jpg", (160, 120))
    got = read_described(src.read_bytes())
    assert got == _described()
    # the dataclass has no place for anything else, and nothing private is in any of its values
    assert {f.name for f in dataclasses.fields(Described)} == {
        "keywords", "title", "caption", "sublocation", "city", "state", "country", "digital_source_type"}
    text = repr(got)
    for secret in (*NEVER_CARRIED, "38,42", "Canon"):
        assert secret not in text


def test_only_keeps_the_named_fields() -> None:
    d = _described()
    assert d.only(()) == Described()
    assert d.only(KEEP_FIELDS) == d
    assert d.only({"location"}) == Described(sublocation="Alfama", city="Lisboa", state="Lisboa District",
                                             country="Portugal")
    assert d.only({"ai_provenance"}) == Described(digital_source_type=AI)
    assert d.only({"keywords", "title"}) == Described(keywords=d.keywords, title=d.title)


def test_iptc_iim_when_there_is_no_xmp() -> None:
    iim = _iim((5, b"IIM title"), (25, b"tasse"), (25, "caf\u00e9".encode()), (90, b"Porto"),
               (92, b"Ribeira"), (95, b"Norte"), (101, b"Portugal"), (120, b"IIM caption\nsecond line"))
    got = read_described(_with_app13(_jpeg(), iim))
    assert got == Described(keywords=("tasse", "café"), title="IIM title", caption="IIM caption\nsecond line",
                            sublocation="Ribeira", city="Porto", state="Norte", country="Portugal")
    # undeclared character set: UTF-8 if it decodes, else Latin-1
    assert read_described(_with_app13(_jpeg(), _iim((120, "Kaffeeb\u00e4r".encode("latin-1")), utf8=False))
                          ).caption == "Kaffeebär"
    # a headline stands in for a missing title
    assert read_described(_with_app13(_jpeg(), _iim((105, b"A headline")))).title == "A headline"


def test_xmp_wins_over_iptc_and_exif() -> None:
    iim = _iim((5, b"IIM title"), (25, b"iim-word"), (120, b"IIM caption"))
    exif = piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: b"EXIF caption"}})
    got = read_described(_with_app13(_jpeg(exif=exif, xmp=photographer_xmp()), iim))
    assert (got.title, got.keywords, got.caption) == (PHOTOGRAPHER["title"], tuple(PHOTOGRAPHER["keywords"]),
                                                      PHOTOGRAPHER["caption"])


def test_exif_fields_where_they_mean_it() -> None:
    exif = piexif.dump({"0th": {
        piexif.ImageIFD.ImageDescription: b"Mug on a linen cloth",
        piexif.ImageIFD.XPKeywords: "mug;linen; studio ".encode("utf-16-le") + b"\0\0",
        piexif.ImageIFD.XPTitle: "XP title".encode("utf-16-le") + b"\0\0",
    }})
    got = read_described(_jpeg(exif=exif))
    assert got == Described(keywords=("mug", "linen", "studio"), title="XP title", caption="Mug on a linen cloth")
    for placeholder in (b"OLYMPUS DIGITAL CAMERA", b"SONY DSC", b"          "):
        exif = piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: placeholder}})
        assert read_described(_jpeg(exif=exif)).caption is None, placeholder


def test_png_xmp_attribute_and_resource_forms() -> None:
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" photoshop:Country="Chile">'
        f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{AI}"/>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet, zip=False)
    buf = io.BytesIO()
    Image.fromarray(product_on_white((32, 24))).save(buf, "PNG", pnginfo=info)
    assert read_described(buf.getvalue()) == Described(country="Chile", digital_source_type=AI)
    assert parse_xmp(packet)["Iptc4xmpExt:DigitalSourceType"] == AI


def test_xmp_packet_found_in_a_format_pillow_does_not_read() -> None:
    blob = b"\x00\x01ftypheic" + b"\x00" * 64 + photographer_xmp() + b"\x00" * 64
    assert read_described(blob) == _described()


def test_values_are_cleaned_and_bounded() -> None:
    words = "".join(f"<rdf:li>{w}</rdf:li>" for w in ["  a\tb  ", "a b", "", "x" * 300, *map(str, range(150))])
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:subject><rdf:Bag>{words}</rdf:Bag></dc:subject>"
        '<dc:title><rdf:Alt><rdf:li xml:lang="x-default">line\tone\n  two</rdf:li></rdf:Alt></dc:title>'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{"c" * 5000}</rdf:li></rdf:Alt></dc:description>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    got = read_described(_jpeg(xmp=packet))
    assert got.keywords[:2] == ("a b", "x" * 64) and len(got.keywords) == 100
    assert got.title == "line one two"
    assert got.caption is not None and len(got.caption) == 2000


def test_a_catalogmark_export_gives_no_title_or_caption(tmp_path: Path) -> None:
    """Re-processing an export must not keep our own description and SKU title as the photographer's."""
    packet = photographer_xmp().replace(
        b'xmlns:aux="http://ns.adobe.com/exif/1.0/aux/"',
        b'xmlns:aux="http://ns.adobe.com/exif/1.0/aux/" xmlns:catalogmark="https://catalogmark.dev/ns/1.0/"'
        b' catalogmark:Signature="c2lnbmF0dXJl"')
    got = read_described(_jpeg(xmp=packet))
    assert got.title is None and got.caption is None and got.keywords == tuple(PHOTOGRAPHER["keywords"])


@pytest.mark.parametrize("data", [b"", b"not an image", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00garbage",
                                  b"<x:xmpmeta><unclosed", b"<x:xmpmeta>&bad;</x:xmpmeta>"])
def test_garbage_gives_nothing_and_never_raises(data: bytes) -> None:
    assert read_described(data) == Described()


# ---------------------------------------------------------------------------------------------- into the blocks


@pytest.fixture
def build(owner, owner_key, make_preset, make_job, tmp_path: Path):
    def factory(keep: tuple[str, ...] = (), *, owner_keep: tuple[str, ...] = (), fmt: str = "jpeg",
                described: Described | None = None):
        px = product_on_white((96, 72))
        job = make_job(tmp_path / "src.jpg", preset=make_preset(format=fmt, metadata=MetadataPolicy(keep=keep)))
        who = dataclasses.replace(owner, keep_metadata=owner_keep)
        canvas = Canvas(px, (0, 0, 96, 72), "ab" * 32, CaptureInfo(described=described))
        marked = Marked(px, (0, 0, 96, 72), None, 0x12345ABCDE)
        return fingerprint(marked, canvas, job, who, owner_key, record_id="r" + "0" * 23,
                           timestamp=datetime(2026, 1, 1, tzinfo=UTC))

    return factory


def test_kept_fields_reach_xmp_and_iptc(build) -> None:
    fp = build(("keywords", "title", "caption", "location"), described=_described())
    x = parse_xmp(fp.xmp)
    assert x["dc:subject"] == PHOTOGRAPHER["keywords"] and x["dc:title"] == PHOTOGRAPHER["title"]
    assert x["dc:description"].startswith(PHOTOGRAPHER["caption"] + " — SKU1 — © Example Studio")
    assert (x["Iptc4xmpCore:Location"], x["photoshop:City"], x["photoshop:State"], x["photoshop:Country"]) == (
        "Alfama", "Lisboa", "Lisboa District", "Portugal")
    assert "Iptc4xmpExt:DigitalSourceType" not in x and b"Iptc4xmpExt" not in fp.xmp
    assert b"\x1c\x02\x19\x00\x0bceramic mug" in fp.iptc and b"\x1c\x02\x05\x00\x11Blue espresso mug" in fp.iptc
    assert b"\x1c\x02\x5a\x00\x06Lisboa" in fp.iptc


def test_ai_provenance_alone(build) -> None:
    fp = build(("ai_provenance",), described=_described())
    x = parse_xmp(fp.xmp)
    assert x["Iptc4xmpExt:DigitalSourceType"] == AI
    assert x["dc:title"] == "SKU1" and "dc:subject" not in x and "photoshop:City" not in x


def test_preset_and_owner_keep_lists_are_unioned(build, make_preset, make_job, owner, tmp_path: Path) -> None:
    job = make_job(tmp_path / "s.jpg", preset=make_preset(metadata=MetadataPolicy(keep=("keywords",))))
    assert keep_names(job, dataclasses.replace(owner, keep_metadata=("title",))) == {"keywords", "title"}
    x = parse_xmp(build(("keywords",), owner_keep=("title",), described=_described()).xmp)
    assert x["dc:subject"] == PHOTOGRAPHER["keywords"] and x["dc:title"] == PHOTOGRAPHER["title"]
    assert "photoshop:City" not in x


def test_no_keep_writes_exactly_what_it_wrote_before(build) -> None:
    """A preset that keeps nothing writes the same blocks whatever the source says (the golden run's guarantee)."""
    plain, described = build(), build(described=_described())
    assert (plain.exif, plain.xmp, plain.iptc) == (described.exif, described.xmp, described.iptc)
    # keeping fields the source does not have changes nothing either
    empty = build(KEEP_FIELDS, described=Described())
    assert (plain.exif, plain.xmp, plain.iptc) == (empty.exif, empty.xmp, empty.iptc)


def test_png_and_webp_carry_the_kept_fields_in_xmp(build) -> None:
    for fmt in ("png", "webp"):
        fp = build(KEEP_FIELDS, fmt=fmt, described=_described())
        assert parse_xmp(fp.xmp)["Iptc4xmpExt:DigitalSourceType"] == AI and not fp.iptc


def test_the_ingest_stage_reads_them_only_when_asked(tmp_path: Path) -> None:
    from pipeline.presets import CanvasSpec
    from pipeline.stages.ingest import open_photo, read_source

    src = photographer_jpeg(tmp_path / "p.jpg", (160, 120))
    spec = CanvasSpec(100, 100, "pad")
    photo, _ = open_photo(read_source(str(src), "p.jpg"), "p.jpg", [spec])
    assert photo is not None and photo.capture.described is None
    photo, _ = open_photo(read_source(str(src), "p.jpg"), "p.jpg", [spec], describe=True)
    assert photo is not None and photo.capture.described == _described()
    assert "described" not in photo.capture.as_dict()  # not part of the ledger record
    assert np.asarray(photo.pixels).shape[:2] == (120, 160)
