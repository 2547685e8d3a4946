"""Storefront presets: the schema (one field table), loading TOML files, `extends`, and validation.

The schema is the table ``PRESET_SCHEMA`` below: every setting's TOML key, check, default and meaning. Validation
of each file, the defaults, the required keys, building the dataclasses, ``preset_as_dict`` (and so the digest)
and ``describe_preset`` are all derived from it; the dataclasses give the same settings their Python types
(and take their defaults from the table; an import-time check keeps the two in step).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.resources
import json
import os
import re
import string
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pipeline.canonical import canonical_json
from pipeline.errors import PresetError

Fit = Literal["fit", "pad", "cover"]
Format = Literal["jpeg", "png", "webp"]

# --------------------------------------------------------------------------------------------------------------
# Constants of the schema

ROLES = ("main", "gallery")
FITS = ("fit", "pad", "cover")
FORMATS = ("jpeg", "png", "webp")
SUBSAMPLINGS = ("4:2:0", "4:2:2", "4:4:4")
COLOUR_SPACES = ("srgb",)
#: Fields a naming template may use, with the sample values used to check templates when a preset loads.
TEMPLATE_FIELDS: dict[str, object] = {
    "sku": "SKU123",
    "role": "gallery",
    "n": 1,
    "position": 1,
    "stem": "IMG_0001",
    "ext": "jpg",
    "preset": "preset",
}
#: File-name suffixes accepted for each format (the extension must match the real format, e.g. Google).
FORMAT_SUFFIXES = {"jpeg": (".jpg", ".jpeg"), "png": (".png",), "webp": (".webp",)}
#: What of the photographer's own metadata a preset (or the owner profile) may keep on its exports: ``[metadata]
#: keep``. ``location`` is the city, state, country and sublocation; ``ai_provenance`` the IPTC DigitalSourceType.
KEEP_FIELDS = ("keywords", "title", "caption", "location", "ai_provenance")
#: Names a keep list refuses with a reason of their own: never carried to an output, whoever asks.
NEVER_KEPT = {"gps": "private (the shooting location)", "serial": "private (the camera's identity)",
              "serials": "private (the camera's identity)", "thumbnail": "the unmarked original in miniature"}
MAX_CANVAS_SIDE = 20_000  # sanity bound: Amazon's own maximum is 10,000 px on the longest side
SCHEMA_VERSION = 1  # part of the digest: bump if the meaning of a field changes
PRESETS_DIR_ENV = "CATALOGMARK_PRESETS_DIR"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def builtin_presets_dir() -> Path:
    """The folder of the built-in presets.

    ``$CATALOGMARK_PRESETS_DIR`` if set; else, in an installed wheel, the package data ``pipeline/_presets``
    (the build maps the repository's top-level ``presets/`` there, see pyproject.toml); else, in a source
    checkout or an editable install, the top-level ``presets/`` beside the package.
    """
    env = os.environ.get(PRESETS_DIR_ENV)
    if env:
        return Path(env)
    packaged = importlib.resources.files("pipeline") / "_presets"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged.resolve()
    return Path(__file__).resolve().parent.parent / "presets"


# --------------------------------------------------------------------------------------------------------------
# Leaf checks: each returns the normalised value or raises _Bad(what was expected)


class _Bad(Exception):
    def __init__(self, expected: str, *, show_value: bool = True) -> None:
        super().__init__(expected)
        self.expected = expected
        self.show_value = show_value


def _show(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except TypeError:
        return repr(value)


Leaf = Callable[[Any], Any]


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return (isinstance(v, int | float)) and not isinstance(v, bool)


def _int(lo: int, hi: int | None, what: str) -> Leaf:
    def check(v: Any) -> int:
        if not _is_int(v) or v < lo or (hi is not None and v > hi):
            raise _Bad(f"expected {what}")
        return int(v)

    return check


def _num(lo: float, hi: float, what: str) -> Leaf:
    def check(v: Any) -> float:
        if not _is_num(v) or not lo <= v <= hi:
            raise _Bad(f"expected {what}")
        return float(v)

    return check


def _range_pair(lo: float, hi: float) -> Leaf:
    def check(v: Any) -> tuple[float, float]:
        what = f"expected [low, high] with {lo} <= low <= high <= {hi}"
        if not isinstance(v, list) or len(v) != 2 or not all(_is_num(x) for x in v):
            raise _Bad(what)
        a, b = float(v[0]), float(v[1])
        if not lo <= a <= b <= hi:
            raise _Bad(what)
        return (a, b)

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad("expected true or false")
    return v


def _enum(choices: tuple[str, ...]) -> Leaf:
    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in choices:
            raise _Bad("expected one of " + ", ".join(f'"{c}"' for c in choices))
        return v

    return check


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise _Bad("expected a string")
    return v


def _nonempty_text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _Bad("expected a non-empty string")
    return v


def _name(v: Any) -> str:
    if not isinstance(v, str) or not _NAME_RE.match(v):
        raise _Bad("expected a preset name of letters, digits, '.', '_' or '-' (it names the output folder)")
    return v


def _text_list(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _Bad("expected a list of strings")
    return tuple(v)


def _rgb(v: Any) -> tuple[int, int, int]:
    if not isinstance(v, list) or len(v) != 3 or not all(_is_int(x) and 0 <= x <= 255 for x in v):
        raise _Bad("expected [r, g, b] with integers 0-255")
    return (int(v[0]), int(v[1]), int(v[2]))


def _roles(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x in ROLES for x in v):
        raise _Bad("expected a list of roles (" + ", ".join(f'"{r}"' for r in ROLES) + ")")
    return tuple(sorted(set(v), key=ROLES.index))


def _template(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad("expected a naming template string")
    try:
        parsed = list(string.Formatter().parse(v))
    except ValueError as exc:
        raise _Bad(f"invalid template ({exc})") from exc
    for _literal, fname, spec, _conv in parsed:
        if fname is None:
            continue
        if fname not in TEMPLATE_FIELDS:
            raise _Bad(
                f"unknown field {{{fname}}} in template (fields: {', '.join(TEMPLATE_FIELDS)})", show_value=True
            )
        if spec and "{" in spec:
            raise _Bad("nested fields in a format spec are not supported")
    try:
        v.format(**TEMPLATE_FIELDS)
        v.format(**(TEMPLATE_FIELDS | {"role": "main", "n": 0, "position": 0}))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise _Bad(f"template does not format with sample values ({exc})") from exc
    return v


def keep_problem(names: list[Any]) -> str | None:
    """Why a ``[metadata] keep`` list is refused (the first bad name), or None; shared by presets and the profile."""
    for n in names:
        if not isinstance(n, str):
            return f"expected a list of names ({', '.join(KEEP_FIELDS)}), got {_show(n)} in it"
        if n.lower() in NEVER_KEPT:
            return f"{n!r} is never kept: {NEVER_KEPT[n.lower()]} (keepable: {', '.join(KEEP_FIELDS)})"
        if n not in KEEP_FIELDS:
            return f"unknown name {n!r} (known: {', '.join(KEEP_FIELDS)})"
    return None


def _keep(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise _Bad(f"expected a list of names ({', '.join(KEEP_FIELDS)})")
    problem = keep_problem(v)
    if problem:
        raise _Bad(problem, show_value=False)
    return tuple(n for n in KEEP_FIELDS if n in v)


def _max_bytes(v: Any) -> int:
    if not _is_int(v) or v < 0:
        raise _Bad("expected a byte count (a positive integer, or 0 for no cap)")
    return int(v)


# --------------------------------------------------------------------------------------------------------------
# The field table


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a setting every resolved preset must have (set in the file or inherited through `extends`).
REQUIRED: Any = _Required()


def _same(v: Any) -> Any:
    return v


def _json_value(v: Any) -> Any:
    """A resolved value as JSON (tuples become lists)."""
    return [_json_value(x) for x in v] if isinstance(v, tuple | list) else v


def _floats(v: Any) -> list[float]:
    return [float(x) for x in v]


def _yes(b: bool) -> str:
    return "yes" if b else "no"


def _show_value(v: Any) -> str:
    if isinstance(v, bool):
        return _yes(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_show_value(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, int):
        return f"{v:,}" if v >= 10_000 else str(v)
    return str(v)


@dataclass(frozen=True)
class Field:
    """One setting: a leaf of the TOML file and an attribute of its dataclass."""

    key: str  # the TOML key and the dataclass attribute
    check: Leaf | None  # validates and normalises the TOML value; None: not set in TOML (set by the loader)
    default: Any = REQUIRED  # the value when no file in the `extends` chain sets it
    doc: str = ""  # what it means (shown by `catalogmark presets show`)
    load: Callable[[Any], Any] = _same  # validated TOML value -> attribute value
    dump: Callable[[Any], Any] = _json_value  # attribute value -> JSON (preset_as_dict, hence the digest)
    show: Callable[[Any], str] = _show_value  # attribute value -> text (describe_preset)
    inherited: bool = True  # False: each file's own (`name`, `extends`), never taken from the parent
    attribute: bool = True  # False: a TOML key only (`extends`), not an attribute of the Preset
    # False: left out of the digest while at its default (a setting added later, neutral by default, so adding
    # it does not change every preset's digest and make every existing export stale)
    digest_at_default: bool = True

    @property
    def toml(self) -> bool:
        return self.check is not None


@dataclass(frozen=True)
class Table:
    """A TOML table whose keys are the fields of one dataclass."""

    key: str
    cls: Callable[..., Any]
    fields: tuple[Field, ...]
    doc: str = ""


@dataclass(frozen=True)
class PerRole:
    """A TOML table with one entry per image role (``ROLES``), each a field or a table; a dict by role."""

    key: str
    item: Field | Table
    doc: str = ""
    note: Callable[[Any, str], str] | None = None  # (preset, role) -> extra text for describe_preset


Item = Field | Table | PerRole


def _defaults(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {f.key: f.default for f in fields}


_CANVAS_SIDE = f"a positive integer (at most {MAX_CANVAS_SIDE})"

CANVAS_FIELDS = (
    Field("width", _int(1, MAX_CANVAS_SIDE, _CANVAS_SIDE), doc="target box width in px"),
    Field("height", _int(1, MAX_CANVAS_SIDE, _CANVAS_SIDE), doc="target box height in px"),
    Field("fit", _enum(FITS),
          doc="fit: inside the box, no padding; pad: inside + pad to the exact box; cover: fill + centre crop"),
    Field("background", _rgb, (255, 255, 255), "pad colour and alpha-flatten colour",
          show=lambda v: "#{:02X}{:02X}{:02X} ({}, {}, {})".format(*v, *v)),
    Field("upscale", _bool, False, "scale small sources up to the box (otherwise they keep their size)"),
    Field("min_long_side", _int(0, MAX_CANVAS_SIDE, "a non-negative integer"), 0,
          "a source whose canvas would be smaller than this (px) is a per-image failure"),
    Field("min_fill", _num(0.0, 1.0, "a fraction 0-1 (0: off)"), 0.0,
          "pad only: the product (its box on the background) spans at least this share of the frame on its "
          "longer axis (max of width and height fractions); the photo is trimmed and scaled to reach it",
          dump=float, digest_at_default=False),
    Field("max_upscale", _num(1.0, 8.0, "a number 1-8"), 1.0,
          "the most min_fill may enlarge the source (1: never beyond its own pixels); short of the target "
          "at this limit, the export says so (warning in its record), it does not fail",
          dump=float, digest_at_default=False),
    Field("fill_roles", _roles, ("main",), "the roles min_fill applies to", digest_at_default=False),
)
MARK_FIELDS = (
    Field("visible", _bool, False, "draw the visible keyed mark on this role (safe default: no)"),
    Field("invisible", _bool, True, "embed the invisible keyed watermark on this role"),
)
VISIBLE_STYLE_FIELDS = (
    Field("opacity", _range_pair(0.0, 1.0), (0.22, 0.38), "keyed opacity range", dump=_floats),
    Field("scale", _range_pair(0.01, 1.0), (0.28, 0.45), "mark width as a fraction of the canvas short side",
          dump=_floats),
    Field("rotation", _num(0.0, 90.0, "a number of degrees 0-90"), 25.0, "max |rotation| in degrees", dump=float),
    Field("warp", _num(0.0, 0.5, "a number 0-0.5"), 0.06, "max per-image warp (fraction of mark size)", dump=float),
)
METADATA_FIELDS = (
    Field("exif", _bool, True, "write EXIF"),
    Field("xmp", _bool, True, "write XMP"),
    Field("iptc", _bool, True, "write IPTC where the format allows (JPEG)"),
    Field("keep_capture_date", _bool, True, "copy DateTimeOriginal to the output"),
    Field("keep_camera", _bool, False, "copy camera make/model to the output (serials and GPS never)"),
    Field("keep", _keep, (), "the photographer's fields kept from the source (XMP, IPTC): "
          + ", ".join(KEEP_FIELDS) + "; plus the profile's [metadata] keep",
          show=lambda v: ", ".join(v) if v else "none", digest_at_default=False),
)
NAMING_FIELD = Field("template", _template,
                     doc='output name under OUT/<preset>/, e.g. "{sku}.MAIN.{ext}", "{sku}.PT{n:02d}.{ext}"; '
                         "fields: " + ", ".join(f"{{{k}}}" for k in TEMPLATE_FIELDS))

_C, _M, _V, _D = (_defaults(f) for f in (CANVAS_FIELDS, MARK_FIELDS, VISIBLE_STYLE_FIELDS, METADATA_FIELDS))


@dataclass(frozen=True)
class CanvasSpec:
    width: int
    height: int
    fit: Fit
    background: tuple[int, int, int] = _C["background"]
    upscale: bool = _C["upscale"]
    min_long_side: int = _C["min_long_side"]
    min_fill: float = _C["min_fill"]
    max_upscale: float = _C["max_upscale"]
    fill_roles: tuple[str, ...] = _C["fill_roles"]

    def for_role(self, role: str | None) -> CanvasSpec:
        """The canvas of one role's exports: ``min_fill`` is off for a role not in ``fill_roles`` (and for no
        role: a caller that does not say which role gets the plain geometry)."""
        if self.min_fill and role not in self.fill_roles:
            return dataclasses.replace(self, min_fill=0.0)
        return self


@dataclass(frozen=True)
class MarkPolicy:
    visible: bool = _M["visible"]
    invisible: bool = _M["invisible"]


@dataclass(frozen=True)
class VisibleStyle:
    opacity: tuple[float, float] = _V["opacity"]
    scale: tuple[float, float] = _V["scale"]
    rotation: float = _V["rotation"]
    warp: float = _V["warp"]


@dataclass(frozen=True)
class MetadataPolicy:
    exif: bool = _D["exif"]
    xmp: bool = _D["xmp"]
    iptc: bool = _D["iptc"]
    keep_capture_date: bool = _D["keep_capture_date"]
    keep_camera: bool = _D["keep_camera"]
    keep: tuple[str, ...] = _D["keep"]


@dataclass(frozen=True)
class Preset:
    """A resolved, validated preset; see ``PRESET_SCHEMA`` for what each setting means."""

    name: str
    description: str
    path: str
    canvas: CanvasSpec
    format: Format
    quality: int
    min_quality: int
    max_bytes: int | None  # None: no cap
    subsampling: str
    colour_space: Literal["srgb"]
    pure_white_roles: tuple[str, ...]
    marks: dict[str, MarkPolicy]
    visible_style: VisibleStyle
    metadata: MetadataPolicy
    naming: dict[str, str]
    sources: tuple[str, ...] = field(default_factory=tuple)
    digest: str = ""

    @property
    def extension(self) -> str:
        return {"jpeg": "jpg", "png": "png", "webp": "webp"}[self.format]


def _show_sources(v: tuple[str, ...]) -> str:
    return "\n".join(f"- {s}" for s in v) if v else "(none given)"


#: The schema, in the order of the Preset's attributes (and of ``preset_as_dict``).
PRESET_SCHEMA: tuple[Item, ...] = (
    Field("name", _name, doc="names the output folder OUT/<name>/; defaults to the file name", inherited=False),
    Field("extends", _nonempty_text, None, "a built-in preset name or a path (relative to this file) to build on",
          inherited=False, attribute=False),
    Field("description", _text, "", "one line on what the preset is for"),
    Field("path", None, doc="the TOML file it came from"),
    Table("canvas", CanvasSpec, CANVAS_FIELDS, "geometry of the output"),
    Field("format", _enum(FORMATS), doc="output format"),
    Field("quality", _int(1, 100, "an integer 1-100"), doc="starting encoder quality (JPEG/WebP)"),
    Field("min_quality", _int(1, 100, "an integer 1-100"), doc="lowest quality the byte-cap search may use"),
    Field("max_bytes", _max_bytes, 0, "byte cap per output file (0: no cap)", load=lambda v: v or None,
          show=lambda v: f"{v:,}" if v else "no cap"),
    Field("subsampling", _enum(SUBSAMPLINGS), "4:2:0", "JPEG chroma subsampling"),
    Field("colour_space", _enum(COLOUR_SPACES), "srgb", "output colour space"),
    Field("pure_white_roles", _roles, (), "roles whose background must stay exactly the canvas background "
          "(the invisible mark goes on the product only)"),
    PerRole("marks", Table("marks", MarkPolicy, MARK_FIELDS), "which marks each role gets"),
    Table("visible_style", VisibleStyle, VISIBLE_STYLE_FIELDS, "the visible mark's keyed ranges"),
    Table("metadata", MetadataPolicy, METADATA_FIELDS, "embedded metadata"),
    PerRole("naming", NAMING_FIELD, "output file names per role", note=lambda p, role: "e.g. " + render_output_name(
        p, sku="SKU123", role=role, n=int(role != "main"), position=int(role != "main"), stem="IMG_0001")),
    Field("sources", _text_list, (), "where the preset's facts come from (URLs)", show=_show_sources),
    Field("digest", None, doc="SHA-256 of the canonical resolved preset; part of the rerun key"),
)


def _check_schema_matches_dataclasses() -> None:
    """The dataclasses and the table name the same settings in the same order (and the same defaults)."""

    def agree(cls: Any, items: tuple[Item, ...], where: str) -> None:
        attrs = [i.key for i in items if not isinstance(i, Field) or i.attribute]
        names = [f.name for f in dataclasses.fields(cls)]
        if attrs != names:
            raise RuntimeError(f"presets schema: {where} lists {attrs} but {cls.__name__} has {names}")
        for item in items:
            if isinstance(item, Field) and item.attribute and item.default is not REQUIRED and cls is not Preset:
                f = next(x for x in dataclasses.fields(cls) if x.name == item.key)
                if f.default != item.default:
                    raise RuntimeError(f"presets schema: {cls.__name__}.{item.key} default differs from the table")
            sub = item.item if isinstance(item, PerRole) else item
            if isinstance(sub, Table):
                agree(sub.cls, sub.fields, f"[{item.key}]")

    agree(Preset, PRESET_SCHEMA, "PRESET_SCHEMA")


_check_schema_matches_dataclasses()


def _walk(items: tuple[Item, ...], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Field]]:
    """Every TOML leaf of the schema: (table path, field), per-role tables expanded per role."""
    for item in items:
        if isinstance(item, Field):
            if item.toml:
                yield prefix, item
        elif isinstance(item, Table):
            yield from _walk(item.fields, (*prefix, item.key))
        else:
            for role in ROLES:
                if isinstance(item.item, Table):
                    yield from _walk(item.item.fields, (*prefix, item.key, role))
                else:
                    yield (*prefix, item.key), dataclasses.replace(item.item, key=role)


def _toml_schema(items: tuple[Item, ...]) -> dict[str, Any]:
    """The schema as nested dicts of leaf checks (a dict is a TOML table, a callable a leaf)."""
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, Field):
            if item.check is not None:
                out[item.key] = item.check
        elif isinstance(item, Table):
            out[item.key] = _toml_schema(item.fields)
        else:
            sub = item.item
            out[item.key] = {r: (_toml_schema(sub.fields) if isinstance(sub, Table) else sub.check) for r in ROLES}
    return out


#: The TOML layout derived from the table: a dict is a TOML table, a callable is a leaf check.
SCHEMA: dict[str, Any] = _toml_schema(PRESET_SCHEMA)
_ROLE_TABLES = {i.key for i in PRESET_SCHEMA if isinstance(i, PerRole)}
_NOT_INHERITED = {i.key for i in PRESET_SCHEMA if isinstance(i, Field) and not i.inherited}
#: Keys a fully resolved preset must have (table, key); everything else has a default.
_REQUIRED = [(table, f.key) for table, f in _walk(PRESET_SCHEMA) if f.default is REQUIRED and f.inherited]


def _where(table: tuple[str, ...], key: str | None = None) -> str:
    if not table:
        return key or "(top level)"
    head = "[" + ".".join(table) + "]"
    return f"{head} {key}" if key is not None else head


def _fail(file: str, table: tuple[str, ...], key: str | None, message: str) -> PresetError:
    return PresetError(f"{file}: {_where(table, key)}: {message}")


def _validate_table(data: Mapping[str, Any], schema: Mapping[str, Any], table: tuple[str, ...], file: str) -> dict:
    """Check one file's (possibly partial) table against the schema; return normalised values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in schema:
            if table and table[-1] in _ROLE_TABLES and len(table) == 1:
                raise _fail(file, table, key, f"unknown role (roles are {', '.join(ROLES)})")
            hint = difflib.get_close_matches(key, list(schema), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(sorted(schema))})"
            raise _fail(file, table, key, "unknown key" + extra)
        rule = schema[key]
        if isinstance(rule, dict):
            if not isinstance(value, dict):
                raise _fail(file, table, key, f"expected a table [{'.'.join((*table, key))}], got {_show(value)}")
            out[key] = _validate_table(value, rule, (*table, key), file)
        else:
            try:
                out[key] = rule(value)
            except _Bad as bad:
                got = f", got {_show(value)}" if bad.show_value else ""
                raise _fail(file, table, key, f"{bad.expected}{got}") from None
    return out


# --------------------------------------------------------------------------------------------------------------
# Loading, extends, merging


@dataclass
class _Layer:
    """One file's validated data plus, for every leaf key, the file that set it (for error messages)."""

    data: dict[str, Any]
    origin: dict[tuple[str, ...], str]
    name: str | None = None  # the file's own `name` (not inherited)


def _leaves(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = []
    for k, v in data.items():
        if isinstance(v, dict):
            keys.extend(_leaves(v, (*prefix, k)))
        else:
            keys.append((*prefix, k))
    return keys


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key, recursively; any other value (including arrays) replaces the base value."""
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _is_path_like(ref: str) -> bool:
    return ref.endswith(".toml") or "/" in ref or "\\" in ref or ref.startswith(".")


def _available(search_dir: Path) -> list[str]:
    try:
        return sorted(p.stem for p in search_dir.glob("*.toml") if p.is_file())
    except OSError:
        return []


def _builtin_path(name: str, search_dir: Path, referrer: str | None) -> Path:
    path = search_dir / f"{name}.toml"
    if _NAME_RE.match(name) and path.is_file():
        return path
    names = _available(search_dir)
    hint = difflib.get_close_matches(name, names, n=1)
    prefix = f"{referrer}: extends: " if referrer else ""
    msg = f"{prefix}unknown preset {name!r}"
    if hint:
        msg += f" (did you mean {hint[0]!r}?)"
    msg += "; available: " + (", ".join(names) if names else f"none (no *.toml in {search_dir})")
    msg += "; or pass a path to a .toml file"
    raise PresetError(msg)


def _read_toml(path: Path, display: str) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PresetError(f"{display}: no such preset file") from None
    except OSError as exc:
        raise PresetError(f"{display}: cannot read ({exc.strerror or exc})") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PresetError(f"{display}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{display}: invalid TOML ({exc})") from None


def _load_layer(path: Path, display: str, search_dir: Path, stack: list[Path]) -> _Layer:
    """Read, validate and resolve ``extends`` for one file; returns the merged layer."""
    real = path.resolve()
    if real in stack:
        chain = " -> ".join(str(p) for p in [*stack[stack.index(real):], real])
        raise PresetError(f"{display}: extends: cycle: {chain}")
    data = _validate_table(_read_toml(path, display), SCHEMA, (), display)
    own = {k: v for k, v in data.items() if k not in _NOT_INHERITED}
    own_origin = {key: display for key in _leaves(own)}
    ref = data.get("extends")
    if ref is None:
        return _Layer(own, own_origin, data.get("name"))
    if _is_path_like(ref):
        parent_path = Path(ref) if Path(ref).is_absolute() else path.parent / ref
        parent_display = str(parent_path)
        if not parent_path.is_file():
            raise PresetError(f"{display}: extends: no such preset file {parent_display!r}")
    else:
        parent_path = _builtin_path(ref, search_dir, display)
        parent_display = str(parent_path)
    parent = _load_layer(parent_path, parent_display, search_dir, [*stack, real])
    return _Layer(_deep_merge(parent.data, own), parent.origin | own_origin, data.get("name"))


def _template_problem(template: str, fmt: str) -> str | None:
    """Why a template cannot be used for this format, or None (checked with sample values)."""
    for values in (TEMPLATE_FIELDS, TEMPLATE_FIELDS | {"role": "main", "n": 0, "position": 0}):
        rendered = template.format(**(values | {"ext": FORMAT_SUFFIXES[fmt][0][1:]}))
        problem = _path_problem(rendered)
        if problem:
            return f"{problem} (template {template!r} gives {rendered!r})"
        if not rendered.lower().endswith(FORMAT_SUFFIXES[fmt]):
            return (
                f"the file name must end in {' or '.join(FORMAT_SUFFIXES[fmt])} for format {fmt!r} "
                f"(template {template!r} gives {rendered!r}; use {{ext}})"
            )
    return None


def _path_problem(rendered: str) -> str | None:
    if not rendered or "\x00" in rendered or "\\" in rendered:
        return "empty name, NUL or backslash in the output name"
    p = PurePosixPath(rendered)
    if p.is_absolute() or re.match(r"^[A-Za-z]:", rendered):
        return "the output name must be a relative path"
    if any(part in ("..", ".") for part in rendered.split("/")) or "" in rendered.split("/"):
        return "the output name must not contain '..', '.' or empty path parts (it would escape the output folder)"
    return None


def _resolve(items: tuple[Item, ...], data: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute values from a resolved layer's data: the table's default wherever no file set a key."""
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, Field):
            if item.toml and item.attribute and item.inherited:
                out[item.key] = item.load(data.get(item.key, item.default))
        elif isinstance(item, Table):
            out[item.key] = item.cls(**_resolve(item.fields, data.get(item.key, {})))
        else:
            sub, by_role = item.item, data.get(item.key, {})
            if isinstance(sub, Table):
                out[item.key] = {r: sub.cls(**_resolve(sub.fields, by_role.get(r, {}))) for r in ROLES}
            else:
                out[item.key] = {r: sub.load(by_role.get(r, sub.default)) for r in ROLES}
    return out


def _build(layer: _Layer, name: str, display: str) -> Preset:
    d = layer.data
    for table, key in _REQUIRED:
        node: Any = d
        for t in table:
            node = node.get(t, {})
        if key not in node:
            raise _fail(display, table, key, "missing (required; set it here or `extends` a preset that has it)")
    preset = Preset(name=name, path=display, **_resolve(PRESET_SCHEMA, d))
    _check_relations(preset, lambda *key: layer.origin.get(key, display))
    return _with_digest(preset)


def _check_relations(p: Preset, origin: Callable[..., str]) -> None:
    """Rules between settings (each single setting was checked by its field); blames the file that set the key."""
    if p.min_quality > p.quality:
        raise _fail(origin("min_quality"), (), "min_quality", f"{p.min_quality} is above quality ({p.quality})")
    c = p.canvas
    if c.min_long_side > max(c.width, c.height):
        raise _fail(origin("canvas", "min_long_side"), ("canvas",), "min_long_side",
                    f"{c.min_long_side} is larger than the canvas ({c.width}x{c.height})")
    if c.min_fill and c.fit != "pad":
        raise _fail(origin("canvas", "min_fill"), ("canvas",), "min_fill",
                    f'needs fit = "pad" (the frame is the box; fit = "{c.fit}" here)')
    naming = p.naming
    for role in ROLES:
        problem = _template_problem(naming[role], p.format)
        if problem:
            raise _fail(origin("naming", role), ("naming",), role, problem)
    # Gallery names must differ per image and never collide with the main image's name.
    g1 = naming["gallery"].format(**(TEMPLATE_FIELDS | {"n": 1, "position": 1, "stem": "a"}))
    g2 = naming["gallery"].format(**(TEMPLATE_FIELDS | {"n": 2, "position": 2, "stem": "b"}))
    m = naming["main"].format(**(TEMPLATE_FIELDS | {"role": "main", "n": 0, "position": 0, "stem": "m"}))
    if g1 == g2:
        raise _fail(
            origin("naming", "gallery"), ("naming",), "gallery",
            f"every gallery image would get the same name {g1!r}; use {{n}}, {{position}} or {{stem}}",
        )
    if m in (g1, g2):
        raise _fail(origin("naming", "main"), ("naming",), "main", f"collides with the gallery name {m!r}")


def _digest_body(items: tuple[Item, ...], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the ``digest_at_default=False`` fields that are at their default (tables recursively)."""
    for item in items:
        if isinstance(item, Field):
            if not item.digest_at_default and body.get(item.key) == item.dump(item.default):
                body.pop(item.key, None)
        elif isinstance(item, Table):
            _digest_body(item.fields, body[item.key])
        elif isinstance(item.item, Table):
            for sub in body[item.key].values():
                _digest_body(item.item.fields, sub)
    return body


def _with_digest(preset: Preset) -> Preset:
    body = _digest_body(PRESET_SCHEMA, preset_as_dict(preset))
    body.pop("path")
    body.pop("digest")
    body["schema"] = SCHEMA_VERSION
    return dataclasses.replace(preset, digest=hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest())


def load_preset(name_or_path: str, *, search_dir: Path | None = None) -> Preset:
    """Load a built-in preset by name ("amazon") or a user's TOML file by path; resolve `extends`; validate.

    Raises PresetError naming the file and key for anything invalid.
    """
    search = search_dir if search_dir is not None else builtin_presets_dir()
    ref = str(name_or_path)
    if _is_path_like(ref):
        path, display = Path(ref), ref
        if not path.is_file():
            raise PresetError(f"{display}: no such preset file")
    else:
        path = _builtin_path(ref, search, None)
        display = str(path)
    layer = _load_layer(path, display, search, [])
    name = layer.name or path.stem
    if not _NAME_RE.match(name):
        raise _fail(display, (), "name", f"the file name {path.name!r} is not a usable preset name; set name = \"...\"")
    return _build(layer, name, display)


def preset_from_dict(data: Mapping[str, Any], *, name: str = "preset", path: str = "<dict>") -> Preset:
    """A preset from a dict laid out like a preset file (no `extends`): same checks, defaults and digest.

    ``name`` is used unless the dict sets one; ``path`` stands for the file in messages and ``Preset.path``.
    """
    data = _validate_table(data, SCHEMA, (), path)
    if "extends" in data:
        raise _fail(path, (), "extends", "not supported here; use load_preset on a file")
    own = {k: v for k, v in data.items() if k not in _NOT_INHERITED}
    return _build(_Layer(own, {key: path for key in _leaves(own)}), data.get("name", name), path)


def list_presets(search_dir: Path | None = None) -> list[Preset]:
    """All built-in presets, loaded and validated, sorted by name."""
    search = search_dir if search_dir is not None else builtin_presets_dir()
    if not search.is_dir():
        raise PresetError(f"{search}: presets folder not found (set {PRESETS_DIR_ENV})")
    presets = [load_preset(str(p), search_dir=search) for p in sorted(search.glob("*.toml"))]
    return sorted(presets, key=lambda p: p.name)


def _dump(items: tuple[Item, ...], obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, Field):
            if item.attribute:
                out[item.key] = item.dump(getattr(obj, item.key))
        elif isinstance(item, Table):
            out[item.key] = _dump(item.fields, getattr(obj, item.key))
        else:
            sub = item.item
            out[item.key] = {
                role: _dump(sub.fields, value) if isinstance(sub, Table) else sub.dump(value)
                for role, value in sorted(getattr(obj, item.key).items())
            }
    return out


def preset_as_dict(p: Preset) -> dict[str, Any]:
    """A JSON-able dict of the resolved preset (tuples become lists; max_bytes None means no cap)."""
    return _dump(PRESET_SCHEMA, p)


def render_output_name(preset: Preset, *, sku: str, role: str, n: int, position: int, stem: str) -> str:
    """The output path (relative to OUT/<preset>/, POSIX separators) from the preset's naming template.

    Raises PresetError if the role has no template or the name would escape the output folder.
    """
    template = preset.naming.get(role)
    if template is None:
        raise PresetError(f"{preset.path}: [naming] {role}: no template for role {role!r}")
    values = {"sku": sku, "role": role, "n": n, "position": position, "stem": stem, "ext": preset.extension,
              "preset": preset.name}
    try:
        rendered = template.format(**values)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise PresetError(f"{preset.path}: [naming] {role}: cannot format {template!r} ({exc})") from None
    problem = _path_problem(rendered)
    if problem:
        raise PresetError(f"{preset.path}: [naming] {role}: {problem} (got {rendered!r} for sku {sku!r})")
    return rendered


def _row(depth: int, key: str, shown: str, doc: str) -> list[str]:
    """One setting: key, value and meaning in columns; a multi-line value (a list) goes on the lines below."""
    indent, width = "  " * depth, 22 - 2 * depth
    first, *more = shown.split("\n")
    if more:
        head = f"{indent}{key:<{width}}" + (f" # {doc}" if doc else "")
        return [head.rstrip(), *(f"{indent}  {m}" for m in (first, *more))]
    text = f"{indent}{key:<{width}} {first}"
    return [f"{text:<50}  # {doc}" if doc else text]


def _heading(depth: int, title: str, doc: str) -> str:
    return "  " * depth + title + (f"  # {doc}" if doc else "")


def _describe(items: tuple[Item, ...], obj: Any, p: Preset, depth: int) -> list[str]:
    lines: list[str] = []
    for item in items:
        if isinstance(item, Field):
            if item.attribute:
                lines += _row(depth, item.key, item.show(getattr(obj, item.key)), item.doc)
        elif isinstance(item, Table):
            lines.append(_heading(depth, f"[{item.key}]", item.doc))
            lines += _describe(item.fields, getattr(obj, item.key), p, depth + 1)
        else:
            by_role, sub = getattr(obj, item.key), item.item
            if isinstance(sub, Table):
                for role in ROLES:
                    lines.append(_heading(depth, f"[{item.key}.{role}]", item.doc if role == ROLES[0] else ""))
                    lines += _describe(sub.fields, by_role[role], p, depth + 1)
            else:
                lines.append(_heading(depth, f"[{item.key}]", item.doc))
                for role in ROLES:
                    note = f"  ({item.note(p, role)})" if item.note else ""
                    lines += _row(depth + 1, role, sub.show(by_role[role]) + note, sub.doc if role == ROLES[0] else "")
    return lines


def describe_preset(p: Preset) -> str:
    """Human-readable multi-line description (for ``catalogmark presets show NAME``): every setting of the
    schema with its value and what it means, sources included."""
    return "\n".join(_describe(PRESET_SCHEMA, p, p, 0))
