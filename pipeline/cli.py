"""The command line: a thin layer turning library calls into output, clear error messages and exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from pipeline import __version__
from pipeline.cli_common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    _complete_preset,
    _emit_json,
    _Group,
    _open_existing_ledger,
    _optional_owner,
    default_ledger_path,
    key_option,
    ledger_option,
)
from pipeline.cli_sweep import cases, sweep
from pipeline.errors import ConfigError
from pipeline.progress import make_progress, printable


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="catalogmark")
def cli() -> None:
    """Protect product photos before they go up on marketplaces: keyed visible and invisible watermarks,
    signed metadata, a hash-chained ledger, storefront presets, and tracing of stolen copies."""


# --- keys -------------------------------------------------------------------------------------------------------

@cli.command()
@key_option
@click.option("--force", is_flag=True, help="Overwrite an existing key file (the old key is lost!).")
def keygen(key_file: Path | None, force: bool) -> None:
    """Create the owner key (mode 0600) and print its public key fingerprint."""
    from pipeline import keys

    path = key_file or keys.default_key_path()
    key = keys.generate()
    keys.write_key(key, path, overwrite=force)
    click.echo(f"created owner key {printable(path)} (mode 0600; keep it secret and back it up)", err=True)
    click.echo(f"public key:  {printable(path)}.pub", err=True)
    click.echo(f"fingerprint: {key.fingerprint}")


@cli.command()
@key_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def keyinfo(key_file: Path | None, as_json: bool) -> None:
    """Print the owner key's public key and fingerprint (never the secret)."""
    from pipeline import keys

    key = keys.load_key(key_file)
    if as_json:
        _emit_json({"fingerprint": key.fingerprint, "public_key_pem": key.public.pem()})
    else:
        click.echo(f"fingerprint: {key.fingerprint}")
        click.echo(key.public.pem().rstrip())


# --- run --------------------------------------------------------------------------------------------------------

@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--preset", "preset_names", multiple=True, required=True, metavar="NAME|FILE",
              shell_complete=_complete_preset,
              help="Storefront preset (built-in name or TOML file); repeat for several.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder; outputs go to OUT/<preset>/.")
@ledger_option
@key_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Owner profile (default: ./catalogmark.toml or [tool.catalogmark] in ./pyproject.toml).")
@click.option("--owner", default=None, help="Owner name (overrides the config).")
@click.option("--copyright", "copyright_", default=None, help="Copyright notice (overrides the config).")
@click.option("--url", default=None, help="Licensing/contact URL (overrides the config).")
@click.option("--watermark-text", default=None, help="Visible watermark text (overrides the config).")
@click.option("--watermark-logo", default=None, help="Visible watermark logo, an RGBA PNG (overrides the config).")
@click.option("--watermark-font", default=None, metavar="FILE",
              help="Font (TTF/OTF/TTC) for the watermark text (overrides the config; default: Pillow's own).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Parallel workers, at least 1 (default: all cores).")
@click.option("--backend", type=click.Choice(["loky", "dask"]), default="loky", show_default=True)
@click.option("--scheduler", default=None, help="dask scheduler address, e.g. tcp://10.0.0.5:8786.")
@click.option("--check", is_flag=True, help="Change nothing; report what a run would do (exit 1 if anything is missing or stale).")
@click.option("--force", is_flag=True, help="Re-export even images that are up to date.")
@click.option("--archive", type=click.Path(file_okay=False), default=None,
              help="Keep each original, write-once and content-addressed, in this folder.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write an HTML contact sheet of the run.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; only errors on stderr.")
def run(sources: tuple[str, ...], preset_names: tuple[str, ...], out_dir: Path, ledger_path: Path | None,
        key_file: Path | None, config_path: Path | None, owner: str | None, copyright_: str | None,
        url: str | None, watermark_text: str | None, watermark_logo: str | None, watermark_font: str | None,
        jobs: int | None,
        backend: str, scheduler: str | None, check: bool, force: bool, archive: str | None, as_json: bool,
        report_path: Path | None, quiet: bool) -> None:
    """Watermark, fingerprint, record and export every image under SOURCES for each preset.

    Exit 1 if an export failed, or if a TSA named in the owner profile's [timestamp] gave no token for the
    run (the run is sealed and kept anyway; `catalogmark ledger timestamp` stamps it later)."""
    from pipeline import parallel, runner

    if check and force:
        raise ConfigError("--check and --force contradict each other: --check changes nothing")
    n_jobs = jobs or parallel.default_jobs()
    if not check:  # the workers start while the profile, presets and key load (--check starts none)
        runner.prestart(n_jobs, backend)
    try:
        from pipeline import config, keys, presets

        owner_profile = config.load_owner(config_path, overrides={
            "name": owner, "copyright": copyright_, "url": url,
            "watermark_text": watermark_text, "watermark_logo": watermark_logo, "watermark_font": watermark_font,
        })
        stamping = config.TimestampConfig() if check else config.load_timestamp(config_path)
        preset_list = [presets.load_preset(name) for name in preset_names]
        if len({p.name for p in preset_list}) != len(preset_list):
            raise ConfigError("the same preset name is given twice: outputs would overwrite each other")
        options = runner.RunOptions(
            sources=sources, presets=preset_list, out_dir=str(out_dir),
            ledger_path=str(ledger_path or default_ledger_path()), owner=owner_profile,
            key=keys.load_key(key_file), jobs=n_jobs, backend=backend, scheduler=scheduler,
            check=check, force=force, archive=archive, progress=not quiet, argv=sys.argv[1:],
        )
        summary = runner.run(options)
    finally:  # the workers are idle now (or were never used): killed rather than waited for at exit
        parallel.stop_workers()
    stamps = _stamp_new_run(stamping, options.ledger_path, summary.run_id)
    if report_path is not None:
        from pipeline import contactsheet

        contactsheet.write_report(report_path, summary, options)
    for message, n in summary.warnings.items():  # stderr, also with --json (where "warnings" lists them too)
        click.echo(f"catalogmark: warning: {printable(message)} ({n} export{'' if n == 1 else 's'})", err=True)
    if as_json:
        _emit_json(summary.as_json() | {"timestamps": None if stamps is None else stamps.as_json()})
    elif not quiet:
        _print_run_summary(summary, options, report_path)
        for t in [] if stamps is None else stamps.stamped:
            click.echo(f"timestamp:   {t.gen_time} by {printable(t.tsa_url)}")
    sys.exit(EXIT_OK if summary.ok and (stamps is None or stamps.ok) else EXIT_SOME_FAILED)


def _stamp_new_run(stamping: Any, ledger_path: str, run_id: str | None) -> Any:
    """Timestamp a run just sealed with each configured TSA; a TSA that fails is a one-line warning (exit 1),
    the run stays sealed and `catalogmark ledger timestamp` stamps it later. None if there is nothing to do."""
    if not stamping.tsa or run_id is None:
        return None
    from pipeline import timestamp
    from pipeline.ledger import Ledger

    with Ledger.open(ledger_path) as led:
        report = timestamp.stamp_runs(led, stamping, run_ids=[run_id])
    for f in report.failures:
        click.echo(f"catalogmark: warning: {printable(f.message)}; run {run_id} is sealed without its token "
                   "(stamp it later: catalogmark ledger timestamp)", err=True)
    return report


def _print_run_summary(summary: Any, options: Any, report_path: Path | None) -> None:
    if summary.check:
        for item in summary.check_items:
            click.echo(f"{item.status.upper():8} {printable(item.output)} [{item.preset}]: {printable(item.reason)} "
                       f"(source {printable(item.source)})")
        for f in summary.failures:
            click.echo(f"FAILED   {printable(f.path)} [{f.preset}] at {f.stage}: {printable(f.error)}")
        click.echo(f"check: {summary.current} up to date, {summary.missing} missing, {summary.stale} stale, "
                   f"{summary.failed} failed")
        _print_ignored(summary)
        return
    if summary.run_id is None and summary.processed == 0:
        click.echo(f"nothing to do: {summary.skipped} up to date, {summary.failed} failed "
                   f"(no run recorded) in {summary.seconds:.1f}s")
    else:
        click.echo(f"run {summary.run_id}: {summary.processed} processed, {summary.skipped} skipped, "
                   f"{summary.failed} failed in {summary.seconds:.1f}s")
    click.echo(f"outputs:     {printable(Path(options.out_dir).resolve())}/<preset>/ (manifest.json in each)")
    click.echo(f"ledger:      {printable(options.ledger_path)}")
    click.echo(f"merkle root: {summary.merkle_root}")
    if report_path is not None:
        click.echo(f"report:      {printable(report_path)}")
    for f in summary.failures:
        click.echo(f"FAILED {printable(f.path)} [{f.preset}] at {f.stage}: {printable(f.error)}")
    _print_ignored(summary)


_IGNORED_SHOWN = 20  # ignored files listed one a line in the text summary; --json lists them all


def _print_ignored(summary: Any) -> None:
    """The files under the sources that are not images: a count, then (some of) them with the reason."""
    if not summary.ignored:
        return
    n = len(summary.ignored)
    click.echo(f"ignored:     {n} file{'' if n == 1 else 's'} under the sources (not images)")
    for i in summary.ignored[:_IGNORED_SHOWN]:
        click.echo(f"IGNORED {printable(i.path)}: {printable(i.reason)}")
    if n > _IGNORED_SHOWN:
        click.echo(f"... and {n - _IGNORED_SHOWN} more (all of them in --json: ignored)")


# --- verify -----------------------------------------------------------------------------------------------------

@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--public-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Verify signatures against this public key (PEM, as keygen writes beside the key).")
@key_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document (a list) on stdout.")
def verify(files: tuple[Path, ...], public_key: Path | None, key_file: Path | None, as_json: bool) -> None:
    """Check the signed metadata and read the invisible watermark of FILES (exit 1 if any fails)."""
    from pipeline import keys
    from pipeline import verify as verify_mod

    if public_key is not None and key_file is not None:
        raise ConfigError("give either --public-key or --key-file, not both")
    key = None
    pub = None
    if public_key is not None:
        pub = keys.load_public_key(public_key)
    else:
        path = key_file or keys.default_key_path()
        if key_file is not None or path.exists():
            key = keys.load_key(path)
            pub = key.public
    results = [verify_mod.verify_file(f, public_key=pub, key=key) for f in files]
    if as_json:
        _emit_json([r.as_json() for r in results])
    else:
        for r in results:
            click.echo(r.describe())
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_SOME_FAILED)


# --- trace ------------------------------------------------------------------------------------------------------

@cli.command()
@click.argument("suspects", nargs=-1, required=True, type=click.Path(path_type=Path))
@ledger_option
@key_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Owner profile (default: ./catalogmark.toml or [tool.catalogmark] in ./pyproject.toml); "
                   "lets trace re-render the exact visible mark. Optional.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (a list, one object per suspect) on stdout.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the evidence pack: a self-contained HTML file and its JSON twin beside it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; only errors on stderr.")
def trace(suspects: tuple[Path, ...], ledger_path: Path | None, key_file: Path | None, config_path: Path | None,
          as_json: bool, report_path: Path | None, quiet: bool) -> None:
    """Find which export each SUSPECT (file or folder of downloaded copies) came from; exit 1 if any has no match."""
    from pipeline import keys
    from pipeline.trace import trace_files
    from pipeline.trace.tracer import expand_suspects, key_warning

    key = keys.load_key(key_file)
    owner = _optional_owner(config_path)
    paths = expand_suspects(suspects)
    if not paths:
        raise ConfigError("no suspect images found in " + ", ".join(str(s) for s in suspects))
    with _open_existing_ledger(ledger_path) as led:
        warning = key_warning(led, key)
    if warning:
        click.echo(f"catalogmark: warning: {printable(warning)}", err=True)
    with _open_existing_ledger(ledger_path) as led, \
            make_progress(len(paths), enabled=not quiet and not as_json, unit="suspect",
                          desc="catalogmark trace") as progress:
        results = trace_files(paths, store=led, key=key, owner=owner, report_html=report_path,
                              progress=lambda _r: progress.update(1))
    if as_json:
        _emit_json([r.as_json() for r in results])
    elif not quiet:
        for r in results:
            if r.verdict.verdict == "match" and r.named:
                m = r.record.record if r.record is not None else None  # None: the ledger lost the record's row
                click.echo(f"MATCH    {printable(r.suspect)}: {printable(m.sku if m else None)} "
                           f"[{m.preset if m else None}] {printable(m.source if m else None)} -> "
                           f"{printable(m.output if m else None)} "
                           f"(false-match probability <= {r.verdict.false_match_probability or 0:.1e}, "
                           f"record {r.verdict.record_id})")
            else:
                why = r.error or (r.verdict.findings[0] if r.verdict.findings else "")
                click.echo(f"NO MATCH {printable(r.suspect)}" + (f": {printable(why)}" if why else ""))
        if report_path is not None:
            click.echo(f"evidence report: {printable(report_path)} (and {printable(report_path.with_suffix('.json'))})")
    sys.exit(EXIT_OK if all(r.verdict.verdict == "match" for r in results) else EXIT_SOME_FAILED)


# --- prove ------------------------------------------------------------------------------------------------------

@cli.command()
@click.argument("target")
@ledger_option
@key_option
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The run's --archive folder: the kit then holds the original, byte for byte.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Kit folder (a .zip of it goes beside it). Default: ./priority-kit-<sku>-<record id>.")
@click.option("--seen", default=None, metavar="DATE",
              help="When the copy was found (YYYY-MM-DD or ISO time); default: a found copy's file time.")
@click.option("--seq", type=int, default=None, help="The record at this seq (default: see `ledger proof`).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Owner profile, for tracing a found copy's visible mark exactly. Optional.")
@click.option("--force", is_flag=True, help="Replace an existing kit folder and zip.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def prove(target: str, ledger_path: Path | None, key_file: Path | None, archive: Path | None, out_dir: Path | None,
          seen: str | None, seq: int | None, config_path: Path | None, force: bool, as_json: bool) -> None:
    """Write a priority kit for TARGET (our export, a found copy that trace matches, or a record id): a folder
    and a zip that anyone checks with sha256sum, openssl and python3 (VERIFY.md inside)."""
    from pipeline import keys, priority
    from pipeline import prove as prove_mod

    key = keys.load_key(key_file)
    owner = _optional_owner(config_path)
    seen_at = None if seen is None else priority.parse_seen(seen)
    with _open_existing_ledger(ledger_path) as led:
        tgt = prove_mod.resolve_target(led, target, key=key, owner=owner, seq=seq)
        out = out_dir or Path(prove_mod.default_kit_name(tgt))
        kit = prove_mod.build_kit(led, tgt, public_key=key.public, out=out, archive=archive, seen=seen_at,
                                  force=force)
    ok = kit.proof.verifies and all(s.verifies for s in kit.stamps)
    if kit.original is None:  # stderr, also with --json
        click.echo(f"catalogmark: warning: the original is {printable(kit.original_note)}", err=True)
    if as_json:
        _emit_json(kit.as_json())
        sys.exit(EXIT_OK if ok else EXIT_SOME_FAILED)
    rec = tgt.record.record
    click.echo(f"kit:       {printable(kit.folder)}/ and {printable(kit.zip_path)}")
    click.echo(f"record:    {printable(rec.record_id)} (seq {tgt.record.seq}, run {tgt.record.run_id}): "
               f"{printable(tgt.how)}")
    click.echo(f"original:  {printable(kit.original or kit.original_note)}")
    click.echo(f"export:    {printable(kit.export or kit.export_note)}")
    for s in kit.stamps:
        click.echo(f"timestamp: {s.gen_time} by {printable(s.authority)} ({'verified' if s.verifies else 'DOES NOT VERIFY'})")
    if not kit.stamps:
        click.echo("timestamp: none (the run has no RFC 3161 token: catalogmark ledger timestamp)")
    click.echo(f"priority:  {printable(priority.priority_sentence(kit.priority))}")
    sys.exit(EXIT_OK if ok else EXIT_SOME_FAILED)


# --- presets ----------------------------------------------------------------------------------------------------

@cli.group(cls=_Group)
def presets() -> None:
    """List and show storefront presets."""


@presets.command("list")
@click.option("--json", "as_json", is_flag=True)
def presets_list(as_json: bool) -> None:
    """List the built-in presets."""
    from pipeline import presets as presets_mod

    items = presets_mod.list_presets()
    if as_json:
        _emit_json([presets_mod.preset_as_dict(p) for p in items])
        return
    width = max(len(p.name) for p in items)
    for p in items:
        click.echo(f"{p.name:<{width}}  {p.description}")


@presets.command("show")
@click.argument("name", shell_complete=_complete_preset)
@click.option("--json", "as_json", is_flag=True)
def presets_show(name: str, as_json: bool) -> None:
    """Show one preset (built-in name or TOML file), fully resolved, with the sources of its numbers."""
    from pipeline import presets as presets_mod

    preset = presets_mod.load_preset(name)
    if as_json:
        _emit_json(presets_mod.preset_as_dict(preset))
    else:
        click.echo(presets_mod.describe_preset(preset))


# --- ledger -----------------------------------------------------------------------------------------------------

@cli.group(cls=_Group)
def ledger() -> None:
    """Verify, prove, timestamp, export and summarise the ledger."""


@ledger.command("verify")
@ledger_option
@click.option("--ca-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Check timestamp tokens against this PEM file of TSA CA certificates (one you trust on your "
                   "own, e.g. downloaded from the TSA) instead of the CA certificates kept with each token.")
@click.option("--json", "as_json", is_flag=True)
def ledger_verify(ledger_path: Path | None, ca_file: Path | None, as_json: bool) -> None:
    """Recompute the hash chain and every run's Merkle root, re-check every timestamp token; exit 1 on any edit,
    deletion or reordering, or a token that does not verify."""
    trusted = None
    if ca_file is not None:
        from pipeline.config import read_ca_file

        trusted = read_ca_file(ca_file, "--ca-file")
    with _open_existing_ledger(ledger_path) as led:
        report = led.verify(trusted_ca_pem=trusted)
    if as_json:
        _emit_json({"ok": report.ok, "records": report.records, "runs": report.runs,
                    "timestamps": report.timestamps, "problems": report.problems})
    else:
        status = "OK" if report.ok else "FAILED"
        click.echo(f"ledger {status}: {report.records} records in {report.runs} runs, "
                   f"{report.timestamps} timestamp tokens")
        for problem in report.problems:
            click.echo(f"  {printable(problem)}")
    sys.exit(EXIT_OK if report.ok else EXIT_SOME_FAILED)


@ledger.command("proof")
@click.argument("record_id")
@ledger_option
@click.option("--seq", type=int, default=None,
              help="The record at this seq (a record_id recurs across reruns; default: its newest record).")
@click.option("--json", "as_json", is_flag=True)
def ledger_proof(record_id: str, ledger_path: Path | None, seq: int | None, as_json: bool) -> None:
    """Print RECORD_ID's Merkle inclusion proof (RFC 6962 audit path) to its run's root; exit 1 if it fails."""
    with _open_existing_ledger(ledger_path) as led:
        proof = led.inclusion_proof(record_id, seq=seq)
        tokens = led.timestamps(proof.run_id)
    checks = []
    if tokens:
        from pipeline.timestamp import check_token

        checks = [(t, check_token(t.token, proof.root, t.ca_pem)) for t in tokens]
    if as_json:
        _emit_json(proof.as_json() | {"timestamps": [
            {"tsa_url": t.tsa_url, "gen_time": c.gen_time or t.gen_time, "tsa_name": c.tsa_name,
             "verifies": c.ok, "problem": c.problem or None} for t, c in checks]})
    else:
        click.echo(f"record:      {printable(proof.record_id)} (seq {proof.seq}, run {proof.run_id})")
        click.echo(f"record hash: {proof.record_hash}")
        click.echo(f"leaf index:  {proof.leaf_index} of {proof.tree_size}")
        click.echo("audit path:  " + ("(none: the record is the only leaf)" if not proof.audit_path
                                      else "\n             ".join(proof.audit_path)))
        click.echo(f"root:        {proof.root}")
        click.echo(f"verifies:    {'yes' if proof.verifies else 'NO'}")
        for t, c in checks:
            state = "verified" if c.ok else f"DOES NOT VERIFY: {c.problem}"
            click.echo(f"timestamp:   {c.gen_time or t.gen_time} by {printable(t.tsa_url)} ({printable(state)})")
        if not checks:
            click.echo("timestamp:   none (catalogmark ledger timestamp)")
    sys.exit(EXIT_OK if proof.verifies else EXIT_SOME_FAILED)


@ledger.command("timestamp")
@ledger_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Owner profile with the [timestamp] table (default: ./catalogmark.toml or pyproject.toml).")
@click.option("--tsa", "tsa_urls", multiple=True, metavar="URL",
              help="RFC 3161 TSA URL (repeat for several); replaces the profile's [timestamp] tsa.")
@click.option("--ca-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PEM file of the TSAs' CA certificates; replaces the profile's [timestamp] ca_file.")
@click.option("--json", "as_json", is_flag=True)
def ledger_timestamp(ledger_path: Path | None, config_path: Path | None, tsa_urls: tuple[str, ...],
                     ca_file: Path | None, as_json: bool) -> None:
    """Timestamp every sealed run that lacks a token from a configured TSA (runs made offline, or while a
    TSA was down). Exit 0 when every sealed run has a token from every TSA, 1 if a TSA failed (what it did
    stamp is kept), 2 if no TSA is configured."""
    from pipeline import config, timestamp

    stamping = config.load_timestamp(config_path, tsa=tsa_urls, ca_file=ca_file)
    if not stamping.tsa:
        raise ConfigError("no TSA configured: add [timestamp] tsa = [\"https://...\"] and ca_file = \"...\" to "
                          "the owner profile, or pass --tsa URL --ca-file FILE")
    with _open_existing_ledger(ledger_path) as led:
        report = timestamp.stamp_runs(led, stamping)
    for f in report.failures:
        click.echo(f"catalogmark: error: {printable(f.message)}; {len(f.run_ids)} runs left without its token",
                   err=True)
    if as_json:
        _emit_json(report.as_json())
    else:
        for t in report.stamped:
            click.echo(f"stamped run {t.run_id}: {t.gen_time} by {printable(t.tsa_url)}")
        click.echo(f"{len(report.stamped)} tokens stored in {report.seconds:.2f}s"
                   + ("" if report.ok else f", {len(report.failures)} TSAs failed"))
    sys.exit(EXIT_OK if report.ok else EXIT_SOME_FAILED)


@ledger.command("export")
@ledger_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write JSON Lines here instead of stdout.")
def ledger_export(ledger_path: Path | None, output: Path | None) -> None:
    """Write every record (and run) as JSON Lines."""
    with _open_existing_ledger(ledger_path) as led:
        if output is None:
            count = led.export_jsonl(sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as fh:
                count = led.export_jsonl(fh)
    click.echo(f"exported {count} lines", err=True)


@ledger.command("stats")
@ledger_option
@click.option("--json", "as_json", is_flag=True)
def ledger_stats(ledger_path: Path | None, as_json: bool) -> None:
    """Summarise the ledger."""
    with _open_existing_ledger(ledger_path) as led:
        stats = led.stats()
    if as_json:
        _emit_json(stats)
        return
    for k, v in stats.items():
        click.echo(f"{k}: {printable(json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v)}")


cli.add_command(sweep)  # sweep and cases live in cli_sweep.py
cli.add_command(cases)


def main() -> None:
    cli(prog_name="catalogmark")


if __name__ == "__main__":  # pragma: no cover
    main()
