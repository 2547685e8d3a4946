"""Storefront presets: the schema (dataclasses), loading TOML files, `extends`, and validation."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pipeline.errors import PresetError

Fit = Literal["fit", "pad", "cover"]
Format = Literal["jpeg", "png", "webp"]


@dataclass(frozen=True)
class CanvasSpec:
    width: int  # target box width in px
    height: int  # target box height in px
    fit: Fit  # fit: inside the box, no padding; pad: inside + pad to the exact box; cover: fill + centre crop
    background: tuple[int, int, int] = (255, 255, 255)  # pad colour and alpha-flatten colour
    upscale: bool = False  # scale small sources up to the box (otherwise they keep their size)
    min_long_side: int = 0  # a source whose canvas would be smaller than this is a per-image failure


@dataclass(frozen=True)
class MarkPolicy:
    visible: bool  # draw the visible keyed mark on this role
    invisible: bool  # embed the invisible keyed watermark on this role


@dataclass(frozen=True)
class VisibleStyle:
    opacity: tuple[float, float] = (0.22, 0.38)  # keyed opacity range
    scale: tuple[float, float] = (0.28, 0.45)  # mark width as a fraction of the canvas short side
    rotation: float = 25.0  # max |rotation| in degrees
    warp: float = 0.06  # max per-image warp (fraction of mark size)


@dataclass(frozen=True)
class MetadataPolicy:
    exif: bool = True
    xmp: bool = True
    iptc: bool = True  # written where the format allows (JPEG)
    keep_capture_date: bool = True  # copy DateTimeOriginal to the output
    keep_camera: bool = False  # copy camera make/model to the output (serials and GPS never)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    path: str  # the TOML file it came from
    canvas: CanvasSpec
    format: Format
    quality: int  # starting encoder quality (JPEG/WebP)
    min_quality: int  # lowest quality the byte-cap search may use
    max_bytes: int | None  # byte cap per output file
    subsampling: str  # "4:2:0" | "4:2:2" | "4:4:4" (JPEG)
    colour_space: Literal["srgb"]
    pure_white_roles: tuple[str, ...]  # roles whose background must stay exactly the preset background
    marks: dict[str, MarkPolicy]  # per role: "main", "gallery"
    visible_style: VisibleStyle
    metadata: MetadataPolicy
    naming: dict[str, str]  # per role: template, e.g. "{sku}.MAIN.{ext}", "{sku}.PT{n:02d}.{ext}"
    sources: tuple[str, ...] = field(default_factory=tuple)
    digest: str = ""  # SHA-256 of the canonical resolved preset; part of the rerun key

    @property
    def extension(self) -> str:
        return {"jpeg": "jpg", "png": "png", "webp": "webp"}[self.format]


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
MAX_CANVAS_SIDE = 20_000  # sanity bound: Amazon's own maximum is 10,000 px on the longest side
SCHEMA_VERSION = 1  # part of the digest: bump if the meaning of a field changes
PRESETS_DIR_ENV = "CATALOGMARK_PRESETS_DIR"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def builtin_presets_dir() -> Path:
    """The folder of the built-in presets: ``$CATALOGMARK_PRESETS_DIR`` or the top-level ``presets/``."""
    env = os.environ.get(PRESETS_DIR_ENV)
    if env:
        return Path(env)
    import pipeline

    return Path(pipeline.__file__).resolve().parent.parent / "presets"


# --------------------------------------------------------------------------------------------------------------
# Leaf validators: each returns the normalised value or raises _Bad(what was expected)


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


def _max_bytes(v: Any) -> int:
    if not _is_int(v) or v < 0:
        raise _Bad("expected a byte count (a positive integer, or 0 for no cap)")
    return int(v)


_MARK_TABLE: dict[str, Any] = {"visible": _bool, "invisible": _bool}

#: The schema: a dict is a TOML table, a callable is a leaf validator.
SCHEMA: dict[str, Any] = {
    "name": _name,
    "description": _text,
    "extends": _nonempty_text,
    "sources": _text_list,
    "format": _enum(FORMATS),
    "quality": _int(1, 100, "an integer 1-100"),
    "min_quality": _int(1, 100, "an integer 1-100"),
    "max_bytes": _max_bytes,
    "subsampling": _enum(SUBSAMPLINGS),
    "colour_space": _enum(COLOUR_SPACES),
    "pure_white_roles": _roles,
    "canvas": {
        "width": _int(1, MAX_CANVAS_SIDE, f"a positive integer (at most {MAX_CANVAS_SIDE})"),
        "height": _int(1, MAX_CANVAS_SIDE, f"a positive integer (at most {MAX_CANVAS_SIDE})"),
        "fit": _enum(FITS),
        "background": _rgb,
        "upscale": _bool,
        "min_long_side": _int(0, MAX_CANVAS_SIDE, "a non-negative integer"),
    },
    "marks": {"main": _MARK_TABLE, "gallery": _MARK_TABLE},
    "visible_style": {
        "opacity": _range_pair(0.0, 1.0),
        "scale": _range_pair(0.01, 1.0),
        "rotation": _num(0.0, 90.0, "a number of degrees 0-90"),
        "warp": _num(0.0, 0.5, "a number 0-0.5"),
    },
    "metadata": {
        "exif": _bool,
        "xmp": _bool,
        "iptc": _bool,
        "keep_capture_date": _bool,
        "keep_camera": _bool,
    },
    "naming": {"main": _template, "gallery": _template},
}
_ROLE_TABLES = {"marks", "naming"}
_NOT_INHERITED = {"name", "extends"}
#: Keys a fully resolved preset must have (table, key); everything else has a default.
_REQUIRED = [
    ((), "format"),
    ((), "quality"),
    ((), "min_quality"),
    (("canvas",), "width"),
    (("canvas",), "height"),
    (("canvas",), "fit"),
    (("naming",), "main"),
    (("naming",), "gallery"),
]


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


def _build(layer: _Layer, name: str, display: str) -> Preset:
    d = layer.data

    def origin(*key: str) -> str:
        return layer.origin.get(key, display)

    for table, key in _REQUIRED:
        node: Any = d
        for t in table:
            node = node.get(t, {})
        if key not in node:
            raise _fail(display, table, key, "missing (required; set it here or `extends` a preset that has it)")

    fmt: str = d["format"]
    quality: int = d["quality"]
    min_quality: int = d["min_quality"]
    if min_quality > quality:
        raise _fail(origin("min_quality"), (), "min_quality", f"{min_quality} is above quality ({quality})")
    c = d["canvas"]
    canvas = CanvasSpec(
        width=c["width"],
        height=c["height"],
        fit=c["fit"],
        background=c.get("background", (255, 255, 255)),
        upscale=c.get("upscale", False),
        min_long_side=c.get("min_long_side", 0),
    )
    if canvas.min_long_side > max(canvas.width, canvas.height):
        raise _fail(
            origin("canvas", "min_long_side"),
            ("canvas",),
            "min_long_side",
            f"{canvas.min_long_side} is larger than the canvas ({canvas.width}x{canvas.height})",
        )
    naming = {role: d["naming"][role] for role in ROLES}
    for role in ROLES:
        problem = _template_problem(naming[role], fmt)
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

    marks_raw = d.get("marks", {})
    marks = {
        role: MarkPolicy(
            visible=marks_raw.get(role, {}).get("visible", False),  # safe default: no visible mark
            invisible=marks_raw.get(role, {}).get("invisible", True),
        )
        for role in ROLES
    }
    vs = d.get("visible_style", {})
    dflt_vs = VisibleStyle()
    style = VisibleStyle(
        opacity=vs.get("opacity", dflt_vs.opacity),
        scale=vs.get("scale", dflt_vs.scale),
        rotation=vs.get("rotation", dflt_vs.rotation),
        warp=vs.get("warp", dflt_vs.warp),
    )
    md = d.get("metadata", {})
    max_bytes = d.get("max_bytes", 0)
    preset = Preset(
        name=name,
        description=d.get("description", ""),
        path=display,
        canvas=canvas,
        format=fmt,  # type: ignore[arg-type]
        quality=quality,
        min_quality=min_quality,
        max_bytes=max_bytes or None,
        subsampling=d.get("subsampling", "4:2:0"),
        colour_space=d.get("colour_space", "srgb"),
        pure_white_roles=d.get("pure_white_roles", ()),
        marks=marks,
        visible_style=style,
        metadata=MetadataPolicy(**md),
        naming=naming,
        sources=d.get("sources", ()),
    )
    return _with_digest(preset)


def _with_digest(preset: Preset) -> Preset:
    body = preset_as_dict(preset)
    body.pop("path")
    body.pop("digest")
    body["schema"] = SCHEMA_VERSION
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return dataclasses.replace(preset, digest=hashlib.sha256(canonical.encode("utf-8")).hexdigest())


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


def list_presets(search_dir: Path | None = None) -> list[Preset]:
    """All built-in presets, loaded and validated, sorted by name."""
    search = search_dir if search_dir is not None else builtin_presets_dir()
    if not search.is_dir():
        raise PresetError(f"{search}: presets folder not found (set {PRESETS_DIR_ENV})")
    presets = [load_preset(str(p), search_dir=search) for p in sorted(search.glob("*.toml"))]
    return sorted(presets, key=lambda p: p.name)


def preset_as_dict(p: Preset) -> dict[str, Any]:
    """A JSON-able dict of the resolved preset (tuples become lists; max_bytes None means no cap)."""
    return {
        "name": p.name,
        "description": p.description,
        "path": p.path,
        "canvas": {
            "width": p.canvas.width,
            "height": p.canvas.height,
            "fit": p.canvas.fit,
            "background": list(p.canvas.background),
            "upscale": p.canvas.upscale,
            "min_long_side": p.canvas.min_long_side,
        },
        "format": p.format,
        "quality": p.quality,
        "min_quality": p.min_quality,
        "max_bytes": p.max_bytes,
        "subsampling": p.subsampling,
        "colour_space": p.colour_space,
        "pure_white_roles": list(p.pure_white_roles),
        "marks": {r: {"visible": m.visible, "invisible": m.invisible} for r, m in sorted(p.marks.items())},
        "visible_style": {
            "opacity": [float(x) for x in p.visible_style.opacity],
            "scale": [float(x) for x in p.visible_style.scale],
            "rotation": float(p.visible_style.rotation),
            "warp": float(p.visible_style.warp),
        },
        "metadata": {
            "exif": p.metadata.exif,
            "xmp": p.metadata.xmp,
            "iptc": p.metadata.iptc,
            "keep_capture_date": p.metadata.keep_capture_date,
            "keep_camera": p.metadata.keep_camera,
        },
        "naming": dict(sorted(p.naming.items())),
        "sources": list(p.sources),
        "digest": p.digest,
    }


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


def _yes(b: bool) -> str:
    return "yes" if b else "no"


def describe_preset(p: Preset) -> str:
    """Human-readable multi-line description (for ``catalogmark presets show NAME``), sources included."""
    c = p.canvas
    bg = "#{:02X}{:02X}{:02X}".format(*c.background)
    cap = f"max {p.max_bytes:,} bytes" if p.max_bytes else "no byte cap"
    q = f"quality {p.quality} (min {p.min_quality})" if p.format != "png" else "lossless"
    sub = f", chroma {p.subsampling}" if p.format == "jpeg" else ""
    vs = p.visible_style
    lines = [
        p.name,
        f"  {p.description}" if p.description else "  (no description)",
        f"  file:          {p.path}",
        f"  canvas:        {c.width}x{c.height} {c.fit}, background {bg} {tuple(c.background)}, "
        f"upscale {_yes(c.upscale)}, min long side {c.min_long_side} px",
        f"  encoding:      {p.format.upper()} {q}{sub}, {p.colour_space}, {cap}",
        "  marks:",
    ]
    for role in ROLES:
        m = p.marks[role]
        white = "; background kept pure white" if role in p.pure_white_roles else ""
        lines.append(f"    {role:<8} visible {_yes(m.visible)}, invisible {_yes(m.invisible)}{white}")
    lines += [
        f"  visible style: opacity {vs.opacity[0]:g}-{vs.opacity[1]:g}, scale {vs.scale[0]:g}-{vs.scale[1]:g} "
        f"of short side, rotation up to {vs.rotation:g} deg, warp {vs.warp:g}",
        f"  metadata:      EXIF {_yes(p.metadata.exif)}, XMP {_yes(p.metadata.xmp)}, IPTC {_yes(p.metadata.iptc)}, "
        f"capture date {'kept' if p.metadata.keep_capture_date else 'dropped'}, "
        f"camera {'kept' if p.metadata.keep_camera else 'dropped'} (GPS and serials never)",
        "  naming:",
    ]
    for role in ROLES:
        n = 0 if role == "main" else 1
        example = render_output_name(p, sku="SKU123", role=role, n=n, position=n, stem="IMG_0001")
        lines.append(f"    {role:<8} {p.naming[role]}  (e.g. {example})")
    lines.append(f"  digest:        {p.digest}")
    lines.append("  sources:" if p.sources else "  sources:       (none given)")
    lines += [f"    - {s}" for s in p.sources]
    return "\n".join(lines)
