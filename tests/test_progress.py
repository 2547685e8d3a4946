"""Progress output: a bar on a terminal, plain timed lines in a log, only errors when quiet; `printable`."""

from __future__ import annotations

import io
import re

import pytest

from pipeline.progress import BarProgress, LogProgress, Progress, format_duration, make_progress, printable


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- printable ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "shown"), [
    ("catalog/MUG-1/a_main.jpg", "catalog/MUG-1/a_main.jpg"),
    ("Müller/日本/café.jpg", "Müller/日本/café.jpg"),
    ("a\nFAILED forged.jpg", "a\\nFAILED forged.jpg"),
    ("a\r\tb", "a\\r\\tb"),
    ("\x1b[2J\x1b]0;title\x07x.jpg", "\\x1b[2J\\x1b]0;title\\x07x.jpg"),
    ("del\x7f c1\x85\x9b", "del\\x7f c1\\x85\\x9b"),
    ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
    ("\u202egpj.exe", "\\u202egpj.exe"),
    ("bad\udcffbyte.jpg", "bad\\xffbyte.jpg"),  # os.fsdecode of b"bad\xffbyte.jpg"
    ("nul\x00", "nul\\x00"),
])
def test_printable_escapes_what_could_forge_a_line(raw, shown):
    assert printable(raw) == shown
    assert "\n" not in printable(raw) and "\x1b" not in printable(raw)
    assert printable(printable(raw)) == printable(raw)  # idempotent
    printable(raw).encode("utf-8")  # no lone surrogates left: encodes strictly


def test_printable_takes_paths_bytes_and_objects(tmp_path):
    from pathlib import Path

    assert printable(Path("a\nb.jpg")) == "a\\nb.jpg"
    assert printable(b"x\n\xff") == "x\\n\\xff"
    assert printable(ValueError("bad\nthing")) == "bad\\nthing"
    assert printable(42) == "42"


def test_format_duration():
    assert [format_duration(s) for s in (0, 4.6, 59, 60, 185, 3599, 3600, 7620)] == [
        "0s", "5s", "59s", "1m00s", "3m05s", "59m59s", "1h00m", "2h07m"]


# --- choosing a reporter -----------------------------------------------------------------------------------------

def test_make_progress_picks_by_stream_and_enabled():
    assert type(make_progress(3, enabled=False, stream=FakeTTY())) is Progress
    assert type(make_progress(3, enabled=True, stream=io.StringIO())) is LogProgress
    bar = make_progress(3, enabled=True, stream=FakeTTY())
    assert type(bar) is BarProgress
    bar.close()
    assert type(make_progress(3, enabled=True, stream=io.StringIO(), tty=False)) is LogProgress


def test_default_stream_is_the_current_stderr_never_stdout(capsys):
    p = make_progress(2, enabled=True, interval=0.0)
    p.update(1)
    p.fail("catalogmark: x.jpg failed at ingest: broken")
    p.update(1, failed=True)
    p.close()
    out, err = capsys.readouterr()
    assert out == ""
    assert "x.jpg failed at ingest" in err and "done 2/2" in err


# --- log lines (stderr not a terminal) ---------------------------------------------------------------------------

def test_log_progress_writes_a_plain_line_per_interval_and_a_final_line():
    stream, clock = io.StringIO(), FakeClock()
    p = make_progress(100, enabled=True, stream=stream, interval=5.0, clock=clock)
    for _ in range(9):  # 9 images in 4.5 s: under the interval, nothing yet
        clock.advance(0.5)
        p.update(1)
    assert stream.getvalue() == ""
    clock.advance(0.5)
    p.update(1, failed=True)  # 10 done at t+5 s, one failed
    lines = stream.getvalue().splitlines()
    assert lines == ["catalogmark: 10/100 img (10%), 2.0 img/s, 1 failed, ETA 45s"]
    for _ in range(10):
        clock.advance(0.1)
        p.update(1)
    assert len(stream.getvalue().splitlines()) == 1  # next line only 5 s after the last one
    clock.advance(4.0)
    p.update(1)
    assert stream.getvalue().splitlines()[-1] == "catalogmark: 21/100 img (21%), 2.1 img/s, 1 failed, ETA 38s"
    p.update(79)
    p.close()
    p.close()  # idempotent: one final line
    lines = stream.getvalue().splitlines()
    assert lines[-1] == "catalogmark: done 100/100 img in 10s, 10.0 img/s, 1 failed"
    assert len(lines) == 3
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_log_progress_final_line_says_stopped_when_closed_early_and_eta_unknown_at_zero_rate():
    stream, clock = io.StringIO(), FakeClock()
    p = LogProgress(10, stream=stream, interval=1.0, unit="suspect", desc="catalogmark trace", clock=clock)
    clock.advance(2.0)
    p.update(0)
    assert stream.getvalue() == "catalogmark trace: 0/10 suspect (0%), 0.0 suspect/s, 0 failed, ETA ?\n"
    clock.advance(63.0)
    p.update(3)
    p.close()
    assert stream.getvalue().splitlines()[-1] == (
        "catalogmark trace: stopped at 3/10 suspect in 1m05s, 0.0 suspect/s, 0 failed")


def test_log_progress_with_nothing_to_do_prints_nothing():
    stream = io.StringIO()
    with make_progress(0, enabled=True, stream=stream, clock=FakeClock()):
        pass
    assert stream.getvalue() == ""


def test_failure_lines_are_escaped_one_line_each():
    stream = io.StringIO()
    p = make_progress(1, enabled=True, stream=stream, clock=FakeClock())
    p.fail("catalogmark: evil\nFAILED other.jpg\x1b[2K.jpg [amazon] failed at ingest: bad")
    p.update(1, failed=True)
    p.close()
    first, final = stream.getvalue().splitlines()
    assert first == "catalogmark: evil\\nFAILED other.jpg\\x1b[2K.jpg [amazon] failed at ingest: bad"
    assert final.endswith("1 failed")


# --- quiet ----------------------------------------------------------------------------------------------------

def test_quiet_prints_only_failures():
    for stream in (io.StringIO(), FakeTTY()):
        clock = FakeClock()
        p = make_progress(5, enabled=False, stream=stream, interval=0.0, clock=clock)
        for i in range(5):
            clock.advance(10)
            p.update(1, failed=i == 2)
        p.fail("catalogmark: c.jpg [shopify] failed at ingest: truncated")
        p.close()
        assert stream.getvalue() == "catalogmark: c.jpg [shopify] failed at ingest: truncated\n"
        assert (p.done, p.failed) == (5, 1)


# --- terminal ----------------------------------------------------------------------------------------------------

def test_tty_gets_a_tqdm_bar_and_failure_lines_above_it():
    stream = FakeTTY()
    p = make_progress(3, enabled=True, stream=stream, unit="img", desc="catalogmark")
    p.update(1)
    p.fail("catalogmark: b\nad.jpg failed")
    p.update(1, failed=True)
    p.update(1)
    p.close()
    text = stream.getvalue()
    assert "\r" in text  # a redrawn bar, as a terminal expects
    assert "catalogmark: b\\nad.jpg failed\n" in text
    assert re.search(r"catalogmark: 100%.*3/3", text)
    assert "failed=1" in text
    assert (p.done, p.failed) == (3, 1)
