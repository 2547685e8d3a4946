"""The one exception hierarchy for run-level problems (per-image problems are data, not exceptions)."""

from __future__ import annotations


class CatalogmarkError(Exception):
    """Base of every run-level error; the CLI turns it into a message and an exit code."""

    exit_code = 2


class ConfigError(CatalogmarkError):
    """A configuration file (owner profile, preset, catalog.csv) is missing or invalid."""


class PresetError(ConfigError):
    """A preset file is unknown, unreadable or fails schema validation."""


class KeyFileError(CatalogmarkError):
    """The owner key is missing, unreadable, has unsafe permissions or is malformed."""


class LedgerError(CatalogmarkError):
    """The ledger cannot be opened, migrated or written."""


class InputError(CatalogmarkError):
    """A command-line input (source folder, suspect file) does not exist or cannot be used."""


class ImageError(Exception):
    """A per-image failure inside a stage; the runner records it as data and the run goes on.

    Not a CatalogmarkError on purpose: it never escapes a run.
    """

    def __init__(self, message: str, stage: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage
