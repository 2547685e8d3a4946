"""The command line of sweeps and cases (`catalogmark sweep`, `catalogmark cases ...`): flags to library calls.

cli.py registers these commands; the options and error handling they share are in cli_common.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pipeline.cli_common import (
    EXIT_OK,
    _emit_json,
    _Group,
    _open_existing_ledger,
    _optional_owner,
    key_option,
    ledger_option,
)
from pipeline.progress import printable

#: sweep's exit codes: 0 nothing new; 1 new copies or relists found (file the drafts); 3 nothing new, but some
#: URLs or files could not be fetched or read (see the report); 2 a usage or run-level error.
EXIT_NEW, EXIT_INCOMPLETE = 1, 3
_CHANGE_WORD = {"new": "NEW", "relisted": "RELISTED", "still-up": "STILL UP", "no-match": "no match",
                "error": "ERROR"}


def _complaint_profile(config_path: Path | None) -> Any:
    from pipeline import config

    return config.load_complaints(config_path)


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@ledger_option
@key_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Owner profile: the owner, and [complaints] (email, address, ...) for the drafts. Optional.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The sweep's folder (report, evidence, downloads, kits, drafts). Default: ./sweeps/<sweep id>.")
@click.option("--seller", default=None, help="The seller of every input that does not name its own.")
@click.option("--marketplace", default=None,
              help="The marketplace of every input whose URL and page do not say (aliexpress, amazon, ebay, ...).")
@click.option("--channel", "channels", multiple=True, metavar="CHANNEL",
              help="Complaint channel(s) to draft: aliexpress-ipp, amazon, ebay-vero, dmca (repeatable). "
                   "Default: the one of each case's marketplace.")
@click.option("--no-kits", is_flag=True, help="Do not write a priority kit per new or relisted case.")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The run's --archive folder: the kits then hold the original photo.")
@click.option("--offline", is_flag=True, help="Never touch the network: files, folders and saved pages only.")
@click.option("--max-images", type=click.IntRange(min=1), default=12, show_default=True,
              help="At most this many images per listing page.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=15.0, show_default=True,
              help="Seconds to wait for a server (per connection and between bytes).")
@click.option("--json", "as_json", is_flag=True, help="The sweep report's JSON on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Only the summary line and errors.")
def sweep(inputs: tuple[str, ...], ledger_path: Path | None, key_file: Path | None, config_path: Path | None,
          out_dir: Path | None, seller: str | None, marketplace: str | None, channels: tuple[str, ...],
          no_kits: bool, archive: Path | None, offline: bool, max_images: int, timeout: float, as_json: bool,
          quiet: bool) -> None:
    """Trace every image in INPUTS (files, folders, saved pages, .txt/.csv URL lists, listing page or image
    URLs) and keep each copy of ours as a case; write the sweep report, priority kits and complaint drafts.

    Exit 0: nothing new. 1: new copies or relists found (drafts written). 3: nothing new, but some URLs or
    files could not be fetched or read. 2: a usage or run-level error.
    """
    from pipeline import keys
    from pipeline.sweep.report import sweep_json
    from pipeline.sweep.run import SweepOptions, new_sweep_id
    from pipeline.sweep.run import sweep as run_sweep

    key = keys.load_key(key_file)
    owner = _optional_owner(config_path)
    complaints = _complaint_profile(config_path)
    if channels:
        from pipeline.complaints import CHANNELS

        bad = [c for c in channels if c not in CHANNELS]
        if bad:
            raise click.BadParameter(f"unknown channel(s) {', '.join(bad)} (known: {', '.join(CHANNELS)})",
                                     param_hint="--channel")
    out = out_dir or Path("sweeps") / new_sweep_id()
    options = SweepOptions(out_dir=out, seller=seller, marketplace=marketplace, channels=channels or None,
                           kits=not no_kits, archive=archive, offline=offline, max_images_per_page=max_images,
                           timeout=timeout)

    def shown(item: Any) -> None:
        if quiet or as_json or item.change == "no-match":
            return
        where = item.suspect.found.page_url or item.suspect.found.image_url or str(item.suspect.path)
        case = f"case {item.case.case_id}: " if item.case is not None else ""
        why = f": {item.result.error}" if item.change == "error" and item.result.error else ""
        click.echo(printable(f"{_CHANGE_WORD[item.change]:<9}{case}{where}{why}"), err=True)

    with _open_existing_ledger(ledger_path) as led:
        result = run_sweep(list(inputs), store=led, key=key, owner=owner, complaints=complaints, options=options,
                           progress=shown, fetching=None if quiet or as_json else
                           lambda line: click.echo(printable(line), err=True))
    for w in result.warnings:
        click.echo(f"catalogmark: warning: {printable(w)}", err=True)
    if as_json:
        _emit_json(sweep_json(result))
    else:
        if not quiet:
            for f in result.failures:
                click.echo(printable(f"COULD NOT FETCH {f.url}: {f.error}"), err=True)
        click.echo(f"sweep {result.sweep_id}: {len(result.items)} suspects: {result.count('new')} new, "
                   f"{result.count('relisted')} relisted, {result.count('still-up')} still up, "
                   f"{result.count('no-match')} no match, {result.count('error')} unreadable; "
                   f"{len(result.failures)} URLs failed")
        click.echo(f"report:  {printable(result.report_html)}")
        drafts = sorted({str(d.text_path) for i in result.items for d in i.drafts})
        if drafts:
            click.echo(f"drafts:  {len(drafts)} in {printable(result.out_dir / 'complaints')}")
    if result.count("new") or result.count("relisted"):
        sys.exit(EXIT_NEW)
    sys.exit(EXIT_INCOMPLETE if result.failures or result.count("error") else EXIT_OK)


# --- cases ------------------------------------------------------------------------------------------------------

@click.group(cls=_Group)
def cases() -> None:
    """The case book: every copy a sweep found, its status and history."""


def _rows(led: Any, found: list[Any]) -> list[Any]:
    from pipeline.sweep.casebook import CaseRow

    rows = []
    for c in found:
        rec = led.get(c.record_id)
        rows.append(CaseRow(c, sku=rec.record.sku if rec else None, preset=rec.record.preset if rec else None))
    return rows


@cases.command("list")
@ledger_option
@click.option("--status", type=click.Choice(["found", "reported", "removed", "countered", "dismissed"]),
              default=None, help="Only cases with this current status.")
@click.option("--marketplace", default=None, help="Only cases on this marketplace (e.g. aliexpress).")
@click.option("--seller", default=None, help="Only cases of this seller (case-insensitive).")
@click.option("--relisted", is_flag=True, help="Only cases that were relisted after a takedown.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, each case with its whole history.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for a spreadsheet (one row per case).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of stdout.")
def cases_list(ledger_path: Path | None, status: str | None, marketplace: str | None, seller: str | None,
               relisted: bool, as_json: bool, as_csv: bool, output: Path | None) -> None:
    """List cases (oldest first)."""
    import json

    from pipeline.files import write_atomic
    from pipeline.sweep.casebook import line, to_csv

    if as_json and as_csv:
        raise click.UsageError("--json and --csv: choose one")
    with _open_existing_ledger(ledger_path) as led:
        rows = _rows(led, led.cases(status=status, marketplace=marketplace, seller=seller,
                                    relisted=True if relisted else None))
    if as_csv:
        text = to_csv(rows)
    elif as_json:
        text = json.dumps([r.as_json() for r in rows], indent=2, ensure_ascii=False) + "\n"
    else:
        text = "".join(line(r) + "\n" for r in rows) or "no cases\n"
    if output is not None:
        write_atomic(output, text.encode("utf-8"))
        click.echo(f"{len(rows)} cases written to {printable(output)}", err=True)
    else:
        click.echo(text, nl=False)


@cases.command("show")
@click.argument("case_id", type=int)
@ledger_option
@click.option("--json", "as_json", is_flag=True)
def cases_show(case_id: int, ledger_path: Path | None, as_json: bool) -> None:
    """One case with its sightings and its history of status changes."""
    from pipeline.errors import LedgerError
    from pipeline.sweep.casebook import line

    with _open_existing_ledger(ledger_path) as led:
        case = led.get_case(case_id)
        if case is None:
            raise LedgerError(f"no case {case_id} (catalogmark cases list shows them)")
        row = _rows(led, [case])[0]
    if as_json:
        _emit_json(row.as_json())
        return
    click.echo(line(row))
    for s in case.sightings:
        click.echo(printable(f"  seen    {s.seen_at}  {s.page_url or '-'}  image {s.image_url or '-'}  "
                             f"sha256 {s.suspect_sha256[:16]}  ({s.sweep_id})"))
    for e in case.events:
        by = e.sweep_id or "owner"
        click.echo(printable(f"  status  {e.at}  {e.status}{' (relisted)' if e.relisted else ''}  "
                             f"{e.note}  [{by}]"))


@cases.command("mark")
@click.argument("case_id", type=int)
@click.argument("status", type=click.Choice(["found", "reported", "removed", "countered", "dismissed"]))
@ledger_option
@click.option("--note", default="", help="What happened (e.g. the complaint number, the marketplace's answer).")
def cases_mark(case_id: int, status: Any, ledger_path: Path | None, note: str) -> None:
    """Append a status change to a case's history (nothing is ever overwritten)."""
    from pipeline.sweep.casebook import CaseRow, line

    with _open_existing_ledger(ledger_path) as led:
        case = led.mark_case(case_id, status, note)
    click.echo(line(CaseRow(case)))


@cases.command("draft")
@click.argument("case_id", type=int)
@ledger_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Owner profile with [complaints] (email, address, ...).")
@click.option("--channel", "channels", multiple=True, metavar="CHANNEL",
              help="aliexpress-ipp, amazon, ebay-vero, dmca (repeatable). Default: the case's marketplace's.")
@click.option("--attach", "attachments", multiple=True, metavar="FILE",
              help="A file the complaint attaches (evidence report, priority kit zip); repeatable.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder for the drafts.")
@click.option("--force", is_flag=True, help="Replace drafts of this case already in --out (your edits are lost).")
def cases_draft(case_id: int, ledger_path: Path | None, config_path: Path | None, channels: tuple[str, ...],
                attachments: tuple[str, ...], out_dir: Path, force: bool) -> None:
    """Write the complaint drafts of one case (text to paste, and JSON)."""
    from pipeline.errors import LedgerError
    from pipeline.sweep.run import write_case_drafts

    owner = _optional_owner(config_path)
    profile = _complaint_profile(config_path)
    with _open_existing_ledger(ledger_path) as led:
        case = led.get_case(case_id)
        if case is None:
            raise LedgerError(f"no case {case_id} (catalogmark cases list shows them)")
        stored = led.get(case.record_id)
        if stored is None:
            raise LedgerError(f"case {case_id} names record {case.record_id}, which the ledger no longer holds")
        drafts = write_case_drafts(led, owner, profile, case, stored, attachments, out_dir, channels or None,
                                   replace=force)
    for d in drafts:
        missing = f" (fill in: {', '.join(d.missing)})" if d.missing else ""
        click.echo(printable(f"{d.channel}: {d.text_path}{missing}"))
    sys.exit(EXIT_OK)
