"""Tests for the runner: stage order, failures as data, incremental keys, kill-and-restart recovery."""

from __future__ import annotations

import contextlib
import dataclasses
import json
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
from tests.helpers import child_processes, ledger_records

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


def test_a_sku_that_cannot_be_a_file_name_fails_only_its_images(options, catalog):
    (catalog / "bad\\sku").mkdir()
    Image.fromarray(product_on_white((500, 400), seed=5)).save(catalog / "bad\\sku" / "a.jpg", quality=90)
    summary = runner.run(options())
    assert (summary.processed, summary.failed) == (6, 1)
    (failure,) = summary.failures
    assert failure.stage == "catalog" and failure.error.startswith("invalid SKU 'bad\\\\sku': a path separator")


def test_sigterm_in_process_stops_after_the_photo_in_progress(options, monkeypatch):
    from pipeline.errors import RunInterrupted

    real, calls = runner.process_photo, []

    def signalled(task, ctx):
        calls.append(task.source)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler only sets the stop flag: this photo completes
        return real(task, ctx)

    monkeypatch.setattr(runner, "process_photo", signalled)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted, match="interrupted by SIGTERM: run .* sealed as interrupted with 2 new") as info:
        runner.run(options())
    assert info.value.exit_code == 143 and len(calls) == 2
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    with Ledger.open(options().ledger_path) as led:
        assert led.verify().ok and len(ledger_records(led)) == 2
    assert _run_rows(Path(options().ledger_path)) == [("interrupted", 2)]
    assert len(_outputs_on_disk(Path(options().out_dir))) == 2


def test_check_stops_at_once_on_sigint(options, monkeypatch):
    from pipeline.errors import RunInterrupted

    runner.run(options())
    real = runner._plan_tasks

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("not reached: the handler raises in --check")

    monkeypatch.setattr(runner, "_plan_tasks", signalled)
    with pytest.raises(RunInterrupted) as info:
        runner.run(options(check=True))
    assert info.value.exit_code == 130
    monkeypatch.setattr(runner, "_plan_tasks", real)
    assert runner.run(options(check=True)).ok


def test_a_jpeg_with_corrupt_scan_data_fails_and_is_not_exported(options, catalog):
    import io

    buf = io.BytesIO()
    Image.fromarray(product_on_white((500, 400), seed=3)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    mid = (data.index(b"\xff\xda") + len(data)) // 2
    (catalog / "S0" / "c.jpg").write_bytes(data[:mid] + b"\xff\xd9")  # the scan cut short by an early EOI
    summary = runner.run(options())
    assert (summary.processed, summary.failed) == (6, 1)
    (failure,) = summary.failures
    assert failure.stage == "ingest" and failure.error.endswith("c.jpg: corrupt: premature end of data segment")
    assert not any(o["source"].endswith("c.jpg") for o in summary.outputs)


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
                        lambda src, name, specs, *rest, **kw: opens.append(len(specs))
                        or real_open(src, name, specs, *rest, **kw))
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
        statuses = [r.status for r in led.runs()]
        outputs = {r["output"] for r in ledger_records(led)}
    assert statuses == ["interrupted", "finished"]
    assert len(outputs) == 48 and all(Path(o).is_file() for o in outputs)
    assert not list((tmp_path / "out").rglob("*.part"))


# ------------------------------------------------------------------------------------------------------------
# Faults of a real CLI run: a worker killed from outside, SIGTERM / SIGINT of the run


def _cli_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Environment and owner key for a real CLI run in ``tmp_path`` (owner profile in its catalogmark.toml)."""
    (tmp_path / "catalogmark.toml").write_text('[owner]\nname = "Fault Test"\n')
    env = os.environ | {"PYTHONPATH": str(REPO)}
    key = tmp_path / "k.key"
    subprocess.run([sys.executable, "-m", "pipeline", "keygen", "--key-file", str(key)], env=env, check=True,
                   capture_output=True)
    return env, key


def _run_rows(ledger: Path) -> list[tuple[str, int]]:
    """(status, counts.processed) of every run, oldest first, read with plain SQL."""
    with contextlib.closing(sqlite3.connect(ledger)) as con:
        rows = con.execute("SELECT status, counts FROM runs ORDER BY started_at, rowid").fetchall()
    return [(status, json.loads(counts)["processed"]) for status, counts in rows]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
def test_a_worker_killed_from_outside_fails_only_its_photo(tmp_path):
    """kill -9 the worker busy with the one large photo (as the OOM killer would): that photo fails with
    'worker died', the small ones are exported, and the run ends with its JSON summary, manifest and ledger."""
    cat = tmp_path / "cat"
    (cat / "A-BIG").mkdir(parents=True)
    big = Image.fromarray(product_on_white((1250, 1000), seed=1)).resize((5000, 4000), Image.Resampling.BICUBIC)
    big.save(cat / "A-BIG" / "main.jpg", quality=90)
    for i in range(4):
        (cat / f"S{i}").mkdir()
        Image.fromarray(product_on_white((300, 240), seed=i)).save(cat / f"S{i}" / "main.jpg", quality=90)
    # the photo at full size: its worker holds hundreds of MB for seconds, the small photos' workers do not
    (tmp_path / "huge.toml").write_text('name = "huge"\nextends = "web"\ndescription = "full size"\nmax_bytes = 0\n'
                                        '[canvas]\nwidth = 6000\nheight = 6000\nfit = "fit"\nupscale = false\n')
    env, key = _cli_env(tmp_path)
    ledger = tmp_path / "l.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(cat), "--preset", str(tmp_path / "huge.toml"),
                             "--out", str(tmp_path / "out"), "--ledger", str(ledger), "--key-file", str(key),
                             "--jobs", "2", "--json", "-q"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killed = 0
    while proc.poll() is None:  # kill whichever worker holds the large photo, each time it does
        for pid in child_processes(proc.pid, cmdline_has=b"popen_loky_posix"):
            if _rss_mb(pid) > 300:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        time.sleep(0.01)
    out, err = proc.communicate()
    assert killed >= 1, "the large photo's worker was never seen"
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    doc = json.loads(out)
    assert doc["processed"] == 4 and doc["failed"] == 1
    (failure,) = doc["failures"]
    assert failure["path"].endswith("A-BIG/main.jpg") and failure["stage"] == "worker"
    assert failure["error"] == "worker died (killed by signal 9: out of memory?)"
    manifest = json.loads((tmp_path / "out" / "huge" / "manifest.json").read_text())
    assert sorted(o["sku"] for o in manifest["outputs"]) == ["S0", "S1", "S2", "S3"]
    with Ledger.open(ledger) as led:
        assert led.verify().ok
        recorded = {r["output"] for r in ledger_records(led)}
    assert _run_rows(ledger) == [("finished", 4)]
    on_disk = _outputs_on_disk(tmp_path / "out")
    assert recorded == on_disk and len(on_disk) == 4
    assert not list((tmp_path / "out").rglob(".*"))  # no temp file of the dead worker, no lock file


def _outputs_on_disk(out: Path) -> set[str]:
    """Final output files: not manifests, and not hidden (temp files, the run's lock file)."""
    return {str(p) for p in out.rglob("*") if p.is_file() and p.name != "manifest.json" and not p.name.startswith(".")}


def _sealed_interrupted(env: dict[str, str], ledger: Path) -> set[str]:
    """After a stopped run: `ledger verify` passes, the one run is sealed 'interrupted' with as many exports as the
    ledger holds; returns the recorded output paths."""
    verify = subprocess.run([sys.executable, "-m", "pipeline", "ledger", "verify", "--ledger", str(ledger)],
                            env=env, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout
    with Ledger.open(ledger) as led:
        recorded = {r["output"] for r in ledger_records(led)}
    assert _run_rows(ledger) == [("interrupted", len(recorded))]
    return recorded


@pytest.mark.parametrize(("sig", "jobs", "code"), [(signal.SIGTERM, "2", 143), (signal.SIGINT, "1", 130)])
def test_a_signalled_run_seals_what_it_did_and_exits_cleanly(tmp_path, sig, jobs, code):
    """SIGTERM / SIGINT of a real CLI run once its first output is published: what came back is recorded and
    published, the run is sealed 'interrupted', manifests are written, one line on stderr, exit 128 + signal."""
    cat = tmp_path / "cat"
    for i in range(24):  # several ledger batches (2 s each) of work: the signal lands mid-run
        (cat / f"SKU{i:02d}").mkdir(parents=True)
        Image.fromarray(product_on_white((900, 700), seed=i)).save(cat / f"SKU{i:02d}" / "main.jpg", quality=90)
    env, key = _cli_env(tmp_path)
    ledger, out = tmp_path / "l.sqlite", tmp_path / "out"
    args = [sys.executable, "-m", "pipeline", "run", str(cat), "--preset", "web", "--preset", "ebay", "--out",
            str(out), "--ledger", str(ledger), "--key-file", str(key), "--jobs", jobs, "-q"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and not _outputs_on_disk(out):
        time.sleep(0.02)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"catalogmark: error: interrupted by {signal.Signals(sig).name}: run ")
    assert "sealed as interrupted" in line
    recorded = _sealed_interrupted(env, ledger)
    assert recorded == _outputs_on_disk(out) and 0 < len(recorded) < 48
    manifests = [json.loads((out / p / "manifest.json").read_text()) for p in ("web", "ebay")]
    assert {str(out / m["preset"] / o["path"]) for m in manifests for o in m["outputs"]} == recorded
    assert not list(out.rglob("*.part"))
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert [status for status, _ in _run_rows(ledger)] == ["interrupted", "finished"]
    with Ledger.open(ledger) as led:
        assert len({r["output"] for r in ledger_records(led)}) == 48


def test_a_second_run_on_the_same_ledger_or_output_folder_is_refused(tmp_path):
    """Two real CLI runs: the second is refused (exit 2, naming the first's pid and host) on the same ledger or
    the same output folder; --check is not; the first killed with SIGKILL leaves no stuck lock."""
    import socket

    cat = tmp_path / "cat"
    for i in range(40):  # far more work than the first ledger batch (2 s): the first run is caught mid-way
        (cat / f"SKU{i:02d}").mkdir(parents=True)
        Image.fromarray(product_on_white((900, 700), seed=i)).save(cat / f"SKU{i:02d}" / "main.jpg", quality=90)
    env, key = _cli_env(tmp_path)

    def args(ledger: str, out: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "pipeline", "run", str(cat), "--preset", "web", "--preset", "ebay", "--out",
                str(tmp_path / out),
                "--ledger", str(tmp_path / ledger), "--key-file", str(key), "--jobs", "1", "-q", *extra]

    first = subprocess.Popen(args("l.sqlite", "out"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        while first.poll() is None and not _outputs_on_disk(tmp_path / "out"):  # begun, ledger and all
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # paused mid-run (holding its locks) for as long as this test needs
        assert first.poll() is None
        assert (tmp_path / "out" / ".catalogmark.lock").exists(), "the first run ended before it could be paused"
        holder = f"in use by another run (pid {first.pid} on host {socket.gethostname()}, started "
        for ledger, out, what in (("l.sqlite", "out2", "the ledger"), ("l2.sqlite", "out", "the output folder")):
            refused = subprocess.run(args(ledger, out), cwd=tmp_path, env=env, capture_output=True, text=True)
            assert refused.returncode == 2, refused.stderr
            (line,) = refused.stderr.strip().splitlines()
            assert line.startswith(f"catalogmark: error: {what} ") and holder in line
        check = subprocess.run(args("l.sqlite", "out", "--check"), cwd=tmp_path, env=env, capture_output=True,
                               text=True)
        assert check.returncode in (0, 1) and "in use" not in check.stderr
    finally:
        first.kill()  # SIGKILL: the kernel drops its locks
        first.wait()
    again = subprocess.run(args("l.sqlite", "out"), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_a_dask_scheduler_stopped_mid_run_seals_the_run_and_leaves_no_unrecorded_output(tmp_path):
    """A real scheduler and worker as processes; the scheduler is killed once the first output is published: a
    clean error (exit 2), the run sealed 'interrupted', every output on disk recorded and vice versa."""
    pytest.importorskip("dask.distributed")
    from tests.dask_cluster import local_cluster

    cat = tmp_path / "cat"
    for i in range(30):
        (cat / f"SKU{i:02d}").mkdir(parents=True)
        Image.fromarray(product_on_white((900, 700), seed=i)).save(cat / f"SKU{i:02d}" / "main.jpg", quality=90)
    env, key = _cli_env(tmp_path)
    ledger, out = tmp_path / "l.sqlite", tmp_path / "out"
    with local_cluster(workers=1) as cluster:
        args = [sys.executable, "-m", "pipeline", "run", str(cat), "--preset", "web", "--out", str(out), "--ledger",
                str(ledger), "--key-file", str(key), "--backend", "dask", "--scheduler", cluster.address,
                "--jobs", "1", "-q"]
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        while proc.poll() is None and not _outputs_on_disk(out):
            time.sleep(0.02)
        cluster.kill_scheduler()
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "catalogmark: error: lost the dask scheduler" in stderr and "sealed as interrupted" in stderr
    recorded = _sealed_interrupted(env, ledger)
    assert recorded == _outputs_on_disk(out) and 0 < len(recorded) < 30
    # a worker outlives its scheduler and may still leave a hidden temp file (never a final name): the next run
    # removes it and finishes the catalog
    done = subprocess.run([*args[:args.index("--backend")], "--jobs", "1", "-q"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert not list(out.rglob("*.part"))
    with Ledger.open(ledger) as led:
        assert {r["output"] for r in ledger_records(led)} == _outputs_on_disk(out) and len(_outputs_on_disk(out)) == 30
