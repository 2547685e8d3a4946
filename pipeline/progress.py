"""Progress output fit for terminals and for logs, and `printable` for every name the CLI prints.

``make_progress`` picks one of three reporters, all writing to stderr (never stdout, so ``--json > out.json``
stays a clean document):

- a tqdm bar when the stream is a terminal;
- when it is not (a CI log, ``2> run.log``): no carriage returns, but one plain line every ``interval`` seconds
  with done/total, rate, failures so far and ETA, plus a final line on ``close()``;
- with ``enabled=False`` (``--quiet``): nothing but the failure lines.

Per-image failure lines go through ``Progress.fail`` (escaped with ``printable``, so a file name cannot forge
a line or send terminal escapes). The reporters are driven from one thread (the runner's result loop); they
emit on ``update``/``close`` only, no background thread.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import unicodedata
from collections.abc import Callable
from typing import Any, Self, TextIO

__all__ = ["Progress", "make_progress", "printable", "format_duration"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Bidirectional overrides/isolates: not control characters, but they reorder what a reader sees.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:  # an undecodable byte kept by os.fsdecode (surrogateescape): show the byte
        return f"\\x{cp - 0xDC00:02x}"
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    return f"\\u{cp:04x}"


def _needs_escape(ch: str) -> bool:
    if ch.isprintable() and ch not in _BIDI:
        return False
    # Not printable: Cc (C0/C1 controls, DEL), Cf (format), Cs (surrogates), Zl/Zp (line/paragraph
    # separators), Zs other than space, Co/Cn. Escape the ones that can break or disguise a line.
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp", "Co", "Cn") or ch in _BIDI


def printable(name: object) -> str:
    """``name`` (a str, path or anything ``str()``-able) as one safe line of text.

    Control characters (newline, carriage return, ESC and the rest of C0/C1, DEL), line and paragraph
    separators, bidi overrides and undecodable file-name bytes are replaced by backslash escapes
    (``\\n``, ``\\x1b``, ``\\u2028``, ...); everything else, non-ASCII letters included, is kept. Backslashes are
    not doubled, so applying it twice changes nothing.
    """
    if isinstance(name, bytes):
        text = os.fsdecode(name)
    elif isinstance(name, os.PathLike):
        text = str(os.fspath(name))
    else:
        text = str(name)
    if text.isprintable() and not _BIDI.intersection(text):
        return text
    return "".join(_escape_char(ch) if _needs_escape(ch) else ch for ch in text)


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class Progress:
    """Counts done/failed items and writes failure lines; the base class prints nothing else (``--quiet``).

    ``update(n, failed=...)`` counts ``n`` finished items (``failed=True``: all ``n`` failed);
    ``fail(message)`` writes one escaped line to the stream and does not count anything, so a failed item is
    ``update(1, failed=True)`` plus ``fail(...)``. ``close()`` is idempotent. Usable as a context manager.
    """

    def __init__(self, total: int, *, stream: TextIO, unit: str = "img", desc: str = "catalogmark",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = max(0, int(total))
        self.stream = stream
        self.unit = unit
        self.desc = desc
        self.clock = clock
        self.done = 0
        self.failed = 0
        self.started = clock()
        self.closed = False

    def update(self, n: int = 1, failed: bool = False) -> None:
        self.done += n
        if failed:
            self.failed += n

    def fail(self, message: str) -> None:
        self._write_line(printable(message))

    def close(self) -> None:
        self.closed = True

    def _write_line(self, line: str) -> None:
        # stderr closed or gone (e.g. a closed pipe): progress is not worth a crash
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(line + "\n")
            self.stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LogProgress(Progress):
    """For a stream that is not a terminal: a plain line every ``interval`` seconds, and a final line."""

    def __init__(self, total: int, *, stream: TextIO, interval: float = 5.0, unit: str = "img",
                 desc: str = "catalogmark", clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(total, stream=stream, unit=unit, desc=desc, clock=clock)
        self.interval = interval
        self._last_line = self.started

    def update(self, n: int = 1, failed: bool = False) -> None:
        super().update(n, failed)
        now = self.clock()
        if now - self._last_line >= self.interval and not self.closed:
            self._last_line = now
            self._write_line(self.status_line(now))

    def status_line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.done // self.total}%)"
        parts.append(f"{rate:.1f} {self.unit}/s")
        parts.append(f"{self.failed} failed")
        remaining = self.total - self.done
        if remaining > 0:
            parts.append("ETA " + (format_duration(remaining / rate) if rate > 0 else "?"))
        return ", ".join(parts)

    def final_line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 0.0)
        rate = self.done / elapsed if elapsed > 0 else 0.0
        head = "done" if self.done >= self.total else "stopped at"
        return (f"{self.desc}: {head} {self.done}/{self.total} {self.unit} in {format_duration(elapsed)}, "
                f"{rate:.1f} {self.unit}/s, {self.failed} failed")

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self.total or self.done:
            self._write_line(self.final_line())


class BarProgress(Progress):
    """For a terminal: a tqdm bar on the stream; failure lines are written above it."""

    def __init__(self, total: int, *, stream: TextIO, unit: str = "img", desc: str = "catalogmark",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(total, stream=stream, unit=unit, desc=desc, clock=clock)
        from tqdm import tqdm  # only a terminal run pays for it

        self._tqdm = tqdm
        self._bar = tqdm(total=self.total, unit=unit, file=stream, dynamic_ncols=True, desc=desc)

    def update(self, n: int = 1, failed: bool = False) -> None:
        super().update(n, failed)
        if failed:
            self._bar.set_postfix(failed=self.failed, refresh=False)
        self._bar.update(n)

    def fail(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._tqdm.write(printable(message), file=self.stream)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        with contextlib.suppress(OSError, ValueError):
            self._bar.close()


def make_progress(total: int, *, enabled: bool, stream: TextIO | None = None, interval: float = 5.0,
                  unit: str = "img", desc: str = "catalogmark", clock: Callable[[], float] = time.monotonic,
                  tty: bool | None = None) -> Progress:
    """The reporter for a run of ``total`` items.

    ``stream`` defaults to the current ``sys.stderr`` (looked up at call time). ``enabled=False`` (``--quiet``):
    only failure lines. Otherwise a tqdm bar if the stream is a terminal (``tty`` overrides the check), else
    plain log lines every ``interval`` seconds of ``clock`` time plus a final line.
    """
    out: TextIO = sys.stderr if stream is None else stream
    if not enabled:
        return Progress(total, stream=out, unit=unit, desc=desc, clock=clock)
    if _is_tty(out) if tty is None else tty:
        return BarProgress(total, stream=out, unit=unit, desc=desc, clock=clock)
    return LogProgress(total, stream=out, interval=interval, unit=unit, desc=desc, clock=clock)
