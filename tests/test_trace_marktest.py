"""Known-payload test (pipeline.trace.marktest): a registered copy whose payload will not decode still shows its
export's chips; pictures without the owner's mark stay far below the threshold; trace names the export by it."""

from __future__ import annotations

import html
import math

import numpy as np
import pytest

from pipeline import invisible
from pipeline.invisible import chiptest
from pipeline.keys import OwnerKey
from pipeline.trace import marktest
from pipeline.trace.evidence import TESTED
from pipeline.trace.report import render_html
from pipeline.trace.tracer import Tracer
from tests import synthetic
from tests.attacks import _encode
from tests.conftest import FIXED_SECRET

SIDE = synthetic.SMALL_SIDE
PAYLOAD = 0x3A5C0FFEE1
OTHER_PAYLOAD = 0x2468ACE013  # the chips' strength varies with the payload (z 5.8-8.1 at JPEG 85 over 5 measured)


@pytest.fixture(scope="module")
def key() -> OwnerKey:
    return OwnerKey(FIXED_SECRET)


@pytest.fixture(scope="module")
def small_product() -> tuple[np.ndarray, np.ndarray]:
    """A product covering a fifth of a 720 px white canvas (a few tiles): the case the decode cannot carry."""
    rgb, mask = synthetic.small_product(SIDE)
    assert 0.15 < mask.mean() < 0.25
    return rgb, mask


@pytest.fixture(scope="module")
def marked(key: OwnerKey, small_product: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    rgb, mask = small_product
    return invisible.embed(rgb, key, PAYLOAD, mask)


def _correlate(key: OwnerKey, suspect: np.ndarray, payload: int = PAYLOAD) -> chiptest.ChipTest:
    h, w = suspect.shape[:2]
    return marktest.correlate(suspect, np.diag([SIDE / w, SIDE / h, 1.0]), (SIDE, SIDE), key.subkey("invisible"),
                              payload)


@pytest.mark.parametrize("quality", [90, 70])
def test_a_copy_whose_payload_will_not_decode_still_shows_its_chips(key: OwnerKey, marked: np.ndarray,
                                                                     quality: int) -> None:
    copy = _encode(marked, "JPEG", quality)
    informed = invisible.read(copy, key, hint=invisible.Hint(np.eye(3), (SIDE, SIDE)))
    assert not informed.found  # what this test is about: the decode misses on this product
    t = _correlate(key, copy)
    assert t.present and t.z >= chiptest.DETECT_Z
    # a resized copy, registered back by its scale
    small = _encode(np.ascontiguousarray(marked[::2, ::2]), "JPEG", 85)
    assert _correlate(key, small).present


def test_pictures_without_the_owners_mark_are_not_present(key: OwnerKey, small_product: tuple[np.ndarray, np.ndarray],
                                                           marked: np.ndarray) -> None:
    rgb, mask = small_product
    other_key = OwnerKey(bytes(range(100, 132)))
    for suspect in (rgb, invisible.embed(rgb, other_key, PAYLOAD, mask)):
        t = _correlate(key, _encode(suspect, "JPEG", 90))
        assert not t.present and abs(t.z) < 4.5
    # the copy carries this export's chips, not those of another payload of the same key
    assert not _correlate(key, marked, OTHER_PAYLOAD).present


def _store(key: OwnerKey, rgb: np.ndarray, exports: dict[str, tuple[np.ndarray, int]]) -> synthetic.MemoryStore:
    store = synthetic.MemoryStore()
    for rid, (export, payload) in exports.items():
        store.add({"record_id": rid, "payload": f"{payload:010x}", "sku": "SKU1", "preset": rid, "role": "main",
                   "source": "shoot/1.jpg", "output": f"out/{rid}.jpg", "width": SIDE, "height": SIDE,
                   "visible_mark": None, "extra": {"frame": synthetic.identity_frame(SIDE, SIDE)}},
                  *synthetic.trace_blobs(export, rgb))
    return store


def test_trace_names_the_export_by_its_chips_when_the_decode_misses(
        key: OwnerKey, small_product: tuple[np.ndarray, np.ndarray], marked: np.ndarray) -> None:
    """Two exports of one small product (two presets, the same geometry): registration aligns the copy with
    both, the decodes miss, and the test of each export's payload names the one that was copied."""
    rgb, mask = small_product
    other = invisible.embed(rgb, key, OTHER_PAYLOAD, mask)
    tracer = Tracer(_store(key, rgb, {"amazon": (marked, PAYLOAD), "ebay": (other, OTHER_PAYLOAD)}), key)
    for copy_of, export in (("amazon", marked), ("ebay", other)):
        res = tracer.trace_image(_encode(export, "JPEG", 85), name=f"{copy_of}.jpg")
        v = res.verdict
        assert v.verdict == "match" and v.record_id == copy_of
        w = v.signals.watermark
        assert w.found and w.mode == TESTED and w.chip_z is not None and w.chip_z >= chiptest.DETECT_Z
        assert w.bit_errors is None and w.false_positive_probability is not None
        assert w.false_positive_probability <= 2 * math.exp(-chiptest.DETECT_Z ** 2 / 2)  # two exports tested
        said = [f for f in v.findings if "correlates with the data chips" in f]
        assert len(said) == 1 and f"z = {w.chip_z}" in said[0]
        assert res.as_json()["signals"]["watermark"]["chip_z"] == w.chip_z
        page = html.unescape(render_html([res]))
        assert f"z = {w.chip_z} (present at {chiptest.DETECT_Z:g})" in page
        assert f"{w.false_positive_probability:.1e} (at most)" in page


def test_a_copy_of_another_owners_picture_gets_no_tested_mark(
        key: OwnerKey, small_product: tuple[np.ndarray, np.ndarray], marked: np.ndarray) -> None:
    """The export is the owner's, the copy is of the same picture marked by someone else: registration aligns it,
    the test finds nothing, no watermark finding is made."""
    rgb, mask = small_product
    theirs = invisible.embed(rgb, OwnerKey(bytes(range(100, 132))), PAYLOAD, mask)
    res = Tracer(_store(key, rgb, {"amazon": (marked, PAYLOAD)}), key).trace_image(_encode(theirs, "JPEG", 85),
                                                                                    name="theirs.jpg")
    w = res.verdict.signals.watermark
    assert not w.found and w.mode != TESTED
    assert not any("correlates with the data chips" in f for f in res.verdict.findings)
