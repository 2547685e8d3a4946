"""Watermark fonts: the profile's font draws Japanese and Cyrillic marks; text a font cannot draw is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.config import load_owner
from pipeline.errors import ConfigError
from pipeline.marks import fonts, visible
from pipeline.models import Owner, VisibleMark
from tests.helpers import cm

# Debian's fonts-ipafont-gothic, installed by `make sysdeps` (scripts/ensure-sysdeps.sh): Japanese and Cyrillic
IPA_GOTHIC = Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf")
JAPANESE = "山田写真館"
CYRILLIC = "Студия Иванова"


@pytest.fixture(scope="session")
def cjk_font() -> Path:
    if not IPA_GOTHIC.is_file():
        if os.environ.get("CATALOGMARK_REQUIRE_SYSDEPS"):
            pytest.fail(f"{IPA_GOTHIC} is required (CATALOGMARK_REQUIRE_SYSDEPS is set); run `make sysdeps`")
        pytest.skip("fonts-ipafont-gothic is not installed; run `make sysdeps`")
    return IPA_GOTHIC


def _ink(text: str, font: Path | None) -> np.ndarray:
    return visible._text_coverage(text, 80, None if font is None else str(font))


def test_the_default_font_draws_ascii_and_names_what_it_cannot() -> None:
    assert fonts.missing_glyphs("Example Studio (c) 2026 example.studio") == []
    # what missing_glyphs's ASCII shortcut relies on, read from the font's own character map
    assert set(range(0x21, 0x7F)) <= fonts._codepoints(None)
    text = f"{JAPANESE} {CYRILLIC} 山"
    assert fonts.missing_glyphs(text) == list(dict.fromkeys(text.replace(" ", "")))  # distinct, in order
    # what the refusal prevents: Pillow draws every missing character as the same .notdef box
    assert np.array_equal(_ink("山田", None), _ink("Жж", None))


@pytest.mark.parametrize("text", [JAPANESE, CYRILLIC, f"{JAPANESE} · {CYRILLIC}"])
def test_the_profile_font_draws_japanese_and_cyrillic_glyphs(text: str, cjk_font: Path) -> None:
    assert fonts.missing_glyphs(text, str(cjk_font)) == []
    box = _ink("\ue000" * len(text), cjk_font)  # private-use characters the font lacks: .notdef boxes
    ink = _ink(text, cjk_font)
    assert ink.max() > 0.9 and (ink.shape != box.shape or not np.allclose(ink, box, atol=0.1))
    # every character is its own glyph: no two different characters render the same
    singles = {c: _ink(c, cjk_font) for c in set(text) - {" "}}
    shapes = [(a.shape, a.tobytes()) for a in singles.values()]
    assert len(set(shapes)) == len(singles)


def test_a_whole_mark_renders_with_the_font(cjk_font: Path) -> None:
    owner = Owner(name="Owner", copyright="(c) Owner", watermark_text=JAPANESE, watermark_font=str(cjk_font))
    mark = VisibleMark(x=0.5, y=0.5, scale=0.6, rotation=0.0, opacity=0.5)
    rgba = visible.render_mark(owner, mark, (400, 300))
    ascii_mark = visible.render_mark(Owner(name="Owner", copyright="(c) Owner", watermark_text="ABCDE"), mark,
                                     (400, 300))
    assert rgba.shape == (300, 400, 4) and rgba[..., 3].max() > 0
    assert not np.array_equal(rgba[..., 3] > 0, ascii_mark[..., 3] > 0)


def test_profile_font_key_and_refusal(tmp_path: Path, cjk_font: Path) -> None:
    (tmp_path / "catalogmark.toml").write_text(f'[owner]\nname = "{CYRILLIC}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"has no glyph for 'С' \(U\+0421\)") as err:
        load_owner(cwd=tmp_path)
    assert "[watermark] font" in str(err.value) and "catalogmark.toml" in str(err.value)
    (tmp_path / "catalogmark.toml").write_text(f'[owner]\nname = "{CYRILLIC}"\n[watermark]\nfont = "{cjk_font}"\n',
                                               encoding="utf-8")
    owner = load_owner(cwd=tmp_path)
    assert owner.watermark_font == str(cjk_font.resolve()) and owner.watermark_text == CYRILLIC
    (tmp_path / "not-a-font.ttf").write_bytes(b"hello")
    with pytest.raises(ConfigError, match="--watermark-font: .*not-a-font.ttf: not a font"):
        load_owner(cwd=tmp_path, overrides={"watermark_font": "not-a-font.ttf"})
    with pytest.raises(ConfigError, match="--watermark-font: font file not found"):
        load_owner(cwd=tmp_path, overrides={"watermark_font": "missing.ttf"})


def test_run_with_a_japanese_mark_through_the_cli(tmp_path: Path, cjk_font: Path) -> None:
    src = tmp_path / "shoot" / "SKU1"
    src.mkdir(parents=True)
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(60, 200, (900, 1200, 3), dtype=np.uint8)).save(src / "gallery-1.jpg")
    assert cm("keygen", "--key-file", str(tmp_path / "k.key")).returncode == 0
    base = ["run", str(tmp_path / "shoot"), "--preset", "web", "--out", str(tmp_path / "out"),
            "--key-file", str(tmp_path / "k.key"), "--owner", "Owner", "--watermark-text", JAPANESE, "--jobs", "1"]
    refused = cm(*base)
    assert refused.returncode == 2 and "has no glyph for '山' (U+5C71)" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "out").exists()
    ok = cm(*base, "--watermark-font", str(cjk_font), "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["processed"] == 1 and doc["failed"] == 0
    # the font is part of the rerun key: the same run again is current, another font re-exports
    again = cm(*base, "--watermark-font", str(cjk_font), "--json")
    assert json.loads(again.stdout)["skipped"] == 1
    other = cm(*base, "--watermark-font", str(cjk_font.with_name("ipagp.ttf")), "--json")
    assert json.loads(other.stdout)["processed"] == 1
