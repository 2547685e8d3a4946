"""Registration: align a suspect image to a candidate export (SIFT + RANSAC affine, mirrored suspects too).

The candidate side needs only what the ledger keeps: the photo's SIFT features and thumbnail (one blob per photo,
shared by its exports) and each export's frame (``signatures.Frame``), so this works months later without the
export folder.  The fit is made once per photo (``fit_photo``: suspect pixels -> the photo's feature frame) and
mapped through each export's frame (``register_export``) into suspect pixel -> export pixel coordinates; from that
come the estimated crop, scale, rotation and flip, and a dense check: the suspect warped into the export's
thumbnail frame and correlated with it (band-pass NCC), which separates a copy from a different product whose
features happen to line up (labels in the same font, the same white background).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import cv2
import numpy as np

from pipeline.imaging import hashes
from pipeline.trace import signatures as sg

SUSPECT_SIDE = 1024  # the suspect's SIFT features are computed on a <= 1024 px long-side downscale
SUSPECT_SIFT = 2500
RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 3.0  # reprojection threshold, in pixels of the photo's feature frame (signatures.feature_side)
MIN_INLIERS = 12  # RANSAC inliers a registration needs (the verdict's calibration is at 12: one threshold)
REFINE_INLIERS = 20  # a first fit with this many inliers is tightened by a second RANSAC pass
MIN_MATCHES = 10  # ratio-test matches below this: no fit is tried
CLEAR_INLIERS = 40  # an unmirrored fit this good skips the mirrored SIFT pass
MAX_ANISOTROPY = 1.6  # singular-value ratio of the linear part (aspect change 15 % is 1.18)
MIN_SCALE, MAX_SCALE = 1 / 12, 12.0  # suspect px -> export px
MIN_SPREAD = 0.01  # inliers' convex hull must cover >= 1 % of the export (not all on one glyph)


@dataclass
class SuspectFeatures:
    """SIFT features of a suspect (and, on demand, of its mirror image), computed once per suspect."""

    rgb: np.ndarray
    scale: float = 1.0  # suspect px = feature px * scale
    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    desc: np.ndarray = field(default_factory=lambda: np.zeros((0, 128), np.float32))

    @classmethod
    def compute(cls, rgb: np.ndarray) -> SuspectFeatures:
        small = hashes.downscale(rgb, SUSPECT_SIDE)
        xy, desc = sg.sift_features(sg.to_gray(small), SUSPECT_SIFT)
        return cls(rgb=rgb, scale=rgb.shape[1] / small.shape[1], xy=xy, desc=desc.astype(np.float32))

    @cached_property
    def mirrored(self) -> SuspectFeatures:
        return SuspectFeatures.compute(np.ascontiguousarray(self.rgb[:, ::-1]))


@dataclass
class Registration:
    """Suspect -> export alignment (or why there is none)."""

    ok: bool
    reason: str
    matrix: np.ndarray  # 3x3, suspect pixel -> export pixel
    inliers: int = 0
    matches: int = 0
    mirrored: bool = False
    ncc: float = 0.0  # colour-layout correlation of the aligned suspect with the export thumbnail (see dense_ncc)
    ncc_grey: float = 0.0  # grey fine-detail correlation (see dense_ncc)
    overlap: float = 0.0  # fraction of the export covered by the suspect
    suspect_share: float = 0.0  # fraction of the suspect covered by the export (1: the copy lies inside it)
    spread: float = 0.0  # inliers' convex hull area / export area
    export_size: tuple[int, int] = (0, 0)
    suspect_size: tuple[int, int] = (0, 0)

    @property
    def transform(self) -> dict[str, Any]:
        """The estimated transform in plain terms: scale, rotation, aspect change, flip, crop box."""
        a = self.matrix[:2, :2]
        det = float(np.linalg.det(a))
        sv = np.linalg.svd(a, compute_uv=False)
        # rotation of the copy relative to the export, degrees counter-clockwise as seen on screen (y points
        # down, so the suspect->export matrix turns clockwise by that angle); undo the mirror first
        m = a @ np.diag([-1.0, 1.0]) if det < 0 else a
        rot = float(np.degrees(np.arctan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1])))
        sw, sh = self.suspect_size
        corners = np.array([[0, 0, 1], [sw, 0, 1], [sw, sh, 1], [0, sh, 1]], np.float64) @ self.matrix.T
        ew, eh = self.export_size
        x0, y0 = corners[:, 0].min(), corners[:, 1].min()
        x1, y1 = corners[:, 0].max(), corners[:, 1].max()
        return {
            "scale": round(float(1 / np.sqrt(abs(det))) if det else 0.0, 4),  # suspect size / export size
            "rotation_deg": round(rot, 2),
            "aspect_change": round(float(sv[0] / sv[1]) if sv[1] else 0.0, 3),
            "mirrored": bool(det < 0),
            "suspect_covers_export_box": [round(float(v), 1) for v in (x0, y0, x1, y1)],
            "export_area_kept": round(self.overlap, 3),
            "export_size": [ew, eh],
            "matrix": [[round(float(v), 6) for v in row] for row in self.matrix],
        }


def no_registration(reason: str, **kw: Any) -> Registration:
    return Registration(ok=False, reason=reason, matrix=np.eye(3), **kw)


def _match(q_desc: np.ndarray, s_desc: np.ndarray) -> list[tuple[int, int]]:
    if len(q_desc) < 2 or len(s_desc) < 2:
        return []
    bf = cv2.BFMatcher(cv2.NORM_L2)
    pairs = []
    for m in bf.knnMatch(q_desc.astype(np.float32), s_desc, k=2):
        if len(m) == 2 and m[0].distance < RATIO * m[1].distance:
            pairs.append((m[0].queryIdx, m[0].trainIdx))
    return pairs


def _hull_area(pts: np.ndarray) -> float:
    if len(pts) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(pts.astype(np.float32))))


def _bandpass(gray: np.ndarray) -> np.ndarray:
    g = gray.astype(np.float32)
    return cv2.GaussianBlur(g, (0, 0), 0.8) - cv2.GaussianBlur(g, (0, 0), 3.0)


def aligned_to_thumbnail(suspect: np.ndarray, matrix: np.ndarray,
                         sig: sg.ExportTrace) -> tuple[np.ndarray, np.ndarray]:
    """The suspect warped into the thumbnail frame of the export, and its validity mask."""
    tw, th = sig.thumb_size
    m = sig.export_to_thumb() @ matrix
    warped = sg.warp_resampled(suspect, m, (tw, th), 0)
    cover = sg.warp_resampled(np.full(suspect.shape[:2], 255, np.uint8), m, (tw, th), 0, nearest=True)
    return warped, np.asarray(cv2.erode(cover, np.ones((5, 5), np.uint8)) > 0)


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Normalised cross-correlation of two equally shaped arrays (0 when either is flat)."""
    x = x - x.mean()
    y = y - y.mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 0 else 0.0


def _tile_median(sel: np.ndarray, grid: int, stat: Any) -> float:
    """Median of ``stat(tile_slices, tile_mask)`` over a grid x grid tiling of the bounding box of ``sel``."""
    ys, xs = np.nonzero(sel)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    vals = []
    for i in range(grid):
        for j in range(grid):
            ty = slice(y0 + (y1 - y0) * i // grid, y0 + (y1 - y0) * (i + 1) // grid)
            tx = slice(x0 + (x1 - x0) * j // grid, x0 + (x1 - x0) * (j + 1) // grid)
            t = sel[ty, tx]
            if t.sum() >= 40:
                vals.append(stat((ty, tx), t))
    return float(np.median(vals)) if vals else 0.0


def dense_ncc(warped: np.ndarray, mask: np.ndarray, thumb: np.ndarray, grid: int = 4) -> tuple[float, float]:
    """How well the aligned suspect reproduces the export thumbnail: (colour layout, grey detail).

    * colour layout: per tile, the smallest over R, G, B of the NCC of lightly blurred (sigma 1.5) channels over
      the export's non-background pixels; median over tiles.  A different product, even with the same
      silhouette, label layout and a similar print, does not reproduce the colours tile by tile (calibration:
      copies >= 0.95, other products <= 0.79).
    * grey detail: per tile, the NCC of band-passed grey levels over pixels where the export has structure;
      median over tiles.  Guards against a colour match without the fine structure.

    Medians over tiles are robust to a pasted banner, a logo or a painted-out mark; NCC is invariant to the
    brightness/contrast changes of a re-upload.
    """
    ga, gb = _bandpass(sg.to_gray(warped)), _bandpass(sg.to_gray(thumb))
    structured = mask & (np.abs(gb) > 1.0)
    foreground = mask & (np.abs(thumb.astype(np.int16) - 255).max(axis=2) > 12)
    if foreground.sum() < 200:  # a picture with hardly anything on white: use every covered pixel
        foreground = mask
    if structured.sum() < 200 or foreground.sum() < 200:
        return 0.0, 0.0
    wl = [cv2.GaussianBlur(warped[..., c].astype(np.float32), (0, 0), 1.5) for c in range(3)]
    tl = [cv2.GaussianBlur(thumb[..., c].astype(np.float32), (0, 0), 1.5) for c in range(3)]
    colour = _tile_median(foreground, grid, lambda tile, t: min(correlation(w[tile][t], b[tile][t])
                                                                for w, b in zip(wl, tl, strict=True)))
    grey = _tile_median(structured, grid, lambda tile, t: correlation(ga[tile][t], gb[tile][t]))
    return colour, grey


@dataclass
class PhotoFit:
    """A RANSAC fit of the suspect to one photo's features: suspect px -> photo feature-frame px."""

    matrix: np.ndarray | None  # 3x3, None: no fit
    inliers: int = 0
    matches: int = 0
    mirrored: bool = False
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # inliers, photo feature-frame px


def _fit(feats: SuspectFeatures, photo: sg.PhotoFeatures) -> tuple[np.ndarray | None, int, int, np.ndarray]:
    """RANSAC affine from suspect px to photo feature-frame px; (A 2x3, inliers, matches, inlier points).

    A first RANSAC pass at ``RANSAC_PX`` (feature-frame px) finds the transform, a second one at a third of
    that over its inliers tightens it (the informed watermark read needs sub-pixel alignment).
    """
    pairs = _match(photo.desc, feats.desc)
    if len(pairs) < MIN_MATCHES:
        return None, 0, len(pairs), np.zeros((0, 2))
    dst = photo.feature_xy()[[p[0] for p in pairs]].astype(np.float32)
    src = ((feats.xy[[p[1] for p in pairs]] + 0.5) * feats.scale - 0.5).astype(np.float32)  # suspect px
    a, inl = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                  maxIters=3000, confidence=0.999, refineIters=10)
    if a is None or inl is None:
        return None, 0, len(pairs), np.zeros((0, 2))
    inl = inl.ravel().astype(bool)
    if inl.sum() >= REFINE_INLIERS:
        a2, inl2 = cv2.estimateAffine2D(src[inl], dst[inl], method=cv2.RANSAC,
                                        ransacReprojThreshold=RANSAC_PX / 3, maxIters=2000,
                                        confidence=0.999, refineIters=20)
        if a2 is not None and inl2 is not None and inl2.sum() >= MIN_INLIERS:
            a = a2
    return a, int(inl.sum()), len(pairs), dst[inl]


def fit_photo(feats: SuspectFeatures, photo: sg.PhotoFeatures, *, try_mirror: bool = True) -> PhotoFit:
    """Fit the suspect to one photo (identity, then the mirrored suspect if that is better); done once per photo
    and shared by every export of it."""
    if not len(photo.desc):
        return PhotoFit(None)
    sw = feats.rgb.shape[1]
    tries = [(False, feats)]
    if try_mirror:
        tries.append((True, feats.mirrored))
    best: PhotoFit | None = None
    total = 0
    for mirrored, f in tries:
        a, n_in, n_match, pts = _fit(f, photo)
        total = max(total, n_match)
        if a is not None and (best is None or n_in > best.inliers):
            m = np.vstack([a, [0, 0, 1]]).astype(np.float64)
            if mirrored:  # the fit was on the mirror image: compose with the flip x -> (w - 1) - x
                m = m @ np.array([[-1.0, 0, sw - 1], [0, 1, 0], [0, 0, 1]])
            best = PhotoFit(m, n_in, n_match, mirrored, pts)
        if best is not None and best.inliers >= CLEAR_INLIERS and not mirrored:
            break  # a clear identity registration: do not pay for the mirrored SIFT pass
    return best if best is not None else PhotoFit(None, matches=total)


def register_export(fit: PhotoFit, feats: SuspectFeatures, sig: sg.ExportTrace, *,
                    exclude: np.ndarray | None = None) -> Registration:
    """The photo fit mapped through one export's frame: suspect px -> export px, checked and correlated.

    Inliers are those that fall inside the export's canvas (a copy of a wider crop of the photo has inliers
    outside a narrower export).  ``exclude`` (bool, thumbnail frame): pixels left out of the correlations, i.e.
    the export's visible mark, the one place a thief alters on purpose (a painted-out mark must not make the copy
    look like another export).
    """
    ew, eh = sig.width, sig.height
    sh, sw = feats.rgb.shape[:2]
    base: dict[str, Any] = {"export_size": (ew, eh), "suspect_size": (sw, sh)}
    if not len(sig.kp_desc):
        return no_registration("candidate has no registration features", **base)
    if fit.matrix is None:
        return no_registration("too few feature matches", matches=fit.matches, **base)
    f2e = sig.feature_to_export()
    m = f2e @ fit.matrix
    pts = np.c_[fit.points, np.ones(len(fit.points))] @ f2e.T if len(fit.points) else np.zeros((0, 3))
    inside = (pts[:, 0] >= -0.5) & (pts[:, 0] <= ew - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= eh - 0.5)
    pts = pts[inside, :2]
    n_in = int(inside.sum())
    reg = Registration(ok=False, reason="", matrix=m, inliers=n_in, matches=fit.matches, mirrored=fit.mirrored,
                       **base)
    lin = m[:2, :2]
    det = abs(float(np.linalg.det(lin)))
    sv = np.linalg.svd(lin, compute_uv=False)
    reg.spread = _hull_area(pts) / float(ew * eh)
    corners = np.array([[0, 0, 1], [sw, 0, 1], [sw, sh, 1], [0, sh, 1]], np.float64) @ m.T
    poly = corners[:, :2].astype(np.float32)
    clip = np.zeros((64, 64), np.uint8)
    cv2.fillConvexPoly(clip, np.round(poly / [ew, eh] * 64).astype(np.int32), 1)
    reg.overlap = float(clip.mean())
    try:  # the export's rectangle seen from the suspect: how much of the copy this export explains
        inv = np.linalg.inv(m)
        rect = np.array([[0, 0, 1], [ew, 0, 1], [ew, eh, 1], [0, eh, 1]], np.float64) @ inv.T
        back = np.zeros((64, 64), np.uint8)
        cv2.fillConvexPoly(back, np.round(rect[:, :2] / [sw, sh] * 64).astype(np.int32), 1)
        reg.suspect_share = float(back.mean())
    except np.linalg.LinAlgError:
        reg.suspect_share = 0.0
    if n_in < MIN_INLIERS:
        reg.reason = f"{n_in} inliers (< {MIN_INLIERS})"
    elif not (MIN_SCALE ** 2 <= det <= MAX_SCALE ** 2):
        reg.reason = f"degenerate transform (scale {np.sqrt(det):.3g})"
    elif sv[1] == 0 or sv[0] / sv[1] > MAX_ANISOTROPY:
        reg.reason = f"degenerate transform (anisotropy {sv[0] / max(sv[1], 1e-9):.2f})"
    elif reg.spread < MIN_SPREAD:
        reg.reason = f"inliers cover only {reg.spread:.1%} of the export"
    else:
        reg.ok = True
        reg.reason = "registered"
    thumb = sig.thumbnail_rgb()
    if reg.ok and thumb is not None:
        warped, mask = aligned_to_thumbnail(feats.rgb, m, sig)
        if exclude is not None and exclude.shape == mask.shape:
            mask = mask & ~exclude
        reg.ncc, reg.ncc_grey = dense_ncc(warped, mask, thumb)
    return reg


def register(feats: SuspectFeatures, sig: sg.ExportTrace, *, try_mirror: bool = True,
             exclude: np.ndarray | None = None) -> Registration:
    """Register the suspect to one candidate export (``fit_photo`` + ``register_export``)."""
    return register_export(fit_photo(feats, sig.photo, try_mirror=try_mirror), feats, sig, exclude=exclude)


BACKGROUND_TOL = 24  # a suspect pixel within this (per channel) of the export's background colour agrees with it
_PAD_SAMPLES = 24  # per side of the sampling grid over the export's padding


def padding_agreement(suspect: np.ndarray, reg: Registration, canvas: tuple[int, int],
                      photo_box: tuple[int, int, int, int], background: tuple[int, int, int]) -> float | None:
    """Share of the export's padding (its canvas outside the photo) that the suspect shows in the background
    colour where the registration puts it; None if the export has no padding inside the suspect.

    Two exports of one photo with different padding both register on a copy of either with the same fit (the
    photo is the same); a copy of the export with less padding, placed on a page (a screenshot), shows the page
    where the other export expects its background. The export actually copied agrees (about 1.0), its twin does
    not."""
    cw, ch = canvas
    x0, y0, x1, y1 = max(0, photo_box[0]), max(0, photo_box[1]), min(cw, photo_box[2]), min(ch, photo_box[3])
    gx, gy = np.meshgrid((np.arange(_PAD_SAMPLES) + 0.5) * cw / _PAD_SAMPLES,
                         (np.arange(_PAD_SAMPLES) + 0.5) * ch / _PAD_SAMPLES)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    pad = ~((pts[:, 0] >= x0) & (pts[:, 0] < x1) & (pts[:, 1] >= y0) & (pts[:, 1] < y1))
    if not pad.any():
        return None
    try:
        inv = np.linalg.inv(reg.matrix)  # export pixel -> suspect pixel
    except np.linalg.LinAlgError:
        return None
    hom = np.concatenate([pts[pad], np.ones((int(pad.sum()), 1))], axis=1) @ inv.T
    sx, sy = hom[:, 0] / hom[:, 2], hom[:, 1] / hom[:, 2]
    sh, sw = suspect.shape[:2]
    inside = (sx >= 0) & (sx < sw) & (sy >= 0) & (sy < sh)
    if not inside.any():
        return None
    px = suspect[sy[inside].astype(int), sx[inside].astype(int)].astype(np.int16)
    agree = np.all(np.abs(px - np.asarray(background, np.int16)) <= BACKGROUND_TOL, axis=1)
    return float(agree.mean())
