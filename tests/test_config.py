"""Tests for pipeline.config: where the owner profile comes from, precedence, overrides and error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.config import find_config, load_owner
from pipeline.errors import ConfigError
from pipeline.marks import fonts

REPO = Path(__file__).resolve().parent.parent

PROFILE = """
[owner]
name = "File Studio"
copyright = "(c) 2025 File Studio."
url = "https://file.example/licence"

[watermark]
text = "file.example"
"""

PYPROJECT = """
[project]
name = "someone-elses-project"

[tool.catalogmark.owner]
name = "Pyproject Studio"

[tool.catalogmark.watermark]
text = "py.example"
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def logo_png(workdir: Path) -> Path:
    p = workdir / "assets" / "logo.png"
    p.parent.mkdir()
    Image.new("RGBA", (16, 8), (10, 20, 30, 128)).save(p)
    return p


# ---------------------------------------------------------------------------------------------- precedence


def test_catalogmark_toml_in_cwd(workdir: Path) -> None:
    (workdir / "catalogmark.toml").write_text(PROFILE)
    owner = load_owner(cwd=workdir)
    assert owner.name == "File Studio"
    assert owner.copyright == "(c) 2025 File Studio."
    assert owner.url == "https://file.example/licence"
    assert owner.watermark_text == "file.example"
    assert owner.watermark_logo is None
    assert find_config(None, workdir) == workdir / "catalogmark.toml"


def test_catalogmark_toml_beats_pyproject(workdir: Path) -> None:
    (workdir / "catalogmark.toml").write_text(PROFILE)
    (workdir / "pyproject.toml").write_text(PYPROJECT)
    assert load_owner(cwd=workdir).name == "File Studio"


def test_pyproject_tool_table(workdir: Path) -> None:
    (workdir / "pyproject.toml").write_text(PYPROJECT)
    owner = load_owner(cwd=workdir)
    assert (owner.name, owner.watermark_text) == ("Pyproject Studio", "py.example")
    assert find_config(None, workdir) == workdir / "pyproject.toml"


def test_pyproject_without_tool_table_is_ignored(workdir: Path) -> None:
    (workdir / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.ruff]\nline-length = 100\n')
    assert find_config(None, workdir) is None
    with pytest.raises(ConfigError, match="No owner profile found"):
        load_owner(cwd=workdir)


def test_explicit_config_beats_cwd(workdir: Path, tmp_path: Path) -> None:
    (workdir / "catalogmark.toml").write_text(PROFILE)
    other = tmp_path / "elsewhere" / "profile.toml"
    other.parent.mkdir()
    other.write_text('[owner]\nname = "Explicit"\n')
    assert load_owner(other, cwd=workdir).name == "Explicit"
    assert find_config(other, workdir) == other


def test_explicit_pyproject_config(tmp_path: Path, workdir: Path) -> None:
    p = tmp_path / "pyproject.toml"
    p.write_text(PYPROJECT)
    assert load_owner(p, cwd=workdir).name == "Pyproject Studio"


def test_missing_explicit_config(workdir: Path) -> None:
    (workdir / "catalogmark.toml").write_text(PROFILE)  # must not be used as a fallback
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        load_owner(workdir / "nope.toml", cwd=workdir)


def test_flags_override_file(workdir: Path, logo_png: Path) -> None:
    (workdir / "catalogmark.toml").write_text(PROFILE)
    owner = load_owner(
        cwd=workdir,
        overrides={"name": "Flag Studio", "url": None, "watermark_text": "flag.example",
                   "watermark_logo": "assets/logo.png", "copyright": None},
    )
    assert owner.name == "Flag Studio"
    assert owner.url == "https://file.example/licence"  # None means "not given"
    assert owner.copyright == "(c) 2025 File Studio."
    assert owner.watermark_text == "flag.example"
    assert owner.watermark_logo == str(logo_png.resolve())


def test_flags_alone_are_enough(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01T00:00:00Z
    owner = load_owner(cwd=workdir, overrides={"name": "Solo"})
    assert owner.name == "Solo"
    assert owner.copyright == "(c) 2026 Solo. All rights reserved."
    assert owner.watermark_text == "Solo"  # something to draw when no text or logo is configured


def test_default_copyright_uses_year(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "catalogmark.toml").write_text('[owner]\nname = "Year Co"\n[watermark]\ntext = "y.co"\n')
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "946684800")  # 2000-01-01
    assert load_owner(cwd=workdir).copyright == "(c) 2000 Year Co. All rights reserved."
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "soon")
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
        load_owner(cwd=workdir)


def test_logo_relative_to_config_file(tmp_path: Path, workdir: Path) -> None:
    cfg_dir = tmp_path / "cfg"
    (cfg_dir / "img").mkdir(parents=True)
    Image.new("RGBA", (4, 4)).save(cfg_dir / "img" / "mark.png")
    cfg = cfg_dir / "catalogmark.toml"
    cfg.write_text('[owner]\nname = "Logo Co"\n[watermark]\nlogo = "img/mark.png"\n')
    owner = load_owner(cfg, cwd=workdir)
    assert owner.watermark_logo == str((cfg_dir / "img" / "mark.png").resolve())
    assert owner.watermark_text == ""  # a logo alone is a complete mark


def test_demo_profile() -> None:
    owner = load_owner(REPO / "demo" / "catalogmark.toml", cwd=REPO)
    assert owner.name == "Example Studio"
    assert owner.watermark_text == "example.studio"
    assert owner.url.startswith("https://")
    assert "Example Studio" in owner.copyright


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[owner]\nname = "A"\nemail = "a@b"\n', "[owner] email: unknown key (known: name, copyright, url)"),
        ('[owner]\nname = "A"\n[ledger]\npath = "x"\n', "[ledger]: unknown table or key"),
        ('title = "A"\n', "[title]: unknown table or key"),
        ("[owner]\nname = 42\n", "[owner] name: expected a string, got 42"),
        ('[owner]\nname = "A"\n[watermark]\ntext = ["a"]\n', "[watermark] text: expected a string, got ['a']"),
        ('owner = "A"\n', "[owner]: expected a table"),
        ('[owner]\nname = "A"\nurl = "example.com"\n', "[owner] url: expected an http(s) URL, got 'example.com'"),
        ('[owner]\nname = "A"\n[watermark]\nlogo = "missing.png"\n', "[watermark] logo: logo file not found"),
        ('[owner]\nname = "A"\n[watermark]\nlogo = "fake.png"\n', "[watermark] logo: not a readable image"),
        ('[owner]\nname = "  "\n', "[owner] name is missing or empty"),
        ('[watermark]\ntext = "x"\n', "[owner] name is missing or empty"),
        ('[owner\nname = "A"\n', "invalid TOML"),
    ],
)
def test_config_errors_name_file_and_key(text: str, expected: str, workdir: Path) -> None:
    (workdir / "fake.png").write_bytes(b"this is not a PNG")
    cfg = workdir / "catalogmark.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_owner(cwd=workdir)
    message = str(info.value)
    assert message.startswith(f"{cfg}: "), message
    assert expected in message, message
    assert info.value.exit_code == 2


def test_pyproject_errors_show_tool_prefix(workdir: Path) -> None:
    (workdir / "pyproject.toml").write_text('[tool.catalogmark.owner]\nname = "A"\nnmae = "B"\n')
    with pytest.raises(ConfigError, match=r"pyproject\.toml: \[tool\.catalogmark\.owner\] nmae: unknown key"):
        load_owner(cwd=workdir)


def test_no_owner_anywhere_explains_how(workdir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_owner(cwd=workdir)
    assert str(info.value) == "No owner profile found."
    detail = info.value.detail or ""  # catalogmark's own help, printed after the message as it is
    assert "catalogmark.toml" in detail and "\n    [owner]\n" in detail and 'name = "' in detail


def test_bad_overrides(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown owner override"):
        load_owner(cwd=workdir, overrides={"nam": "x"})
    with pytest.raises(ConfigError, match="--url: expected an http"):
        load_owner(cwd=workdir, overrides={"name": "x", "url": "ftp://x"})
    with pytest.raises(ConfigError, match="--watermark-logo: logo file not found"):
        load_owner(cwd=workdir, overrides={"name": "x", "watermark_logo": "none.png"})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(min_size=1, max_size=30).filter(lambda s: s.strip()),
    text=st.text(max_size=30),
    copyright_=st.none() | st.text(min_size=1, max_size=40),
)
def test_round_trip_strings(name: str, text: str, copyright_: str | None, workdir: Path) -> None:
    def q(s: str) -> str:
        return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")

    body = f"[owner]\nname = {q(name)}\n"
    if copyright_ is not None:
        body += f"copyright = {q(copyright_)}\n"
    body += f"[watermark]\ntext = {q(text)}\n"
    (workdir / "catalogmark.toml").write_text(body, encoding="utf-8")
    missing = fonts.missing_glyphs((text or name.strip()).strip())
    if missing:  # text Pillow's own font cannot draw is refused, naming the characters (not boxes in exports)
        with pytest.raises(ConfigError, match="has no glyph for") as err:
            load_owner(cwd=workdir)
        assert f"U+{ord(missing[0]):04X}" in str(err.value)
        return
    owner = load_owner(cwd=workdir)
    assert owner.name == name.strip()  # surrounding whitespace is dropped from the name only
    assert owner.watermark_text == (text or name.strip())
    if copyright_ is not None:
        assert owner.copyright == copyright_
    else:
        assert owner.copyright.endswith(f" {name.strip()}. All rights reserved.")


def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header claims w x h (a few hundred bytes on disk: what a decompression bomb looks like)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)  # 1-bit grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(("w", "h", "message"), [
    (5000, 4000, "20 MP, more than the 16 MP a logo may have"),  # under Pillow's limit, over ours
    (40000, 40000, "decompression bomb"),  # over Pillow's hard limit
])
def test_a_logo_too_large_to_read_is_a_config_error_from_its_header(workdir: Path, w: int, h: int,
                                                                    message: str) -> None:
    _png_header_only(workdir / "big.png", w, h)
    (workdir / "catalogmark.toml").write_text('[owner]\nname = "A"\n[watermark]\nlogo = "big.png"\n')
    with pytest.raises(ConfigError, match=message) as info:
        load_owner(cwd=workdir)
    assert "big.png" in str(info.value) and "[watermark] logo" in str(info.value)


def test_the_mark_renderer_refuses_a_logo_too_large_before_decoding_it(tmp_path: Path) -> None:
    from pipeline.errors import ImageError
    from pipeline.marks import visible

    path = _png_header_only(tmp_path / "big.png", 5000, 4000)
    with pytest.raises(ImageError, match="16 MP a logo may have"):
        visible._logo_coverage(str(path))
