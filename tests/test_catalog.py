"""Tests for pipeline.catalog: SKU, role and position assignment, catalog.csv overrides, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.catalog import IgnoredFile, discover, scan
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


def test_every_other_file_is_listed_as_ignored_with_why(tree):
    import os

    root = tree("S/a.jpg", "S/phone.HEIC", "S/shot.heif", "S/raw.dng", "S/raw.NEF", "S/raw.cr3", "S/raw.arw",
                "S/raw.raf", "S/raw.orf", "S/raw.rw2", "S/raw.pef", "S/raw.srw", "S/raw.cr2", "S/layout.psd",
                "S/notes.txt", "S/logo.svg", "S/README", "S/.DS_Store", ".git/config", "S/.a.jpg.x1.part",
                "manifest.json", "S/sub/manifest.json")
    (root / "catalog.csv").write_text("path,sku\nS/a.jpg,S\n")
    os.mkfifo(root / "S" / "pipe.jpg")
    (root / "S" / "gone.jpg").symlink_to(root / "S" / "missing.jpg")
    (root / "S" / "folder.jpg").mkdir()  # a directory is a container, never an image or an ignored file
    found = scan([root])
    assert sorted(i.display.split("/")[-1] for i in found.items) == sorted(
        ["a.jpg", "phone.HEIC", "shot.heif", "layout.psd"] + [f"raw.{s}" for s in
                                                              ("dng", "NEF", "cr3", "arw", "raf", "orf", "rw2",
                                                               "pef", "srw", "cr2")])
    why = {Path(i.path).relative_to(root).as_posix(): i.reason for i in found.ignored}
    assert set(why) == {"S/notes.txt", "S/logo.svg", "S/README", "S/pipe.jpg", "S/gone.jpg"}
    assert why["S/notes.txt"].startswith("not an image (suffix .txt")
    assert why["S/README"].startswith("not an image (no file name suffix")
    assert why["S/pipe.jpg"] == "not a regular file: a named pipe (FIFO)"
    assert why["S/gone.jpg"].startswith("broken symbolic link (to ")
    assert all(isinstance(i, IgnoredFile) for i in found.ignored)
    assert discover([root]) == found.items


def test_a_raw_or_psd_file_named_directly_is_an_image(tree):
    root = tree("shot.CR3", "layout.psd", "phone.heic")
    for name in ("shot.CR3", "layout.psd", "phone.heic"):
        (item,) = discover([root / name])
        assert item.sku == name.split(".")[0]


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
    # rows scan() would never meet: before, each was silently ignored and its photo kept the folder's SKU
    ("path,sku\n../outside.jpg,S\n", "outside"),
    ("path,sku\n/etc/hostname,S\n", "outside"),
    ("path,sku\nS/../../outside.jpg,S\n", "outside"),
    ("path,sku\n.hidden/x.jpg,S\n", "hidden"),
    ("path,sku\nS/notes.txt,S\n", "not an image file"),
    ("path,sku\nS/a.jpg,S\n./S/a.jpg,T\n", "listed twice \\(line 2 too\\)"),
])
def test_bad_catalog_csv_names_file_and_problem(tree, csv_text, message):
    root = tree("S/a.jpg", "S/b.jpg", "S/notes.txt", ".hidden/x.jpg", "../outside.jpg")
    (root / "catalog.csv").write_text(csv_text)
    with pytest.raises(ConfigError, match=message):
        discover([root])


def test_a_catalog_csv_path_written_another_way_still_names_the_same_file(tree):
    root = tree("S/a.jpg", "S/b.jpg")
    (root / "catalog.csv").write_text("path,sku\n./S//x/../a.jpg,OTHER\n")
    assert {(i.sku, i.display.split("/")[-1]) for i in discover([root])} == {("OTHER", "a.jpg"), ("S", "b.jpg")}


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


@pytest.mark.parametrize("names", [["①", "x²", "2", "10"], ["٣", "1", "x²0", "²"], ["A①1", "A1①", "A"]])
def test_sku_folders_with_any_kind_of_digit_are_sorted_without_error(tree, names):
    root = tree(*(f"{n}/a.jpg" for n in names))
    assert sorted(i.sku for i in discover([root])) == sorted(names)


@pytest.mark.parametrize("bad", ["A\\B", "A\nB", "tab\there", "bell\x07", "del\x7f", "c1\x85"])
def test_a_sku_that_cannot_be_a_file_name_fails_alone(tree, bad):
    root = tree(f"{bad}/a.jpg", f"{bad}/b.jpg", "GOOD/a.jpg")
    items = discover([root])
    assert [(i.sku, i.problem) for i in items if i.sku == "GOOD"] == [("GOOD", None)]
    broken = [i for i in items if i.sku != "GOOD"]
    assert len(broken) == 2 and all(i.problem and i.problem.startswith(f"invalid SKU {bad!r}") for i in broken)


def test_a_loose_file_whose_stem_is_not_a_sku_fails_alone(tmp_path):
    bad = tmp_path / "a\nb.jpg"
    bad.write_bytes(b"x")
    (item,) = discover([bad])
    assert item.problem and "control character" in item.problem


def test_a_control_character_in_a_catalog_csv_sku_is_a_config_error_naming_the_line(tree):
    root = tree("S/a.jpg")
    (root / "catalog.csv").write_text('path,sku\nS/a.jpg,"two\nlines"\n')
    with pytest.raises(ConfigError, match=r"catalog\.csv:2: invalid SKU 'two\\nlines': a control character"):
        discover([root])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8))
def test_natural_sort_of_any_names_never_fails(names):
    from pipeline.catalog import _natural_key

    assert len(sorted(names, key=_natural_key)) == len(names)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)), min_size=1,
                        max_size=30).filter(lambda n: not n.startswith(".") and len(n.encode()) < 200),
                min_size=1, max_size=5, unique=True))
def test_any_folder_name_is_a_sku_or_fails_alone(tmp_path_factory, names):
    from pipeline.catalog import _sku_problem

    root = tmp_path_factory.mktemp("cat")
    for n in names:
        (root / n).mkdir()
        (root / n / "a.jpg").write_bytes(b"x")
    items = discover([root])
    assert sorted(i.sku for i in items) == sorted(names)  # one item each, none merged into another
    assert all(i.problem == _sku_problem(i.sku) for i in items)
