"""Tests for pipeline/trace/visible.py's rendering helpers (the visible-mark check itself is exercised end to end by
tests/test_visible_collection.py and tests/test_trace_cli.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.trace import visible


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), box=st.tuples(*[st.floats(0, 1)] * 4), seed=st.integers(0, 2**16))
def test_premultiplied_is_the_whole_frame_formula(h, w, box, seed) -> None:
    """The mark's premultiplied layer, computed on its bounding box, equals the formula over the whole frame."""
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
    y0, y1 = sorted(int(v * h) for v in box[:2])
    x0, x1 = sorted(int(v * w) for v in box[2:])
    alpha = np.zeros((h, w), np.uint8)
    alpha[y0:y1, x0:x1] = rgba[y0:y1, x0:x1, 3]  # the mark somewhere (maybe nowhere), transparent elsewhere
    rgba[..., 3] = alpha
    f = rgba.astype(np.float32)
    a = f[..., 3] / 255
    want = np.dstack([f[..., :3] * a[..., None], a])
    got = visible._premultiplied(rgba)
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_a_tracer_renders_each_exports_mark_once_and_keeps_a_bounded_number(monkeypatch) -> None:
    """Tracer._mark: a sweep meets the same exports again and again; each mark is rendered once, shared read-only,
    and only the newest MARK_CACHE are kept."""
    from types import SimpleNamespace

    from pipeline.trace import tracer as tr

    calls: list[str] = []

    def render(record, thumb_size, owner):
        calls.append(record.record_id)
        return np.ones((4, 4), bool), np.zeros((4, 4, 4), np.float32)

    monkeypatch.setattr(tr, "mark_layer", render)
    monkeypatch.setattr(tr, "MARK_CACHE", 3)
    t = tr.Tracer.__new__(tr.Tracer)  # only the mark cache is exercised: no ledger needed
    t.owner, t._marks = None, tr.OrderedDict()

    def mark(rid: str) -> np.ndarray | None:
        stored = SimpleNamespace(record=SimpleNamespace(record_id=rid, visible_mark={"x": 0.5}))
        sig = SimpleNamespace(thumb_size=(4, 4), mark_layer=None)
        mask = t._mark(stored, sig)
        assert sig.mark_layer is not None and not sig.mark_layer.flags.writeable
        return mask

    for rid in ("a", "b", "a", "c", "a", "d", "b"):
        assert mark(rid) is not None
    assert calls == ["a", "b", "c", "d", "b"]  # a stays (recently used); b was the oldest when d came in
    assert len(t._marks) == 3
