"""Faults of real CLI runs that a unit test cannot fake: kills at seeded random moments, a full disk and a
read-only output folder on a real (small) tmpfs.

After every fault the invariants are the same: ``ledger verify`` passes, every file in the output folder is an
output the ledger recorded with those bytes (no export without its record), every record of the finished run
names a file that is there, no temp file is left, and a rerun finishes the catalog. The tmpfs tests need root
(``mount``); elsewhere they are skipped, never faked.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pipeline.ledger import Ledger
from tests.conftest import product_on_white
from tests.helpers import REPO, child_processes, ledger_records

MANIFESTS = {"manifest.json", "manifest.csv", "contact-sheet.html", "contact-sheet.jpg"}


def _catalog(root: Path, n: int, size: tuple[int, int] = (640, 480)) -> Path:
    for i in range(n):
        d = root / f"SKU{i:02d}"
        d.mkdir(parents=True)
        Image.fromarray(product_on_white(size, seed=500 + i)).save(d / "main.jpg", quality=90)
    return root


@pytest.fixture
def cli(tmp_path: Path) -> dict[str, object]:
    (tmp_path / "catalogmark.toml").write_text('[owner]\nname = "Fault Suite"\n')
    env = os.environ | {"PYTHONPATH": str(REPO)}
    key = tmp_path / "k.key"
    subprocess.run([sys.executable, "-m", "pipeline", "keygen", "--key-file", str(key)], env=env, check=True,
                   capture_output=True)
    return {"env": env, "key": key, "dir": tmp_path}


def _args(cli: dict[str, object], cat: Path, out: Path, ledger: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "run", str(cat), "--preset", "web", "--preset", "ebay", "--out",
            str(out), "--ledger", str(ledger), "--key-file", str(cli["key"]), "--jobs", "2", "-q", *extra]


def _run(cli: dict[str, object], args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cli["dir"], env=cli["env"], capture_output=True, text=True,  # type: ignore[arg-type]
                          timeout=600)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_consistent(cli: dict[str, object], out: Path, ledger: Path, *, crashed: bool = False) -> None:
    """``ledger verify`` passes; every output file under its final name is recorded with its bytes; no temp
    file is left (``crashed``: a killed run may leave its hidden temp files, which the next run removes)."""
    verify = _run(cli, [sys.executable, "-m", "pipeline", "ledger", "verify", "--ledger", str(ledger)])
    assert verify.returncode == 0, verify.stdout + verify.stderr
    with Ledger.open(ledger) as led:
        recorded: dict[str, set[str]] = {}
        for r in ledger_records(led):
            recorded.setdefault(str(Path(r["output"]).resolve()), set()).add(r["output_sha256"])
    files = [p for p in out.rglob("*") if p.is_file() and p.name not in MANIFESTS and ".lock" not in p.name]
    leftovers = [p for p in files if p.name.startswith(".") or p.suffix in (".part", ".tmp")]
    assert crashed or not leftovers, leftovers
    files = [p for p in files if p not in leftovers]
    unrecorded = [p for p in files if _sha(p) not in recorded.get(str(p.resolve()), set())]
    assert not unrecorded, f"outputs without their record: {unrecorded}"


def _records(ledger: Path) -> int:
    try:
        with sqlite3.connect(ledger, timeout=1) as con:
            return int(con.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    except sqlite3.Error:
        return 0


# ------------------------------------------------------------------------------------------------------------
# kill -9 at seeded random moments


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
@pytest.mark.parametrize("seed", [11, 29, 47])
def test_kills_at_seeded_random_moments_never_leave_an_unrecorded_output(cli, seed):
    """Each trial: start the run, wait a random time (fixed seed), kill -9 either the parent or one worker,
    let the run end or kill it, check the invariants, rerun, check them again and that the catalog is done."""
    rng = random.Random(seed)
    d: Path = cli["dir"]  # type: ignore[assignment]
    cat, out, ledger = _catalog(d / "cat", 10), d / "out", d / "l.sqlite"
    args = _args(cli, cat, out, ledger)
    kills = []
    for trial in range(2):
        proc = subprocess.Popen(args, cwd=d, env=cli["env"], start_new_session=True,  # type: ignore[arg-type]
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 6.0))
        victim = "parent" if rng.random() < 0.5 or trial == 0 else "worker"
        if victim == "worker":
            workers = [p for p in child_processes(proc.pid) if p != proc.pid]
            if workers:
                os.kill(rng.choice(workers), signal.SIGKILL)
            else:
                victim = "parent (no worker yet)"
                os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        kills.append((victim, _records(ledger)))
        try:
            proc.wait(timeout=300)  # a killed worker: the run goes on and ends by itself
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert_consistent(cli, out, ledger, crashed=True)
    done = _run(cli, args)
    assert done.returncode == 0, (kills, done.stderr)
    assert_consistent(cli, out, ledger)
    check = _run(cli, [*args, "--check"])
    assert check.returncode == 0, (kills, check.stdout)  # every export there and current
    with Ledger.open(ledger) as led:
        assert len({r["output"] for r in ledger_records(led)}) == 20


# ------------------------------------------------------------------------------------------------------------
# a full disk, a read-only output folder: a real tmpfs


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1.2 MiB tmpfs (root only; skipped otherwise)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mnt)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_output_disk_fails_the_exports_that_do_not_fit_and_records_nothing_unwritten(cli, tmpfs):
    d: Path = cli["dir"]  # type: ignore[assignment]
    cat, out, ledger = _catalog(d / "cat", 8, (1600, 1200)), tmpfs / "out", d / "l.sqlite"
    r = _run(cli, [*_args(cli, cat, out, ledger), "--json"])
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in (1, 2), r.stderr
    if r.returncode == 1:  # the run went on: failures are data, the summary is still JSON
        doc = json.loads(r.stdout)
        assert doc["failed"] > 0 and doc["failures"], doc
        assert all("space" in f["error"].lower() for f in doc["failures"]), doc["failures"]
    else:  # stopped at once (e.g. the manifests cannot be written): one clear line
        assert "space" in r.stderr.lower(), r.stderr
    assert_consistent(cli, out, ledger)


def test_a_full_ledger_disk_stops_the_run_with_a_clear_message_and_nothing_unrecorded(cli, tmpfs):
    d: Path = cli["dir"]  # type: ignore[assignment]
    cat, out, ledger = _catalog(d / "cat", 8), d / "out", tmpfs / "l.sqlite"
    filler = tmpfs / "filler"
    r = _run(cli, _args(cli, _catalog(d / "one", 1), d / "out0", ledger))  # the ledger exists, then fill the disk
    assert r.returncode == 0, r.stderr
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # ENOSPC: the disk is full
        pass
    finally:
        os.close(fd)
    r = _run(cli, _args(cli, cat, out, ledger))
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "ledger" in r.stderr.lower() and len(r.stderr.strip().splitlines()) <= 3, r.stderr
    filler.unlink()
    assert_consistent(cli, out, ledger)
    r = _run(cli, _args(cli, cat, out, ledger))  # room again: the rerun finishes the catalog
    assert r.returncode == 0, r.stderr
    assert_consistent(cli, out, ledger)


def test_a_read_only_output_folder_is_refused_before_any_work(cli, tmpfs):
    d: Path = cli["dir"]  # type: ignore[assignment]
    (tmpfs / "out").mkdir()
    remount = subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True, text=True)
    if remount.returncode != 0:
        pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
    ledger = d / "l.sqlite"
    r = _run(cli, [*_args(cli, _catalog(d / "cat", 3), tmpfs / "out", ledger), "--json"])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert str(tmpfs / "out") in r.stderr and ("read-only" in r.stderr.lower() or "writ" in r.stderr.lower())
    if ledger.exists():
        with Ledger.open(ledger) as led:
            assert ledger_records(led) == []  # no work was filed for outputs that could not exist
