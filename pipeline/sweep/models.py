"""Plain data of a sweep: where each suspect was found, what could not be fetched, the cases and their history.

Shared by the fetcher, the page reader, the case book (ledger), the complaint drafts and the sweep report; no
behaviour beyond JSON forms, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pipeline.trace.result import TraceResult

#: A case's life: found → reported → removed / countered / dismissed (any status may follow any other; the
#: history is append-only). "found" is also what a relisted copy goes back to.
CaseStatus = Literal["found", "reported", "removed", "countered", "dismissed"]
CASE_STATUSES: tuple[CaseStatus, ...] = ("found", "reported", "removed", "countered", "dismissed")

#: What a sweep made of one suspect: a copy never seen before, a copy of a case marked removed found again,
#: a known copy still up, a suspect that matches nothing of ours, or one that could not be read.
Change = Literal["new", "relisted", "still-up", "no-match", "error"]


@dataclass(frozen=True)
class Found:
    """Where a suspect was found. All None for a local file the owner gives without any URL."""

    page_url: str | None = None  # the listing page (a saved page: its canonical link)
    image_url: str | None = None  # the image itself
    marketplace: str | None = None  # "aliexpress", "amazon", "ebay", "etsy", ...: from the host, else the page
    seller: str | None = None  # given by the owner (URL list column, --seller) or read from the page
    listing_title: str | None = None  # the page's product name, if it has one
    fetched_at: str | None = None  # ISO 8601 UTC (timefmt.ISO_UTC) when the image was fetched / the page saved

    def as_json(self) -> dict[str, Any]:
        return {"page_url": self.page_url, "image_url": self.image_url, "marketplace": self.marketplace,
                "seller": self.seller, "listing_title": self.listing_title, "fetched_at": self.fetched_at}


@dataclass(frozen=True)
class Suspect:
    """One image to trace: a local file (the owner's, or downloaded into the sweep folder) and where it was found."""

    path: Path
    found: Found = field(default_factory=Found)


@dataclass(frozen=True)
class FetchFailure:
    """A URL (page or image) that gave no image, in one line: what was asked and what was wrong."""

    url: str
    error: str  # e.g. "HTTP 404 Not Found", "not an image: the server sent text/html", "larger than 25 MiB"
    page_url: str | None = None  # the listing page an image URL came from (None: the URL was given directly)

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "error": self.error, "page_url": self.page_url}


@dataclass(frozen=True)
class Gathered:
    """What the sweep's inputs expanded to: suspects to trace, and the URLs that failed."""

    suspects: tuple[Suspect, ...] = ()
    failures: tuple[FetchFailure, ...] = ()


@dataclass(frozen=True)
class CaseEvent:
    """One dated entry of a case's history (append-only: never edited or deleted)."""

    at: str  # ISO 8601 UTC
    status: CaseStatus
    note: str = ""
    sweep_id: str | None = None  # the sweep that wrote it (None: `cases mark` by the owner)
    relisted: bool = False  # a copy of a case marked removed, found again

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "status": self.status, "note": self.note, "sweep_id": self.sweep_id,
                "relisted": self.relisted}


@dataclass(frozen=True)
class Sighting:
    """One sweep meeting one copy of a case (append-only)."""

    sweep_id: str
    seen_at: str  # ISO 8601 UTC
    suspect_sha256: str
    page_url: str | None = None
    image_url: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, "seen_at": self.seen_at, "suspect_sha256": self.suspect_sha256,
                "page_url": self.page_url, "image_url": self.image_url}


@dataclass(frozen=True)
class Case:
    """A found copy of one of our exports, kept in the ledger database across sweeps.

    ``status`` is the newest event's; ``relisted`` is set when a copy of a case marked removed is found again.
    """

    case_id: int
    record_id: str  # the export it is a copy of
    verdict: str  # the trace verdict that opened it ("match")
    false_match_probability: float | None
    suspect_sha256: str  # the newest sighting's bytes
    suspect_phash: str  # 64-bit pHash, hex (imaging.hashes)
    page_url: str | None
    image_url: str | None
    marketplace: str | None
    seller: str | None
    listing_title: str | None
    first_seen: str  # ISO 8601 UTC
    last_seen: str
    status: CaseStatus
    relisted: bool = False
    opened_by: str | None = None  # the sweep that opened it
    events: tuple[CaseEvent, ...] = ()
    sightings: tuple[Sighting, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "status": self.status, "relisted": self.relisted,
                "record_id": self.record_id, "verdict": self.verdict,
                "false_match_probability": self.false_match_probability,
                "suspect_sha256": self.suspect_sha256, "suspect_phash": self.suspect_phash,
                "page_url": self.page_url, "image_url": self.image_url, "marketplace": self.marketplace,
                "seller": self.seller, "listing_title": self.listing_title,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "opened_by": self.opened_by,
                "events": [e.as_json() for e in self.events], "sightings": [s.as_json() for s in self.sightings]}


@dataclass(frozen=True)
class ComplaintProfile:
    """The complainant's details for drafts: ``[complaints]`` of the owner profile (all optional; a draft names
    each missing field the channel needs as a blank to fill in)."""

    signer: str = ""  # the person who signs (default: the owner's name)
    email: str = ""
    phone: str = ""
    address: str = ""  # postal address, one line or several
    company: str = ""  # rights owner's legal name when the owner name is a brand
    acting_as: str = "owner"  # "owner" or "agent" (authorised to act for the rights owner)
    copyright_registration: str = ""  # e.g. a US Copyright Office number; "" = unregistered
    aliexpress_ipr_id: str = ""  # the verified IPR (copyright) registration on ipp.alibabagroup.com
    ebay_vero_id: str = ""  # the VeRO participant id
    own_listings: tuple[str, ...] = ()  # the owner's own listing URLs / item numbers that use the photos


@dataclass(frozen=True)
class DraftFile:
    """One complaint draft written for a case: the channel and its text and JSON files."""

    case_id: int
    channel: str  # "aliexpress-ipp", "amazon", "ebay-vero", "dmca"
    text_path: Path
    json_path: Path
    missing: tuple[str, ...] = ()  # fields the owner must still fill in (signature excluded: always theirs)

    def as_json(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "channel": self.channel, "text": str(self.text_path),
                "json": str(self.json_path), "missing": list(self.missing)}


@dataclass
class SweepItem:
    """One suspect of a sweep: where it was found, its trace result, its case and what changed."""

    suspect: Suspect
    result: TraceResult
    change: Change
    sha256: str = ""
    phash: str = ""
    case: Case | None = None
    drafts: list[DraftFile] = field(default_factory=list)
    kit: Path | None = None  # the priority kit folder written for its case (None: not written)


@dataclass
class SweepResult:
    """A whole sweep: its items, the URLs that failed, and where its files are."""

    sweep_id: str
    started_at: str
    finished_at: str
    out_dir: Path
    items: list[SweepItem] = field(default_factory=list)
    failures: list[FetchFailure] = field(default_factory=list)
    report_html: Path | None = None
    evidence_html: Path | None = None  # trace's evidence report of this sweep's matches
    warnings: list[str] = field(default_factory=list)  # e.g. a kit that could not be written, and why

    def count(self, change: Change) -> int:
        return sum(1 for i in self.items if i.change == change)
