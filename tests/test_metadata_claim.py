"""Tests for ``pipeline.metadata.claim``'s signed form: the canonical JSON shared with the ledger."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.canonical import canonical_json
from pipeline.metadata.claim import CLAIM_PROPS, sign_claim, signed_bytes, verify_claim

# What a claim holds: the integer version and strings or None (any Unicode the XMP round trip keeps).
claims = st.fixed_dictionaries(
    {key: st.integers(0, 10) if key == "v" else st.none() | st.text(max_size=30) for key, _ in CLAIM_PROPS}
)


@given(claims)
def test_signed_bytes_are_the_previous_claim_serialisation(claim):
    """Byte for byte what the claim was signed over before it shared the ledger's canonical JSON."""
    before = json.dumps(claim, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert signed_bytes(claim) == before == canonical_json(claim).encode("utf-8")


def test_sign_and_verify(owner_key, other_key):
    claim = {"v": 1, "owner": "Ünïcødé Studio", "payload": None}
    sig = sign_claim(claim, owner_key)
    assert verify_claim(claim, sig, owner_key.public)
    assert not verify_claim(claim | {"owner": "Copycat"}, sig, owner_key.public)
    assert not verify_claim(claim, sig, other_key.public)


def test_canonical_json_refuses_nan_and_writes_numpy_scalars_as_numbers():
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            canonical_json({"x": bad})
    assert canonical_json({"b": np.int64(3), "a": np.float32(0.5), "c": np.bool_(True)}) == '{"a":0.5,"b":3,"c":true}'
    with pytest.raises(TypeError):
        canonical_json({"x": object()})
