"""Tests for pipeline.catalog: SKU, role and position assignment, catalog.csv overrides, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.catalog import discover
from pipeline.errors import ConfigError, InputError


@pytest.fixture
def tree(tmp_path):
    def make(*names: str):
        for n in names:
            p = tmp_path / "cat" / n
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x")
        return tmp_path / "cat"

    return make


def test_first_level_folder_is_sku_and_first_file_is_main(tree):
    root = tree("A1/b.jpg", "A1/a.jpg", "A1/c.png", "B2/x.webp")
    items = discover([root])
    assert [(i.sku, i.role, i.position, i.display.split("/")[-1]) for i in items] == [
        ("A1", "main", 0, "a.jpg"), ("A1", "gallery", 1, "b.jpg"), ("A1", "gallery", 2, "c.png"),
        ("B2", "main", 0, "x.webp"),
    ]


def test_file_named_main_wins_and_natural_sort(tree):
    root = tree("S/img10.jpg", "S/img2.jpg", "S/main.png")
    items = discover([root])
    assert [(i.role, i.display.split("/")[-1]) for i in items] == [
        ("main", "main.png"), ("gallery", "img2.jpg"), ("gallery", "img10.jpg")]


def test_loose_files_use_their_stem_and_nested_folders_belong_to_top_sku(tree):
    root = tree("loose.jpg", "S/sub/deep.jpg", "S/top.jpg", ".hidden/x.jpg", "S/notes.txt", "S/.DS_Store")
    items = discover([root])
    assert {(i.sku, i.display.split("/")[-1]) for i in items} == {
        ("loose", "loose.jpg"), ("S", "deep.jpg"), ("S", "top.jpg")}


def test_catalog_csv_overrides(tree):
    root = tree("S/a.jpg", "S/b.jpg", "T/c.jpg")
    (root / "catalog.csv").write_text("path,sku,role\nS/b.jpg,S,main\nT/c.jpg,S,gallery\n")
    items = discover([root])
    assert [(i.sku, i.role, i.display.split("/")[-1]) for i in items] == [
        ("S", "main", "b.jpg"), ("S", "gallery", "a.jpg"), ("S", "gallery", "c.jpg")]


@pytest.mark.parametrize("csv_text, message", [
    ("file,sku\n", "missing column"),
    ("path,sku,role\nS/a.jpg,S,hero\n", "role must be main or gallery"),
    ("path,sku\nS/nope.jpg,S\n", "no such file"),
    ("path,sku,role\nS/a.jpg,S,main\nS/b.jpg,S,main\n", "main images"),
    ("path,sku\nS/a.jpg,../evil\n", "invalid SKU"),
])
def test_bad_catalog_csv_names_file_and_problem(tree, csv_text, message):
    root = tree("S/a.jpg", "S/b.jpg")
    (root / "catalog.csv").write_text(csv_text)
    with pytest.raises(ConfigError, match=message):
        discover([root])


def test_missing_source_is_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        discover([tmp_path / "missing"])
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InputError, match="not an image"):
        discover([tmp_path / "a.txt"])


def test_same_file_twice_is_listed_once(tree):
    root = tree("S/a.jpg")
    assert len(discover([root, root / "S" / "a.jpg"])) == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)),
                min_size=1, max_size=12, unique=True))
def test_every_sku_has_exactly_one_main_and_dense_positions(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("cat")
    for sku, stem in files:
        (root / sku).mkdir(exist_ok=True)
        (root / sku / f"{stem}.jpg").write_bytes(b"x")
    items = discover([root])
    assert len(items) == len(files)
    for sku in {s for s, _ in files}:
        mine = [i for i in items if i.sku == sku]
        assert [i.role for i in mine].count("main") == 1
        assert sorted(i.position for i in mine) == list(range(len(mine)))
