"""The robustness bench's AugLy suite runs every augmentation it lists, and its trace column counts the right record.

A test of benchmark code (``bench/augly_suite.py``, ``bench/robustness.py``), the one place tests import from
``bench/``. AugLy is a benchmark requirement only (``bench/requirements-robustness.txt``), not a test one: the
AugLy test skips without it; the trace-column test needs only the pipeline.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from tests import synthetic


def _augly_suite():  # type: ignore[no-untyped-def]
    pytest.importorskip("augly", reason="AugLy is a benchmark requirement (bench/requirements-robustness.txt), "
                                        "not installed here")
    return importlib.import_module("bench.augly_suite")


def test_every_listed_augmentation_runs_and_returns_rgb() -> None:
    suite = _augly_suite()
    # the suite accounts for every function of AugLy's functional image API
    assert set(suite.NAMES) | set(suite.NOT_ATTACKS) == set(suite.functional_names())
    skipped = suite.skipped()
    assert all(why for why in skipped.values())
    attacks = suite.attacks()
    assert len(attacks) == len(suite.NAMES) - len(skipped) >= 30
    rng = np.random.default_rng(5)
    tiny = rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)
    tiny[20:50, 30:70] = (250, 250, 250)
    for name, attack in attacks.items():
        out = attack(tiny)
        assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, name
        assert min(out.shape[:2]) >= 16, name
        again = attack(tiny)
        assert np.array_equal(out, again), f"{name} is not deterministic"


def test_trace_column_names_the_right_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two marked shots and two distractors in a real ledger: trace of each unattacked copy names its own record;
    the same copy checked against the other image's record counts as a miss and a wrong record."""
    monkeypatch.setenv("ROBUSTNESS_NO_BASELINE", "1")
    rob = importlib.import_module("bench.robustness")
    pics = [(f"t{i}", synthetic.product_shot(60 + i, (480, 480)), False) for i in range(4)]
    prepared = [rob.prepare(p) for p in pics]
    ledger = tmp_path / "ledger.sqlite"
    rob.build_ledger(ledger, prepared)

    def run(i: int, record: int) -> dict:  # type: ignore[type-arg]
        task = {"name": prepared[i]["name"], "payload": prepared[i]["payload"], "record_id": rob._record_id(record),
                "rgb": pics[i][1], "marked": prepared[i]["marked"], "suite": "in-house", "attacks": ["none"],
                "ledger": str(ledger)}
        return rob.run_one(task)["rows"]["none"]  # type: ignore[no-any-return]

    for i in (0, 1):
        row = run(i, i)
        assert row["trace"] and not row["wrong"] and row["registered"]
    crossed = run(0, 1)
    assert not crossed["trace"] and crossed["wrong"]
