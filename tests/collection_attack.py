"""The multi-image attack on a visible mark (Dekel et al., "On the Effectiveness of Visible Watermarks", CVPR 2017).

A thief with many exports that carry the same visible mark aligns the marks, estimates the mark from what stays
the same across the pictures while the pictures themselves vary, and inverts the compositing on each picture:

1. **align**: each picture's mark is mapped into one canonical frame. The thief here gets an *oracle* for the
   mark's centre, scale and rotation (from the keyed parameters themselves: a stronger attacker than any real
   one, who would have to detect each mark first); only the keyed per-image perspective warp is not undone;
2. **median of gradients** over the aligned stack, and **Poisson reconstruction** of the mark from it (Dekel's
   initial estimate: natural pictures' gradients have median ~0, the mark's do not);
3. **matting**: per canonical pixel, the composite is J = a + b I (a = alpha * mark grey, b = 1 - alpha) for
   every picture I; with picture statistics the same everywhere (mean and spread measured on the frame's border,
   where no mark is), b = spread(J) / spread(I) and a = mean(J) - b mean(I) over the stack;
4. **inversion**: I = (J - a) / b, mapped back into each picture over the mark's footprint.

The same attack against a control mark that sits at one fixed place with one fixed geometry in every picture
(what most sellers' marks are) shows it works: the estimate is close and little of the mark is left.

Used by tests/test_visible_collection.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import fft

from pipeline.marks.visible import LUMA_WEIGHTS
from pipeline.models import VisibleMark

CW, CH = 320, 128  # canonical frame (mark-aligned, unrotated)
MARK_W = 240  # canonical px the mark's layout width maps to
BORDER = 12  # canonical px band along the frame's edges used for the pictures' statistics


def canonical_matrix(mark: VisibleMark, canvas: tuple[int, int]) -> np.ndarray:
    """2x3: canonical px -> picture px, from the mark's centre, width and rotation (marks/visible.py's geometry:
    around = rot @ rel with rot = [[cos, sin], [-sin, cos]])."""
    w, h = canvas
    f = mark.scale * min(w, h) / MARK_W
    th = math.radians(mark.rotation)
    rot = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]])
    a = f * rot
    centre = np.array([mark.x * w, mark.y * h])
    t = centre - a @ np.array([CW / 2, CH / 2])
    return np.hstack([a, t[:, None]])


def to_canonical(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(img, m, (CW, CH), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def poisson(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """The image whose forward-difference gradients are closest to (gx, gy) (Neumann borders, via the DCT)."""
    div = np.zeros_like(gx)
    div[:, 1:] += gx[:, 1:] - gx[:, :-1]
    div[:, 0] += gx[:, 0]
    div[1:, :] += gy[1:, :] - gy[:-1, :]
    div[0, :] += gy[0, :]
    h, w = div.shape
    d = fft.dctn(div, norm="ortho")
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    lam = 2 * np.cos(np.pi * yy / h) + 2 * np.cos(np.pi * xx / w) - 4
    lam[0, 0] = 1.0
    out = d / lam
    out[0, 0] = 0.0
    return np.asarray(fft.idctn(out, norm="ortho"), np.float32)


@dataclass
class Estimate:
    """What the thief learnt from the stack (canonical frame)."""

    gradient_mark: np.ndarray  # Poisson reconstruction of the median gradients (Dekel's initial estimate)
    a: np.ndarray  # alpha * mark grey (premultiplied)
    b: np.ndarray  # 1 - alpha


def estimate(stack: list[np.ndarray], greys: tuple[float, float]) -> Estimate:
    """The mark estimated from aligned composites (canonical frame, grey levels) of one tone, whose (glyph,
    outline) greys the thief reads off the marks (they are flat: marks/visible.py's TONE_GREYS)."""
    s = np.stack(stack).astype(np.float32)  # K x CH x CW
    gx = np.zeros_like(s)
    gy = np.zeros_like(s)
    gx[:, :, :-1] = s[:, :, 1:] - s[:, :, :-1]
    gy[:, :-1, :] = s[:, 1:, :] - s[:, :-1, :]
    border = np.zeros((CH, CW), bool)
    border[:BORDER, :] = border[-BORDER:, :] = True
    border[:, :BORDER] = border[:, -BORDER:] = True
    wm = poisson(np.median(gx, axis=0), np.median(gy, axis=0))
    wm -= float(np.median(wm[border]))
    # matting: J = alpha g + (1 - alpha) I, so the stack's typical J departs from the pictures' typical level mu
    # by alpha (g - mu): the glyph's grey where the estimate is brighter than the pictures, the outline's where
    # it is darker (a light mark; the other way round for a dark one)
    mu = float(np.median(s[:, border]))
    glyph, outline = greys
    g = np.where((wm > 0) == (glyph > outline), glyph, outline)
    alpha = np.clip(wm / np.where(np.abs(g - mu) < 1, 1.0, g - mu), 0.0, 0.95)
    return Estimate(gradient_mark=wm, a=alpha * g, b=1 - alpha)


def invert(marked: np.ndarray, m: np.ndarray, est: Estimate) -> np.ndarray:
    """The picture with the estimated mark taken out of it (every channel: the marks are neutral grey)."""
    h, w = marked.shape[:2]
    a = cv2.warpAffine(est.a, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    b = cv2.warpAffine(est.b, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=1.0)
    out = (marked.astype(np.float32) - a[..., None]) / np.maximum(b, 0.05)[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def grey(rgb: np.ndarray) -> np.ndarray:
    """Luminance as the mark is composited and toned (marks/visible.py's Rec. 709 weights)."""
    return np.asarray(rgb, np.float32) @ LUMA_WEIGHTS
