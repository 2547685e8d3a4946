"""Known-payload test primitive (pipeline.invisible.chiptest, invisible.check_payload): the fold at the export's own
frame, the statistic's unit scale over keys, the bound, and the public call on a small product the decode misses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import invisible
from pipeline.invisible import chiptest
from pipeline.keys import OwnerKey
from pipeline.trace import marktest
from tests import synthetic
from tests.attacks import _encode
from tests.conftest import FIXED_SECRET

SIDE = synthetic.SMALL_SIDE
PAYLOAD = 0x3A5C0FFEE1


@pytest.fixture(scope="module")
def key() -> OwnerKey:
    return OwnerKey(FIXED_SECRET)


@pytest.fixture(scope="module")
def small_export(key: OwnerKey) -> np.ndarray:
    """A product covering a fifth of a 720 px white canvas, marked: its payload does not decode even unattacked."""
    rgb, mask = synthetic.small_product(SIDE)
    marked = invisible.embed(rgb, key, PAYLOAD, mask)
    assert not invisible.read(marked, key, hint=invisible.Hint(np.eye(3), (SIDE, SIDE))).found
    return marked


def test_check_payload_finds_the_chips_of_an_export_whose_payload_will_not_decode(key, small_export) -> None:
    for export in (small_export, _encode(small_export, "JPEG", 85)):
        t = invisible.check_payload(export, key, PAYLOAD)
        assert t.present and t.z >= chiptest.DETECT_Z and t.covered >= chiptest.MIN_COVERED
    other_key = OwnerKey(bytes(range(100, 132)))
    assert not invisible.check_payload(small_export, other_key, PAYLOAD).present
    assert not invisible.check_payload(small_export, key, PAYLOAD ^ 0x7F00FF00FF).present


def test_the_fold_at_identity_is_the_registered_fold() -> None:
    """trace's fold of a copy registered at identity and the fold of a picture in its own frame are the same."""
    rgb = _encode(synthetic.product_shot(3, (500, 420)), "JPEG", 90)
    a, b = chiptest.fold(rgb), marktest.fold_registered(rgb, np.eye(3), (500, 420))
    assert a.covered == b.covered and np.allclose(a.tile, b.tile, atol=1e-4)


def test_check_payload_refuses_a_payload_out_of_range(key, small_export) -> None:
    for bad in (-1, 1 << invisible.PAYLOAD_BITS, True):
        with pytest.raises(ValueError, match="payload must be an integer"):
            invisible.check_payload(small_export, key, bad)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), quality=st.integers(60, 95))
def test_the_statistic_is_unit_scale_over_keys_on_any_unmarked_picture(seed: int, quality: int) -> None:
    """Hoeffding's bound rests on z being a normalised sum of independent keyed signs: over many keys, on one
    unmarked picture, z has mean ~0 and spread ~1 (at most 1), and none comes near the threshold."""
    rgb = _encode(synthetic.product_shot(seed, (640, 640)), "JPEG", quality)
    folded = chiptest.fold(rgb)
    zs = np.array([chiptest.chip_test(folded, OwnerKey(bytes([k]) * 32).subkey("invisible"), PAYLOAD).z
                   for k in range(48)])
    assert abs(zs.mean()) < 0.6 and 0.6 < zs.std() < 1.35
    assert zs.max() < chiptest.DETECT_Z - 1.5


def test_the_bound_counts_every_test() -> None:
    assert chiptest.fp_bound(6.0) == pytest.approx(math.exp(-18))
    assert chiptest.fp_bound(6.0, 3) == pytest.approx(3 * math.exp(-18))
    assert chiptest.fp_bound(-1.0) == 1.0 and chiptest.fp_bound(0.5, 10) == 1.0
