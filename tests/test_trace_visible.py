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
