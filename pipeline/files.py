"""File writing and reading primitives: atomic writes, publish-after-commit temp files, one-read source access."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

TEMP_SUFFIX = ".part"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory; the rename still stands
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_name_for(target: Path) -> str:
    """Prefix of the temp files written beside ``target``: hidden, and never longer than the target's name
    allows (a long final name must not fail because its temp name is over the file system's 255 bytes)."""
    stem = target.name.encode("utf-8", "surrogateescape")[:200].decode("utf-8", "ignore")
    return f".{stem}."


def write_temp(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a fsynced, hidden temp file in ``path``'s folder and return it (``publish`` renames it)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_name_for(target), suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def publish(tmp: str | Path, path: str | Path) -> None:
    """Rename a ``write_temp`` file to its final name (atomic) and make the rename durable."""
    target = Path(path)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder + fsync + rename: never a partial file."""
    tmp = write_temp(path, data)
    try:
        publish(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in chunks (OSError if it cannot be read)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_sha256(path: str | Path) -> str | None:
    """SHA-256 of a file's bytes, or None if it cannot be read."""
    try:
        return sha256_of(path)
    except OSError:
        return None


@dataclass(frozen=True)
class SourceBytes:
    """A source file read once: the bytes, their SHA-256 and the stat of the very file descriptor read."""

    data: bytes
    sha256: str
    stat: os.stat_result


#: The largest file `verify` and `trace` read as a suspect copy: marketplace images are a few MB (the largest
#: storefront cap is tens of MB), a 100 MP PNG under 400 MB. A file over this is refused from its size alone.
SUSPECT_MAX_BYTES = 512 << 20


class FileTooLarge(OSError):
    """A file over the size limit of what reads it (raised before reading it)."""


def read_limited(path: str | Path, limit: int) -> bytes:
    """The whole file, if it holds at most ``limit`` bytes: the size is checked on the open descriptor first (a
    3 GiB sparse file is refused without being read), and no more than ``limit + 1`` bytes are ever read (a file
    that grows meanwhile, or a FIFO, cannot exhaust memory). Raises FileTooLarge or the OSError of the read."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if st.st_size > limit:
            raise FileTooLarge(f"file too large ({st.st_size:,} bytes; the limit is {limit:,})")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"file too large (over {limit:,} bytes)")
    return data
