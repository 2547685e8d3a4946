"""Verdict: fusion rules, and end to end: attacked copies match their export, other products never match."""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np
import pytest

from pipeline import invisible
from pipeline.keys import OwnerKey
from pipeline.metadata.check import MetadataCheck
from pipeline.trace import candidates as cd
from pipeline.trace import verdict as vd
from pipeline.trace.evidence import WatermarkReading
from pipeline.trace.index import Candidate
from pipeline.trace.register import Registration
from pipeline.trace.tracer import Tracer
from tests import attacks, synthetic
from tests.conftest import FIXED_SECRET, OTHER_SECRET
from tests.synthetic import MemoryStore

STORED = (0, 1, 2, 3, 4, 5)  # product seeds exported (one of each of the six shapes)
SIZE = (640, 640)


def _payload(seed: int) -> int:
    return 0x3C00000000 + seed


def _record(seed: int, **extra: Any) -> dict[str, Any]:
    return {"record_id": f"rec{seed}", "payload": f"{_payload(seed):010x}", "sku": f"SKU{seed}", "preset": "test",
            "role": "main", "source": f"shoot/{seed}.jpg", "output": f"out/SKU{seed}.jpg", "width": SIZE[0],
            "height": SIZE[1], "visible_mark": None, "extra": {"frame": synthetic.identity_frame(*SIZE)}, **extra}


@pytest.fixture(scope="module")
def key() -> OwnerKey:
    return OwnerKey(FIXED_SECRET)


@pytest.fixture(scope="module")
def exports(key: OwnerKey) -> dict[int, np.ndarray]:
    return {s: invisible.embed(synthetic.product_shot(s, SIZE), key, _payload(s), None) for s in STORED}


@pytest.fixture(scope="module")
def tracer(exports: dict[int, np.ndarray], key: OwnerKey) -> Tracer:
    store = MemoryStore()
    for s, im in exports.items():
        store.add(_record(s), *synthetic.trace_blobs(im, synthetic.product_shot(s, SIZE)))
    return Tracer(store, key)


# ------------------------------------------------------------------------------------------- end to end

COPY_ATTACKS = {
    "jpeg50": lambda im: attacks.jpeg50(im, 2),
    "crop50": lambda im: synthetic.jpeg(synthetic.crop_area(im, 0.5, np.random.default_rng(2)), 80),
    "flip+crop80": lambda im: attacks.crop80(attacks.flip(im, 2), 2),
    "rotate3": lambda im: attacks.rotate3(im, 2),
    "screenshot": lambda im: attacks.screenshot(im, 2),
    "painted-out corner": lambda im: synthetic.jpeg(synthetic.paint_out(im, (0.5, 0.1, 0.9, 0.35)), 85),
    "chain": lambda im: attacks.crop_resize_jpeg70(im, 2),
}


@pytest.mark.parametrize("attack", list(COPY_ATTACKS))
def test_attacked_copy_matches_its_export(tracer: Tracer, exports: dict[int, np.ndarray], attack: str) -> None:
    seed = 3
    res = tracer.trace_image(COPY_ATTACKS[attack](exports[seed]), name=attack)
    v = res.verdict
    assert v.verdict == "match" and v.record_id == f"rec{seed}", v.findings
    assert v.false_match_probability is not None and v.false_match_probability <= vd.REG_FALSE_MATCH
    assert v.confidence == pytest.approx(1 - v.false_match_probability)
    doc = res.as_json()
    assert doc["match"] == {"record_id": f"rec{seed}", "source": f"shoot/{seed}.jpg", "sku": f"SKU{seed}",
                            "preset": "test", "output": f"out/SKU{seed}.jpg"}
    assert doc["signals"]["registration"]["verified"]


def _unrelated() -> dict[str, np.ndarray]:
    out = {f"product{s}": synthetic.jpeg(synthetic.product_shot(s, SIZE), 85) for s in (6, 7, 8, 9, 10, 11, 40, 41)}
    # the same products re-shot with another framing: same shape, label, text and colours, other pixels
    out.update({f"reshoot{s}": synthetic.jpeg(synthetic.product_shot(s, (600, 660)), 85) for s in (1, 4)})
    out["blank"] = np.full((500, 500, 3), 255, np.uint8)
    out["noise"] = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    out["tiny"] = np.full((1, 1, 3), 200, np.uint8)
    out["strip"] = synthetic.jpeg(synthetic.product_shot(3, SIZE)[300:310], 90)  # a 10 px sliver of an export
    return out


@pytest.mark.parametrize("name", list(_unrelated()))
def test_unrelated_pictures_never_match(tracer: Tracer, name: str) -> None:
    res = tracer.trace_image(_unrelated()[name], name=name)
    assert res.verdict.verdict == "no-match", res.verdict.findings
    assert res.as_json()["match"] is None and res.verdict.record_id is None
    assert 0 <= res.verdict.confidence <= 1 - vd.MISS_RATE


def test_marked_with_another_key_does_not_match_by_watermark(key: OwnerKey) -> None:
    """A picture carrying *someone else's* watermark and no ledger features: nothing ties it to us."""
    store = MemoryStore()
    other = invisible.embed(synthetic.product_shot(2, SIZE), OwnerKey(OTHER_SECRET), _payload(2), None)
    store.records["rec2"] = _record(2)  # a record whose payload equals the one in the picture, but no features
    res = Tracer(store, key).trace_image(other)
    assert res.verdict.verdict == "no-match"


def test_blind_watermark_identifies_the_export_without_features(exports: dict[int, np.ndarray], key: OwnerKey,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """No trace data in the ledger for the record (e.g. made by an older version): the blind read still names it.

    The reader is stubbed to a successful blind detection: this checks trace's payload lookup and fusion, the
    reader's own accuracy is tested with the invisible watermark.
    """
    calls: list[Any] = []

    def fake_read(rgb: np.ndarray, k: OwnerKey, *, hint: Any = None) -> invisible.Detection:
        calls.append(hint)
        return invisible.Detection(found=True, payload=_payload(4), confidence=0.99, bit_errors=5,
                                   false_positive_probability=3e-8)

    monkeypatch.setattr(invisible, "read", fake_read)
    store = MemoryStore()
    store.records["rec4"] = _record(4)
    res = Tracer(store, key).trace_image(synthetic.jpeg(exports[4], 90))
    assert calls == [None]  # nothing registered, so one blind read
    v = res.verdict
    assert v.verdict == "match" and v.record_id == "rec4"
    w = v.signals.watermark
    assert w is not None and w.mode == "blind" and w.found and w.payload == f"{_payload(4):010x}"
    assert v.false_match_probability is not None and v.false_match_probability <= cd.WM_MAX_FP


# ------------------------------------------------------------------------------------------ fusion rules


def _cand(rid: str = "r1", pdq: int = 80, phash: int = 20) -> Candidate:
    return Candidate(record_id=rid, score=0.5, pdq_distance=pdq, pdq_variant="full/rot0", phash_distance=phash,
                     sketch_score=3.0)


def _reg(ok: bool = True, inliers: int = 60, ncc: float = 0.9, grey: float = 0.95) -> Registration:
    return Registration(ok=ok, reason="registered" if ok else "too few", matrix=np.eye(3), inliers=inliers,
                        matches=80, ncc=ncc, ncc_grey=grey, overlap=1.0, export_size=(100, 100),
                        suspect_size=(100, 100))


def _ev(rid: str = "r1", *, reg: Registration | None = None, wm: WatermarkReading | None = None,
        payload: str = "00000000aa", pdq: int = 80) -> cd.CandidateEvidence:
    return cd.CandidateEvidence(candidate=_cand(rid, pdq),
                                record=synthetic.stored_record({"record_id": rid, "payload": payload}),
                                signature=None, registration=reg, watermark=wm)


def _wm(payload: str = "00000000aa", fp: float = 1e-7) -> WatermarkReading:
    return WatermarkReading(available=True, mode="informed", found=True, payload=payload, bit_errors=3,
                            confidence=1.0, false_positive_probability=fp)


def test_registration_alone_matches_with_the_calibrated_bound() -> None:
    v = vd.decide([_ev(reg=_reg())])
    assert v.verdict == "match" and v.record_id == "r1"
    assert v.false_match_probability == pytest.approx(vd.REG_FALSE_MATCH)


def test_watermark_and_registration_multiply() -> None:
    v = vd.decide([_ev(reg=_reg(), wm=_wm(fp=2e-7))])
    assert v.false_match_probability == pytest.approx(2e-7 * vd.REG_FALSE_MATCH)
    assert v.confidence == pytest.approx(1 - v.false_match_probability)


def test_watermark_payload_picks_the_export_among_look_alikes() -> None:
    """Two presets of the same photo both register; the payload says which export leaked."""
    a = _ev("main", reg=_reg(ncc=0.95), payload="0000000001")
    b = _ev("gallery", reg=_reg(ncc=0.9), wm=_wm("0000000002"), payload="0000000002")
    v = vd.decide([a, b])
    assert v.verdict == "match" and v.record_id == "gallery"


@pytest.mark.parametrize("case", ["weak-ncc", "weak-grey", "few-inliers", "degenerate", "hash-only",
                                  "wrong-payload", "fp-too-high"])
def test_insufficient_evidence_is_no_match(case: str) -> None:
    ev = {
        "weak-ncc": _ev(reg=_reg(ncc=0.4)),
        "weak-grey": _ev(reg=_reg(grey=0.6)),
        "few-inliers": _ev(reg=_reg(inliers=vd.MIN_INLIERS - 1)),
        "degenerate": _ev(reg=_reg(ok=False)),
        "hash-only": _ev(pdq=4),
        "wrong-payload": _ev(wm=_wm("00000000bb")),
        "fp-too-high": _ev(wm=_wm(fp=1e-3)),
    }[case]
    v = vd.decide([ev])
    assert v.verdict == "no-match" and v.record_id is None and v.false_match_probability is None


def test_signed_metadata_counts_only_with_matching_pixels() -> None:
    meta = MetadataCheck(present=True, signature_valid=True, owner="Example Studio", payload=None, record_id="r1",
                         phash_distance=20, pixels_match=False, signer_verified=True)
    assert vd.decide([_ev()], metadata=meta).verdict == "no-match"
    v = vd.decide([_ev(reg=_reg())], metadata=dataclasses.replace(meta, phash_distance=2, pixels_match=True))
    assert v.verdict == "match"
    assert v.false_match_probability == pytest.approx(max(vd.REG_FALSE_MATCH * vd.META_FALSE_MATCH, vd.P_FLOOR))


def test_nothing_at_all_is_no_match() -> None:
    v = vd.decide([])
    assert v.verdict == "no-match" and v.confidence == pytest.approx(1 - vd.MISS_RATE)


def test_a_record_of_the_old_per_export_format_is_named_not_misread(exports: dict[int, np.ndarray],
                                                                    key: OwnerKey) -> None:
    """Features made before per-photo trace data (keypoints in export pixels, magic CMF1) are refused with a
    clear reason instead of being misread as photo coordinates."""
    store = MemoryStore()
    keys, _feats = synthetic.trace_blobs(exports[1])
    store.add(_record(1), keys, b"CMF1" + bytes(60))
    res = Tracer(store, None).trace_image(synthetic.jpeg(exports[1], 85))
    assert res.verdict.verdict == "no-match"
    assert any("before per-photo trace data" in f for f in res.verdict.findings), res.verdict.findings


# ------------------------------------------------------------------------------------ which photo was copied


def _photo_ev(rid: str, source: str, *, ncc: float, overlap: float, share: float, inliers: int = 60,
              pdq: int = 80) -> cd.CandidateEvidence:
    reg = _reg(inliers=inliers, ncc=ncc)
    reg.overlap, reg.suspect_share = overlap, share
    ev = _ev(rid, reg=reg, pdq=pdq)
    assert ev.record is not None
    ev.record.record.source = source
    return ev


def test_a_copy_of_the_packshot_is_not_named_after_the_mockup_that_contains_it() -> None:
    """The flat artwork's packshot and a room mock-up showing it both align with a striped copy of the packshot;
    the mock-up correlates better in colour (the overlay lowers the packshot's), but the copy fills only part of
    the mock-up and all of the packshot."""
    packshot = _photo_ev("packshot", "shoot/main.png", ncc=0.82, overlap=1.0, share=1.0, inliers=73, pdq=18)
    mockup = _photo_ev("mockup", "shoot/room.jpg", ncc=0.97, overlap=0.6, share=1.0, inliers=22)
    for order in ([packshot, mockup], [mockup, packshot]):
        v = vd.decide(order)
        assert v.verdict == "match" and v.record_id == "packshot"


def test_a_copy_of_the_table_shot_is_not_named_after_its_detail_crop() -> None:
    """The detail shot is a crop of the table shot: a copy of the table shot overhangs the detail's frame."""
    table = _photo_ev("table", "shoot/table.jpg", ncc=0.95, overlap=1.0, share=1.0, inliers=40)
    detail = _photo_ev("detail", "shoot/detail.jpg", ncc=0.99, overlap=1.0, share=0.13, inliers=74)
    assert vd.decide([detail, table]).record_id == "table"
    # and a copy of the detail shot fills the detail, only a seventh of the table shot
    table_c = _photo_ev("table", "shoot/table.jpg", ncc=0.95, overlap=0.14, share=1.0, inliers=30)
    detail_c = _photo_ev("detail", "shoot/detail.jpg", ncc=0.96, overlap=1.0, share=1.0, inliers=90)
    assert vd.decide([table_c, detail_c]).record_id == "detail"


def test_a_flipped_copy_names_its_photo_not_a_crop_of_it(key: OwnerKey) -> None:
    """End to end: a photo and a zoomed detail crop of it are both in the ledger; an upside-down copy of the photo
    (a reflection the search flags by its flipped hash, not by a left-right mirror) is named after the photo.
    Without registering the mirrored suspect for the photo, only the crop aligned and was named."""
    photo = synthetic.product_shot(7, (960, 640))
    h, w = photo.shape[:2]
    detail = np.ascontiguousarray(
        cv2.resize(photo[h // 4: 3 * h // 4, w // 3: 2 * w // 3], (640, 640), interpolation=cv2.INTER_CUBIC))
    store = MemoryStore()
    for rid, im, size in (("photo", photo, (960, 640)), ("detail", detail, (640, 640))):
        marked = invisible.embed(im, OwnerKey(OTHER_SECRET), 1, None)  # another key: no watermark says which
        store.add({**_record(0), "record_id": rid, "source": f"shoot/{rid}.jpg", "width": size[0],
                   "height": size[1], "extra": {"frame": synthetic.identity_frame(*size)}},
                  *synthetic.trace_blobs(marked, im))
    res = Tracer(store, key).trace_image(synthetic.jpeg(np.ascontiguousarray(photo[::-1]), 90))
    assert res.verdict.verdict == "match" and res.verdict.record_id == "photo"
    assert res.evidence is not None and res.evidence.registration is not None
    assert res.evidence.registration.mirrored
