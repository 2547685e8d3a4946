"""Owner profile: find and read catalogmark.toml / [tool.catalogmark] / --config, apply flag overrides."""

from __future__ import annotations

import tomllib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from PIL import Image, UnidentifiedImageError

from pipeline.errors import ConfigError
from pipeline.marks import fonts
from pipeline.marks.logo import logo_too_large
from pipeline.models import Owner
from pipeline.presets import KEEP_FIELDS, keep_problem
from pipeline.progress import printable
from pipeline.sweep.models import ComplaintProfile
from pipeline.timefmt import source_timestamp

CONFIG_NAME = "catalogmark.toml"
PYPROJECT = "pyproject.toml"
OVERRIDE_KEYS = ("name", "copyright", "url", "watermark_text", "watermark_logo", "watermark_font")
#: Allowed tables and keys of the owner profile.
SCHEMA: dict[str, tuple[str, ...]] = {"owner": ("name", "copyright", "url"), "watermark": ("text", "logo", "font")}
#: The trusted-timestamp table: TSA URLs, the CA file their tokens are checked against, a timeout in seconds.
TIMESTAMP_TABLE = "timestamp"
TIMESTAMP_KEYS = ("tsa", "ca_file", "timeout")
DEFAULT_TSA_TIMEOUT = 10.0
#: The complainant's details for complaint drafts (models.ComplaintProfile's fields): load_complaints() reads it.
COMPLAINTS_TABLE = "complaints"
COMPLAINTS_KEYS = tuple(f.name for f in fields(ComplaintProfile))
ACTING_AS = ("owner", "agent")
#: What of the photographer's own metadata every export keeps (``keep = [...]``, names from presets.KEEP_FIELDS),
#: added to each preset's own ``[metadata] keep``; load_owner reads it into ``Owner.keep_metadata``.
METADATA_TABLE = "metadata"
METADATA_KEYS = ("keep",)
#: Tables of the profile that load_owner leaves to their own loaders.
OTHER_TABLES = (TIMESTAMP_TABLE, COMPLAINTS_TABLE)

EXAMPLE = f"""Create {CONFIG_NAME} in the working directory (or pass --config FILE), for example:

    [owner]
    name = "Example Studio"
    copyright = "(c) 2026 Example Studio. All rights reserved."   # optional
    url = "https://example.com/licensing"                           # optional

    [watermark]
    text = "example.studio"   # and/or logo = "logo.png" (relative to the config file)

or put the same tables under [tool.catalogmark.owner] / [tool.catalogmark.watermark] in pyproject.toml,
or give the owner's name on the command line."""


@dataclass(frozen=True)
class TimestampConfig:
    """Where to get RFC 3161 timestamps of each run's Merkle root: ``[timestamp]`` of the owner profile.

    No TSA (the default) means runs are sealed without a token, and nothing touches the network.
    """

    tsa: tuple[str, ...] = ()
    ca_file: str | None = None  # absolute path of the PEM file with the TSAs' CA certificates
    ca_pem: str = ""  # its contents, kept with every token
    timeout: float = DEFAULT_TSA_TIMEOUT  # seconds per request


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
        if table in OTHER_TABLES:
            continue  # not part of the owner profile: load_timestamp() / load_complaints() read and check them
        if table == METADATA_TABLE:
            continue  # not strings: _keep() reads and checks it
        if table not in SCHEMA:
            known = ", ".join(f"[{prefix}{t}]" for t in (*SCHEMA, METADATA_TABLE, *OTHER_TABLES))
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


def _check_table(where: str, body: Any, known: Sequence[str]) -> dict[str, Any]:
    """``body`` as a table whose keys are all in ``known``; ConfigError at ``where`` (the file and table) if not."""
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: expected a table, got {body!r}")
    for key in body:
        if key not in known:
            raise ConfigError(f"{where} {key}: unknown key (known: {', '.join(known)})")
    return body


def _keep(path: Path, body: Any, prefix: str) -> tuple[str, ...]:
    """The profile's ``[metadata] keep`` list (in KEEP_FIELDS order, once each); ConfigError naming the file and
    the bad name or key."""
    where = f"{path}: [{prefix}{METADATA_TABLE}]"
    body = _check_table(where, body, METADATA_KEYS)
    names = body.get("keep", [])
    if not isinstance(names, list):
        raise ConfigError(f"{where} keep: expected a list of names ({', '.join(KEEP_FIELDS)}), got {names!r}")
    problem = keep_problem(names)
    if problem:
        raise ConfigError(f"{where} keep: {problem}")
    return tuple(n for n in KEEP_FIELDS if n in names)


def _check_url(url: str, where: str) -> str:
    parsed = urlparse(url)
    if url and (parsed.scheme not in ("http", "https") or not parsed.netloc):
        raise ConfigError(f"{where}: expected an http(s) URL, got {url!r}")
    return url


def _check_logo(logo: Path, where: str) -> str:
    if not logo.is_file():
        raise ConfigError(f"{where}: logo file not found: {logo}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # logo_too_large is the check
            with Image.open(logo) as im:
                too_large = logo_too_large(im.size)
                if too_large:
                    raise ConfigError(f"{where}: {logo}: the logo is {too_large}")
                im.verify()  # reads the whole file and checks it (Pillow), without decoding pixels twice
    except Image.DecompressionBombError as exc:
        raise ConfigError(f"{where}: {logo}: the logo is a decompression bomb ({exc})") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ConfigError(f"{where}: not a readable image: {logo} ({exc})") from None
    return str(logo.resolve())


def _check_font(font: Path, where: str) -> str:
    if not font.is_file():
        raise ConfigError(f"{where}: font file not found: {font}")
    try:
        fonts.check(str(font))
    except ValueError as exc:
        raise ConfigError(f"{where}: {font}: {exc}") from None
    return str(font.resolve())


def _check_glyphs(text: str, font: str | None, where: str) -> None:
    missing = fonts.missing_glyphs(text, font)
    if missing:
        shown = " ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:12]) + (" ..." if len(missing) > 12 else "")
        name = fonts.DEFAULT_FONT if font is None else font
        raise ConfigError(f"{where}: the watermark font ({name}) has no glyph for {shown}; name a font that "
                          "has them: [watermark] font = \"...\" in the profile or --watermark-font FILE")


def _current_year() -> int:
    """The year for the default copyright: from SOURCE_DATE_EPOCH when set (reproducible builds)."""
    return source_timestamp().year


def load_owner(
    config: Path | None = None, *, cwd: Path | None = None, overrides: Mapping[str, str | None] = {}  # noqa: B006
) -> Owner:
    """The owner profile: ``config`` (--config), else catalogmark.toml, else [tool.catalogmark] in pyproject.toml,
    all in ``cwd`` (``[metadata] keep`` becomes ``Owner.keep_metadata``); then non-None ``overrides`` (keys: name,
    copyright, url, watermark_text, watermark_logo, watermark_font).

    Logos and fonts in a file are relative to that file; given as an override, relative to ``cwd``. The mark's text
    (the watermark text, else the owner's name) must be drawable with the font (ConfigError naming what is not).
    Raises ConfigError naming the file and key for anything invalid, or with an example if no owner is known.
    """
    unknown = set(overrides) - set(OVERRIDE_KEYS)
    if unknown:
        raise ConfigError(f"unknown owner override(s): {', '.join(sorted(unknown))} (known: {', '.join(OVERRIDE_KEYS)})")
    here = cwd if cwd is not None else Path.cwd()
    path = find_config(config, here)
    values: dict[str, str] = {}
    logo: str | None = None
    font: str | None = None
    font_where = "the watermark text"
    prefix = ""
    keep: tuple[str, ...] = ()
    if path is not None:
        tables, prefix = _profile_tables(path)
        checked = _check(path, tables, prefix)
        if METADATA_TABLE in tables:
            keep = _keep(path, tables[METADATA_TABLE], prefix)
        owner_t, wm_t = checked.get("owner", {}), checked.get("watermark", {})
        values.update(owner_t)
        if "text" in wm_t:
            values["watermark_text"] = wm_t["text"]
        if "url" in values:
            _check_url(values["url"], f"{path}: [{prefix}owner] url")
        if wm_t.get("logo"):
            logo = _check_logo(path.parent / wm_t["logo"], f"{path}: [{prefix}watermark] logo")
        if wm_t.get("font"):
            font = _check_font(path.parent / wm_t["font"], f"{path}: [{prefix}watermark] font")
        font_where = f"{path}: [{prefix}watermark]"
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "watermark_logo":
            logo = _check_logo(here / value, "--watermark-logo") if value else None
        elif key == "watermark_font":
            font = _check_font(here / value, "--watermark-font") if value else None
            font_where = "--watermark-font"
        else:
            values[key] = value
    if "url" in overrides and overrides["url"] is not None:
        _check_url(values["url"], "--url")
    name = values.get("name", "").strip()
    if not name:
        where = f"{path}: [{prefix}owner] name is missing or empty." if path is not None else "No owner profile found."
        raise ConfigError(where, detail=EXAMPLE)
    copyright_ = values.get("copyright") or f"(c) {_current_year()} {name}. All rights reserved."
    text = values.get("watermark_text", "")
    if not text and logo is None:
        text = name  # a visible mark needs something to draw: the owner's name is the natural default
    _check_glyphs(text.strip(), font, font_where)
    return Owner(name=name, copyright=copyright_, url=values.get("url", ""), watermark_text=text, watermark_logo=logo,
                 watermark_font=font, keep_metadata=keep)


def load_timestamp(config: Path | None = None, *, cwd: Path | None = None, tsa: Sequence[str] = (),
                   ca_file: Path | None = None) -> TimestampConfig:
    """The ``[timestamp]`` table of the owner profile found as :func:`load_owner` finds it, with ``tsa`` /
    ``ca_file`` (command-line flags, ``ca_file`` relative to ``cwd``) replacing the file's values if given.

    ``tsa = ["https://..."]`` (a list of http(s) URLs), ``ca_file = "tsa-ca.pem"`` (relative to the config
    file; PEM certificates; required with a TSA), ``timeout = 10`` (seconds). No table: no TSA.
    """
    here = cwd if cwd is not None else Path.cwd()
    path = find_config(config, here)
    body: Any = {}
    prefix = ""
    if path is not None:
        tables, prefix = _profile_tables(path)
        body = tables.get(TIMESTAMP_TABLE, {})
    where = f"{path}: [{prefix}{TIMESTAMP_TABLE}]"
    body = _check_table(where, body, TIMESTAMP_KEYS)
    urls: list[str] = []
    raw_urls = body.get("tsa", [])
    if isinstance(raw_urls, str):
        raw_urls = [raw_urls]
    if not isinstance(raw_urls, list) or not all(isinstance(u, str) for u in raw_urls):
        raise ConfigError(f"{where} tsa: expected a list of URLs, got {raw_urls!r}")
    urls = [_check_url(u, f"{where} tsa") for u in raw_urls if u]
    ca: Path | None = None
    if isinstance(body.get("ca_file"), str) and body["ca_file"] and path is not None:
        ca = path.parent / body["ca_file"]
    elif "ca_file" in body and not isinstance(body["ca_file"], str):
        raise ConfigError(f"{where} ca_file: expected a file name, got {body['ca_file']!r}")
    ca_where = f"{where} ca_file"
    if tsa:
        urls = [_check_url(u, "--tsa") for u in tsa]
    if ca_file is not None:
        ca, ca_where = here / ca_file, "--ca-file"
    timeout = body.get("timeout", DEFAULT_TSA_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise ConfigError(f"{where} timeout: expected seconds between 0 and 600, got {timeout!r}")
    if not urls:
        return TimestampConfig(timeout=float(timeout))
    if ca is None:
        raise ConfigError(f"{where}: a TSA is named but no ca_file: the tokens cannot be checked without the "
                          f"TSA's CA certificates (PEM), e.g. ca_file = \"tsa-ca.pem\"")
    return TimestampConfig(tsa=tuple(dict.fromkeys(urls)), ca_file=str(ca.resolve()),
                           ca_pem=read_ca_file(ca, ca_where), timeout=float(timeout))


def load_complaints(config: Path | None = None, *, cwd: Path | None = None) -> ComplaintProfile:
    """The ``[complaints]`` table of the owner profile found as :func:`load_owner` finds it (in pyproject.toml:
    ``[tool.catalogmark.complaints]``): the complainant's details for complaint drafts. No file or no table: an
    empty profile (every draft then names the fields still to fill in).

    Keys: ``signer``, ``email``, ``phone``, ``address`` (may span lines), ``company``, ``acting_as`` ("owner" or
    "agent"), ``copyright_registration``, ``aliexpress_ipr_id``, ``ebay_vero_id`` (strings) and ``own_listings``
    (a list of the owner's own listing URLs / item numbers, earliest first). Raises ConfigError naming the file,
    table and key for an unknown key, a value of the wrong type, an email without an @, or a control character
    (a line break anywhere but in ``address``).
    """
    here = cwd if cwd is not None else Path.cwd()
    path = find_config(config, here)
    if path is None:
        return ComplaintProfile()
    tables, prefix = _profile_tables(path)
    body = tables.get(COMPLAINTS_TABLE, {})
    where = f"{path}: [{prefix}{COMPLAINTS_TABLE}]"
    body = _check_table(where, body, COMPLAINTS_KEYS)
    values: dict[str, Any] = {}
    for key, value in body.items():
        at = f"{where} {key}"
        if key == "own_listings":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise ConfigError(f"{at}: expected a list of listing URLs or item numbers, got {value!r}")
            for item in items:
                _check_line(item, at)
            values[key] = tuple(v.strip() for v in items if v.strip())
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{at}: expected a string, got {value!r}")
        if key == "address":
            for line in value.splitlines():
                _check_line(line, at)
            value = "\n".join(line.strip() for line in value.strip().splitlines() if line.strip())
        else:
            _check_line(value, at)
            value = value.strip()
        values[key] = value
    acting = values.get("acting_as", "owner")
    if acting not in ACTING_AS:
        raise ConfigError(f"{where} acting_as: expected \"owner\" or \"agent\", got {acting!r}")
    email = values.get("email", "")
    if email and ("@" not in email.strip("@") or any(c.isspace() for c in email)):
        raise ConfigError(f"{where} email: expected an email address (name@host), got {email!r}")
    return ComplaintProfile(**values)


def _check_line(value: str, where: str) -> None:
    """ConfigError if ``value`` is not one line of text: a control character, line break or bidi override (it
    goes on one line of a complaint; ``progress.printable`` would escape it)."""
    if printable(value) != value:
        raise ConfigError(f"{where}: expected one line of printable text, got {value!r}")


def read_ca_file(ca: Path, where: str) -> str:
    """The text of a PEM file of CA certificates; ConfigError (naming ``where``) if it holds none."""
    from cryptography import x509

    try:
        text = ca.read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {ca} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {ca} is not a PEM file") from None
    try:
        x509.load_pem_x509_certificates(text.encode("ascii"))
    except ValueError:
        raise ConfigError(f"{where}: {ca} holds no PEM certificates") from None
    return text
