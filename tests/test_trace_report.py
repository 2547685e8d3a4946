"""trace_files against a real ledger, the JSON contract, the evidence report, and its rendering in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline import invisible
from pipeline.errors import InputError
from pipeline.keys import OwnerKey
from pipeline.ledger import Ledger
from pipeline.marks.visible import render_mark
from pipeline.models import Owner, Record, VisibleMark
from pipeline.trace import TraceResult, trace_files
from tests import synthetic
from tests.conftest import FIXED_SECRET

SIZE = (640, 640)
OWNER = Owner(name="Example Studio", copyright="(c) 2026 Example Studio", watermark_text="example.studio")
MARK = VisibleMark(x=0.5, y=0.42, scale=0.42, rotation=-8.0, opacity=0.38, tone="light")


def _export(seed: int, key: OwnerKey, visible: bool) -> np.ndarray:
    img = synthetic.product_shot(seed, SIZE)
    if visible:
        layer = render_mark(OWNER, MARK, SIZE).astype(np.float32)
        a = layer[..., 3:] / 255
        img = np.clip(img * (1 - a) + layer[..., :3] * a, 0, 255).astype(np.uint8)
    return invisible.embed(img, key, 0x7700000000 + seed, None)


def _record(seed: int, visible: bool) -> Record:
    return Record(
        record_id=f"rid{seed:04d}", job_key=f"job{seed}", source=f"shoot/SKU{seed}/IMG_{seed}.CR3.jpg",
        source_sha256=f"{seed:02d}" * 32, sku=f"SKU{seed}", role="gallery" if visible else "main", position=1,
        preset="amazon", preset_digest="d" * 64, output=f"/out/amazon/SKU{seed}.PT01.jpg", output_sha256="e" * 64,
        output_bytes=123_456, pixel_sha256="f" * 64, width=SIZE[0], height=SIZE[1], format="jpeg", phash="0" * 16,
        pdq="0" * 64, pdq_quality=100, payload=f"{0x7700000000 + seed:010x}", owner=OWNER.name,
        key_fingerprint="cm1:test", signature="sig",
        capture={"datetime_original": "2026:10:01 12:34:56", "make": "Canon", "model": "EOS R6",
                 "original_width": 6000, "original_height": 4000},
        visible_mark=MARK.as_dict() if visible else None, created_at="2026-11-20T10:00:00Z",
        extra={"frame": {"scaled": list(SIZE), "offset": [0, 0], "canvas": list(SIZE), "background": [255, 255, 255]}},
    )


def traced_ledger(base: Path, key: OwnerKey) -> tuple[dict[int, np.ndarray], Ledger, str]:
    """Three marked exports (2 with the visible mark) recorded with their trace data in a sealed run of a ledger
    in ``base``: (exports by seed, the open ledger, the run's Merkle root)."""
    exports = {s: _export(s, key, visible=s == 2) for s in (1, 2, 3)}
    ledger = Ledger.open(base / "ledger.db")
    ledger.begin_run("run-1", {"pipeline": "test"})
    ledger.append("run-1", [_record(s, s == 2) for s in exports])
    for s, im in exports.items():
        ledger.put_trace(f"rid{s:04d}", *synthetic.trace_blobs(im, synthetic.product_shot(s, SIZE)))
    return exports, ledger, ledger.finish_run("run-1", {"processed": 3})


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("trace")
    key = OwnerKey(FIXED_SECRET)
    exports, ledger, root = traced_ledger(base, key)
    sus = base / "suspects"
    (sus / "sub").mkdir(parents=True)
    Image.fromarray(synthetic.rotate(synthetic.crop_area(exports[2], 0.6, np.random.default_rng(3)), 3)).save(
        sus / "a_crop_rotate.jpg", quality=80)
    # the visible mark painted out: what thieves do on gallery images
    alpha = render_mark(OWNER, MARK, SIZE)[..., 3]
    hole = cv2.dilate((alpha > 0).astype(np.uint8) * 255, np.ones((7, 7), np.uint8))
    clean = cv2.inpaint(exports[2][..., ::-1].copy(), hole, 5, cv2.INPAINT_TELEA)[..., ::-1]
    Image.fromarray(np.ascontiguousarray(clean)).save(sus / "b_mark_removed.png")
    Image.fromarray(synthetic.hflip(exports[3])).save(sus / "sub" / "c_mirror.webp", quality=80)
    Image.fromarray(synthetic.product_shot(44, SIZE)).save(sus / "d_other_product.jpg", quality=85)
    (sus / "notes.txt").write_text("not an image")
    report = base / "evidence.html"
    results = trace_files([sus], store=ledger, key=key, owner=OWNER, report_html=report)
    out = {"results": results, "report": report, "root": root, "ledger": ledger, "base": base}
    yield out
    ledger.close()


def test_folder_sweep_traces_every_image(traced: dict[str, Any]) -> None:
    names = [Path(r.suspect).name for r in traced["results"]]
    assert names == ["a_crop_rotate.jpg", "b_mark_removed.png", "d_other_product.jpg", "c_mirror.webp"]
    verdicts = {Path(r.suspect).name: (r.verdict.verdict, r.verdict.record_id) for r in traced["results"]}
    assert verdicts == {"a_crop_rotate.jpg": ("match", "rid0002"), "b_mark_removed.png": ("match", "rid0002"),
                        "c_mirror.webp": ("match", "rid0003"), "d_other_product.jpg": ("no-match", None)}


def test_json_contract(traced: dict[str, Any]) -> None:
    for r in traced["results"]:
        doc = json.loads(json.dumps(r.as_json()))
        assert set(doc) == {"suspect", "verdict", "confidence", "match", "signals", "ledger_proof"}
        assert doc["verdict"] in ("match", "no-match") and 0 <= doc["confidence"] <= 1
        if doc["verdict"] == "match":
            assert set(doc["match"]) == {"record_id", "source", "sku", "preset", "output"}
            proof = doc["ledger_proof"]
            assert proof["verifies"] and proof["tree_size"] == 3 and proof["root"] == traced["root"]
            leaf = int(doc["match"]["record_id"][-1]) - 1
            assert proof["leaf_index"] == leaf and proof["path_length"] == (1 if leaf == 2 else 2)  # 2: promoted
            assert proof["timestamps"] == [] and proof["vouched_by"] is None
        else:
            assert doc["match"] is None and doc["ledger_proof"] is None


def _visible(res: TraceResult) -> str | None:
    vm = res.verdict.signals.visible_mark
    return None if vm is None else vm.status


def test_visible_mark_check(traced: dict[str, Any]) -> None:
    by = {Path(r.suspect).name: r for r in traced["results"]}
    assert _visible(by["a_crop_rotate.jpg"]) == "present"
    assert _visible(by["b_mark_removed.png"]) == "removed"
    assert any("visible watermark has been removed" in f for f in by["b_mark_removed.png"].verdict.findings)
    assert _visible(by["c_mirror.webp"]) == "none"


def test_report_json_carries_the_chain_and_capture_data(traced: dict[str, Any]) -> None:
    doc = json.loads(traced["report"].with_suffix(".json").read_text())
    first = doc["suspects"][0]
    row = traced["ledger"].get("rid0002")
    assert row is not None
    assert first["ledger"]["seq"] == row.seq and first["ledger"]["record_hash"] == row.record_hash
    assert first["ledger"]["prev_hash"] == row.prev_hash
    assert first["ledger"]["run_merkle_root"] == traced["root"]
    assert first["original"]["source_sha256"] == "02" * 32
    assert first["original"]["capture"]["datetime_original"] == "2026:10:01 12:34:56"
    assert first["signals"]["registration"]["transform"]["rotation_deg"] == pytest.approx(3.0, abs=0.5)
    assert any("rotated 3.0 degrees counter-clockwise" in f for f in first["findings"])


def test_report_html_is_self_contained(traced: dict[str, Any]) -> None:
    text = traced["report"].read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert text.count('src="data:image/jpeg;base64,') >= 10
    for needle in (traced["root"], "rid0002", "EOS R6", "2026:10:01 12:34:56", "02" * 32, "MATCH", "NO MATCH",
                   "Findings", "Merkle root"):
        assert needle in text, needle


def test_missing_suspect_is_an_input_error(traced: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="no such suspect"):
        trace_files([traced["base"] / "nope.jpg"], store=traced["ledger"])


def test_unreadable_suspect_is_a_result_not_a_crash(traced: dict[str, Any]) -> None:
    bad = traced["base"] / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (res,) = trace_files([bad], store=traced["ledger"])
    assert res.verdict.verdict == "no-match" and res.error


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium); CI installs it")
def test_report_renders_in_headless_chromium(traced: dict[str, Any], tmp_path: Path) -> None:
    assert CHROMIUM is not None
    url = traced["report"].resolve().as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", url], check=True, timeout=120,
                   capture_output=True)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # not blank
    assert (np.abs(pixels.astype(int) - [29, 43, 69]).sum(axis=2) < 12).mean() > 0.02  # the header band rendered
    dom = subprocess.run([*flags, "--dump-dom", url], check=True, timeout=120, capture_output=True, text=True).stdout
    assert len(re.findall(r"<img ", dom)) >= 10
    assert len(re.findall(r'<section class="suspect"', dom)) == 4
    assert dom.count("badge match") == 3 and dom.count("badge no-match") == 1


def test_the_evidence_pack_carries_the_inclusion_proof_and_the_timestamp(traced: dict[str, Any], tmp_path: Path,
                                                                          chromium: str) -> None:
    """A stamped copy of the fixture's ledger (loopback TSA): the report's ledger table shows the inclusion proof
    and the timestamp, the findings end with the priority sentence; and without a token it says so."""
    import os
    import sqlite3

    from pipeline.config import TimestampConfig
    from pipeline.timestamp import stamp_runs
    from tests.conftest import screenshot_html
    from tests.tsa import LocalTSA

    db = tmp_path / "stamped.db"
    src, dst = sqlite3.connect(traced["base"] / "ledger.db"), sqlite3.connect(db)
    src.backup(dst)
    src.close()
    dst.close()
    suspect = traced["base"] / "suspects" / "a_crop_rotate.jpg"
    found = tmp_path / "found-on-a-marketplace.jpg"
    shutil.copyfile(suspect, found)
    later = 1_900_000_000  # 2030-03-17T17:46:40Z: well after the run was sealed
    os.utime(found, (later, later))
    key = OwnerKey(FIXED_SECRET)
    with Ledger.open(db) as led, LocalTSA(tmp_path / "tsa") as tsa:
        (unstamped,) = trace_files([found], store=led, key=key, owner=OWNER)
        report = stamp_runs(led, TimestampConfig(tsa=(tsa.url,), ca_file="ca.pem", ca_pem=tsa.ca_file.read_text(),
                                                 timeout=10))
        assert report.ok and len(report.stamped) == 1
        html_path = tmp_path / "evidence.html"
        (res,) = trace_files([found], store=led, key=key, owner=OWNER, report_html=html_path)
    # before the token: the owner's clock only, said so
    assert unstamped.ledger_proof is not None and unstamped.ledger_proof.timestamps == ()
    assert "by the owner's own clock (this run has no trusted timestamp" in unstamped.verdict.findings[-1]
    # with it: the proof, the timestamp and the priority, typed and in the JSON
    proof = res.ledger_proof
    assert res.verdict.verdict == "match" and proof is not None
    assert (proof.leaf_index, proof.tree_size, proof.path_length, proof.verifies) == (1, 3, 2, True)
    (stamp,) = proof.timestamps
    assert stamp.verifies and stamp.authority == "CN=catalogmark test TSA" and stamp.gen_time == report.stamped[0].gen_time
    assert proof.vouched_by == "CN=catalogmark test TSA" and proof.seen_at == "2030-03-17T17:46:40Z"
    days = proof.days_before
    assert days is not None and days > 1000
    sentence = res.verdict.findings[-1]
    assert sentence.startswith("Recorded in the owner's signed, timestamped ledger on ")
    assert (f"(RFC 3161 timestamp by CN=catalogmark test TSA) — {days} days before this copy was found (its file "
            "time) on 2030-03-17 17:46:40 UTC.") in sentence
    assert res.as_json()["ledger_proof"]["timestamps"][0]["verifies"] is True
    doc = json.loads(html_path.with_suffix(".json").read_text())
    assert doc["suspects"][0]["ledger_proof"]["sentence"] == sentence and sentence in doc["suspects"][0]["findings"]
    text = html_path.read_text()
    for needle in ("inclusion proof (Merkle audit path)", "leaf 1 of 3, a path of 2 hashes to the run root",
                   "trusted timestamp (RFC 3161)", "by CN=catalogmark test TSA", "days before this copy was found"):
        assert needle in text, needle
    assert text.count('<span class="ok">verified</span>') == 2
    shot = screenshot_html(chromium, html_path, tmp_path / "evidence.png", height=2600)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.std() > 20
    keep = os.environ.get("CATALOGMARK_KEEP_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


def _flip_bits(data: bytes, bits: list[int]) -> bytes:
    out = bytearray(data)
    for b in bits:
        out[b // 8] ^= 0x80 >> (b % 8)
    return bytes(out)


def test_trace_survives_a_hash_library_upgrade(traced: dict[str, Any], tmp_path: Path) -> None:
    """An upgrade of Pillow / pdqhash / OpenCV / numpy can flip a few bits of every perceptual hash: the stored
    search keys (made by the old versions) then differ from what the new versions compute on a suspect. Flip
    10 of 256 PDQ bits (global, trimmed and every region) and 4 of 64 pHash bits of every stored export: the
    copies still trace to the same records."""
    import dataclasses
    import sqlite3

    from pipeline.trace import signatures as sg

    db = tmp_path / "upgraded.db"
    src, dst = sqlite3.connect(traced["base"] / "ledger.db"), sqlite3.connect(db)
    src.backup(dst)
    src.close()
    dst.close()
    rng = np.random.default_rng(8)

    def pdq(h: bytes) -> bytes:
        return _flip_bits(h, list(rng.choice(256, 10, replace=False)))

    def ph(h: bytes) -> bytes:
        return _flip_bits(h, list(rng.choice(64, 4, replace=False)))

    with Ledger.open(db) as led:
        for s in (1, 2, 3):
            rid = f"rid{s:04d}"
            blobs = led.get_trace(rid)
            assert blobs is not None
            old = sg.TraceSignature.from_bytes(blobs[0])
            new = dataclasses.replace(old, pdq=pdq(old.pdq), pdq_trim=pdq(old.pdq_trim), phash=ph(old.phash),
                                      phash_trim=ph(old.phash_trim),
                                      pdq_regions=tuple(pdq(r) for r in old.pdq_regions))
            assert new.search_keys() != blobs[0]
            led.put_trace(rid, new.search_keys(), blobs[1])
        results = trace_files([traced["base"] / "suspects"], store=led, key=OwnerKey(FIXED_SECRET), owner=OWNER)
        plain = tmp_path / "reencoded.jpg"  # a copy the hash channel alone finds: only re-encoded
        Image.fromarray(_export(1, OwnerKey(FIXED_SECRET), visible=False)).save(plain, quality=85)
        (res,) = trace_files([plain], store=led, key=OwnerKey(FIXED_SECRET), owner=OWNER)
    h = res.verdict.signals.hash
    assert (res.verdict.verdict, res.verdict.record_id) == ("match", "rid0001")
    assert h is not None and h.match and 0 < h.pdq_distance <= h.pdq_threshold  # the flipped bits show, within bounds
    before = {Path(r.suspect).name: (r.verdict.verdict, r.verdict.record_id) for r in traced["results"]}
    after = {Path(r.suspect).name: (r.verdict.verdict, r.verdict.record_id) for r in results}
    assert after == before
    assert after["a_crop_rotate.jpg"] == ("match", "rid0002") and after["c_mirror.webp"] == ("match", "rid0003")
