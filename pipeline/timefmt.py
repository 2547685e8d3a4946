"""Time as catalogmark writes it: one text form, one reading of ``SOURCE_DATE_EPOCH``.

Every timestamp in an output (XMP, the signed claim), a record or a run is whole seconds in UTC written as
:data:`ISO_UTC` (``2026-01-01T00:00:00Z``). ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention: a Unix
time in seconds) stands in for "now" in everything written into outputs, so the same inputs give the same bytes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from pipeline.errors import ConfigError

ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"
SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"


def utc(ts: datetime) -> datetime:
    """``ts`` in UTC; a naive timestamp is taken as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def iso_utc(ts: datetime) -> str:
    """``ts`` as :data:`ISO_UTC` text (a naive timestamp is taken as UTC)."""
    return utc(ts).strftime(ISO_UTC)


def now_iso() -> str:
    """The wall-clock time now (never ``SOURCE_DATE_EPOCH``) as :data:`ISO_UTC` text."""
    return iso_utc(datetime.now(UTC))


def source_timestamp() -> datetime:
    """``SOURCE_DATE_EPOCH`` if set, else now; whole seconds, UTC. A value that is not a Unix time in seconds
    (including an empty one) is a ConfigError."""
    env = os.environ.get(SOURCE_DATE_EPOCH)
    if env is not None:
        try:
            return datetime.fromtimestamp(int(env), UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise ConfigError(f"{SOURCE_DATE_EPOCH} must be a Unix timestamp in seconds, got {env!r}") from exc
    return datetime.now(UTC).replace(microsecond=0)
