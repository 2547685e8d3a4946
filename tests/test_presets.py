"""Tests for pipeline.presets: built-in preset files, schema validation, extends, digest, naming."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError, PresetError
from pipeline.presets import (
    KEEP_FIELDS,
    PRESET_SCHEMA,
    PRESETS_DIR_ENV,
    REQUIRED,
    ROLES,
    SCHEMA,
    CanvasSpec,
    Field,
    MetadataPolicy,
    PerRole,
    Preset,
    Table,
    VisibleStyle,
    builtin_presets_dir,
    describe_preset,
    list_presets,
    load_preset,
    preset_as_dict,
    preset_from_dict,
    render_output_name,
)

REQUIRED_BUILTINS = {
    "amazon", "aliexpress", "ebay", "etsy", "shopify", "walmart", "temu", "shopee", "mercadolibre",
    "google-merchant", "emag", "lazada", "zalando", "web",
}
NO_VISIBLE_ANYWHERE = {"ebay", "google-merchant", "emag", "mercadolibre", "lazada", "temu", "newegg"}
VISIBLE_ALLOWED = {"shopify", "etsy", "web"}

MINIMAL = """
format = "jpeg"
quality = 90
min_quality = 60
[canvas]
width = 800
height = 600
fit = "pad"
[naming]
main = "{sku}-main.{ext}"
gallery = "{sku}-{n:02d}.{ext}"
"""


@pytest.fixture(scope="module")
def builtins() -> dict[str, Preset]:
    return {p.name: p for p in list_presets()}


@pytest.fixture
def write(tmp_path: Path):
    """Factory: ``write("name.toml", text)`` -> path of the file in tmp_path."""

    def factory(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return factory


# ---------------------------------------------------------------------------------------------- built-ins


def test_required_builtins_present_and_named_after_their_file(builtins: dict[str, Preset]) -> None:
    assert set(builtins) >= REQUIRED_BUILTINS
    for name, p in builtins.items():
        assert Path(p.path).stem == name
        assert Path(p.path).parent == builtin_presets_dir()


def test_list_presets_sorted(builtins: dict[str, Preset]) -> None:
    names = [p.name for p in list_presets()]
    assert names == sorted(names)
    assert len(names) == len(builtins)


@pytest.mark.parametrize("name", sorted(REQUIRED_BUILTINS))
def test_builtin_preset_is_sound(name: str, builtins: dict[str, Preset]) -> None:
    p = builtins[name]
    assert p == load_preset(name)  # loading is deterministic
    assert set(p.marks) == set(ROLES) and set(p.naming) == set(ROLES)
    assert all(p.marks[r].invisible for r in ROLES), "invisible watermark is on for every role by default"
    assert p.canvas.width <= 2600 and p.canvas.height <= 2600
    assert 1 <= p.min_quality <= p.quality <= 100
    assert p.sources and p.description
    assert len(p.digest) == 64
    # every number has a comment with its source, on its line or the line above (height shares width's)
    lines = Path(p.path).read_text(encoding="utf-8").splitlines()
    for before, line in zip(["", *lines], lines, strict=False):
        key = line.split("=")[0].strip()
        if "=" in line and key in {"quality", "max_bytes", "width", "min_long_side", "visible"}:
            assert "#" in line or before.lstrip().startswith("#"), f"{p.path}: {line!r} has no source comment"


def test_marketplace_mark_policies(builtins: dict[str, Preset]) -> None:
    amazon = builtins["amazon"]
    assert amazon.marks["main"].visible is False
    assert amazon.pure_white_roles == ("main",)
    assert amazon.canvas.background == (255, 255, 255)
    for name in NO_VISIBLE_ANYWHERE:
        assert not any(builtins[name].marks[r].visible for r in ROLES), name
    for name in VISIBLE_ALLOWED:
        assert all(builtins[name].marks[r].visible for r in ROLES), name
    for name in ("walmart", "mercadolibre", "emag"):
        assert "main" in builtins[name].pure_white_roles


def test_byte_caps_and_zalando_geometry(builtins: dict[str, Preset]) -> None:
    for name in ("emag", "temu", "shopee"):
        assert builtins[name].max_bytes == 2_000_000
    assert builtins["walmart"].max_bytes == 5_000_000
    assert builtins["aliexpress"].max_bytes == 3_000_000
    z = builtins["zalando"]
    assert z.format == "jpeg"
    assert math.isclose(z.canvas.height / z.canvas.width, 1.44, abs_tol=0.005)
    assert z.canvas.fit in ("pad", "cover")


def test_amazon_naming(builtins: dict[str, Preset]) -> None:
    a = builtins["amazon"]
    assert render_output_name(a, sku="B00X", role="main", n=0, position=0, stem="IMG_1") == "B00X.MAIN.jpg"
    assert render_output_name(a, sku="B00X", role="gallery", n=3, position=3, stem="IMG_4") == "B00X.PT03.jpg"


def test_describe_and_dict(builtins: dict[str, Preset]) -> None:
    for p in builtins.values():
        text = describe_preset(p)
        assert p.name in text and p.digest in text
        assert all(s in text for s in p.sources)
        d = preset_as_dict(p)
        assert json.loads(json.dumps(d)) == d
        assert d["digest"] == p.digest and d["path"] == p.path
        # every field of the dataclass is in the dict, so the digest covers every setting
        assert set(d) == {f.name for f in dataclasses.fields(Preset)}
        assert set(d["canvas"]) == {f.name for f in dataclasses.fields(CanvasSpec)}
        assert set(d["visible_style"]) == {f.name for f in dataclasses.fields(VisibleStyle)}
        assert set(d["metadata"]) == {f.name for f in dataclasses.fields(MetadataPolicy)}
    assert "SKU123.MAIN.jpg" in describe_preset(builtins["amazon"])


def test_env_var_overrides_builtin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write) -> None:
    write("mine.toml", MINIMAL)
    monkeypatch.setenv(PRESETS_DIR_ENV, str(tmp_path))
    assert builtin_presets_dir() == tmp_path
    assert [p.name for p in list_presets()] == ["mine"]
    with pytest.raises(PresetError, match="available: mine"):
        load_preset("amazon")


# ---------------------------------------------------------------------------------------------- the field table


def _table_leaves() -> list[tuple[tuple[str, ...], Field]]:
    """(path in the resolved dict, field) for every attribute leaf of the schema table."""
    out: list[tuple[tuple[str, ...], Field]] = []
    for item in PRESET_SCHEMA:
        if isinstance(item, Field):
            if item.attribute:
                out.append(((), item))
        elif isinstance(item, Table):
            out += [((item.key,), f) for f in item.fields]
        else:
            assert isinstance(item, PerRole)
            sub = item.item
            for role in ROLES:
                if isinstance(sub, Table):
                    out += [((item.key, role), f) for f in sub.fields]
                else:
                    out.append(((item.key,), dataclasses.replace(sub, key=role)))
    return out


def test_table_drives_defaults_dict_and_describe(write) -> None:
    """Every setting of the table is in preset_as_dict and describe_preset, and its default is what loads."""
    p = load_preset(str(write("minimal.toml", MINIMAL)))
    d, text = preset_as_dict(p), describe_preset(p)
    set_in_minimal = {(), ("canvas",), ("naming",)}
    for where, f in _table_leaves():
        node = d
        for k in where:
            node = node[k]
        assert f.key in node, (where, f.key)
        if f.key not in ("name", "path", "digest"):
            assert f.key in text, f.key
        assert f.doc and f.doc in text, f"{where} {f.key}: no description, or describe_preset leaves it out"
        if f.default is not REQUIRED and f.check is not None and f.inherited and f.key not in MINIMAL:
            assert node[f.key] == f.dump(f.load(f.default)), (where, f.key)
        elif f.default is REQUIRED and f.inherited:
            assert where in set_in_minimal, f"{where} {f.key} is required but MINIMAL does not set it"
    # the TOML layout is the table's: every TOML key of the table is a key of SCHEMA, and nothing else
    toml_leaves = {(*w, f.key) for w, f in _table_leaves() if f.check is not None} | {("extends",)}
    schema_leaves: set[tuple[str, ...]] = set()

    def walk(node: dict, prefix: tuple[str, ...]) -> None:
        for k, v in node.items():
            walk(v, (*prefix, k)) if isinstance(v, dict) else schema_leaves.add((*prefix, k))

    walk(SCHEMA, ())
    assert schema_leaves == toml_leaves


def test_dataclass_defaults_are_the_tables() -> None:
    assert CanvasSpec(width=1, height=1, fit="fit").background == (255, 255, 255)
    tables = {i.key: i for i in PRESET_SCHEMA if isinstance(i, Table)}
    for cls, key in ((VisibleStyle, "visible_style"), (MetadataPolicy, "metadata")):
        assert dataclasses.asdict(cls()) == {f.key: f.default for f in tables[key].fields}


def test_preset_from_dict_is_a_preset_file(write) -> None:
    doc = tomllib.loads(MINIMAL)
    from_file = load_preset(str(write("same.toml", MINIMAL)))
    from_dict = preset_from_dict(doc, name="same", path="<mine>")
    assert from_dict.digest == from_file.digest
    assert dataclasses.replace(from_dict, path=from_file.path) == from_file
    with pytest.raises(PresetError, match=r"^<mine>: \[canvas\] widht: unknown key; did you mean 'width'\?"):
        preset_from_dict(doc | {"canvas": {"widht": 5}}, path="<mine>")
    with pytest.raises(PresetError, match=r"^<mine>: quality: missing \(required"):
        preset_from_dict({k: v for k, v in doc.items() if k != "quality"}, path="<mine>")
    with pytest.raises(PresetError, match=r"^<mine>: extends: not supported"):
        preset_from_dict(doc | {"extends": "amazon"}, path="<mine>")


# ---------------------------------------------------------------------------------------------- extends


def test_extends_builtin_overrides_deeply(write) -> None:
    path = write("my-amazon.toml", 'extends = "amazon"\nquality = 80\n[canvas]\nwidth = 1000\nheight = 1000\n'
                                   "[marks.gallery]\nvisible = true\n")
    base, mine = load_preset("amazon"), load_preset(str(path))
    assert mine.name == "my-amazon"  # name is not inherited
    assert mine.path == str(path)
    assert (mine.canvas.width, mine.canvas.height, mine.quality) == (1000, 1000, 80)
    assert mine.canvas.fit == base.canvas.fit and mine.canvas.min_long_side == base.canvas.min_long_side
    assert mine.marks["gallery"].visible and mine.marks["gallery"].invisible
    assert mine.marks["main"] == base.marks["main"]
    assert mine.naming == base.naming and mine.sources == base.sources
    assert mine.digest != base.digest


def test_extends_relative_path_chain(write) -> None:
    write("shared/base.toml", MINIMAL + '\n[marks.main]\nvisible = true\n')
    write("shared/mid.toml", 'extends = "base.toml"\nformat = "png"\n[canvas]\nbackground = [0, 0, 0]\n')
    top = write("top.toml", 'name = "top-one"\nextends = "./shared/mid.toml"\nmin_quality = 50\n')
    p = load_preset(str(top))
    assert p.name == "top-one"
    assert p.format == "png" and p.extension == "png"
    assert p.canvas.background == (0, 0, 0) and p.canvas.width == 800
    assert p.min_quality == 50 and p.marks["main"].visible
    assert p.marks["gallery"].visible is False and p.marks["gallery"].invisible is True  # safe defaults


def test_extends_error_names_parent_file(write) -> None:
    write("base.toml", MINIMAL.replace("quality = 90", "quality = 900"))
    child = write("child.toml", 'extends = "base.toml"\n')
    with pytest.raises(PresetError, match=r"base\.toml: quality: expected an integer 1-100, got 900"):
        load_preset(str(child))


def test_cross_field_error_blames_file_that_set_the_key(write) -> None:
    write("base.toml", MINIMAL)
    child = write("child.toml", 'extends = "base.toml"\nmin_quality = 95\n')
    with pytest.raises(PresetError, match=r"child\.toml: min_quality: 95 is above quality \(90\)"):
        load_preset(str(child))


@pytest.mark.parametrize(
    "files, start",
    [
        ({"a.toml": 'extends = "b.toml"', "b.toml": 'extends = "a.toml"'}, "a.toml"),
        ({"self.toml": 'extends = "self.toml"'}, "self.toml"),
        ({"x.toml": 'extends = "y.toml"', "y.toml": 'extends = "z.toml"', "z.toml": 'extends = "./x.toml"'}, "x.toml"),
    ],
)
def test_extends_cycle_detected(files: dict[str, str], start: str, write, tmp_path: Path) -> None:
    for name, text in files.items():
        write(name, text + "\n")
    with pytest.raises(PresetError, match="extends: cycle"):
        load_preset(str(tmp_path / start))


# ---------------------------------------------------------------------------------------------- errors

BAD_CASES = [
    # (toml text appended to / replacing MINIMAL, substring that must be in the message)
    ('colour = "red"', "colour: unknown key"),
    ("[canvas]\nwidht = 5", "[canvas] widht: unknown key; did you mean 'width'?"),
    ('[canvas]\nwidth = "wide"', '[canvas] width: expected a positive integer (at most 20000), got "wide"'),
    ("[canvas]\nwidth = 0", "[canvas] width: expected a positive integer"),
    ("[canvas]\nheight = true", "[canvas] height: expected a positive integer (at most 20000), got true"),
    ('[canvas]\nfit = "stretch"', '[canvas] fit: expected one of "fit", "pad", "cover", got "stretch"'),
    ("[canvas]\nbackground = [255, 255, 256]", "[canvas] background: expected [r, g, b] with integers 0-255"),
    ("[canvas]\nbackground = [255, 255]", "[canvas] background: expected [r, g, b]"),
    ("[canvas]\nmin_long_side = 5000", "[canvas] min_long_side: 5000 is larger than the canvas (800x600)"),
    ("[canvas]\nmin_fill = 1.5", "[canvas] min_fill: expected a fraction 0-1 (0: off), got 1.5"),
    ("[canvas]\nmax_upscale = 0.5", "[canvas] max_upscale: expected a number 1-8, got 0.5"),
    ('[canvas]\nfill_roles = ["hero"]', '[canvas] fill_roles: expected a list of roles'),
    ('[canvas]\nfit = "fit"\nmin_fill = 0.85', '[canvas] min_fill: needs fit = "pad" (the frame is the box; '
                                              'fit = "fit" here)'),
    ("quality = 0", "quality: expected an integer 1-100, got 0"),
    ("quality = 101", "quality: expected an integer 1-100, got 101"),
    ("quality = 90.5", "quality: expected an integer 1-100, got 90.5"),
    ("min_quality = 95", "min_quality: 95 is above quality (90)"),
    ('format = "gif"', 'format: expected one of "jpeg", "png", "webp", got "gif"'),
    ("max_bytes = -1", "max_bytes: expected a byte count"),
    ('subsampling = "4:1:1"', "subsampling: expected one of"),
    ('pure_white_roles = ["hero"]', 'pure_white_roles: expected a list of roles ("main", "gallery")'),
    ("[marks.hero]\nvisible = true", "[marks] hero: unknown role (roles are main, gallery)"),
    ('[marks.main]\nvisible = "no"', '[marks.main] visible: expected true or false, got "no"'),
    ("marks = 3", "marks: expected a table [marks], got 3"),
    ("[visible_style]\nopacity = [0.5, 0.2]", "[visible_style] opacity: expected [low, high]"),
    ("[visible_style]\nrotation = 120", "[visible_style] rotation: expected a number of degrees 0-90"),
    ('[naming]\nmain = "{sku}/{color}.{ext}"', "[naming] main: unknown field {color}"),
    ('[naming]\nmain = "{sku.__class__}.{ext}"', "[naming] main: unknown field {sku.__class__}"),
    ('[naming]\nmain = "{sku:05d}.{ext}"', "[naming] main: template does not format with sample values"),
    ('[naming]\nmain = "{sku}.png"', "[naming] main: the file name must end in .jpg or .jpeg"),
    ('[naming]\nmain = "/abs/{sku}.{ext}"', "[naming] main: the output name must be a relative path"),
    ('[naming]\ngallery = "../{sku}-{n}.{ext}"', "[naming] gallery: the output name must not contain '..'"),
    ('[naming]\ngallery = "{sku}-x.{ext}"', "[naming] gallery: every gallery image would get the same name"),
    ('[naming]\nmain = "{sku}-01.{ext}"', "[naming] main: collides with the gallery name"),
    ('[naming]\nthumb = "{sku}.{ext}"', "[naming] thumb: unknown role"),
    ("name = 'a b'", "name: expected a preset name"),
    ('extends = "no-such-preset"', "extends: unknown preset 'no-such-preset'"),
    ('extends = "missing.toml"', "extends: no such preset file"),
    ('extends = ""', "extends: expected a non-empty string"),
]


def _merged(base: str, extra: str) -> str:
    """MINIMAL with ``extra`` (TOML) merged in, tables key by key."""
    doc = tomllib.loads(base)
    for key, value in tomllib.loads(extra).items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = doc[key] | value
        else:
            doc[key] = value
    return _toml(doc)


@pytest.mark.parametrize("extra, expected", BAD_CASES)
def test_invalid_preset_message_names_file_and_key(extra: str, expected: str, write) -> None:
    path = write("my.toml", _merged(MINIMAL, extra))
    with pytest.raises(PresetError) as info:
        load_preset(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert isinstance(info.value, ConfigError)  # the CLI maps it to exit code 2
    assert info.value.exit_code == 2


@pytest.mark.parametrize("missing", ["format", "quality", "width", "main"])
def test_missing_required_key(missing: str, write) -> None:
    text = "\n".join(ln for ln in MINIMAL.splitlines() if ln.split("=")[0].strip() != missing)
    path = write("partial.toml", text)
    with pytest.raises(PresetError, match=rf"partial\.toml: .*{missing}: missing \(required"):
        load_preset(str(path))


def test_unknown_name_lists_available() -> None:
    with pytest.raises(PresetError) as info:
        load_preset("amazn")
    message = str(info.value)
    assert "unknown preset 'amazn'" in message and "did you mean 'amazon'?" in message
    for name in REQUIRED_BUILTINS:
        assert name in message


def test_invalid_toml(write) -> None:
    path = write("syntax.toml", MINIMAL + "quality = \n")
    with pytest.raises(PresetError, match=r"syntax\.toml: invalid TOML"):
        load_preset(str(path))


def test_missing_user_file() -> None:
    with pytest.raises(PresetError, match=r"nope/x\.toml: no such preset file"):
        load_preset("nope/x.toml")


def test_wrong_value_in_builtin_file_names_it(tmp_path: Path, write) -> None:
    write("broken.toml", MINIMAL.replace('fit = "pad"', 'fit = "pad"\nupscale = "yes"'))
    with pytest.raises(PresetError, match=r"broken\.toml: \[canvas\] upscale: expected true or false"):
        load_preset("broken", search_dir=tmp_path)


# ---------------------------------------------------------------------------------------------- digest


def test_digest_stable_and_path_independent(write) -> None:
    a = load_preset(str(write("a/same.toml", MINIMAL)))
    b = load_preset(str(write("b/same.toml", "# a comment only\n" + MINIMAL)))
    assert a.path != b.path
    assert a.digest == b.digest == load_preset(a.path).digest


@pytest.mark.parametrize(
    "old, new",
    [
        ("quality = 90", "quality = 89"),
        ("width = 800", "width = 801"),
        ('fit = "pad"', 'fit = "cover"'),
        ('gallery = "{sku}-{n:02d}.{ext}"', 'gallery = "{sku}-{n:03d}.{ext}"'),
        ("min_quality = 60", "min_quality = 60\n[marks.main]\nvisible = true"),
        ("min_quality = 60", "min_quality = 60\n[metadata]\nkeep_camera = true"),
        ("min_quality = 60", "min_quality = 60\nmax_bytes = 1000"),
    ],
)
def test_digest_changes_with_any_setting(old: str, new: str, write) -> None:
    assert old in MINIMAL
    base = load_preset(str(write("p.toml", MINIMAL)))
    changed = load_preset(str(write("q/p.toml", MINIMAL.replace(old, new))))
    assert changed.digest != base.digest


def test_digest_ignores_equal_spellings(write) -> None:
    a = load_preset(str(write("a/p.toml", MINIMAL + "[visible_style]\nrotation = 25\n")))
    b = load_preset(str(write("b/p.toml", MINIMAL + "[visible_style]\nrotation = 25.0\n")))
    c = load_preset(str(write("c/p.toml", MINIMAL)))  # 25.0 is also the default
    assert a.digest == b.digest == c.digest


# ---------------------------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    "sku, stem",
    [("..", "x"), ("a/../..", "x"), ("", "x"), ("ok", "..")],
)
def test_render_rejects_escapes(sku: str, stem: str, write) -> None:
    p = load_preset(str(write("n.toml", MINIMAL.replace('gallery = "{sku}-{n:02d}.{ext}"',
                                                        'gallery = "{sku}/{stem}/{n}.{ext}"'))))
    with pytest.raises(PresetError, match=r"n\.toml: \[naming\] gallery: "):
        render_output_name(p, sku=sku, role="gallery", n=1, position=1, stem=stem)


def test_render_fields(write) -> None:
    p = load_preset(str(write("fields.toml", MINIMAL.replace(
        'gallery = "{sku}-{n:02d}.{ext}"', 'gallery = "{preset}/{role}/{sku}_{position}_{n:03d}_{stem}.{ext}"'))))
    name = render_output_name(p, sku="S1", role="gallery", n=7, position=9, stem="IMG")
    assert name == "fields/gallery/S1_9_007_IMG.jpg"
    with pytest.raises(PresetError, match="no template for role 'hero'"):
        render_output_name(p, sku="S1", role="hero", n=0, position=0, stem="x")


# ---------------------------------------------------------------------------------------------- round trip


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        # JSON string escapes are valid TOML basic-string escapes; TOML also wants DEL escaped
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


def _toml(doc: dict[str, object]) -> str:
    """Minimal TOML writer for the test (the stdlib has a reader only): scalars first, then tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]

    def tables(prefix: str, body: dict[str, object]) -> None:
        lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in body.items() if not isinstance(v, dict))
        for k, v in body.items():
            if isinstance(v, dict):
                tables(f"{prefix}.{k}", v)

    for k, v in doc.items():
        if isinstance(v, dict):
            tables(k, v)
    return "\n".join(lines) + "\n"


unit = st.floats(0.0, 1.0, allow_nan=False)
pair = st.tuples(unit, unit).map(sorted)
scale_pair = st.tuples(st.floats(0.01, 1.0), st.floats(0.01, 1.0)).map(sorted)


@st.composite
def preset_docs(draw: st.DrawFn) -> dict[str, object]:
    quality = draw(st.integers(1, 100))
    width, height = draw(st.integers(1, 5000)), draw(st.integers(1, 5000))
    fmt = draw(st.sampled_from(["jpeg", "png", "webp"]))
    fit = draw(st.sampled_from(["fit", "pad", "cover"]))
    return {
        "description": draw(st.text(max_size=40)),
        "sources": draw(st.lists(st.text(max_size=20), max_size=3)),
        "format": fmt,
        "quality": quality,
        "min_quality": draw(st.integers(1, quality)),
        "max_bytes": draw(st.integers(0, 50_000_000)),
        "subsampling": draw(st.sampled_from(["4:2:0", "4:2:2", "4:4:4"])),
        "pure_white_roles": draw(st.lists(st.sampled_from(["main", "gallery"]), unique=True)),
        "canvas": {
            "width": width,
            "height": height,
            "fit": fit,
            "background": draw(st.lists(st.integers(0, 255), min_size=3, max_size=3)),
            "upscale": draw(st.booleans()),
            "min_long_side": draw(st.integers(0, max(width, height))),
            "min_fill": draw(unit) if fit == "pad" else 0.0,  # min_fill needs pad
            "max_upscale": draw(st.floats(1.0, 8.0)),
            "fill_roles": draw(st.lists(st.sampled_from(["main", "gallery"]), unique=True).map(
                lambda r: sorted(r, key=ROLES.index))),
        },
        "marks": {r: {"visible": draw(st.booleans()), "invisible": draw(st.booleans())} for r in ROLES},
        "visible_style": {
            "opacity": draw(pair),
            "scale": draw(scale_pair),
            "rotation": draw(st.floats(0, 90)),
            "warp": draw(st.floats(0, 0.5)),
        },
        "metadata": {k: draw(st.booleans()) for k in ("exif", "xmp", "iptc", "keep_capture_date", "keep_camera")}
        | {"keep": draw(st.lists(st.sampled_from(KEEP_FIELDS), unique=True).map(
            lambda k: sorted(k, key=KEEP_FIELDS.index)))},
        "naming": {
            "main": draw(st.sampled_from(["{sku}.MAIN.{ext}", "{sku}/{sku}-main.{ext}", "{preset}/{sku}-{role}.{ext}"])),
            "gallery": draw(st.sampled_from(["{sku}.PT{n:02d}.{ext}", "{sku}/{position:03d}-{stem}.{ext}"])),
        },
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=preset_docs())
def test_round_trip_random_valid_values(doc: dict[str, object], tmp_path: Path) -> None:
    text = _toml(doc)
    assert tomllib.loads(text)["quality"] == doc["quality"]  # the test's writer is sound
    path = tmp_path / "rt.toml"
    path.write_text(text, encoding="utf-8")
    p = load_preset(str(path))
    d = preset_as_dict(p)
    expected = dict(doc)
    expected["max_bytes"] = doc["max_bytes"] or None
    expected["pure_white_roles"] = sorted(doc["pure_white_roles"], key=ROLES.index)  # type: ignore[call-overload]
    for key, value in expected.items():
        got = d[key]
        if key == "visible_style":
            vs = value  # type: ignore[assignment]
            assert got == {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in vs.items()}  # type: ignore[union-attr]
        elif key == "sources":
            assert got == list(value)  # type: ignore[call-overload]
        else:
            assert got == value, key
    # writing the resolved dict back out gives the same preset (and digest)
    back = {k: v for k, v in d.items() if k not in ("name", "path", "digest")}
    back["max_bytes"] = back["max_bytes"] or 0
    path2 = tmp_path / "again" / "rt.toml"
    path2.parent.mkdir(exist_ok=True)
    path2.write_text(_toml(back), encoding="utf-8")
    assert load_preset(str(path2)).digest == p.digest


# ---------------------------------------------------------------------------------------------- citations


def test_presets_cite_only_the_repository_and_public_pages(builtins: dict[str, Preset]) -> None:
    """Comments point at docs/storefronts.md sections that exist; nothing points outside the repository."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "storefronts.md").read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in doc.splitlines() if line.startswith("## ")
    }
    for p in builtins.values():
        text = Path(p.path).read_text(encoding="utf-8")
        assert not re.search(r"/work/|shared/|research/|perf-baselines|section \d", text), p.path
        cited = re.findall(r"docs/storefronts\.md#([a-z0-9-]+)", text)
        assert cited, f"{p.path} does not cite its section of docs/storefronts.md"
        assert set(cited) <= anchors, (p.path, set(cited) - anchors)


# ---------------------------------------------------------------------------------------------- product fill


def test_fill_settings_and_their_digest(builtins: dict[str, Preset], write) -> None:
    amazon = builtins["amazon"]
    assert (amazon.canvas.min_fill, amazon.canvas.max_upscale, amazon.canvas.fill_roles) == (0.85, 1.5, ("main",))
    assert amazon.canvas.for_role("main") == amazon.canvas
    assert amazon.canvas.for_role("gallery").min_fill == 0.0 and amazon.canvas.for_role(None).min_fill == 0.0
    assert "min_fill" in describe_preset(amazon) and preset_as_dict(amazon)["canvas"]["min_fill"] == 0.85
    # A preset that does not set them has the digest it had before they existed (no export of it goes stale)...
    plain = load_preset(str(write("plain/p.toml", MINIMAL)))
    explicit = load_preset(str(write("explicit/p.toml", _merged(MINIMAL, "[canvas]\nmin_fill = 0\nmax_upscale = 1\n"
                                                                        'fill_roles = ["main"]'))))
    assert explicit.digest == plain.digest
    # ... and one that does is another preset
    fill = load_preset(str(write("fill/p.toml", _merged(MINIMAL, "[canvas]\nmin_fill = 0.85"))))
    assert fill.digest != plain.digest
