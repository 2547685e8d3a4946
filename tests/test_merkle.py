"""Tests for pipeline.merkle: the root, RFC 6962 audit paths, RFC 9162 verification, tampering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.merkle import (
    EMPTY_ROOT,
    audit_path,
    merkle_root,
    prove,
    root_from_path,
    verify_inclusion,
)

MAX_LEAVES = 140


def _hashes(n: int, salt: int = 0) -> list[str]:
    return [hashlib.sha256(f"record {salt} {i}".encode()).hexdigest() for i in range(n)]


# --- an independent RFC 6962 implementation, written from the RFC's recursive definitions -------------------

def _mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _rfc6962_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return _rfc6962_path(m, leaves[:k]) + [_mth(leaves[k:])]
    return _rfc6962_path(m - k, leaves[k:]) + [_mth(leaves[:k])]


def _flip(hex_str: str, bit: int) -> str:
    raw = bytearray(bytes.fromhex(hex_str))
    raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
    return raw.hex()


def test_root_is_rfc6962_mth_for_small_trees():
    for n in range(0, 70):
        hs = _hashes(n)
        assert merkle_root(hs) == _mth([bytes.fromhex(h) for h in hs]).hex()
    assert merkle_root([]) == EMPTY_ROOT


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, MAX_LEAVES), salt=st.integers(0, 1000))
def test_every_leaf_proof_verifies_and_matches_the_rfc_path(n, salt):
    hs = _hashes(n, salt)
    root = merkle_root(hs)
    raw = [bytes.fromhex(h) for h in hs]
    for i in range(n):
        path = audit_path(hs, i)
        assert path == [p.hex() for p in _rfc6962_path(i, raw)]
        assert verify_inclusion(hs[i], i, n, path, root)
        assert root_from_path(hs[i], i, n, path) == root


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(1, MAX_LEAVES))
def test_a_flipped_bit_anywhere_fails(data, n):
    hs = _hashes(n)
    root = merkle_root(hs)
    i = data.draw(st.integers(0, n - 1), label="leaf")
    path = audit_path(hs, i)
    bit = data.draw(st.integers(0, 255), label="bit")
    assert not verify_inclusion(_flip(hs[i], bit), i, n, path, root)  # the record hash
    assert not verify_inclusion(hs[i], i, n, path, _flip(root, bit))  # the root
    if path:
        j = data.draw(st.integers(0, len(path) - 1), label="path element")
        bad = list(path)
        bad[j] = _flip(bad[j], bit)
        assert not verify_inclusion(hs[i], i, n, bad, root)  # one sibling


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(2, MAX_LEAVES))
def test_wrong_index_size_or_path_length_fails(data, n):
    hs = _hashes(n)
    root = merkle_root(hs)
    i = data.draw(st.integers(0, n - 1))
    path = audit_path(hs, i)
    other = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
    assert not verify_inclusion(hs[i], other, n, path, root)
    assert not verify_inclusion(hs[other], i, n, path, root)
    assert not verify_inclusion(hs[i], i, n, path + [hs[0]], root)
    if path:
        assert not verify_inclusion(hs[i], i, n, path[:-1], root)


def test_single_leaf_has_an_empty_path():
    hs = _hashes(1)
    assert audit_path(hs, 0) == []
    assert verify_inclusion(hs[0], 0, 1, [], merkle_root(hs))


def test_out_of_range_and_malformed_inputs():
    hs = _hashes(5)
    with pytest.raises(ValueError):
        audit_path(hs, 5)
    with pytest.raises(ValueError):
        audit_path([], 0)
    assert root_from_path(hs[0], 5, 5, audit_path(hs, 0)) is None
    assert root_from_path(hs[0], -1, 5, audit_path(hs, 0)) is None
    assert root_from_path("zz", 0, 5, audit_path(hs, 0)) is None
    assert root_from_path(hs[0], 0, 5, ["abcd", *audit_path(hs, 0)[1:]]) is None


def test_prove_checks_against_the_stored_root():
    hs = _hashes(9)
    good = prove("rid", 7, "run", hs, 4, merkle_root(hs))
    assert good.verifies and good.tree_size == 9 and good.leaf_index == 4 and good.record_hash == hs[4]
    assert good.as_json()["leaf_hash"] == hashlib.sha256(b"\x00" + bytes.fromhex(hs[4])).hexdigest()
    assert not prove("rid", 7, "run", hs, 4, _flip(merkle_root(hs), 3)).verifies
