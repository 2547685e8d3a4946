"""The product's bounding box on a known background colour, and how much of a frame it fills (storefront fill rules).

A pixel is product when one of its channels differs from the background colour by more than ``tol`` (16 of 255:
JPEG ringing and a faint drop shadow stay under it, as a marketplace's checker would see a soft shadow on white
as background). A row or column belongs to the box when more than ``min_frac`` of its pixels are product (and
at least two), so an isolated speck does not stretch the box. The fill of a frame is
``max(box width / frame width, box height / frame height)``: the product's extent along its longer axis, the way
Amazon's "the product fills 85% of the frame" is checked.

Different from ``trace.signatures.content_box`` on purpose: that one guesses the border colour of a suspect image
(padding, letterbox) and must stay as it is for the stored search keys; this one is told the background.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

TOL = 16
MIN_FRAC = 0.001


def product_mask(rgb: np.ndarray, background: Sequence[int], tol: int = TOL) -> np.ndarray:
    """Bool H x W: True where a pixel differs from ``background`` by more than ``tol`` in some channel."""
    lo = np.array([max(0, int(c) - tol) for c in background], np.uint8)
    hi = np.array([min(255, int(c) + tol) for c in background], np.uint8)
    return cv2.inRange(np.ascontiguousarray(rgb[..., :3]), lo, hi) == 0


def mask_box(mask: np.ndarray, min_frac: float = MIN_FRAC) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the rows and columns with more than ``min_frac`` of their pixels set (and at least two),
    or None if there are none.

    ``mask`` may be any view (a transposed or flipped one: the upright view of a stored-orientation mask).
    """
    h, w = mask.shape[:2]
    rows = np.flatnonzero(np.count_nonzero(mask, axis=1) > max(1.0, min_frac * w))
    cols = np.flatnonzero(np.count_nonzero(mask, axis=0) > max(1.0, min_frac * h))
    if rows.size == 0 or cols.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def product_box(rgb: np.ndarray, background: Sequence[int], tol: int = TOL,
                min_frac: float = MIN_FRAC) -> tuple[int, int, int, int] | None:
    """The product's bounding box on ``background`` (see the module docstring), or None on a blank image."""
    return mask_box(product_mask(rgb, background, tol), min_frac)


def fill_of(box: Sequence[int], frame: tuple[int, int]) -> float:
    """The share of the frame (w, h) the box spans along its longer axis: max of the width and height fractions."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return max((x1 - x0) / frame[0], (y1 - y0) / frame[1])


__all__ = ["MIN_FRAC", "TOL", "fill_of", "mask_box", "product_box", "product_mask"]
