"""Removal-attempt check (pipeline.trace.tamper): notched pilots are flagged, ordinary processing is not."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline import invisible
from pipeline.invisible.embedder import export_layout
from pipeline.invisible.layout import Layout
from pipeline.keys import OwnerKey
from pipeline.trace import tamper
from pipeline.trace.report import render_html
from pipeline.trace.tracer import Tracer
from tests import collusion, synthetic
from tests.attacks import _encode
from tests.conftest import FIXED_SECRET, screenshot_html
from tests.synthetic import MemoryStore

SIZE = 768
SEEDS = (1, 11, 13)  # photographs (collusion.export_picture: odd seeds)
SMALL = 540  # the resized copies' side


def notch_pilots(rgb: np.ndarray, lay: Layout) -> np.ndarray:
    return collusion.notch_pilots(rgb, lay.pilots)


@pytest.fixture(scope="module")
def key() -> OwnerKey:
    return OwnerKey(FIXED_SECRET)


@pytest.fixture(scope="module")
def exports(key: OwnerKey) -> dict[int, tuple[np.ndarray, np.ndarray, int]]:
    """seed -> (unmarked picture, marked export, payload)."""
    out = {}
    for seed in SEEDS:
        rgb, mask = collusion.export_picture(seed, SIZE)
        payload = collusion.payload_for(seed)
        out[seed] = (rgb, invisible.embed(rgb, key, payload, mask), payload)
    return out


def _check(key: OwnerKey, suspect: np.ndarray, payload: int, scale: float = 1.0) -> tamper.PilotCheck:
    return tamper.pilot_check(suspect, np.diag([scale, scale, 1.0]), (SIZE, SIZE), key.subkey("invisible"),
                              payload)


def _small(rgb: np.ndarray) -> np.ndarray:
    return _encode(cv2.resize(rgb, (SMALL, SMALL), interpolation=cv2.INTER_AREA), "JPEG", 80)


@pytest.mark.parametrize("seed", SEEDS)
def test_notched_pilots_are_flagged_and_a_plain_copy_is_not(key: OwnerKey, exports: dict, seed: int) -> None:
    _rgb, marked, payload = exports[seed]
    lay = export_layout(key.subkey("invisible"), payload)
    clean = _check(key, _encode(marked, "JPEG", 90), payload)
    assert clean.measured and not clean.attacked
    assert clean.ratio_db is not None and clean.ratio_db > tamper.RATIO_FLAG_DB + 2
    notched = _check(key, _encode(notch_pilots(marked, lay), "JPEG", 90), payload)
    assert notched.measured and notched.attacked
    assert notched.chip_z is not None and notched.chip_z >= tamper.CHIP_Z_MIN  # the chips survived the notch
    # the same through a resize and a re-encode: the registration's scale brings it back to the export's frame
    assert not _check(key, _small(marked), payload, SIZE / SMALL).attacked
    assert _check(key, _small(notch_pilots(marked, lay)), payload, SIZE / SMALL).attacked


def test_an_unmarked_copy_is_not_measured(key: OwnerKey, exports: dict) -> None:
    rgb, _marked, payload = exports[SEEDS[0]]
    c = _check(key, _encode(rgb, "JPEG", 90), payload)
    assert not c.measured and not c.attacked and c.reason and "not clearly in the copy" in c.reason


def test_a_copy_that_covers_too_little_is_not_measured(key: OwnerKey, exports: dict) -> None:
    _rgb, marked, payload = exports[SEEDS[0]]
    c = tamper.pilot_check(marked[:60, :60], np.eye(3), (SIZE, SIZE), key.subkey("invisible"), payload)
    assert not c.measured and c.reason and "covers too little" in c.reason


def test_a_scheme_1_export_is_measured_against_its_own_pilots(key: OwnerKey, exports: dict) -> None:
    """Marks made before the pilot family carry scheme 1's set: intact, they are not flagged."""
    rgb, _marked, payload = exports[SEEDS[1]]
    with collusion.fixed_pilots():
        old = invisible.embed(rgb, key, payload, None)
    c = _check(key, _encode(old, "JPEG", 90), payload)
    assert c.measured and not c.attacked and c.pilot_set == "scheme 1"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(SEEDS), quality=st.integers(50, 95), side=st.integers(420, SIZE),
       blur=st.sampled_from([0.0, 0.7, 1.2]), gain=st.floats(0.75, 1.25))
def test_ordinary_processing_is_never_flagged(key: OwnerKey, exports: dict, seed: int, quality: int, side: int,
                                              blur: float, gain: float) -> None:
    _rgb, marked, payload = exports[seed]
    im = np.clip(marked.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    if blur:
        im = cv2.GaussianBlur(im, (0, 0), blur)
    im = _encode(cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA), "JPEG", quality)
    assert not _check(key, im, payload, SIZE / side).attacked


def test_trace_says_the_watermark_was_attacked_with_the_measurement(key: OwnerKey, exports: dict, tmp_path: Path,
                                                                    chromium: str) -> None:
    """End to end through the Tracer: the verdict names the export, its findings say the mark was attacked and how
    that was measured, the signal is in trace's JSON and the evidence report shows the check."""
    rgb, marked, payload = exports[SEEDS[1]]
    lay = export_layout(key.subkey("invisible"), payload)
    store = MemoryStore()
    store.add({"record_id": "rec1", "payload": f"{payload:010x}", "sku": "SKU1", "preset": "test", "role": "main",
               "source": "shoot/1.jpg", "output": "out/SKU1.jpg", "width": SIZE, "height": SIZE,
               "visible_mark": None, "extra": {"frame": synthetic.identity_frame(SIZE, SIZE)}},
              *synthetic.trace_blobs(marked, rgb))
    tracer = Tracer(store, key)
    res = tracer.trace_image(_encode(notch_pilots(marked, lay), "JPEG", 90), name="notched.jpg")
    v = res.verdict
    assert v.verdict == "match" and v.record_id == "rec1"
    pc = v.signals.pilots
    assert pc is not None and pc.attacked
    said = [f for f in v.findings if "signs that its invisible watermark was attacked" in f]
    assert len(said) == 1 and f"{pc.ratio_db:+.1f} dB" in said[0]
    assert f"{tamper.FALSE_ALARMS} of {tamper.CLEAN_COPIES}" in said[0]
    doc = res.as_json()
    assert doc["signals"]["pilots"]["attacked"] is True
    assert doc["signals"]["pilots"]["flag_below_db"] == tamper.RATIO_FLAG_DB
    html = render_html([res])
    assert "Removal-attempt check" in html and "signs of an attack on the watermark" in html

    plain_res = tracer.trace_image(_encode(marked, "JPEG", 90), name="copy.jpg")
    plain = plain_res.verdict
    assert plain.verdict == "match" and plain.signals.pilots is not None and not plain.signals.pilots.attacked
    assert not any("was attacked" in f for f in plain.findings)

    # as a person sees it: the attacked copy's report shows the check's red "yes" (the plain one's says "no"); the
    # pictures are left out of the page, whose own red (a retina in the sample collage) would drown the text's
    def red_pixels(r: Any, name: str) -> int:
        page = tmp_path / f"{name}.html"
        page.write_text(re.sub(r"<img\b[^>]*>", "", render_html([r])))
        shot = np.asarray(Image.open(screenshot_html(chromium, page, tmp_path / f"{name}.png", height=2400))
                          .convert("RGB")).astype(int)
        return int(((shot[..., 0] > 150) & (shot[..., 1] < 90) & (shot[..., 2] < 90)).sum())

    assert red_pixels(res, "attacked") > red_pixels(plain_res, "plain") + 30
