"""Views of the case book for people and spreadsheets: one row per case (JSON, CSV safe to open, a terminal line).

Values in a case come partly from a thief's page (seller, title, URLs): the CSV form defuses spreadsheet
formulas, and the terminal form prints every value on one escaped line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.progress import printable
from pipeline.sweep.models import Case

#: The CSV columns, in order (the spreadsheet workflow: one row per case).
COLUMNS: tuple[str, ...] = (
    "case_id", "status", "relisted", "marketplace", "seller", "listing_title", "page_url", "image_url",
    "first_seen", "last_seen", "sightings", "record_id", "sku", "preset", "false_match_probability",
    "suspect_sha256", "last_event_at", "last_note",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CaseRow:
    """One case with what its record says (SKU, preset), as the list shows it."""

    case: Case
    sku: str | None = None
    preset: str | None = None

    def values(self) -> dict[str, Any]:
        c = self.case
        last = c.events[-1] if c.events else None
        return {"case_id": c.case_id, "status": c.status, "relisted": c.relisted, "marketplace": c.marketplace,
                "seller": c.seller, "listing_title": c.listing_title, "page_url": c.page_url,
                "image_url": c.image_url, "first_seen": c.first_seen, "last_seen": c.last_seen,
                "sightings": len(c.sightings), "record_id": c.record_id, "sku": self.sku, "preset": self.preset,
                "false_match_probability": c.false_match_probability, "suspect_sha256": c.suspect_sha256,
                "last_event_at": last.at if last else None, "last_note": last.note if last else None}

    def as_json(self) -> dict[str, Any]:
        return self.case.as_json() | {"sku": self.sku, "preset": self.preset}


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: a value starting like a formula gets a leading apostrophe
    (OWASP's advice against CSV injection; a seller named "=HYPERLINK(...)" stays a name)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(rows: Sequence[CaseRow]) -> str:
    """The rows as CSV text (header first, RFC 4180 quoting, CRLF line ends as the csv module writes them)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for r in rows:
        v = r.values()
        w.writerow([_cell(v[name]) for name in COLUMNS])
    return buf.getvalue()


def line(row: CaseRow) -> str:
    """One terminal line per case: number, status, where and what."""
    c = row.case
    where = " ".join(x for x in (c.marketplace or "?", f"seller {c.seller}" if c.seller else "") if x)
    flag = " RELISTED" if c.relisted else ""
    return printable(f"case {c.case_id:<4} {c.status:<9}{flag} {where} {c.page_url or c.image_url or '-'} "
                     f"-> {row.sku or '?'} [{row.preset or '?'}] first seen {c.first_seen[:10]}, "
                     f"last seen {c.last_seen[:10]}")
