"""Candidate search: the right original comes out on top among many look-alike products after each attack."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from pipeline.trace import index as ix
from pipeline.trace import signatures as sg
from tests import attacks, synthetic

N_DISTRACTORS = 60
TARGETS = (3, 8, 14, 21)  # product seeds traced (distractors use other seeds of the same six shapes)
TOP_K = 16

# Attacks from the invisible-watermark suite (tests/attacks.py) plus the heavier ones trace must win.
ATTACKS = {
    "jpeg50": lambda im: attacks.jpeg50(im, 1),
    "thumb30": lambda im: attacks.thumb30(im, 1),
    "crop80": lambda im: attacks.crop80(im, 1),
    "flip": lambda im: attacks.flip(im, 1),
    "rotate3": lambda im: attacks.rotate3(im, 1),
    "aspect15": lambda im: attacks.aspect15(im, 1),
    "screenshot": lambda im: attacks.screenshot(im, 1),
    "crop80+resize60+jpeg70": lambda im: attacks.crop_resize_jpeg70(im, 1),
    "crop50": lambda im: synthetic.jpeg(synthetic.crop_area(im, 0.5, np.random.default_rng(5)), 85),
    "pad20": lambda im: synthetic.jpeg(synthetic.pad(im, 0.2), 85),
    "letterbox": lambda im: synthetic.jpeg(synthetic.letterbox(im, 16 / 9), 85),
}
EASY = ("jpeg50", "thumb30", "flip", "aspect15", "pad20", "letterbox")


def _photos() -> list[np.ndarray]:
    return [np.ascontiguousarray(getattr(skimage.data, n)()[..., :3]) for n in ("astronaut", "coffee", "rocket")]


@pytest.fixture(scope="module")
def originals() -> dict[str, np.ndarray]:
    out = {f"prod{i}": synthetic.product_shot(i, (560, 560)) for i in TARGETS}
    out.update({f"photo{i}": im for i, im in enumerate(_photos())})
    return out


@pytest.fixture(scope="module")
def index(originals: dict[str, np.ndarray]) -> ix.TraceIndex:
    items = [(rid, synthetic.search_keys(im)) for rid, im in originals.items()]
    seeds = [s for s in range(100, 100 + N_DISTRACTORS + len(TARGETS)) if s not in TARGETS][:N_DISTRACTORS]
    items += [(f"other{s}", synthetic.search_keys(synthetic.product_shot(s, (560, 560))))
              for s in seeds]
    return ix.TraceIndex.build(items)


def test_index_holds_every_record(index: ix.TraceIndex) -> None:
    assert len(index) == N_DISTRACTORS + len(TARGETS) + 3
    assert len(index.sk_desc) == len(index) * sg.SKETCH_K


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_right_original_is_a_top_candidate(attack: str, index: ix.TraceIndex,
                                           originals: dict[str, np.ndarray]) -> None:
    for rid, im in originals.items():
        q = ix.query_signature(ATTACKS[attack](im))
        cands = index.search(q, k=TOP_K)
        ids = [c.record_id for c in cands]
        assert rid in ids, f"{attack}: {rid} not among {ids}"
        if attack in EASY:
            assert ids[0] == rid, f"{attack}: {rid} is not first ({ids[:3]})"


def test_flip_is_found_by_the_dihedral_hash(index: ix.TraceIndex, originals: dict[str, np.ndarray]) -> None:
    q = ix.query_signature(attacks.flip(originals["prod3"], 0))
    best = index.search(q, k=4)[0]
    assert best.record_id == "prod3" and best.hash_match and "mirror" in best.pdq_variant


def test_padding_is_found_by_the_trimmed_hash(index: ix.TraceIndex, originals: dict[str, np.ndarray]) -> None:
    padded = synthetic.pad(synthetic.letterbox(originals["prod8"], 2.0, (0, 0, 0)), 0.1, (250, 250, 250))
    best = index.search(ix.query_signature(padded), k=4)[0]
    assert best.record_id == "prod8" and best.distances["trim"] <= ix.PDQ_MATCH


def test_unrelated_image_gets_no_hash_match(index: ix.TraceIndex) -> None:
    q = ix.query_signature(np.ascontiguousarray(skimage.data.chelsea()))
    assert all(not c.hash_match or c.pdq_distance > ix.PDQ_MATCH for c in index.search(q, k=TOP_K))


def test_hamming_matches_a_naive_count() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (3, 32), dtype=np.uint8)
    b = rng.integers(0, 256, (5, 32), dtype=np.uint8)
    fast = ix._hamming(ix._words(a), np.ascontiguousarray(ix._words(b).T))
    naive = np.array([[int(np.unpackbits(x ^ y).sum()) for y in b] for x in a])
    assert np.array_equal(fast, naive)


def test_empty_index_and_bad_blobs() -> None:
    idx = ix.TraceIndex.build([("bad", b"nonsense"), ("short", b"CMT1")])
    assert len(idx) == 0
    q = ix.query_signature(synthetic.product_shot(1, (200, 200)))
    assert idx.search(q) == []


@pytest.mark.parametrize(("variant", "distance", "sketch", "reflected"), [
    ("full/mirror", 10, False, True), ("full/flip-vertical", 0, False, True), ("trim/transpose", 30, False, True),
    ("region80/flip", 40, False, True), ("full/rot180", 0, False, False), ("region80", 10, False, False),
    ("full/mirror", 120, False, False), ("full/rot0", 120, True, True)])
def test_a_candidate_is_reflected_by_any_reflection_the_search_saw(variant: str, distance: int, sketch: bool,
                                                                    reflected: bool) -> None:
    c = ix.Candidate(record_id="r", score=0.5, pdq_distance=distance, pdq_variant=variant, phash_distance=30,
                  sketch_score=0.0, sketch_mirrored=sketch)
    assert c.reflected is reflected
