"""Candidates: payload formatting, and which of several aligned exports of one photo or of several photos a
copy is named after (``pick_twin``, ``pick_registered``), on hand-made registrations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipeline.trace import candidates as cd
from pipeline.trace.index import Candidate
from pipeline.trace.register import Registration


@pytest.mark.parametrize("value, expected", [(0x2A, "000000002a"), ("0X00000000AB", "00000000ab"),
                                             (b"\x00\x00\x00\x01\x02", "0000000102"), (None, None)])
def test_payload_hex(value: Any, expected: str | None) -> None:
    assert cd.payload_hex(value) == expected


def _reg(*, ok: bool = True, inliers: int = 60, ncc: float = 0.95, grey: float = 0.8, overlap: float = 1.0,
         share: float = 1.0) -> Registration:
    reg = Registration(ok=ok, reason="registered" if ok else "too few", matrix=np.eye(3), inliers=inliers,
                       matches=80, ncc=ncc, ncc_grey=grey, overlap=overlap, export_size=(100, 100),
                       suspect_size=(100, 100))
    reg.suspect_share = share
    return reg


def _ev(rid: str, reg: Registration, pdq: int = 40) -> cd.CandidateEvidence:
    cand = Candidate(record_id=rid, score=0.5, pdq_distance=pdq, pdq_variant="full/rot0", phash_distance=10,
                     sketch_score=3.0)
    return cd.CandidateEvidence(candidate=cand, record=None, signature=None, registration=reg)


def test_mutual_cover_is_the_lesser_share() -> None:
    assert cd.mutual_cover(_reg(overlap=1.0, share=0.4)) == pytest.approx(0.4)
    assert cd.mutual_cover(_reg(overlap=0.6, share=1.0)) == pytest.approx(0.6)
    assert cd.mutual_cover(_reg(ok=False)) == 0.0
    assert cd.mutual_cover(None) == 0.0


def test_registration_tiers() -> None:
    assert cd.registration_tier(_reg(ncc=cd.NCC_STRONG, grey=cd.NCC_GREY_STRONG)) == "strong"
    weak = _reg(ncc=cd.NCC_MATCH, grey=cd.NCC_GREY_MATCH)
    assert cd.registration_tier(weak) == "weak"  # not decisive without a perceptual-hash match ...
    assert cd.registration_tier(weak, cd.HASH_CORROBORATES) == "corroborated"  # ... with one it is
    assert cd.registration_tier(_reg(inliers=3)) == "none"


def test_among_photos_the_one_the_copy_fills_is_named() -> None:
    """Separate photos (no record, so each candidate is its own photo): the export the copy fills and that fills
    the copy wins over a better-correlated one that holds the copy only in part."""
    fills = _ev("fills", _reg(ncc=0.91, overlap=1.0, share=1.0, inliers=40))
    part = _ev("part", _reg(ncc=0.99, overlap=0.5, share=1.0, inliers=90))
    for order in ([fills, part], [part, fills]):
        assert cd.pick_registered(order).record_id == "fills"
