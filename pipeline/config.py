"""Owner profile: find and read catalogmark.toml / [tool.catalogmark] / --config, apply flag overrides."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from PIL import Image, UnidentifiedImageError

from pipeline.errors import ConfigError
from pipeline.models import Owner
from pipeline.timefmt import source_timestamp

CONFIG_NAME = "catalogmark.toml"
PYPROJECT = "pyproject.toml"
OVERRIDE_KEYS = ("name", "copyright", "url", "watermark_text", "watermark_logo")
#: Allowed tables and keys of the owner profile.
SCHEMA: dict[str, tuple[str, ...]] = {"owner": ("name", "copyright", "url"), "watermark": ("text", "logo")}

EXAMPLE = f"""Create {CONFIG_NAME} in the working directory (or pass --config FILE), for example:

    [owner]
    name = "Example Studio"
    copyright = "(c) 2026 Example Studio. All rights reserved."   # optional
    url = "https://example.com/licensing"                           # optional

    [watermark]
    text = "example.studio"   # and/or logo = "logo.png" (relative to the config file)

or put the same tables under [tool.catalogmark.owner] / [tool.catalogmark.watermark] in pyproject.toml,
or give the owner's name on the command line."""


def find_config(config: Path | None = None, cwd: Path | None = None) -> Path | None:
    """The owner-profile file to use: ``config`` if given (must exist), else ``catalogmark.toml`` in cwd,
    else ``pyproject.toml`` in cwd if it has a ``[tool.catalogmark]`` table; None if there is none."""
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"{config}: config file not found")
        return config
    here = cwd if cwd is not None else Path.cwd()
    candidate = here / CONFIG_NAME
    if candidate.is_file():
        return candidate
    pyproject = here / PYPROJECT
    if pyproject.is_file():
        data = _read_toml(pyproject)
        tool = data.get("tool")
        if isinstance(tool, dict) and "catalogmark" in tool:
            return pyproject
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None


def _profile_tables(path: Path) -> tuple[dict[str, Any], str]:
    """The owner-profile tables of a file and the prefix its keys are shown with in messages."""
    data = _read_toml(path)
    if path.name == PYPROJECT:
        tool = data.get("tool", {})
        section = tool.get("catalogmark") if isinstance(tool, dict) else None
        if section is None:
            raise ConfigError(f"{path}: no [tool.catalogmark] table")
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [tool.catalogmark]: expected a table")
        return section, "tool.catalogmark."
    return data, ""


def _check(path: Path, tables: Mapping[str, Any], prefix: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for table, body in tables.items():
        if table not in SCHEMA:
            known = ", ".join(f"[{prefix}{t}]" for t in SCHEMA)
            raise ConfigError(f"{path}: [{prefix}{table}]: unknown table or key (known: {known})")
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [{prefix}{table}]: expected a table, got {body!r}")
        out[table] = {}
        for key, value in body.items():
            where = f"{path}: [{prefix}{table}] {key}"
            if key not in SCHEMA[table]:
                raise ConfigError(f"{where}: unknown key (known: {', '.join(SCHEMA[table])})")
            if not isinstance(value, str):
                raise ConfigError(f"{where}: expected a string, got {value!r}")
            out[table][key] = value
    return out


def _check_url(url: str, where: str) -> str:
    parsed = urlparse(url)
    if url and (parsed.scheme not in ("http", "https") or not parsed.netloc):
        raise ConfigError(f"{where}: expected an http(s) URL, got {url!r}")
    return url


def _check_logo(logo: Path, where: str) -> str:
    if not logo.is_file():
        raise ConfigError(f"{where}: logo file not found: {logo}")
    try:
        with Image.open(logo) as im:
            im.verify()  # reads the whole file and checks it (Pillow), without decoding pixels twice
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ConfigError(f"{where}: not a readable image: {logo} ({exc})") from None
    return str(logo.resolve())


def _current_year() -> int:
    """The year for the default copyright: from SOURCE_DATE_EPOCH when set (reproducible builds)."""
    return source_timestamp().year


def load_owner(
    config: Path | None = None, *, cwd: Path | None = None, overrides: Mapping[str, str | None] = {}  # noqa: B006
) -> Owner:
    """The owner profile: ``config`` (--config), else catalogmark.toml, else [tool.catalogmark] in pyproject.toml,
    all in ``cwd``; then non-None ``overrides`` (keys: name, copyright, url, watermark_text, watermark_logo).

    Logos in a file are relative to that file; a logo given as an override is relative to ``cwd``.
    Raises ConfigError naming the file and key for anything invalid, or with an example if no owner is known.
    """
    unknown = set(overrides) - set(OVERRIDE_KEYS)
    if unknown:
        raise ConfigError(f"unknown owner override(s): {', '.join(sorted(unknown))} (known: {', '.join(OVERRIDE_KEYS)})")
    here = cwd if cwd is not None else Path.cwd()
    path = find_config(config, here)
    values: dict[str, str] = {}
    logo: str | None = None
    prefix = ""
    if path is not None:
        tables, prefix = _profile_tables(path)
        checked = _check(path, tables, prefix)
        owner_t, wm_t = checked.get("owner", {}), checked.get("watermark", {})
        values.update(owner_t)
        if "text" in wm_t:
            values["watermark_text"] = wm_t["text"]
        if "url" in values:
            _check_url(values["url"], f"{path}: [{prefix}owner] url")
        if wm_t.get("logo"):
            logo = _check_logo(path.parent / wm_t["logo"], f"{path}: [{prefix}watermark] logo")
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "watermark_logo":
            logo = _check_logo(here / value, "--watermark-logo") if value else None
        else:
            values[key] = value
    if "url" in overrides and overrides["url"] is not None:
        _check_url(values["url"], "--url")
    name = values.get("name", "").strip()
    if not name:
        where = f"{path}: [{prefix}owner] name is missing or empty. " if path is not None else "No owner profile found. "
        raise ConfigError(where + EXAMPLE)
    copyright_ = values.get("copyright") or f"(c) {_current_year()} {name}. All rights reserved."
    text = values.get("watermark_text", "")
    if not text and logo is None:
        text = name  # a visible mark needs something to draw: the owner's name is the natural default
    return Owner(name=name, copyright=copyright_, url=values.get("url", ""), watermark_text=text, watermark_logo=logo)
