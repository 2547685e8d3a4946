"""The catalog-averaging attack against the invisible mark: per-export pilot sets survive it, scheme 1's did not."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import invisible
from pipeline.invisible import codec, layout
from pipeline.keys import OwnerKey
from tests import collusion

KEY = OwnerKey(bytes(range(32)))
SIZE = 1200
# product shots on white (even seeds) and photographs whose exports read blind after JPEG 70 (checked): the small
# products whose marks are marginal even without a thief's help (1006) are make robustness's business, not this
# test's, which measures what the averaging attack takes away
TARGETS = [1000, 1001, 1002, 1003, 1004, 1005, 1007, 1008]


def _embed(rgb: np.ndarray, payload: int, mask: np.ndarray | None) -> np.ndarray:
    return invisible.embed(rgb, KEY, payload, mask)


def _read(rgb: np.ndarray, hint: invisible.Hint | None) -> invisible.Detection:
    return invisible.read(rgb, KEY, hint=hint)


def test_pilot_sets_differ_per_export() -> None:
    subkey = KEY.subkey("invisible")
    variants = {codec.pilot_variant(subkey, collusion.payload_for(s), layout.VARIANTS) for s in range(100)}
    assert len(variants) >= layout.VARIANTS * 3 // 4  # 100 exports spread over the family
    sets = {tuple(map(tuple, layout.layout_for(subkey, v).pilots)) for v in range(layout.VARIANTS)}
    assert len(sets) == layout.VARIANTS
    assert tuple(map(tuple, layout.layout_for(subkey, layout.LEGACY).pilots)) not in sets


def test_scheme1_exports_still_read() -> None:
    """A mark made before the pilot family (one pilot set per key) reads blind and informed, as scheme 1."""
    with collusion.fixed_pilots():
        marked = collusion.marked_export(_embed, 1001, SIZE)
    blind = _read(marked, None)
    assert blind.found and blind.payload == collusion.payload_for(1001)
    assert blind.details["scheme"] == 1 and blind.details["pilot_set"] == layout.LEGACY
    informed = _read(marked, invisible.Hint(np.eye(3), (SIZE, SIZE)))
    assert informed.found and informed.payload == collusion.payload_for(1001)
    assert informed.false_positive_probability == invisible.fp_bound(1)


@pytest.mark.slow
def test_averaging_attack() -> None:
    """Learned from 40 and 100 same-size exports, the top 12 and 48 peaks notched: of the copies the attack keeps
    at PSNR >= 45 dB (invisible; notching 48 lines costs some pictures a little more), scheme 2 keeps >= 95 %
    blind and >= 99 % informed, and the rest are counted too; scheme 1, attacked the same way in the same run,
    loses the blind read."""
    rows = collusion.averaging_attack(_embed, _read, size=SIZE, learn=(40, 100), peaks=(12, 48), targets=TARGETS)
    print("\n" + collusion.HEADER)
    for row in rows:
        print(row.line("scheme 2"))
    invisible_copies = [r for row in rows for r in row.within(45.0)]
    assert len(invisible_copies) >= 0.75 * sum(row.targets for row in rows)  # the attack stays near its budget
    assert sum(b for b, _ in invisible_copies) >= 0.95 * len(invisible_copies)
    assert sum(i for _, i in invisible_copies) >= 0.99 * len(invisible_copies)
    total = sum(row.targets for row in rows)
    assert sum(row.blind for row in rows) >= 0.9 * total  # the louder copies too, nearly all
    with collusion.fixed_pilots():
        old = collusion.averaging_attack(_embed, _read, size=SIZE, learn=(40,), peaks=(12,), targets=TARGETS)
    for row in old:
        print(row.line("scheme 1 (old)"))
    assert old[0].blind <= old[0].targets // 3  # the attack works on the fixed template: the test is not vacuous
