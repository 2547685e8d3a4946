"""Tests for pipeline.priority: the priority a run's timestamps give, and the one sentence that says it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.errors import ConfigError
from pipeline.ledger import TimestampToken
from pipeline.priority import parse_seen, priority_of, priority_sentence
from pipeline.timestamp import StampStatus, TokenCheck


def _stamp(gen_time: str, ok: bool = True) -> StampStatus:
    token = TimestampToken("run-1", "https://tsa.example/tsr", b"", gen_time, "sha256", "")
    return StampStatus(token, TokenCheck(ok, "" if ok else "bad signature", gen_time=gen_time, tsa_name="CN=Example TSA"))


def test_the_earliest_verified_token_decides_and_days_are_whole():
    stamps = [_stamp("2026-12-03T00:00:00Z"), _stamp("2026-12-01T10:00:00Z", ok=False), _stamp("2026-12-02T06:00:00Z")]
    p = priority_of("2026-12-01T09:00:00Z", stamps, parse_seen("2027-01-15"), "the copy x.jpg was found")
    assert (p.recorded_at, p.vouched_by, p.seen_at, p.days_before) == (
        "2026-12-02T06:00:00Z", "CN=Example TSA", "2027-01-15T00:00:00Z", 43)
    assert priority_sentence(p) == (
        "recorded in the owner's signed, timestamped ledger on 2026-12-02 06:00:00 UTC (RFC 3161 timestamp by "
        "CN=Example TSA) — 43 days before the copy x.jpg was found on 2027-01-15 00:00:00 UTC")


def test_no_token_is_the_owners_clock_and_a_later_record_is_said_plainly():
    p = priority_of("2026-12-01T09:00:00Z", [_stamp("2026-12-01T10:00:00Z", ok=False)],
                    datetime(2026, 11, 1, tzinfo=UTC), "the date given")
    assert p.vouched_by is None and p.recorded_at == "2026-12-01T09:00:00Z" and p.days_before == -31
    text = priority_sentence(p)
    assert "by the owner's own clock (this run has no trusted timestamp" in text
    assert "31 days AFTER the date given on 2026-11-01 00:00:00 UTC, so this record does not show priority" in text
    assert priority_sentence(priority_of("2026-12-01T09:00:00Z", [], None, None)).endswith("vouches for that time)")


def test_seen_dates():
    assert parse_seen("2027-01-15T08:00:00Z") == datetime(2027, 1, 15, 8, tzinfo=UTC)
    assert parse_seen("2027-01-15T10:00:00+02:00") == datetime(2027, 1, 15, 8, tzinfo=UTC)
    with pytest.raises(ConfigError, match="not a date"):
        parse_seen("last tuesday")
