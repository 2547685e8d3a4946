"""Tests for pipeline.lock: one run per ledger and output folder, between real processes, never stuck by a crash."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import InputError, RunLockedError
from pipeline.lock import ledger_lock_path, output_lock_path, run_lock
from tests.helpers import REPO

HOLD = """
import sys, time
sys.path.insert(0, sys.argv[3])
from pipeline.lock import run_lock
with run_lock(sys.argv[1], sys.argv[2]):
    print("locked", flush=True)
    time.sleep(600)
"""


def _holder(ledger: Path, out: Path) -> subprocess.Popen:
    """Another process holding the locks of (ledger, out) until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(ledger), str(out), str(REPO)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def test_lock_files_sit_beside_the_ledger_and_in_the_output_folder(tmp_path):
    assert ledger_lock_path(tmp_path / "l.sqlite") == tmp_path / "l.sqlite.lock"
    assert output_lock_path(tmp_path / "out") == tmp_path / "out" / ".catalogmark.lock"
    with run_lock(tmp_path / "l.sqlite", tmp_path / "out"):
        assert (tmp_path / "l.sqlite.lock").is_file() and (tmp_path / "out" / ".catalogmark.lock").is_file()
    assert not (tmp_path / "l.sqlite.lock").exists() and not (tmp_path / "out" / ".catalogmark.lock").exists()
    with run_lock(tmp_path / "l.sqlite", tmp_path / "out"):  # released: taken again
        pass


def test_a_second_run_is_refused_naming_the_holder_and_a_killed_holder_frees_it(tmp_path):
    ledger, out = tmp_path / "l.sqlite", tmp_path / "out"
    proc = _holder(ledger, out)
    try:
        with pytest.raises(RunLockedError) as same_ledger, run_lock(ledger, tmp_path / "other-out"):
            pass
        text = str(same_ledger.value)
        assert f"the ledger {ledger} is in use by another run (pid {proc.pid} on host {socket.gethostname()}" in text
        with pytest.raises(RunLockedError, match=f"the output folder .*out is in use by another run \\(pid {proc.pid}"), \
                run_lock(tmp_path / "other.sqlite", out):
            pass
        # the same ledger through another spelling of its path
        os.symlink(tmp_path, tmp_path / "link")
        with pytest.raises(RunLockedError), run_lock(tmp_path / "link" / "l.sqlite", tmp_path / "o3"):
            pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a crash: nothing is cleaned up
        proc.wait()
    assert (out / ".catalogmark.lock").is_file()  # left behind, but not held
    with run_lock(ledger, out):
        pass
    assert not (out / ".catalogmark.lock").exists()


def test_a_refused_run_holds_nothing(tmp_path):
    proc = _holder(tmp_path / "l.sqlite", tmp_path / "out")
    try:
        # the ledger lock is free, the output folder's is not: the ledger lock taken on the way is released
        with pytest.raises(RunLockedError), run_lock(tmp_path / "free.sqlite", tmp_path / "out"):
            pass
        with run_lock(tmp_path / "free.sqlite", tmp_path / "out2"):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_the_same_process_cannot_take_it_twice(tmp_path):
    with run_lock(tmp_path / "l.sqlite", tmp_path / "out"), pytest.raises(RunLockedError), \
            run_lock(tmp_path / "l.sqlite", tmp_path / "out"):
        pass


def test_a_lock_file_that_cannot_be_created_is_an_input_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InputError, match="cannot create the lock file"), \
            run_lock(tmp_path / "l.sqlite", tmp_path / "file" / "out"):
        pass
