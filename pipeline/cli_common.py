"""What every command of the command line shares: the ledger and key options, error handling, JSON output."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from click.shell_completion import CompletionItem

from pipeline.errors import CatalogmarkError, ConfigError
from pipeline.progress import printable

EXIT_OK, EXIT_SOME_FAILED = 0, 1  # a usage error exits 2 (click); a CatalogmarkError exits with its exit_code
ENV_LEDGER = "CATALOGMARK_LEDGER"


def default_ledger_path() -> Path:
    """``$CATALOGMARK_LEDGER``, else ``$XDG_DATA_HOME/catalogmark/ledger.sqlite``."""
    env = os.environ.get(ENV_LEDGER)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "catalogmark" / "ledger.sqlite"


def _fail(exc: CatalogmarkError) -> NoReturn:
    click.echo(f"catalogmark: error: {printable(exc)}", err=True)
    if exc.detail:  # catalogmark's own help text (errors.CatalogmarkError): its lines are kept
        click.echo(exc.detail, err=True)
    sys.exit(exc.exit_code)


def _emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


class _Group(click.Group):
    """Turns every run-level library error into a one-line message and its exit code (never a traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CatalogmarkError as exc:
            _fail(exc)
        except BrokenPipeError:  # e.g. `catalogmark ledger export | head`
            sys.stderr.close()
            sys.exit(EXIT_OK)
        except OSError as exc:  # a file the command writes or reads outside the library's checks (disk full,
            # read-only folder, a path that is a folder): one line naming it, not a traceback
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"catalogmark: error: {printable(where + (exc.strerror or str(exc)))}", err=True)
            sys.exit(CatalogmarkError.exit_code)
        except KeyboardInterrupt:  # Ctrl-C: the shell's 128 + SIGINT, not click's "Aborted!" exit 1, which
            # sweep and verify use for "found something"
            click.echo("catalogmark: interrupted", err=True)
            sys.exit(130)


ledger_option = click.option(
    "--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help=f"Ledger file (SQLite). Default: ${ENV_LEDGER} or $XDG_DATA_HOME/catalogmark/ledger.sqlite.",
)
key_option = click.option(
    "--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Owner key file. Default: $CATALOGMARK_KEY_FILE or $XDG_CONFIG_HOME/catalogmark/owner.key.",
)


def _complete_preset(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Shell completion of a preset: the built-in names (file names only: nothing is parsed), or a TOML path."""
    from pipeline.presets import builtin_presets_dir

    if "/" in incomplete or incomplete.startswith(".") or incomplete.endswith(".toml"):
        return [CompletionItem(incomplete, type="file")]
    try:
        names = sorted(p.stem for p in builtin_presets_dir().glob("*.toml"))
    except OSError:
        names = []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def _optional_owner(config_path: Path | None) -> Any:
    """The owner profile if one is found (trace and prove re-render visible marks with it); an explicit --config
    that is wrong is an error, no profile at all is not."""
    from pipeline import config

    try:
        return config.load_owner(config_path)
    except ConfigError:
        if config_path is not None:
            raise
        return None


def _open_existing_ledger(ledger_path: Path | None) -> Any:
    from pipeline.errors import LedgerError
    from pipeline.ledger import Ledger

    path = ledger_path or default_ledger_path()
    if not path.exists():
        raise LedgerError(f"no ledger at {path} (run `catalogmark run ... --ledger {path}` first, or pass --ledger)")
    return Ledger.open(path)
