"""A generated corpus of bad inputs run through the real CLI in one catalog: every file is accounted for.

Truncated and mislabelled files, bombs (headers that claim far more pixels than the limit), malformed EXIF, ICC
and XMP (entity expansion, external entities), corrupt scans, symbolic links (dangling, looping, to a folder),
a FIFO, hostile file names (newline, terminal escape, bidi override, a leading dash, 240 bytes long), and
ordinary odd-but-valid files (16-bit, 1-bit, CMYK, palette, animated). Each is its own SKU (a loose file), and
each is expected to be processed, to fail alone with a clear message, or to be listed as ignored with why —
never a traceback, a hang, a silently skipped file, or an output for a broken file.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
import piexif
import pytest
from PIL import Image

from tests.conftest import product_on_white
from tests.helpers import cm

Expect = Literal["ok", "fail", "ignored", "either"]


def _jpeg(rgb: np.ndarray | None = None, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(product_on_white((320, 240), seed=3) if rgb is None else rgb).save(buf, "JPEG", quality=90,
                                                                                       **kw)
    return buf.getvalue()


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(w: int, h: int) -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _chunk(b"IEND", b""))


def _jpeg_claiming(w: int, h: int) -> bytes:
    """A real JPEG whose SOF0 header is rewritten to claim w x h."""
    data = bytearray(_jpeg())
    i = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, i + 5, h, w)
    return bytes(data)


def _with_app1(payload: bytes) -> bytes:
    data = _jpeg()
    seg = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + seg + data[2:]


XMP_HEAD = b"http://ns.adobe.com/xap/1.0/\0"
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10))
          + b']><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
          b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>&lol9;</dc:title>'
          b"</rdf:Description></rdf:RDF></x:xmpmeta>")
XXE = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>&xxe;</dc:title>'
       b"</rdf:Description></rdf:RDF></x:xmpmeta>")


def corpus() -> dict[str, tuple[bytes | None, Expect]]:
    """File name -> (bytes, what must happen). None bytes: made specially (links, FIFO) in ``make_catalog``."""
    good = _jpeg()
    rng = np.random.default_rng(42)
    scan_at = good.index(b"\xff\xda") + 200
    exif_bad_orient = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 99}})
    exif_huge_text = piexif.dump({"0th": {piexif.ImageIFD.Artist: b"A" * 60000}})
    grey16 = Image.fromarray((np.arange(320 * 240, dtype=np.uint32).reshape(240, 320) * 13 % 65536)
                             .astype(np.uint16))
    bilevel = Image.fromarray(product_on_white((320, 240), seed=4)).convert("1")
    frames = [Image.fromarray(product_on_white((160, 120), seed=s)).convert("P") for s in (5, 6)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return {
        # ordinary and odd-but-valid: processed
        "good.jpg": (good, "ok"),
        "png-named-jpg.jpg": (_png(Image.fromarray(product_on_white((320, 240), seed=8))), "ok"),
        "jpeg-named-png.png": (good, "ok"),
        "grey16.png": (_png(grey16), "ok"),
        "bilevel.png": (_png(bilevel), "ok"),
        "cmyk.jpg": (_jpeg_cmyk(), "ok"),
        "animated.gif": (gif.getvalue(), "ok"),
        "exif-garbage.jpg": (_with_app1(b"Exif\0\0" + rng.bytes(300)), "ok"),
        "exif-orientation-99.jpg": (_jpeg(exif=exif_bad_orient), "ok"),
        "exif-huge-artist.jpg": (_jpeg(exif=exif_huge_text), "ok"),
        "icc-garbage.jpg": (_jpeg(icc_profile=rng.bytes(600)), "ok"),
        "xmp-billion-laughs.jpg": (_with_app1(XMP_HEAD + LAUGHS), "ok"),
        "xmp-external-entity.jpg": (_with_app1(XMP_HEAD + XXE), "ok"),
        "-rf.jpg": (good, "ok"),
        "bidi-\u202egnp.jpg": (good, "ok"),
        "x" * 236 + ".jpg": (good, "ok"),
        # broken: each fails alone
        "empty.jpg": (b"", "fail"),
        "truncated-half.jpg": (good[: len(good) // 2], "fail"),
        "truncated-header.png": (_png(grey16)[:40], "fail"),
        "text-named-jpg.jpg": (b"just some notes, not a photo\n" * 20, "fail"),
        "html-named-webp.webp": (b"<!doctype html><html><body>404</body></html>", "fail"),
        "random-bytes.png": (rng.bytes(4000), "fail"),
        "bomb-png-1600mp.png": (_png_claiming(40000, 40000), "fail"),
        "bomb-jpeg-4200mp.jpg": (_jpeg_claiming(65000, 65000), "fail"),
        "claims-more-than-its-scan.jpg": (_jpeg_claiming(12000, 12000), "fail"),
        "random-scan.jpg": (good[:scan_at] + rng.bytes(len(good) - scan_at - 2) + b"\xff\xd9", "fail"),
        "newline\nFAILED forged.jpg": (b"\xff\xd8\xff\xe0" + b"\0" * 60, "fail"),
        "escape-\x1b[2K.jpg": (b"\xff\xd8\xff\xe0" + b"\0" * 60, "fail"),
        # not images: listed as ignored, with why
        "vector.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "ignored"),
        "notes.txt": (b"shoot notes", "ignored"),
        "fifo.jpg": (None, "ignored"),
        "dangling-link.jpg": (None, "ignored"),
        "loop-link.jpg": (None, "ignored"),
    }


def _jpeg_cmyk() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(product_on_white((320, 240), seed=9)).convert("CMYK").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_catalog(root: Path) -> tuple[Path, dict[str, Expect]]:
    cat = root / "cat"
    cat.mkdir()
    expect: dict[str, Expect] = {}
    for name, (data, what) in corpus().items():
        path = cat / name
        if name == "fifo.jpg":
            os.mkfifo(path)  # reading it would block for ever
        elif name == "dangling-link.jpg":
            path.symlink_to(root / "nowhere.jpg")
        elif name == "loop-link.jpg":
            path.symlink_to(path)
        else:
            assert data is not None
            path.write_bytes(data)
        expect[name] = what
    return cat, expect


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("bad-inputs")
    cat, expect = make_catalog(root)
    (root / "catalogmark.toml").write_text('[owner]\nname = "Corpus Test"\n')
    assert cm("keygen", "--key-file", str(root / "k.key"), cwd=root).returncode == 0
    r = cm("run", str(cat), "--preset", "web", "--out", str(root / "out"), "--ledger", str(root / "l.sqlite"),
           "--key-file", str(root / "k.key"), "--jobs", "2", "--json", cwd=root)
    return {"r": r, "expect": expect, "cat": cat, "root": root}


def _name(path: str, cat: Path) -> str:
    """The corpus file name of a displayed path (names are shown escaped: newline as \\n, ESC as \\x1b, ...)."""
    return path.split(str(cat) + "/", 1)[-1] if str(cat) in path else Path(path).name


def _escaped(name: str) -> str:
    from pipeline.progress import printable

    return printable(name)


def test_every_bad_input_is_accounted_for_with_no_traceback(corpus_run):
    r, expect, cat = corpus_run["r"], corpus_run["expect"], corpus_run["cat"]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 1, r.stderr[-2000:]  # some inputs failed
    doc = json.loads(r.stdout)
    by_escaped = {_escaped(n): n for n in expect}
    got: dict[str, str] = {}
    for o in doc["outputs"]:
        got[by_escaped.get(_escaped(_name(o["source"], cat)), _name(o["source"], cat))] = "ok"
    for f in doc["failures"]:
        got[by_escaped.get(_name(f["path"], cat), _name(f["path"], cat))] = "fail"
    for i in doc["ignored"]:
        got[by_escaped.get(_name(i["path"], cat), _name(i["path"], cat))] = "ignored"
    wrong = {n: (want, got.get(n, "MISSING")) for n, want in expect.items()
             if want != "either" and got.get(n) != want}
    assert not wrong, wrong
    counts = {k: sum(1 for v in got.values() if v == k) for k in ("ok", "fail", "ignored")}
    print(f"\nbad-input corpus: {len(expect)} inputs: {counts}")  # shown with -s


def test_failures_and_ignored_files_say_why_in_one_escaped_line(corpus_run):
    doc = json.loads(corpus_run["r"].stdout)
    for f in doc["failures"]:
        assert f["error"] and "\n" not in f["error"] and "object at 0x" not in f["error"], f
    for i in doc["ignored"]:
        assert i["reason"], i
    summary = corpus_run["r"].stderr
    assert "\nFAILED forged.jpg" not in summary and "\x1b[2K" not in summary  # names cannot forge lines


def test_no_output_leaks_an_external_entity_or_expands_one(corpus_run):
    out = corpus_run["root"] / "out"
    for p in out.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert b"root:x:0:0" not in data and b"lollollollol" not in data, p
