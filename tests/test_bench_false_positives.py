"""The false-positive bench (bench/false_positives.py) runs, reads every picture and counts what it found."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_the_false_positive_bench_reads_every_picture_and_prints_the_bound():
    r = subprocess.run([sys.executable, str(REPO / "bench" / "false_positives.py"), "--n", "6", "--jobs", "1"],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr  # exit 1 would mean one of them was "found"
    assert "total: 0 found of 6" in r.stdout and "analytic bound per image <=" in r.stdout
    assert "marked under other keys, all" in r.stdout and "unmarked, all" in r.stdout
    assert "known-payload test (invisible.check_payload" in r.stdout and "0 present at z >= 6" in r.stdout
