"""Priority in words: when a record's run was first vouched for (its earliest verified RFC 3161 token, else the
owner's own clock) and how long before a copy was seen — one sentence for prove's statement and trace's findings.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError
from pipeline.timefmt import iso_utc

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.timestamp import StampStatus


@dataclass(frozen=True)
class Priority:
    """When the ledger holds the record, who vouches for that time, and how long before the copy was seen."""

    recorded_at: str  # ISO 8601 UTC
    vouched_by: str | None  # the TSA of the earliest verified token; None: only the owner's clock (no token)
    seen_at: str | None = None  # when the found copy was seen (--seen, else the copy's file time)
    seen_what: str | None = None  # "the copy found at ..." / "DATE"
    days_before: int | None = None  # whole days from recorded_at to seen_at (negative: recorded after)

    def as_json(self) -> dict[str, Any]:
        return {"recorded_at": self.recorded_at, "vouched_by": self.vouched_by, "seen_at": self.seen_at,
                "seen_what": self.seen_what, "days_before": self.days_before}


def parse_seen(text: str) -> datetime:
    """``--seen``: a date (YYYY-MM-DD, midnight UTC) or an ISO 8601 time (naive: UTC); ConfigError if neither."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"--seen {text!r}: not a date (YYYY-MM-DD) or an ISO 8601 time") from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_time(text: str | None) -> datetime | None:
    """A stored ISO 8601 time (or date) as an aware UTC datetime; None if empty or not a time."""
    if not text:
        return None
    with contextlib.suppress(ConfigError, AttributeError):  # parse_seen's ConfigError: not a time
        return parse_seen(text)
    return None


def priority_of(record_time: str | None, stamps: Sequence[StampStatus], seen: datetime | None,
                seen_what: str | None) -> Priority:
    """The priority a run's tokens give: the earliest verified token's time (else the owner's own ``record_time``,
    vouched for by nobody), and whole days from it to ``seen``."""
    from pipeline.timestamp import earliest_verified

    best = earliest_verified(stamps)
    recorded = best.gen_time if best is not None else (record_time or "")
    days = None
    rt = parse_time(recorded)
    if seen is not None and rt is not None:
        days = int((seen - rt).total_seconds() // 86400)
    return Priority(recorded_at=recorded, vouched_by=best.authority if best is not None else None,
                    seen_at=None if seen is None else iso_utc(seen), seen_what=seen_what, days_before=days)


def pretty_time(text: str) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS UTC`` for a reader (the text as it is if it is not one)."""
    dt = parse_time(text)
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC") if dt is not None else (text or "an unknown time")


def priority_sentence(priority: Priority) -> str:
    """"Recorded ... on DATE, timestamped by TSA — N days before ..." in one clause (shared with trace)."""
    when = pretty_time(priority.recorded_at)
    if priority.vouched_by:
        head = f"recorded in the owner's signed, timestamped ledger on {when} (RFC 3161 timestamp by " \
               f"{priority.vouched_by})"
    else:
        head = (f"recorded in the owner's signed ledger on {when} by the owner's own clock (this run has no trusted "
                "timestamp, so no third party vouches for that time)")
    if priority.days_before is None or priority.seen_at is None:
        return head
    seen = pretty_time(priority.seen_at)
    what = priority.seen_what or "the date given"
    d = priority.days_before
    if d >= 0:
        return f"{head} — {d} day{'' if d == 1 else 's'} before {what} on {seen}"
    return (f"{head} — {-d} day{'' if d == -1 else 's'} AFTER {what} on {seen}, so this record does not show "
            "priority over that copy")
