"""Tests for the runner: stage order, failures as data, incremental keys, kill-and-restart recovery."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from pipeline import runner
from pipeline.ledger import Ledger
from pipeline.stages import watermark
from tests.conftest import product_on_white
from tests.helpers import ledger_records

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def catalog(tmp_path) -> Path:
    root = tmp_path / "cat"
    for i in range(3):
        (root / f"S{i}").mkdir(parents=True)
        Image.fromarray(product_on_white((500, 400), seed=i)).save(root / f"S{i}" / "a.jpg", quality=90)
        Image.fromarray(product_on_white((400, 500), seed=i + 9)).save(root / f"S{i}" / "b.png")
    return root


@pytest.fixture
def options(catalog, tmp_path, make_preset, owner, owner_key):
    def make(**kw):
        base = dict(sources=[str(catalog)], presets=[make_preset()], out_dir=str(tmp_path / "out"),
                    ledger_path=str(tmp_path / "l.sqlite"), owner=owner, key=owner_key, jobs=1, progress=False)
        return runner.RunOptions(**(base | kw))

    return make


def test_run_processes_every_image_and_records_it(options):
    summary = runner.run(options())
    assert (summary.processed, summary.failed, summary.skipped) == (6, 0, 0)
    with Ledger.open(options().ledger_path) as led:
        assert led.verify().ok
        assert {r["record_id"] for r in ledger_records(led)} == {o["record_id"] for o in summary.outputs}
    assert all(Path(o["output"]).is_file() for o in summary.outputs)


def test_a_crashing_stage_is_a_failure_not_a_crash(options, monkeypatch):
    real = watermark.watermark

    def flaky(canvas, job, owner, key):
        if job.sku == "S1":
            raise RuntimeError("boom")
        return real(canvas, job, owner, key)

    monkeypatch.setattr(watermark, "watermark", flaky)
    summary = runner.run(options())
    assert summary.processed == 4 and summary.failed == 2
    assert {f.stage for f in summary.failures} == {"watermark"}
    assert all("internal error: RuntimeError: boom" in f.error for f in summary.failures)
    assert not any("S1" in o["output"] for o in summary.outputs)


def test_an_output_that_cannot_be_written_fails_its_export(options, monkeypatch):
    from pipeline import files

    real = files.write_temp

    def full_disk(path, data):
        if "S1" in str(path):
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(files, "write_temp", full_disk)
    summary = runner.run(options())
    assert summary.processed == 4 and summary.failed == 2
    assert {f.stage for f in summary.failures} == {"export"}
    assert all(f.error.startswith("cannot write ") and "No space left on device" in f.error
               for f in summary.failures)
    with Ledger.open(options().ledger_path) as led:
        assert led.verify().ok and led.verify().records == 4  # no record without its output


def test_output_name_collisions_fail_the_later_image(options, make_preset):
    preset = make_preset(naming={"main": "{sku}.jpg", "gallery": "{sku}.jpg"})
    summary = runner.run(options(presets=[preset]))
    assert summary.failed == 3 and summary.processed == 3
    assert all("collides" in f.error for f in summary.failures)


def test_bad_source_date_epoch_is_a_config_error(monkeypatch):
    from pipeline.errors import ConfigError

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
        runner.source_timestamp()


def test_archive_keeps_originals_write_once(options, catalog, tmp_path):
    archive = tmp_path / "archive"
    runner.run(options(archive=str(archive)))
    kept = sorted(p for p in archive.rglob("*") if p.is_file())
    assert len(kept) == 6
    originals = {p.read_bytes() for p in catalog.rglob("*.*")}
    assert {p.read_bytes() for p in kept} == originals
    # the mode bits, not os.access (which is always True for root)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in kept)


def _age(root: Path) -> None:
    """Date the files back: the stat cache does not trust files modified in the last seconds (racy entries)."""
    old = time.time() - 3600
    for p in root.rglob("*"):
        os.utime(p, (old, old))


def test_each_photo_is_read_and_decoded_once_for_all_its_presets(options, make_preset, monkeypatch):
    from pipeline.stages import ingest

    reads: list[str] = []
    opens: list[int] = []
    real_read, real_open = ingest.read_source, ingest.open_photo
    monkeypatch.setattr(ingest, "read_source", lambda path, name: reads.append(path) or real_read(path, name))
    monkeypatch.setattr(ingest, "open_photo",
                        lambda src, name, specs: opens.append(len(specs)) or real_open(src, name, specs))
    presets = [make_preset(name="p1"), make_preset(name="p2", canvas=dataclasses.replace(
        make_preset().canvas, width=500, height=300, fit="cover"))]
    summary = runner.run(options(presets=presets))
    assert summary.processed == 12 and summary.failed == 0
    assert len(reads) == 6 and len(set(reads)) == 6
    assert opens == [2] * 6


def test_rerun_is_independent_of_how_the_path_was_typed(options, catalog, tmp_path, monkeypatch):
    first = runner.run(options())
    assert first.processed == 6
    monkeypatch.chdir(catalog.parent)
    again = runner.run(options(sources=[os.path.relpath(catalog)]))
    assert (again.processed, again.skipped) == (0, 6)
    assert again.run_id is None and again.merkle_root is None  # nothing new: no empty run in the ledger
    with Ledger.open(options().ledger_path) as led:
        assert len(ledger_records(led)) == 6 and len(led.runs()) == 1


def test_no_change_rerun_and_check_read_no_file(options, catalog, monkeypatch):
    from pipeline import files
    from pipeline.stages import ingest

    _age(catalog)
    runner.run(options())
    _age(Path(options().out_dir))
    runner.run(options())  # caches the outputs' hashes (too new to trust during the first run)
    calls: list[str] = []
    monkeypatch.setattr(files, "file_sha256", lambda p: calls.append(str(p)))
    monkeypatch.setattr(ingest, "read_source", lambda *a: calls.append(str(a)))
    assert runner.run(options()).skipped == 6
    summary = runner.run(options(check=True))
    assert (summary.current, summary.missing, summary.stale) == (6, 0, 0) and summary.ok
    assert calls == []


def test_check_names_each_missing_or_stale_output_with_its_reason(options, catalog):
    _age(catalog)
    first = runner.run(options())
    outs = sorted(o["output"] for o in first.outputs)
    Path(outs[0]).unlink()
    Path(outs[1]).write_bytes(Path(outs[1]).read_bytes() + b"x")
    src = next(o["source"] for o in first.outputs if o["output"] == outs[2])
    Image.fromarray(product_on_white((500, 400), seed=77)).save(src)
    summary = runner.run(options(check=True))
    assert (summary.current, summary.missing, summary.stale) == (3, 1, 2) and not summary.ok
    reasons = {Path(c.output).name: (c.status, c.reason) for c in summary.check_items}
    assert reasons == {
        Path(outs[0]).name: ("missing", "the output file was deleted"),
        Path(outs[1]).name: ("stale", "the output file was modified after export"),
        Path(outs[2]).name: ("stale", "the source changed"),
    }
    assert runner.run(options()).processed == 3
    assert runner.run(options(check=True)).ok


def test_no_output_is_published_before_its_record_is_committed(options, monkeypatch):
    from pipeline.errors import LedgerError

    def broken(self, run_id, records):
        raise LedgerError("disk full")

    monkeypatch.setattr(Ledger, "append", broken)
    with pytest.raises(LedgerError):
        runner.run(options())
    out = Path(options().out_dir)
    assert [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".part")] == []
    monkeypatch.undo()
    summary = runner.run(options())
    assert summary.processed == 6
    assert not list(out.rglob("*.part"))


def test_killed_run_restarts_to_a_complete_verifying_ledger(tmp_path):
    """SIGKILL a real CLI run after its first ledger batch, run again: the catalog finishes and verifies."""
    cat = tmp_path / "big"
    for i in range(24):
        d = cat / f"SKU{i:02d}"
        d.mkdir(parents=True)
        Image.fromarray(product_on_white((900, 700), seed=i)).save(d / "main.jpg", quality=90)
    (tmp_path / "catalogmark.toml").write_text('[owner]\nname = "Kill Test"\n')
    env = os.environ | {"PYTHONPATH": str(REPO)}
    key = tmp_path / "k.key"
    subprocess.run([sys.executable, "-m", "pipeline", "keygen", "--key-file", str(key)], env=env, check=True,
                   capture_output=True)
    ledger = tmp_path / "l.sqlite"
    args = [sys.executable, "-m", "pipeline", "run", str(cat), "--preset", "web", "--preset", "ebay",
            "--out", str(tmp_path / "out"), "--ledger", str(ledger), "--key-file", str(key), "--jobs", "2", "-q"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if ledger.exists():
            try:
                with sqlite3.connect(ledger, timeout=1) as con:
                    if con.execute("SELECT COUNT(*) FROM records").fetchone()[0] > 0:
                        break
            except sqlite3.Error:
                pass
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(ledger) as con:
        first = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    assert 0 < first < 48, "the kill should land mid-run"
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    verify = subprocess.run([sys.executable, "-m", "pipeline", "ledger", "verify", "--ledger", str(ledger)],
                            env=env, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout
    with Ledger.open(ledger) as led:
        statuses = [r["status"] for r in led.runs()]
        outputs = {r["output"] for r in ledger_records(led)}
    assert statuses == ["interrupted", "finished"]
    assert len(outputs) == 48 and all(Path(o).is_file() for o in outputs)
    assert not list((tmp_path / "out").rglob("*.part"))
