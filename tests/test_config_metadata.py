"""Tests for ``[metadata] keep`` in the owner profile (pipeline.config) and in presets (pipeline.presets): what is
accepted, what is refused (naming the file and the bad name), and what it does to the rerun key and the digest."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.config import load_owner
from pipeline.errors import ConfigError, PresetError
from pipeline.plan import owner_digest
from pipeline.presets import KEEP_FIELDS, load_preset, preset_as_dict

OWNER = '[owner]\nname = "Keep Studio"\n'


def _profile(tmp_path: Path, body: str, name: str = "catalogmark.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_profile_keep_list_becomes_owner_keep_metadata(tmp_path: Path) -> None:
    _profile(tmp_path, OWNER + '\n[metadata]\nkeep = ["location", "keywords", "keywords", "ai_provenance"]\n')
    owner = load_owner(cwd=tmp_path)
    assert owner.keep_metadata == ("keywords", "location", "ai_provenance")  # schema order, once each


def test_no_metadata_table_keeps_nothing_and_an_empty_one_too(tmp_path: Path) -> None:
    _profile(tmp_path, OWNER)
    assert load_owner(cwd=tmp_path).keep_metadata == ()
    _profile(tmp_path, OWNER + "\n[metadata]\n")
    assert load_owner(cwd=tmp_path).keep_metadata == ()


def test_pyproject_form(tmp_path: Path) -> None:
    _profile(tmp_path, '[tool.catalogmark.owner]\nname = "Py"\n\n[tool.catalogmark.metadata]\nkeep = ["title"]\n',
             "pyproject.toml")
    assert load_owner(cwd=tmp_path).keep_metadata == ("title",)


@pytest.mark.parametrize(("body", "expected"), [
    ('keep = ["keywords", "gps"]', "[metadata] keep: 'gps' is never kept: private"),
    ('keep = ["serial"]', "[metadata] keep: 'serial' is never kept"),
    ('keep = ["thumbnail"]', "[metadata] keep: 'thumbnail' is never kept: the unmarked original"),
    ('keep = ["titel"]', "[metadata] keep: unknown name 'titel' (known: keywords, title, caption, location, "
                         "ai_provenance)"),
    ('keep = "title"', "[metadata] keep: expected a list of names"),
    ("keep = [1]", "[metadata] keep: expected a list of names"),
    ('kept = ["title"]', "[metadata] kept: unknown key (known: keep)"),
])
def test_profile_refuses_bad_keep_lists_naming_file_and_name(tmp_path: Path, body: str, expected: str) -> None:
    path = _profile(tmp_path, OWNER + f"\n[metadata]\n{body}\n")
    with pytest.raises(ConfigError) as err:
        load_owner(cwd=tmp_path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value)


def test_profile_metadata_must_be_a_table_and_is_listed_as_known(tmp_path: Path) -> None:
    path = _profile(tmp_path, 'metadata = "keep"\n' + OWNER)
    with pytest.raises(ConfigError, match=r"\[metadata\]: expected a table") as err:
        load_owner(cwd=tmp_path)
    assert str(err.value).startswith(str(path))
    _profile(tmp_path, OWNER + '\n[metdata]\nkeep = ["title"]\n')
    with pytest.raises(ConfigError, match=r"\[metdata\]: unknown table or key \(known: .*\[metadata\]"):
        load_owner(cwd=tmp_path)


def test_owner_keep_is_part_of_the_rerun_key_only_when_set(tmp_path: Path) -> None:
    _profile(tmp_path, OWNER)
    plain = load_owner(cwd=tmp_path)
    _profile(tmp_path, OWNER + "\n[metadata]\nkeep = []\n")
    assert owner_digest(load_owner(cwd=tmp_path)) == owner_digest(plain)
    assert owner_digest(dataclasses.replace(plain, keep_metadata=("title",))) != owner_digest(plain)
    assert owner_digest(dataclasses.replace(plain, keep_metadata=("title",))) != owner_digest(
        dataclasses.replace(plain, keep_metadata=("keywords",)))


# ---------------------------------------------------------------------------------------------- presets

MINIMAL = """
format = "jpeg"
quality = 90
min_quality = 70
[canvas]
width = 800
height = 800
fit = "pad"
[naming]
main = "{sku}.main.{ext}"
gallery = "{sku}.{n}.{ext}"
"""


def _preset(tmp_path: Path, name: str, extra: str) -> Path:
    path = tmp_path / name / "p.toml"
    path.parent.mkdir(parents=True)
    path.write_text(MINIMAL + extra)
    return path


def test_google_merchant_keeps_ai_provenance_by_default_and_others_keep_nothing() -> None:
    from pipeline.presets import list_presets

    keeps = {p.name: p.metadata.keep for p in list_presets()}
    assert keeps.pop("google-merchant") == ("ai_provenance",)
    assert set(keeps.values()) == {()}


def test_preset_keep_list_normalised_and_in_the_digest_only_when_set(tmp_path: Path) -> None:
    plain = load_preset(str(_preset(tmp_path, "plain", "")))
    empty = load_preset(str(_preset(tmp_path, "empty", "[metadata]\nkeep = []\n")))
    kept = load_preset(str(_preset(tmp_path, "kept", '[metadata]\nkeep = ["location", "title", "title"]\n')))
    assert plain.metadata.keep == () and empty.digest == plain.digest  # no existing export goes stale
    assert kept.metadata.keep == ("title", "location") and kept.digest != plain.digest
    assert preset_as_dict(kept)["metadata"]["keep"] == ["title", "location"]


@pytest.mark.parametrize(("keep", "expected"), [
    ('["keywords", "gps"]', "[metadata] keep: 'gps' is never kept"),
    ('["caption", "location", "exif"]', "[metadata] keep: unknown name 'exif' (known: "
                                        + ", ".join(KEEP_FIELDS) + ")"),
    ('"title"', "[metadata] keep: expected a list of names"),
])
def test_preset_refuses_bad_keep_lists_naming_file_and_name(tmp_path: Path, keep: str, expected: str) -> None:
    path = _preset(tmp_path, "bad", f"[metadata]\nkeep = {keep}\n")
    with pytest.raises(PresetError) as err:
        load_preset(str(path))
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value)


def test_extends_replaces_the_keep_list(tmp_path: Path) -> None:
    path = tmp_path / "gm-keywords.toml"
    path.write_text('extends = "google-merchant"\n[metadata]\nkeep = ["keywords"]\n')
    assert load_preset(str(path)).metadata.keep == ("keywords",)  # arrays replace: list ai_provenance to keep it
    path.write_text('extends = "google-merchant"\n[metadata]\nxmp = true\n')
    assert load_preset(str(path)).metadata.keep == ("ai_provenance",)
