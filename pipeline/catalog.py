"""Catalog discovery: which image files are in the input folders, and each one's SKU, role and position."""

from __future__ import annotations

import csv
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError, InputError

#: What counts as an image file in a source folder (and in a folder of suspects): what ingest decodes, camera RAW
#: included (a RAW file without the raw extra installed is a failure saying how to enable it, never left out).
#: Camera RAW suffixes (ingest tells the TIFF-structured RAW formats without a mark of their own from a TIFF by them)
RAW_SUFFIXES = frozenset({".dng", ".nef", ".nrw", ".cr2", ".cr3", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"})
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp", ".avif", ".heic", ".heif", ".hif",
     ".psd"}
) | RAW_SUFFIXES
CATALOG_CSV = "catalog.csv"
#: catalogmark's own files, left out of the report of ignored files (as are hidden files and folders, whose names
#: start with ".", e.g. the ``.part`` temp files and ``.catalogmark.lock``): a catalog.csv at the root of a SRC
#: folder and a run's manifest.json
_OWN_FILES = frozenset({CATALOG_CSV, "manifest.json"})


@dataclass(frozen=True)
class CatalogItem:
    source: str  # absolute path
    display: str  # the path as the user named it (SRC as given + relative path): recorded in the ledger
    sku: str
    role: str  # "main" | "gallery"
    position: int  # 0 for main, then 1.. for gallery images in name order
    problem: str | None = None  # why this image cannot be exported (e.g. its SKU is not a usable name): it fails alone


@dataclass(frozen=True)
class IgnoredFile:
    """A file under a SRC folder that is not an image: listed in the run summary (``ignored``) with the reason."""

    path: str  # the path as the user named it (SRC as given + relative path)
    reason: str


@dataclass(frozen=True)
class Discovery:
    items: list[CatalogItem]
    ignored: list[IgnoredFile]


def _natural_key(name: str) -> list[object]:
    # ``\d`` is exactly the Unicode decimal digits, which int() reads; "①" or "²" are digits to str.isdigit()
    # but not decimal, so they stay text (int() of them would raise)
    return [int(t) if t.isdecimal() else t.lower() for t in re.split(r"(\d+)", name)]


def _not_an_image(path: Path) -> str | None:
    """Why ``path`` (not hidden, not a directory) is not an image file to process, or None if it is one."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return f"broken symbolic link (to {_printable(os.readlink(path))})"
        return "vanished while the folder was read"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        return f"not a regular file: {kind}"
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return None
    return f"not an image ({f'suffix {_printable(suffix)}' if suffix else 'no file name suffix'} is not an " \
           "image type catalogmark reads)"


def is_image_file(path: Path) -> bool:
    """A file with an image suffix (:data:`IMAGE_SUFFIXES`, any case) whose name is not hidden."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _read_catalog_csv(root: Path) -> dict[str, tuple[str, str | None]]:
    """path (relative to root, posix) -> (sku, role or None)."""
    path = root / CATALOG_CSV
    overrides: dict[str, tuple[str, str | None]] = {}
    lines: dict[str, int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"path", "sku"} - set(reader.fieldnames or [])
            if missing:
                raise ConfigError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected path,sku[,role]")
            for line, row in enumerate(reader, start=2):
                rel = (row.get("path") or "").strip()
                sku = (row.get("sku") or "").strip()
                role = (row.get("role") or "").strip().lower() or None
                if not rel or not sku:
                    raise ConfigError(f"{path}:{line}: path and sku must not be empty")
                if role not in (None, "main", "gallery"):
                    raise ConfigError(f"{path}:{line}: role must be main or gallery, got {role!r}")
                _safe_sku(sku, f"{path}:{line}")
                key = _catalog_row_path(root, rel, f"{path}:{line}")
                if key in overrides:
                    raise ConfigError(f"{path}:{line}: {rel!r} is listed twice (line {lines[key]} too)")
                overrides[key] = (sku, role)
                lines[key] = line
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: malformed CSV ({exc})") from exc
    return overrides


def _catalog_row_path(root: Path, rel: str, where: str) -> str:
    """A catalog.csv row's path as scan() meets the file (relative to ``root``, normalised, posix), or ConfigError
    if scan() would never meet it: outside ``root``, hidden, missing, or not an image (a row that silently
    matched nothing would leave its photo under the folder's SKU without a word)."""
    norm = os.path.normpath(rel.replace("\\", "/"))
    if os.path.isabs(rel) or norm == ".." or norm.startswith("../"):
        raise ConfigError(f"{where}: {rel!r} is outside {root}: catalog.csv lists files under its own folder")
    if any(part.startswith(".") for part in Path(norm).parts):
        raise ConfigError(f"{where}: {rel!r} is a hidden file or in a hidden folder, which catalogmark never reads")
    target = root / norm
    if not target.is_file():
        raise ConfigError(f"{where}: no such file {rel!r} under {root}")
    if not is_image_file(target):
        raise ConfigError(f"{where}: {rel!r} is not an image file (expected one of "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    return Path(norm).as_posix()


def _printable(name: str) -> str:
    """File names that are not valid UTF-8 (undecodable bytes) get U+FFFD, so the ledger can store them."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _sku_problem(sku: str) -> str | None:
    """Why ``sku`` cannot be a SKU (it becomes part of output file names and of printed lines), or None."""
    if not sku or sku in {".", ".."} or "/" in sku or "\\" in sku:
        why = "a path separator or a relative folder name"
    elif sku != _printable(sku):  # undecodable bytes (surrogate escapes): U+FFFD would make names collide
        return (f"invalid SKU {_printable(sku)!r}: its name is not valid UTF-8 (shown with U+FFFD), which cannot "
                "be part of output file names or the ledger; rename it")
    elif any(unicodedata.category(c) == "Cc" for c in sku):
        why = "a control character (newline, tab, ...)"
    else:
        return None
    return f"invalid SKU {sku!r}: {why} cannot be part of output file names"


def _safe_sku(sku: str, where: str) -> str:
    """``sku`` itself, or ConfigError naming ``where`` (e.g. the catalog.csv line) and what is wrong with it."""
    problem = _sku_problem(sku)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    return sku


def discover(sources: list[str | Path]) -> list[CatalogItem]:
    """The images of :func:`scan` (what it ignored left out)."""
    return scan(sources).items


def scan(sources: list[str | Path]) -> Discovery:
    """Find images under each SRC (folder, recursively, or a single file) and assign SKU, role and position; also
    list every other file under a SRC folder, with why it is not an image (``ignored``), except hidden files and
    folders (names starting with ".") and catalogmark's own (catalog.csv, manifest.json).

    SKU = first-level folder name under SRC (or the file stem for loose files); the image named ``main.*`` of a
    SKU, else its first by name, is ``main``; the rest are ``gallery``. A ``catalog.csv`` (path, sku[, role]) at the
    root of a SRC folder overrides that for the files it lists (an invalid SKU there is a ConfigError). A folder or
    file name that cannot be a SKU makes each image of it an item with a ``problem``: it fails alone.
    """
    found: list[tuple[str, str, str, str | None]] = []  # (abs, display, sku, role override)
    ignored: list[IgnoredFile] = []
    for src in sources:
        src_path = Path(src)
        if not src_path.exists():
            raise InputError(f"{src}: no such file or directory")
        if src_path.is_file():
            if not is_image_file(src_path):
                raise InputError(f"{src}: not an image file (expected one of {', '.join(sorted(IMAGE_SUFFIXES))})")
            found.append((str(src_path.resolve()), _printable(str(src)), src_path.stem, None))
            continue
        overrides = _read_catalog_csv(src_path) if (src_path / CATALOG_CSV).is_file() else {}
        for path in sorted(src_path.rglob("*"), key=lambda p: _natural_key(p.relative_to(src_path).as_posix())):
            rel = path.relative_to(src_path)
            if any(part.startswith(".") for part in rel.parts):
                continue
            display = _printable(str(Path(src) / rel))
            if not is_image_file(path):
                why = None if path.name in _OWN_FILES else _not_an_image(path)
                if why is not None:
                    ignored.append(IgnoredFile(display, why))
                continue
            if rel.as_posix() in overrides:
                sku, role = overrides[rel.as_posix()]
            else:
                sku, role = (rel.parts[0] if len(rel.parts) > 1 else path.stem), None
            found.append((str(path.resolve()), display, sku, role))  # the SKU as named: see _sku_problem

    seen: set[str] = set()
    by_sku: dict[str, list[tuple[str, str, str | None]]] = {}
    for abs_path, display, sku, role in found:
        if abs_path in seen:
            continue
        seen.add(abs_path)
        by_sku.setdefault(sku, []).append((abs_path, display, role))

    items: list[CatalogItem] = []
    for raw_sku in sorted(by_sku, key=_natural_key):
        # grouped by the name as the file system has it: two folders whose names differ only in bytes that are
        # not UTF-8 are two SKUs (both failing, see _sku_problem), never one
        files = sorted(by_sku[raw_sku], key=lambda f: _natural_key(Path(f[1]).name))
        sku = _printable(raw_sku)
        forced = [f for f in files if f[2] == "main"]
        if len(forced) > 1:
            raise ConfigError(f"SKU {sku}: catalog.csv names {len(forced)} main images; at most one allowed")
        main = forced[0] if forced else next((f for f in files if Path(f[1]).stem.lower() == "main"), None)
        if main is None:
            main = next((f for f in files if f[2] != "gallery"), None)
        gallery = [f for f in files if f is not main]
        problem = _sku_problem(raw_sku)
        if main is not None:
            items.append(CatalogItem(main[0], main[1], sku, "main", 0, problem))
        for n, (abs_path, display, _role) in enumerate(gallery, start=1):
            items.append(CatalogItem(abs_path, display, sku, "gallery", n, problem))
    return Discovery(items, ignored)
