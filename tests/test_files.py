"""Tests for the file primitives: atomic writes, publish-after-commit temp files, temp names."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import files


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b.jpg"
    files.write_atomic(target, b"first")
    assert target.read_bytes() == b"first"

    def boom(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        files.write_atomic(target, b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["b.jpg"]


def test_temp_file_is_hidden_beside_its_target_until_published(tmp_path):
    target = tmp_path / "out" / "x.jpg"
    tmp = files.write_temp(target, b"data")
    assert tmp.parent == target.parent and tmp.name.startswith(".x.jpg.") and tmp.name.endswith(files.TEMP_SUFFIX)
    assert not target.exists() and stat.S_IMODE(tmp.stat().st_mode) == 0o644
    files.publish(tmp, target)
    assert target.read_bytes() == b"data" and not tmp.exists()


def test_temp_name_of_a_long_name_fits_the_file_system(tmp_path):
    target = tmp_path / ("é" * 123 + ".jpg")  # 250 bytes of UTF-8: a temp name with all of it would be over 255
    files.write_atomic(target, b"x")
    assert target.read_bytes() == b"x"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "-", "é", "€", "𝄞", "\udcff"]), min_size=1, max_size=255)
       .map("".join).filter(lambda n: len(os.fsencode(n)) <= 255 and not n.startswith(".")))
def test_any_name_the_file_system_allows_can_be_written(tmp_path_factory, name):
    """1 to 255 bytes, 1- to 4-byte characters and undecodable bytes (surrogate escapes): the temp name never
    makes a legal final name fail."""
    target = tmp_path_factory.mktemp("names") / name
    files.write_atomic(target, b"x")
    assert target.read_bytes() == b"x" and [p.name for p in target.parent.iterdir()] == [name]


def test_read_limited_refuses_a_huge_sparse_file_without_reading_it(tmp_path):
    big = tmp_path / "huge.jpg"
    with open(big, "wb") as fh:
        fh.truncate(3 << 30)  # 3 GiB, sparse: reading it would take 3 GB of memory
    with pytest.raises(files.FileTooLarge, match=r"file too large \(3,221,225,472 bytes"):
        files.read_limited(big, files.SUSPECT_MAX_BYTES)
    small = tmp_path / "ok.bin"
    small.write_bytes(b"x" * 100)
    assert files.read_limited(small, 100) == b"x" * 100
    with pytest.raises(files.FileTooLarge):
        files.read_limited(small, 99)


def test_verify_and_trace_refuse_an_oversized_suspect_cleanly(tmp_path):
    import json
    import subprocess
    import sys

    from pipeline.trace.tracer import Tracer
    from tests.helpers import REPO
    from tests.synthetic import MemoryStore

    big = tmp_path / "huge.jpg"
    with open(big, "wb") as fh:
        fh.write(b"\xff\xd8\xff\xe0")
        fh.truncate(3 << 30)
    code = ("import runpy, sys; sys.argv = ['catalogmark', 'verify', '--json', sys.argv[1]];"
            "\ntry:\n runpy.run_module('pipeline', run_name='__main__')\nexcept SystemExit as e:\n"
            " print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0], file=sys.stderr);"
            " raise")  # VmHWM, not ru_maxrss: that one keeps the forking parent's peak (a big pytest worker) over exec
    r = subprocess.run([sys.executable, "-c", code, str(big)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (doc,) = json.loads(r.stdout)
    assert "file too large (3,221,225,472 bytes" in doc["error"] and str(big) in doc["error"]
    peak_kb = int(r.stderr.strip().splitlines()[-1])
    assert peak_kb < 400_000, f"verify of a 3 GiB file peaked at {peak_kb} KB"
    res = Tracer(MemoryStore()).trace_path(big)
    assert res.error is not None and "file too large (3,221,225,472 bytes" in res.error
