"""Exclusive runs: an OS file lock beside the ledger and one in the output folder, held for the whole run.

A second ``run`` on the same ledger or the same output folder is refused with ``RunLockedError`` naming the run
that holds it (pid, host, start time). The lock is ``flock(2)`` on a small file (``LEDGER.lock`` next to the
ledger, ``OUT/.catalogmark.lock``): the kernel releases it when the holding process ends, however it ends, so a
crashed or killed run never leaves it stuck. A run that ends removes its lock files while it still holds them; a run
that finds it locked a file already removed (it opened it just before) tries again with the new one. A crashed
run's lock file stays until the next run. The descriptor is not inherited by worker processes (close-on-exec),
so a surviving worker cannot keep the lock.

``run --check`` takes no lock: it only reads (one consistent ledger snapshot) and writes nothing, so it may run
beside a run, and then reports what that run has not published yet as missing or stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

from pipeline.errors import InputError, RunLockedError
from pipeline.timefmt import now_iso

OUTPUT_LOCK_NAME = ".catalogmark.lock"


def ledger_lock_path(ledger: str | Path) -> Path:
    """The lock file of a ledger: beside it, its name plus ``.lock``."""
    path = Path(ledger)
    return path.with_name(path.name + ".lock")


def output_lock_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / OUTPUT_LOCK_NAME


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it into the lock file."""
    try:
        doc = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"pid {int(doc['pid'])} on host {doc['host']}, started {doc['started_at']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a run that has not said who it is yet"


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _open_locked(path: Path, what: str) -> int:
    """A descriptor of ``path`` holding its flock; the file is still the one at ``path`` (not one a finishing run
    removed between our open and our lock)."""
    for _attempt in range(10):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(f"cannot create the lock file {path} of {what}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunLockedError(f"{what} is in use by another run ({holder}); wait for it to finish "
                                 f"(lock file {path})") from None
        except OSError as exc:
            os.close(fd)
            raise RunLockedError(f"cannot lock {what} ({path}): {exc.strerror or exc}") from exc
        if _same_file(fd, path):
            return fd
        os.close(fd)
    raise RunLockedError(f"cannot lock {what}: its lock file {path} keeps being replaced")


def _acquire(path: Path, what: str) -> int:
    fd = _open_locked(path, what)
    try:
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_at": now_iso()}) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode("utf-8"), 0)
    except OSError:
        pass  # the lock holds without the note; a refused run then says less about us
    return fd


@contextlib.contextmanager
def exclusive(targets: Sequence[tuple[Path, str]]) -> Iterator[None]:
    """Hold the lock files ``targets`` (path, what it protects, for messages) for the duration, or raise
    ``RunLockedError`` if another process holds any of them (never waits)."""
    held: list[tuple[Path, int]] = []
    try:
        for path, what in targets:
            held.append((path, _acquire(path, what)))
        yield
    finally:
        for path, fd in reversed(held):
            if _same_file(fd, path):
                with contextlib.suppress(OSError):
                    path.unlink()  # while still locked: whoever opened it meanwhile sees it gone and retries
            os.close(fd)  # closing the last descriptor releases the flock


def run_lock(ledger: str | Path, out_dir: str | Path) -> contextlib.AbstractContextManager[None]:
    """The locks of one run: its ledger and its output folder."""
    # resolved: every spelling of a path (relative, through a symbolic link) meets the same lock file
    return exclusive([(ledger_lock_path(Path(ledger).resolve()), f"the ledger {ledger}"),
                      (output_lock_path(Path(out_dir).resolve()), f"the output folder {out_dir}")])
