"""The one exception hierarchy for run-level problems (per-image problems are data, not exceptions)."""

from __future__ import annotations


class CatalogmarkError(Exception):
    """Base of every run-level error; the CLI turns it into a message and an exit code.

    ``detail``: help text of catalogmark's own (never anything from a file or the command line), printed by the
    CLI as it is, lines and all, after the message (which is escaped to one line: it may name files)."""

    exit_code = 2

    def __init__(self, *args: object, detail: str | None = None) -> None:
        super().__init__(*args)
        self.detail = detail


class ConfigError(CatalogmarkError):
    """A configuration file (owner profile, preset, catalog.csv) is missing or invalid."""


class PresetError(ConfigError):
    """A preset file is unknown, unreadable or fails schema validation."""


class KeyFileError(CatalogmarkError):
    """The owner key is missing, unreadable, has unsafe permissions or is malformed."""


class LedgerError(CatalogmarkError):
    """The ledger cannot be opened, migrated or written."""


class TimestampError(CatalogmarkError):
    """A Time Stamping Authority is unreachable, too slow, refused, or answered something that is not a valid
    token for the hash sent. Nothing is lost: the run stays sealed and `catalogmark ledger timestamp` retries."""

    exit_code = 1


class InputError(CatalogmarkError):
    """A command-line input (source folder, suspect file) does not exist or cannot be used."""


class ImageError(Exception):
    """A per-image failure inside a stage; the runner records it as data and the run goes on.

    Not a CatalogmarkError on purpose: it never escapes a run.
    """

    def __init__(self, message: str, stage: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage


class RunInterrupted(CatalogmarkError):
    """A run stopped by SIGINT or SIGTERM after sealing what it had done; exits 128 + the signal number
    (130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed by that signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class BackendError(CatalogmarkError):
    """The parallel backend failed as a whole (the dask scheduler lost, workers that cannot run catalogmark): the
    run seals what came back as 'interrupted' and stops."""


class RunLockedError(CatalogmarkError):
    """Another run holds the ledger or the output folder (pipeline/lock.py)."""
