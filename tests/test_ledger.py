"""Tests for pipeline.ledger: round trip, hash chain, Merkle roots, tamper detection, migrations, recovery."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import LedgerError
from pipeline.ledger import (
    GENESIS,
    RECORD_FIELDS,
    SCHEMA_VERSION,
    Ledger,
    apply_migrations,
    merkle_root,
)
from pipeline.models import CaptureInfo, Record, VisibleMark
from tests.helpers import ledger_records

REPO = Path(__file__).resolve().parents[1]


# --- independent re-implementations (what an outside auditor would write from the module docstring) ----------

def _canon(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _auditor_hash(doc: dict) -> str:
    """Record hash from an exported/returned record dict (dict columns as objects)."""
    fields = {k: v for k, v in doc.items() if k not in ("record_hash", "type")}
    return hashlib.sha256(bytes.fromhex(doc["prev_hash"]) + _canon(fields)).hexdigest()


def _rfc6962_root(hashes: list[str]) -> str:
    """RFC 6962 Merkle Tree Hash (split at the largest power of two below n): a different construction."""
    def mth(leaves: list[bytes]) -> bytes:
        if len(leaves) == 1:
            return hashlib.sha256(b"\x00" + leaves[0]).digest()
        k = 1
        while k * 2 < len(leaves):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()

    if not hashes:
        return hashlib.sha256(b"").hexdigest()
    return mth([bytes.fromhex(h) for h in hashes]).hex()


# --- fixtures --------------------------------------------------------------------------------------------------

def make_record(i: int, *, sku: str | None = None, preset: str = "amazon", job_key: str | None = None,
                payload: str | None = "", visible: bool = True, source: str | None = None) -> Record:
    sku = sku or f"SKU{i % 7:03d}"
    role = "main" if i % 5 == 0 else "gallery"
    h = lambda tag: hashlib.sha256(f"{tag}{i}{preset}".encode()).hexdigest()  # noqa: E731
    capture = CaptureInfo(datetime_original="2026:11:20 10:15:00", make="Canon", model="EOS R6",
                          original_width=6000, original_height=4000, orientation=6 if i % 3 == 0 else 1,
                          source_format="JPEG").as_dict() | {"source_bytes": 4_000_000 + i}
    mark = VisibleMark(x=0.41 + i * 0.001, y=0.6, scale=0.33, rotation=-12.5, opacity=0.35,
                       warp=(0.01, -0.02, 0.003), tone="dark").as_dict()
    return Record(
        record_id="r" + h("rid")[:23],
        job_key=job_key or h("job"),
        source=source or f"shoot/{sku}/IMG_{i:04d}.jpg",
        source_sha256=h("src"),
        sku=sku,
        role=role,
        position=0 if role == "main" else i % 5,
        preset=preset,
        preset_digest=h("preset")[:64],
        output=f"/out/{preset}/{sku}.PT{i % 5:02d}.jpg",
        output_sha256=h("out"),
        output_bytes=150_000 + i,
        pixel_sha256=h("px"),
        width=2000,
        height=2000,
        format="jpeg",
        phash=h("ph")[:16],
        pdq=h("pdq"),
        pdq_quality=100,
        payload=(f"{i:010x}" if payload == "" else payload),
        owner="Example Studio — Ünïcode",
        key_fingerprint="cm1:" + h("key")[:32],
        signature="c2lnbmF0dXJl" + str(i),
        capture=capture,
        visible_mark=mark if visible and role == "gallery" else None,
        created_at=f"2026-11-23T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        extra={"quality": 88, "claim": {"v": 1, "record_id": "r" + h("rid")[:23], "owner": "Example Studio"}},
    )


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "ledger.sqlite"


@pytest.fixture
def filled(ledger_path: Path):
    """A ledger with two finished runs (5 + 4 records) and a third finished run of 3; returns (path, records)."""
    recs = [make_record(i) for i in range(12)]
    with Ledger.open(ledger_path) as led:
        led.begin_run("run-a", {"pipeline_version": "1", "argv": ["run", "x"]})
        led.append("run-a", recs[:3])
        led.append("run-a", recs[3:5])
        led.finish_run("run-a", {"processed": 5})
        led.begin_run("run-b", {"pipeline_version": "1"})
        led.append("run-b", recs[5:9])
        led.finish_run("run-b", {"processed": 4})
        led.begin_run("run-c", {"pipeline_version": "1"})
        led.append("run-c", recs[9:])
        led.finish_run("run-c", {"processed": 3})
    return ledger_path, recs


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def verify(path: Path):
    with Ledger.open(path) as led:
        return led.verify()


# --- basics ----------------------------------------------------------------------------------------------------

def test_record_columns_match_the_model():
    assert tuple(f.name for f in dataclasses.fields(Record)) == RECORD_FIELDS


def test_open_creates_folder_wal_and_schema(ledger_path: Path):
    with Ledger.open(ledger_path) as led:
        assert led.stats()["schema_version"] == SCHEMA_VERSION
    assert ledger_path.is_file()
    con = raw(ledger_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexed = {row[0] for row in con.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    for cols in ("(job_key)", "(record_id)", "(payload)", "(source, preset)", "(pdq)"):
        assert any(cols in sql for sql in indexed), cols


def test_round_trip_of_records(ledger_path: Path):
    recs = [make_record(i) for i in range(6)] + [make_record(6, payload=None, visible=False)]
    with Ledger.open(ledger_path) as led:
        led.begin_run("run-1", {"pipeline_version": "1"})
        out = led.append("run-1", recs)
        assert [seq for seq, _ in out] == list(range(1, 8))
        got = ledger_records(led)
        assert len(got) == 7
        for rec, doc, (seq, digest) in zip(recs, got, out, strict=True):
            expected = dataclasses.asdict(rec)
            assert {k: doc[k] for k in expected} == json.loads(json.dumps(expected))
            assert doc["seq"] == seq and doc["record_hash"] == digest and doc["run_id"] == "run-1"
            assert set(doc) == set(expected) | {"seq", "run_id", "prev_hash", "record_hash"}
        assert got[-1]["payload"] is None and got[-1]["visible_mark"] is None
        assert led.get(recs[2].record_id).seq == 3
        assert led.get("r-nope") is None
        assert [d.seq for d in led.find_by_payload(recs[4].payload.upper())] == [5]
        assert led.latest_by_outputs([recs[1].output])[recs[1].output].record.record_id == recs[1].record_id
        assert led.latest_by_outputs([recs[1].output.replace("amazon", "shopify")]) == {}
    # dict columns are canonical JSON text in the file
    con = raw(ledger_path)
    capture, mark = con.execute("SELECT capture, visible_mark FROM records WHERE seq = 2").fetchone()
    assert capture == json.dumps(json.loads(capture), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert " " not in mark and json.loads(mark)["warp"] == [0.01, -0.02, 0.003]


def test_newest_record_wins(ledger_path: Path):
    old, new = make_record(1), dataclasses.replace(make_record(1), output_sha256="f" * 64)
    with Ledger.open(ledger_path) as led:
        for run, rec in (("run-1", old), ("run-2", new)):
            led.begin_run(run, {})
            led.append(run, [rec])
            led.finish_run(run, {})
        assert led.get(old.record_id).record.output_sha256 == "f" * 64
        newest = led.latest_by_outputs([old.output])[old.output]
        assert (newest.run_id, newest.seq, newest.record.output_sha256) == ("run-2", 2, "f" * 64)
        assert len(led.find_by_payload(old.payload)) == 2


def test_chain_and_merkle_recomputed_independently(filled):
    path, recs = filled
    with Ledger.open(path) as led:
        docs = ledger_records(led)
        runs = {r.run_id: r.as_dict() for r in led.runs()}
        assert led.verify().ok
    prev = GENESIS
    for doc in docs:
        assert doc["prev_hash"] == prev
        assert _auditor_hash(doc | {"fmt": 1}) == doc["record_hash"]
        prev = doc["record_hash"]
    for run_id, n in (("run-a", 5), ("run-b", 4), ("run-c", 3)):
        hashes = [d["record_hash"] for d in docs if d["run_id"] == run_id]
        assert len(hashes) == n == runs[run_id]["record_count"]
        assert runs[run_id]["status"] == "finished" and runs[run_id]["merkle_root"] == _rfc6962_root(hashes)
    assert runs["run-a"]["info"]["argv"] == ["run", "x"] and runs["run-a"]["counts"] == {"processed": 5}


@pytest.mark.parametrize("n", [*range(0, 18), 31, 32, 33, 64, 65, 100])
def test_merkle_root_matches_rfc6962(n: int):
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    assert merkle_root(hashes) == _rfc6962_root(hashes)


def test_merkle_root_is_order_and_domain_sensitive():
    a, b = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()
    assert merkle_root([a, b]) != merkle_root([b, a])
    # the root of two leaves is not a valid leaf hash of a one-leaf tree over the same bytes (domain separation)
    node = hashlib.sha256(b"\x01" + hashlib.sha256(b"\x00" + bytes.fromhex(a)).digest()
                          + hashlib.sha256(b"\x00" + bytes.fromhex(b)).digest()).hexdigest()
    assert merkle_root([a, b]) == node != merkle_root([node])


def test_finish_run_returns_root_and_empty_run(ledger_path: Path):
    with Ledger.open(ledger_path) as led:
        led.begin_run("empty", {})
        assert led.finish_run("empty", {"processed": 0, "skipped": 8}) == hashlib.sha256(b"").hexdigest()
        assert led.verify().ok


def test_api_misuse_is_a_ledger_error(ledger_path: Path):
    with Ledger.open(ledger_path) as led:
        with pytest.raises(LedgerError, match="no such run"):
            led.append("ghost", [make_record(1)])
        led.begin_run("r1", {})
        with pytest.raises(LedgerError, match="already exists"):
            led.begin_run("r1", {})
        bad = dataclasses.replace(make_record(2), extra={"blob": b"\x00"})
        with pytest.raises(LedgerError, match="extra"):
            led.append("r1", [make_record(1), bad])
        with pytest.raises(LedgerError, match="capture"):
            led.append("r1", [dataclasses.replace(make_record(3), capture={"x": float("nan")})])
        with pytest.raises(LedgerError, match="width"):
            led.append("r1", [dataclasses.replace(make_record(3), width="2000")])
        with pytest.raises(LedgerError, match="source.*Unicode"):
            led.append("r1", [dataclasses.replace(make_record(3), source="shoot/\udcff.jpg")])
        # a failed batch leaves nothing behind; numpy integers are fine
        assert ledger_records(led) == []
        led.append("r1", [dataclasses.replace(make_record(4), width=np.int64(640),
                                              capture={"w": np.int64(6000), "gain": np.float32(0.5)})])
        assert led.get(make_record(4).record_id).record.capture == {"w": 6000, "gain": 0.5}
        with pytest.raises(LedgerError, match="extra"):
            led.append("r1", [dataclasses.replace(make_record(6), extra={"arr": np.zeros(3)})])
        led.finish_run("r1", {})
        with pytest.raises(LedgerError, match="finished"):
            led.append("r1", [make_record(5)])
        with pytest.raises(LedgerError, match="already finished"):
            led.finish_run("r1", {})
        assert led.verify().ok
    with pytest.raises(LedgerError, match="closed"):
        led.get("x")


def test_latest_by_outputs_10k(ledger_path: Path):
    recs = [make_record(i, sku=f"S{i:05d}") for i in range(10_000)]  # one output path each
    with Ledger.open(ledger_path) as led:
        led.begin_run("big", {})
        for start in range(0, len(recs), 2000):
            led.append("big", recs[start:start + 2000])
        led.begin_run("again", {})
        led.append("again", [dataclasses.replace(recs[7], output_sha256="e" * 64)])
        wanted = [make_record(i, sku=f"S{i:05d}").output for i in range(0, 20_000, 2)]  # half exist, half do not
        found = led.latest_by_outputs(iter(wanted))
        assert len(found) == 5_000
        assert found[recs[8].output].record.record_id == recs[8].record_id
        assert recs[7].output not in found
        assert led.latest_by_outputs([recs[7].output])[recs[7].output].record.output_sha256 == "e" * 64
        assert led.latest_by_outputs([]) == {}
        led.finish_run("big", {})
        led.finish_run("again", {})
        assert led.verify().ok


def test_traces_side_table(ledger_path: Path):
    with Ledger.open(ledger_path) as led:
        led.put_traces([("r1", b"\x01\x02", b"feat")])
        led.put_traces([("r2", b"k2", b"f2"), ("r1", b"k1", b"f1")])  # replaces r1
        led.put_traces([])
        assert led.get_trace("r1") == (b"k1", b"f1") and led.get_trace("r2") == (b"k2", b"f2")
        assert led.get_trace("nope") is None
        assert list(led.iter_search_keys()) == [("r1", b"k1"), ("r2", b"k2")]


def test_export_jsonl_parses_back_and_recomputes(filled):
    path, recs = filled
    buf = io.StringIO()
    with Ledger.open(path) as led:
        n = led.export_jsonl(buf)
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert n == len(lines) == 3 + 12
    runs = [d for d in lines if d["type"] == "run"]
    records = [d for d in lines if d["type"] == "record"]
    assert [r["run_id"] for r in runs] == ["run-a", "run-b", "run-c"]
    assert [r["record_id"] for r in records] == [r.record_id for r in recs]
    prev = GENESIS
    for doc in records:  # an auditor needs nothing but the export to recompute the chain and the roots
        assert doc["prev_hash"] == prev and _auditor_hash(doc) == doc["record_hash"]
        prev = doc["record_hash"]
    for run in runs:
        assert run["merkle_root"] == _rfc6962_root([d["record_hash"] for d in records if d["run_id"] == run["run_id"]])


def test_stats(filled):
    path, recs = filled
    with Ledger.open(path) as led:
        s = led.stats()
    assert s["records"] == 12 and s["runs"] == 3 and s["runs_by_status"] == {"finished": 3}
    assert s["presets"] == {"amazon": 12} and s["skus"] == 7
    assert s["first_record_at"] == "2026-11-23T10:00:00Z" and s["last_record_at"] == "2026-11-23T10:00:11Z"
    assert s["schema_version"] == SCHEMA_VERSION and s["file_bytes"] > 0
    json.dumps(s)


# --- tamper detection ------------------------------------------------------------------------------------------

def test_untouched_ledger_verifies(filled):
    report = verify(filled[0])
    assert report.ok and report.records == 12 and report.runs == 3 and report.problems == []


@pytest.mark.parametrize("sql", [
    "UPDATE records SET sku = 'STOLEN' WHERE seq = 7",
    "UPDATE records SET width = 2001 WHERE seq = 7",
    "UPDATE records SET payload = NULL WHERE seq = 7",
    "UPDATE records SET capture = replace(capture, 'Canon', 'Nikon') WHERE seq = 7",
    "UPDATE records SET run_id = 'run-a' WHERE seq = 7",
    "UPDATE records SET created_at = '2020-01-01T00:00:00Z' WHERE seq = 7",
])
def test_verify_catches_an_edited_column(filled, sql: str):
    path, recs = filled
    raw(path).execute(sql)
    report = verify(path)
    assert not report.ok
    assert f"record 7 ({recs[6].record_id}): stored hash does not match its contents" in report.problems


def test_verify_catches_non_canonical_json_edit(filled):
    path, recs = filled
    raw(path).execute("UPDATE records SET extra = replace(extra, ',', ', ') WHERE seq = 2")
    report = verify(path)
    assert not report.ok and any("record 2" in p and "not canonical JSON" in p for p in report.problems)


def test_verify_catches_a_recomputed_hash_because_the_link_breaks(filled):
    """An attacker who edits a row and recomputes its hash still breaks the next record's prev_hash."""
    path, _ = filled
    con = raw(path)
    con.execute("UPDATE records SET sku = 'STOLEN' WHERE seq = 7")
    with Ledger.open(path) as led:
        doc = next(d for d in ledger_records(led) if d["seq"] == 7)
    con.execute("UPDATE records SET record_hash = ? WHERE seq = 7", (_auditor_hash(doc | {"fmt": 1}),))
    report = verify(path)
    assert "record 8: prev_hash does not link to record 7" in report.problems
    assert "run-b: merkle root mismatch" in " ".join(report.problems)
    assert not any("record 7" in p and "stored hash" in p for p in report.problems)


def test_verify_catches_a_deleted_middle_row(filled):
    path, _ = filled
    raw(path).execute("DELETE FROM records WHERE seq = 3")
    report = verify(path)
    assert not report.ok and report.records == 11
    assert "record 3: missing (chain gap before record 4)" in report.problems
    assert "record 4: prev_hash does not link to record 2" in report.problems
    assert "run run-a: expected 5 records, found 4" in report.problems
    assert any(p.startswith("run run-a: merkle root mismatch") for p in report.problems)


def test_verify_catches_a_deleted_last_row_of_a_run(filled):
    path, _ = filled
    raw(path).execute("DELETE FROM records WHERE seq = 9")  # last of run-b (run-c follows)
    report = verify(path)
    assert "run run-b: expected 4 records, found 3" in report.problems
    assert "record 10: prev_hash does not link to record 8" in report.problems


def test_verify_catches_a_deleted_last_row_of_the_ledger(filled):
    path, _ = filled
    raw(path).execute("DELETE FROM records WHERE seq = 12")
    report = verify(path)
    assert not report.ok
    assert "run run-c: expected 3 records, found 2" in report.problems
    assert any(p.startswith("chain head:") for p in report.problems)


def test_deleted_tail_stays_visible_after_the_next_append(ledger_path: Path):
    with Ledger.open(ledger_path) as led:
        led.begin_run("r", {})
        led.append("r", [make_record(i) for i in range(3)])
    raw(ledger_path).execute("DELETE FROM records WHERE seq = 3")  # run still 'running': no count to betray it
    with Ledger.open(ledger_path) as led:
        assert any(p.startswith("chain head:") for p in led.verify().problems)
        led.begin_run("r2", {})
        assert led.append("r2", [make_record(9)]) [0][0] == 4  # the chain continues from the remembered head
        led.finish_run("r2", {})
        report = led.verify()
    assert "record 3: missing (chain gap before record 4)" in report.problems


def test_verify_catches_swapped_rows(filled):
    path, recs = filled
    con = raw(path)
    con.execute("BEGIN")
    con.execute("UPDATE records SET seq = -1 WHERE seq = 2")
    con.execute("UPDATE records SET seq = 2 WHERE seq = 3")
    con.execute("UPDATE records SET seq = 3 WHERE seq = -1")
    con.execute("COMMIT")
    report = verify(path)
    assert not report.ok
    assert f"record 2 ({recs[2].record_id}): stored hash does not match its contents" in report.problems
    assert f"record 3 ({recs[1].record_id}): stored hash does not match its contents" in report.problems
    assert any(p.startswith("run run-a: merkle root mismatch") for p in report.problems)


def test_verify_catches_swapped_runs_of_two_records(filled):
    path, _ = filled
    con = raw(path)
    con.execute("UPDATE records SET run_id = CASE run_id WHEN 'run-a' THEN 'run-b' ELSE 'run-a' END "
                "WHERE seq IN (5, 6)")
    report = verify(path)
    assert any("record 5" in p and "stored hash" in p for p in report.problems)
    assert any("record 6" in p and "stored hash" in p for p in report.problems)


def test_verify_catches_an_inserted_forged_row(filled):
    """A forger who knows the recipe and chains a well-formed row onto the end of a finished run."""
    path, _ = filled
    with Ledger.open(path) as led:
        last = ledger_records(led)[-1]
    forged = dataclasses.asdict(make_record(99, sku="FORGED")) | {
        "seq": 13, "run_id": "run-c", "fmt": 1, "prev_hash": last["record_hash"]}
    forged["record_hash"] = _auditor_hash(forged)
    cols = {k: (json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False) if isinstance(v, dict) else v)
            for k, v in forged.items()}
    raw(path).execute(f"INSERT INTO records ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                      list(cols.values()))
    report = verify(path)
    assert not report.ok
    assert "run run-c: expected 3 records, found 4" in report.problems
    assert any(p.startswith("chain head:") for p in report.problems)
    # the next real append refuses to build on a head that is not the one it remembers
    with Ledger.open(path) as led:
        led.begin_run("run-d", {})
        with pytest.raises(LedgerError, match="modified outside catalogmark"):
            led.append("run-d", [make_record(50)])


def test_verify_catches_a_row_inserted_with_a_made_up_hash(filled):
    path, recs = filled
    con = raw(path)
    con.execute("PRAGMA foreign_keys = OFF")
    con.execute("INSERT INTO records SELECT 13, 'run-zzz', fmt, prev_hash, ?, record_id, job_key, source, "
                "source_sha256, sku, role, position, preset, preset_digest, output, output_sha256, output_bytes, "
                "pixel_sha256, width, height, format, phash, pdq, pdq_quality, payload, owner, key_fingerprint, "
                "signature, capture, visible_mark, created_at, extra FROM records WHERE seq = 1", ("ab" * 32,))
    report = verify(path)
    assert f"record 13 ({recs[0].record_id}): stored hash does not match its contents" in report.problems
    assert "record 13: prev_hash does not link to record 12" in report.problems
    assert f"record 13 ({recs[0].record_id}): run run-zzz is not in the runs table" in report.problems


def test_verify_catches_an_edited_merkle_root_and_count(filled):
    path, _ = filled
    con = raw(path)
    con.execute("UPDATE runs SET merkle_root = ? WHERE run_id = 'run-b'", ("0" * 64,))
    con.execute("UPDATE runs SET record_count = 40 WHERE run_id = 'run-c'")
    report = verify(path)
    assert any(p.startswith("run run-b: merkle root mismatch") for p in report.problems)
    assert "run run-c: expected 40 records, found 3" in report.problems
    assert len(report.problems) == 2


# --- migrations, bad files -------------------------------------------------------------------------------------

def test_opening_an_old_version_migrates_and_keeps_data(filled):
    path, recs = filled
    con = raw(path)  # make it what a v1 ledger looks like: no trace side table, user_version 1
    con.execute("DROP TABLE traces")
    con.execute("DROP TABLE file_stats")
    con.execute("DROP INDEX records_output")
    con.execute("DROP TABLE timestamps")
    for table in ("sightings", "case_events", "cases", "sweeps"):  # v5
        con.execute(f"DROP TABLE {table}")
    con.execute("PRAGMA user_version = 1")
    con.close()
    with Ledger.open(path) as led:
        assert led.stats()["schema_version"] == SCHEMA_VERSION
        led.put_traces([(recs[0].record_id, b"k", b"f")])
        assert led.verify().ok and len(ledger_records(led)) == 12


def test_a_v3_ledger_gains_the_timestamps_table_and_keeps_verifying(filled):
    path, recs = filled
    con = raw(path)
    con.execute("DROP TABLE timestamps")
    for table in ("sightings", "case_events", "cases", "sweeps"):  # v5
        con.execute(f"DROP TABLE {table}")
    con.execute("PRAGMA user_version = 3")
    roots = dict(con.execute("SELECT run_id, merkle_root FROM runs"))
    con.close()
    with Ledger.open(path) as led:
        report = led.verify()
        assert report.ok and report.timestamps == 0 and led.timestamps() == []
        assert {r.run_id: r.merkle_root for r in led.runs()} == roots
        assert [p.run_id for p in led.pending_stamps(["http://tsa/"])] == ["run-a", "run-b", "run-c"]
    assert raw(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5


def test_migrations_apply_in_order_from_a_fresh_v1_file(tmp_path: Path):
    path = tmp_path / "v1.sqlite"
    con = raw(path)
    assert apply_migrations(con, str(path), target=1) == 1
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'traces'").fetchone()[0] == 0
    con.close()
    with Ledger.open(path) as led:
        assert led.stats()["schema_version"] == SCHEMA_VERSION
    assert raw(path).execute("SELECT count(*) FROM sqlite_master WHERE name = 'traces'").fetchone()[0] == 1


def test_future_version_is_an_error(filled):
    path, _ = filled
    raw(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(LedgerError, match=rf"{path.name}.*schema version {SCHEMA_VERSION + 5}.*upgrade"):
        Ledger.open(path)


@pytest.mark.parametrize("content", [b"this is not a database at all\n" * 200, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_non_sqlite_or_corrupt_file_is_a_ledger_error(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(content)
    with pytest.raises(LedgerError, match=str(path)):
        Ledger.open(path)


def test_foreign_sqlite_database_is_refused(tmp_path: Path):
    path = tmp_path / "other.db"
    raw(path).execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(LedgerError, match="not a catalogmark ledger"):
        Ledger.open(path)


def test_directory_or_unwritable_parent_is_a_ledger_error(tmp_path: Path):
    with pytest.raises(LedgerError, match="directory"):
        Ledger.open(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match=str(blocker)):
        Ledger.open(blocker / "sub" / "ledger.sqlite")


# --- crashes and concurrency -----------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {tests!r})
    from test_ledger import make_record
    from pipeline.ledger import Ledger
    led = Ledger.open({path!r})
    led.begin_run("crashed", {{"argv": ["run"]}})
    led.append("crashed", [make_record(i) for i in range(3)])
    led.append("crashed", [make_record(i) for i in range(3, 5)])
    print("ready", flush=True)
    sys.stdin.readline()
    os._exit(9)  # die without finishing the run or closing the ledger
""")


def test_reader_while_another_process_writes_then_recover_after_its_crash(ledger_path: Path):
    ledger_path.parent.mkdir(parents=True)
    with Ledger.open(ledger_path) as led:  # one finished run first
        led.begin_run("done", {})
        led.append("done", [make_record(100)])
        led.finish_run("done", {})
    script = WRITER.format(tests=str(REPO / "tests"), path=str(ledger_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        # the writer is alive with an unfinished run: a second process can read, and does not steal its run
        with Ledger.open(ledger_path) as led:
            assert led.recover() == []
            assert led.latest_by_outputs([make_record(4).output])[make_record(4).output].seq == 6
            report = led.verify()
            assert report.ok and report.records == 6
            assert {r.run_id: r.status for r in led.runs()} == {"done": "finished", "crashed": "running"}
    finally:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 9
    with Ledger.open(ledger_path) as led:
        assert led.recover() == ["crashed"]
        assert led.recover() == []
        run = next(r for r in led.runs() if r.run_id == "crashed")
        hashes = [d["record_hash"] for d in ledger_records(led, run_id="crashed")]
        assert run.status == "interrupted" and run.record_count == 5 == len(hashes)
        assert run.merkle_root == _rfc6962_root(hashes)
        assert led.verify().ok
        with pytest.raises(LedgerError, match="interrupted"):
            led.append("crashed", [make_record(200)])


def test_recover_leaves_runs_of_open_ledgers_in_this_process_alone(ledger_path: Path):
    writer = Ledger.open(ledger_path)
    writer.begin_run("live", {})
    writer.append("live", [make_record(1)])
    with Ledger.open(ledger_path) as other:
        assert other.recover() == []
        writer.close()  # closed without finish_run: as good as a crash
        assert other.recover() == ["live"]
        assert other.verify().ok


def test_reader_sees_committed_data_while_a_write_transaction_is_open(filled):
    path, recs = filled
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    try:
        with Ledger.open(path) as led:
            assert led.get(recs[3].record_id).seq == 4
            assert led.verify().ok
    finally:
        blocker.execute("ROLLBACK")


# --- property: any interleaving of appends across runs verifies -----------------------------------------------

ops = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 5), st.booleans()),  # (run slot, batch size, finish after?)
    min_size=1, max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops)
def test_random_appends_across_runs_always_verify(ops):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "l.sqlite"
        counter = 0
        generation = [0, 0, 0]
        open_runs: dict[int, str] = {}
        appended: dict[str, list[str]] = {}
        roots: dict[str, str] = {}
        with Ledger.open(path) as led:
            for slot, size, finish in ops:
                if slot not in open_runs:
                    generation[slot] += 1
                    open_runs[slot] = f"run-{slot}-{generation[slot]}"
                    led.begin_run(open_runs[slot], {"slot": slot})
                run_id = open_runs[slot]
                out = led.append(run_id, [make_record(counter + i) for i in range(size)])
                counter += size
                appended.setdefault(run_id, []).extend(h for _, h in out)
                if finish:
                    roots[run_id] = led.finish_run(run_id, {})
                    del open_runs[slot]
            report = led.verify()
            assert report.ok, report.problems
            assert report.records == counter
            seqs = [d["seq"] for d in ledger_records(led)]
            assert seqs == list(range(1, counter + 1))
            for run_id, root in roots.items():
                assert root == _rfc6962_root(appended[run_id])


def test_iter_search_keys_reads_only_the_small_blobs(tmp_path):
    from pipeline.ledger import Ledger

    with Ledger.open(tmp_path / "l.sqlite") as led:
        led.put_traces([("r1", b"k1", b"features-1"), ("r2", b"k2", b"features-2")])
        assert list(led.iter_search_keys()) == [("r1", b"k1"), ("r2", b"k2")]


# --- inclusion proofs ------------------------------------------------------------------------------------------

def test_inclusion_proof_of_every_record_verifies_from_the_ledger_alone(filled):
    path, recs = filled
    from pipeline.merkle import verify_inclusion

    with Ledger.open(path) as led:
        runs = {r.run_id: r for r in led.runs()}
        docs = ledger_records(led)
        for doc in docs:
            proof = led.inclusion_proof(doc["record_id"])
            run = runs[doc["run_id"]]
            assert proof.verifies and proof.root == run.merkle_root and proof.run_id == doc["run_id"]
            assert proof.record_hash == doc["record_hash"] and proof.tree_size == run.record_count
            in_run = [d["seq"] for d in docs if d["run_id"] == doc["run_id"]]
            assert proof.leaf_index == in_run.index(doc["seq"])
            assert verify_inclusion(doc["record_hash"], proof.leaf_index, proof.tree_size, proof.audit_path,
                                    _rfc6962_root([d["record_hash"] for d in docs if d["run_id"] == doc["run_id"]]))
        leaves = led.run_leaves(recs[6].record_id)
        assert leaves is not None and leaves.run_id == "run-b" and leaves.index == 1 and len(leaves.hashes) == 4
        assert led.run_leaves("r-nope") is None


def test_inclusion_proof_picks_a_record_by_seq_and_refuses_unsealed_runs(ledger_path: Path):
    rec = make_record(1)
    with Ledger.open(ledger_path) as led:
        for run in ("run-1", "run-2"):
            led.begin_run(run, {})
            led.append(run, [rec, make_record(len(run) + (run == "run-2") * 10)])
            led.finish_run(run, {})
        assert led.inclusion_proof(rec.record_id).seq == 3
        first = led.inclusion_proof(rec.record_id, seq=1)
        assert (first.seq, first.run_id, first.leaf_index, first.verifies) == (1, "run-1", 0, True)
        with pytest.raises(LedgerError, match="no record r-nope"):
            led.inclusion_proof("r-nope")
        with pytest.raises(LedgerError, match="at seq 2"):
            led.inclusion_proof(rec.record_id, seq=2)
        led.begin_run("run-3", {})
        led.append("run-3", [make_record(40)])
        with pytest.raises(LedgerError, match="running, not sealed"):
            led.inclusion_proof(make_record(40).record_id)


def test_inclusion_proof_fails_against_an_edited_root(filled):
    path, recs = filled
    raw(path).execute("UPDATE runs SET merkle_root = ? WHERE run_id = 'run-a'", ("ab" * 32,))
    with Ledger.open(path) as led:
        assert not led.inclusion_proof(recs[0].record_id).verifies
        assert led.inclusion_proof(recs[5].record_id).verifies


def test_interrupt_run_seals_the_run_as_interrupted_with_its_root(ledger_path: Path):
    with Ledger.open(ledger_path) as led:
        led.begin_run("stopped", {})
        led.append("stopped", [make_record(1), make_record(2)])
        root = led.interrupt_run("stopped", {"processed": 2})
        assert raw(ledger_path).execute("SELECT status, merkle_root, record_count, counts FROM runs").fetchall() \
            == [("interrupted", root, 2, '{"processed":2}')]
        assert led.verify().ok
        assert led.recover() == []
        with pytest.raises(LedgerError, match="already interrupted"):
            led.interrupt_run("stopped", {})
        with pytest.raises(LedgerError, match="no such run"):
            led.interrupt_run("ghost", {})


# --- timestamps table ------------------------------------------------------------------------------------------

def test_timestamps_table_refuses_unsealed_runs_and_duplicates_and_verify_checks_rows(ledger_path: Path):
    from pipeline.ledger import TimestampToken

    def tok(run_id: str, url: str = "http://tsa/") -> TimestampToken:
        return TimestampToken(run_id=run_id, tsa_url=url, token=b"\x30\x03\x02\x01\x00", gen_time="2026-01-01T00:00:00Z",
                              hash_algorithm="sha256", ca_pem="")

    with Ledger.open(ledger_path) as led:
        led.begin_run("open", {})
        led.append("open", [make_record(1)])
        with pytest.raises(LedgerError, match="cannot timestamp run open: it is running, not sealed"):
            led.add_timestamps([tok("open")])
        with pytest.raises(LedgerError, match="cannot timestamp run ghost: no such run"):
            led.add_timestamps([tok("ghost")])
        led.finish_run("open", {})
        led.add_timestamps([tok("open")])
        with pytest.raises(LedgerError, match="already has a timestamp from that TSA"):
            led.add_timestamps([tok("open")])
        led.add_timestamps([tok("open", "http://other/")])
        assert [t.tsa_url for t in led.timestamps("open")] == ["http://other/", "http://tsa/"]
        assert led.pending_stamps(["http://tsa/", "http://third/"])[0].tsa_urls == ("http://third/",)
        report = led.verify()
        assert not report.ok and report.timestamps == 2
        assert all("timestamp from http" in p and ("not an RFC 3161" in p or "did not grant" in p
                                                   or "unreadable" in p) for p in report.problems), report.problems
