"""The sweep workflow: gather suspects, trace each, file matches as cases, then write kits, drafts and the report.

One sweep writes one folder (``OUT``)::

    OUT/report.html, report.json        the sweep report (new copies, relists, known copies still up, ...)
    OUT/evidence.html, evidence.json    trace's evidence report of the suspects that matched
    OUT/downloads/                      every image fetched, named by its bytes
    OUT/kits/case-N/, case-N.zip        the priority kit of each new or relisted case (catalogmark prove)
    OUT/complaints/case-N-CHANNEL.txt   the ready-to-paste drafts (and .json) of each new or relisted case

and its cases into the ledger database (the case book). The parent process is the only ledger writer; a sweep
is one process.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import CatalogmarkError, ConfigError
from pipeline.models import Owner
from pipeline.priority import Priority, parse_time
from pipeline.sweep.models import ComplaintProfile, Suspect, SweepItem, SweepResult
from pipeline.timefmt import now_iso

REPORT_NAME, EVIDENCE_NAME = "report.html", "evidence.html"
DOWNLOADS, KITS, COMPLAINTS = "downloads", "kits", "complaints"
ACTION = ("new", "relisted")  # the changes a sweep writes kits and drafts for


@dataclass(frozen=True)
class SweepOptions:
    """How to sweep: where its folder goes, what the owner says about the inputs, what to write."""

    out_dir: Path
    seller: str | None = None  # for every suspect that does not name its own (URL list column, page)
    marketplace: str | None = None  # likewise: overrides nothing the URL list says per row
    channels: tuple[str, ...] | None = None  # complaint channels (None: each case's default one)
    kits: bool = True  # a priority kit per new or relisted case
    archive: Path | None = None  # the run's --archive folder: kits then hold the original
    offline: bool = False  # never touch the network: files, folders and saved pages only
    max_images_per_page: int = 12
    timeout: float = 15.0  # seconds per request (connect / between bytes) and the per-URL deadline base


def new_sweep_id(now: datetime | None = None) -> str:
    """``sweep-YYYYMMDDTHHMMSSZ-xxxx``: sorts by time, unique with a few random hex digits."""
    now = now or datetime.now(UTC)
    return f"sweep-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"sweep folder {out} exists and is not a folder")
    if (out / "report.json").exists():
        raise ConfigError(f"sweep folder {out} already holds a sweep (report.json); choose another --out")


def sweep(inputs: Sequence[str], *, store: Any, key: Any, owner: Owner | None, complaints: ComplaintProfile,
          options: SweepOptions, progress: Callable[[SweepItem], None] | None = None,
          fetching: Callable[[str], None] | None = None) -> SweepResult:
    """Sweep ``inputs`` (files, folders, saved pages, URL lists, page or image URLs) against ``store`` (an open
    Ledger) with the owner's ``key``; return what was found, with the cases filed and the files written.
    ``progress`` gets each traced item, ``fetching`` a line per URL or saved page being read."""
    from pipeline.sweep.fetch import Fetcher
    from pipeline.sweep.sources import gather
    from pipeline.trace.tracer import Tracer, key_warning

    out = Path(options.out_dir)
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    started = now_iso()
    sid = new_sweep_id()
    if options.offline:
        gathered = gather(inputs, download_dir=out / DOWNLOADS, fetcher=None, seller=options.seller,
                          marketplace=options.marketplace, max_images_per_page=options.max_images_per_page,
                          progress=fetching)
    else:
        with Fetcher(timeout=options.timeout) as fetcher:
            gathered = gather(inputs, download_dir=out / DOWNLOADS, fetcher=fetcher, seller=options.seller,
                              marketplace=options.marketplace, max_images_per_page=options.max_images_per_page,
                              progress=fetching)
    result = SweepResult(sweep_id=sid, started_at=started, finished_at=started, out_dir=out,
                         failures=list(gathered.failures))
    store.begin_sweep(sid, started, list(inputs))
    warning = key_warning(store, key)
    if warning:
        result.warnings.append(warning)
    tracer = Tracer(store, key, owner=owner)
    for suspect in gathered.suspects:
        item = _trace_one(store, tracer, sid, suspect)
        result.items.append(item)
        if progress is not None:
            progress(item)
    _write_files(store, key, owner, complaints, options, result)
    result.finished_at = now_iso()
    store.finish_sweep(sid, result.finished_at, counts(result))
    return result


def _trace_one(store: Any, tracer: Any, sid: str, suspect: Suspect) -> SweepItem:
    from pipeline.imaging.hashes import phash_hex
    from pipeline.sweep.models import Sighting

    found = suspect.found
    res = tracer.trace_path(suspect.path, seen=parse_time(found.fetched_at))
    sha = res.suspect_sha256 or ""  # the bytes traced, read once; "" only when they could not be read
    phash = phash_hex(res.suspect_rgb) if res.suspect_rgb is not None else ""
    item = SweepItem(suspect=suspect, result=res, change="no-match", sha256=sha, phash=phash)
    if res.error:
        item.change = "error"
    elif res.verdict.verdict == "match" and res.record is None and res.named:
        item.change = "error"
        res.error = f"matches record {res.verdict.record_id}, but the ledger has no row for it any more"
    elif res.verdict.verdict == "match" and res.record is not None:
        seen = found.fetched_at or now_iso()
        item.case, item.change = store.meet_copy(
            sweep_id=sid, sighting=Sighting(sid, seen, sha, found.page_url, found.image_url),
            record_id=res.record.record.record_id, verdict=res.verdict.verdict,
            false_match_probability=res.verdict.false_match_probability, suspect_phash=phash,
            marketplace=found.marketplace, seller=found.seller, listing_title=found.listing_title)
    return item


def counts(result: SweepResult) -> dict[str, int]:
    """What a sweep found, per change, plus the suspects traced and the URLs that failed."""
    doc = {c: result.count(c) for c in ("new", "relisted", "still-up", "no-match", "error")}
    doc["suspects"] = len(result.items)
    doc["failed_urls"] = len(result.failures)
    doc["cases"] = len({i.case.case_id for i in result.items if i.case is not None})
    return doc


def _write_files(store: Any, key: Any, owner: Owner | None, complaints: ComplaintProfile, options: SweepOptions,
                 result: SweepResult) -> None:
    from pipeline.sweep.report import write_sweep_report
    from pipeline.trace.report import write_report

    out = result.out_dir
    matched = [i for i in result.items if i.case is not None]
    if matched:
        result.evidence_html = out / EVIDENCE_NAME
        write_report([i.result for i in matched], html_path=result.evidence_html,
                     json_path=result.evidence_html.with_suffix(".json"),
                     info={"sweep_id": result.sweep_id, "key_fingerprint": getattr(key, "fingerprint", None)})
    written: dict[int, tuple[Path | None, list[Any]]] = {}  # a case met twice in a sweep: one kit, one set
    for item in matched:
        case, stored = item.case, item.result.record
        assert case is not None and stored is not None
        if item.change not in ACTION:
            continue
        if case.case_id not in written:
            # absolute paths: what the owner picks in the complaint form's upload dialog
            attachments = [str((out / EVIDENCE_NAME).resolve())]
            kit = _kit(store, key, options, item, result) if options.kits else None
            if kit is not None:
                attachments.append(str(kit.resolve().with_name(kit.name + ".zip")))
            drafts = write_case_drafts(store, owner, complaints, case, stored, attachments, out / COMPLAINTS,
                                       options.channels, generated_at=result.started_at)
            written[case.case_id] = (kit, drafts)
        item.kit, item.drafts = written[case.case_id]
    result.report_html = out / REPORT_NAME
    write_sweep_report(result, result.report_html, out / "report.json")


def _kit(store: Any, key: Any, options: SweepOptions, item: SweepItem, result: SweepResult) -> Path | None:
    from pipeline import prove

    case, stored = item.case, item.result.record
    assert case is not None and stored is not None
    target = prove.Target(kind="copy", given=str(item.suspect.path), record=stored,
                          how=f"traced by sweep {result.sweep_id} (case {case.case_id})", file=item.suspect.path,
                          file_sha256=item.sha256, false_match_probability=case.false_match_probability)
    folder = result.out_dir / KITS / f"case-{case.case_id}"
    try:
        prove.build_kit(store, target, public_key=key.public, out=folder, archive=options.archive,
                        seen=parse_time(item.suspect.found.fetched_at))
    except CatalogmarkError as exc:  # e.g. the record's run is not sealed: the case and drafts still stand
        result.warnings.append(f"case {case.case_id}: no priority kit: {exc}")
        return None
    return folder


def case_priority(store: Any, case: Any, stored: Any) -> Priority | None:
    """When the case's record was first vouched for (its run's earliest verified RFC 3161 token, else the run's
    seal by the owner's clock) and how many days before the copy was first seen; None if the run is not sealed."""
    from pipeline.errors import LedgerError
    from pipeline.priority import priority_of
    from pipeline.timestamp import check_stamps

    try:
        proof = store.inclusion_proof(stored.record.record_id, seq=stored.seq)
    except LedgerError:
        return None
    run = next((r for r in store.runs() if r.run_id == stored.run_id), None)
    stamps = check_stamps(store.timestamps(stored.run_id), proof.root)
    return priority_of(run.finished_at if run is not None else stored.record.created_at, stamps,
                       parse_time(case.first_seen), "the copy was first found")


def write_case_drafts(store: Any, owner: Owner | None, complaints: ComplaintProfile, case: Any, stored: Any,
                      attachments: Sequence[str], out_dir: Path, channels: Sequence[str] | None, *,
                      generated_at: str | None = None, replace: bool = True) -> list[Any]:
    """Write the complaint drafts of one case (each channel of ``channels``, else the marketplace's default);
    ``replace=False``: refuse (ConfigError) to overwrite a draft already there."""
    from pipeline.complaints import ComplaintContext, write_drafts

    earliest = store.earliest_of_source(stored.record.source_sha256)
    who = owner or Owner(name=stored.record.owner, copyright="")
    other = tuple(dict.fromkeys(u for s in case.sightings for u in (s.page_url,) if u and u != case.page_url))
    ctx = ComplaintContext(owner=who, profile=complaints, case=case, record=stored,
                           priority=case_priority(store, case, stored),
                           earliest_recorded_at=None if earliest is None else earliest.record.created_at,
                           attachments=tuple(attachments), other_urls=other, generated_at=generated_at or now_iso())
    return list(write_drafts(ctx, out_dir, channels, replace=replace))
