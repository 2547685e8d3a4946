"""Tests for the runner: stage order, failures as data, incremental keys, kill-and-restart recovery."""

from __future__ import annotations

import os
import signal
import sqlite3
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
        assert {r["record_id"] for r in led.iter_records()} == {o["record_id"] for o in summary.outputs}
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


def test_job_key_changes_with_every_input(options, make_preset, other_key, owner):
    import dataclasses

    jobs, _ = runner.build_jobs(options())
    job = jobs[0]
    ctx = runner.WorkContext(owner, options().key, runner.source_timestamp())
    base = runner.job_key("aa", job, ctx)
    assert base == runner.job_key("aa", job, ctx)
    assert base != runner.job_key("ab", job, ctx)
    assert base != runner.job_key("aa", dataclasses.replace(job, preset=make_preset(digest="1" * 64)), ctx)
    assert base != runner.job_key("aa", job, dataclasses.replace(ctx, key=other_key))
    assert base != runner.job_key("aa", job, dataclasses.replace(ctx, owner=dataclasses.replace(owner, url="x")))


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
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in kept)


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
        outputs = {r["output"] for r in led.iter_records()}
    assert statuses == ["interrupted", "finished"]
    assert len(outputs) == 48 and all(Path(o).is_file() for o in outputs)
    assert not list((tmp_path / "out").rglob("*.part"))
