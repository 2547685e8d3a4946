"""Embedding of the invisible watermark: the keyed chip tile, rendered smooth, shaped by a perceptual mask and by
the picture itself (informed embedding), added to luminance.

The same delta is added to R, G and B (so to luminance, and not to chroma, which JPEG's 4:2:0 subsampling would
halve). Everything is computed at half resolution (a chip is 3.5 px there and the pattern is smooth at that
scale), the perceptual mask at quarter resolution; only one resize, two merges and two saturating adds touch
full-resolution pixels.

Informed embedding: at that half resolution the embedder computes exactly what a reader will compute for every
chip on the unmarked picture (the picture's own interference with the chip, which dominates reading), and sets
each chip's amplitude so the reader sees the intended sign with a common margin: chips the picture already pushes
the right way get little energy, chips it pushes the wrong way get more, hopeless ones are left to the error
correction. The total energy is unchanged (same PSNR); the reader's effective signal-to-noise ratio rises
several-fold on natural photos.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from pipeline.invisible import dsp
from pipeline.invisible.codec import encode_payload, pilot_variant
from pipeline.invisible.layout import CANON, CANON_TILE, PILOTS, TILE, VARIANTS, Layout, layout_for

# Perceptual mask: strength = ALPHA * local std + FLOOR (the floor fades in over the first FLAT_STD grey levels
# of local activity, so truly flat areas -- white backgrounds, uniform fills -- get nothing), then capped so that
# the mark's mean square stays within PSNR_TARGET (the most textured areas are capped first).
ALPHA = 0.30
FLOOR = 0.8
FLAT_STD = 1.0
ACTIVITY_WINDOW = 5  # quarter-resolution pixels (~3 chips)
PSNR_TARGET = 42.5  # the requirement is 42 dB
SSIM_BUDGET = 0.010  # predicted mean SSIM loss allowed (the requirement is SSIM >= 0.99)
SSIM_KAPPA = 0.65  # measured ratio of true SSIM loss to the uncalibrated predictor: 0.49-0.81 (median 0.62)
_C2 = (0.03 * 255) ** 2  # SSIM's contrast constant
CHIP_POWER = 0.75  # mean square of the rendered +-1 chip pattern (bicubic pulses)
PILOT_SHARE = 0.35  # share of the mark's power in the pilot tones
PILOT_AMP = math.sqrt(PILOT_SHARE * CHIP_POWER / (1 - PILOT_SHARE) / (PILOTS / 2))  # amplitude of each tone
PATTERN_POWER = CHIP_POWER / (1 - PILOT_SHARE)
# Informed embedding: per-chip amplitude multipliers stay within [A_MIN, A_MAX].
A_MIN = 0.3
A_MAX = 3.0
_OFFSET = 128  # the half-resolution delta travels as uint8 around this offset
_cv2_any: Any = cv2  # OpenCV's stubs reject scalar operands, which its arithmetic accepts


def _local_std(gray: np.ndarray, k: int) -> np.ndarray:
    mean = cv2.boxFilter(gray, -1, (k, k), borderType=cv2.BORDER_REFLECT)
    sq = cv2.boxFilter(gray * gray, -1, (k, k), borderType=cv2.BORDER_REFLECT)
    return np.sqrt(np.maximum(sq - mean * mean, 0.0))


def strength_map(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel amplitude (grey levels) of the mark from the local activity of the (quarter-resolution)
    luminance; and the fine-scale activity SSIM sees (for the SSIM budget)."""
    std = _local_std(gray, ACTIVITY_WINDOW)
    # texture, not isolated edges: the minimum over a neighbourhood keeps a product's outline from carrying a halo
    std = cv2.erode(std, np.ones((3, 3), np.uint8))
    s = ALPHA * std + FLOOR * np.minimum(std * (1.0 / FLAT_STD), 1.0)
    return s.astype(np.float32), _local_std(gray, 3)


def energy_ceiling(s: np.ndarray, std: np.ndarray) -> float:
    """The largest strength T such that min(s, T) keeps the mark within the PSNR target and the SSIM budget.

    MSE is mean(s^2) * PATTERN_POWER. SSIM's loss at a pixel is about var(mark) / (2 var(picture) + C2) over its
    7 x 7 window; ``SSIM_KAPPA`` (calibrated on photos and product shots) turns the quarter-resolution activity
    into that. Capping the strongest (most textured) areas first, rather than scaling everything down, spends
    the budget where the picture interferes least with reading.
    """
    max_ms = 255.0**2 / 10 ** (PSNR_TARGET / 10) / PATTERN_POWER
    sample = s.ravel()[::13]
    ssim_w = (SSIM_KAPPA * PATTERN_POWER) / (2.0 * std.ravel()[::13] ** 2 + _C2)

    def excess(t: float) -> float:
        m2 = np.minimum(sample, t) ** 2
        return max(float(np.mean(m2)) / max_ms, float(np.mean(m2 * ssim_w)) / SSIM_BUDGET)

    hi = float(sample.max()) if sample.size else 0.0
    if excess(hi) <= 1.0:
        return float(s.max()) + 1.0
    lo = 0.0
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        if excess(mid) > 1.0:
            hi = mid
        else:
            lo = mid
    return lo


def informed_amplitudes(values: np.ndarray, host: np.ndarray, gain: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Per-chip amplitude multipliers: reach a common margin M on every chip that can afford it.

    ``values`` +-1 intended chip signs, ``host`` the reader's chip values on the unmarked picture, ``gain`` the
    reader's chip value per unit amplitude, ``energy`` each chip's share of the mark's energy. M is the largest
    margin whose total energy does not exceed that of plain unit amplitudes.
    """
    g = np.maximum(gain, 1e-6)
    need0 = -values * host / g  # amplitude that just cancels the picture's push (negative: it helps)
    budget = float(np.sum(energy))
    hopeless = np.zeros(values.shape, bool)

    def amps(margin: float) -> np.ndarray:
        a = np.clip(need0 + margin / g, A_MIN, A_MAX)
        return np.where(hopeless, A_MIN, a)

    def solve() -> float:  # largest margin within the energy budget (energy grows with the margin)
        lo, hi = 0.0, float(np.max(g)) * A_MAX * 4
        for _ in range(24):
            mid = 0.5 * (lo + hi)
            if float(np.sum(amps(mid) ** 2 * energy)) > budget:
                hi = mid
            else:
                lo = mid
        return lo

    margin = solve()
    # chips that cannot reach the margin even at A_MAX are left to the error correction; their energy goes to
    # the others
    hopeless = need0 + margin / g > A_MAX
    margin = solve()
    return amps(margin)


def without_pilots(lay: Layout, correction: np.ndarray) -> np.ndarray:
    """Remove the pilot frequencies from a chip-grid correction, so informed embedding cannot cancel the pilots."""
    spec = np.fft.fft2(correction)
    for kx, ky in lay.pilots:
        spec[ky % TILE, kx % TILE] = 0
        spec[-ky % TILE, -kx % TILE] = 0
    return np.fft.ifft2(spec).real.astype(np.float32)


def _span(active: np.ndarray, size_q: int) -> tuple[int, int]:
    """First and last+1 active index along one axis, the start aligned to a whole tile (42 quarter pixels)."""
    idx = np.flatnonzero(active)
    q_tile = CANON_TILE // 2
    return int(idx[0]) // q_tile * q_tile, min(size_q, int(idx[-1]) + 2)


def export_layout(subkey: bytes, payload: int) -> Layout:
    """The layout an export of ``payload`` carries: the pilot set its payload selects (scheme 2)."""
    return layout_for(subkey, pilot_variant(subkey, payload, VARIANTS))


def embed_pixels(rgb: np.ndarray, subkey: bytes, payload: int, mask: np.ndarray | None) -> np.ndarray:
    """The embedding proper (inputs already validated)."""
    h, w = rgb.shape[:2]
    lay = export_layout(subkey, payload)
    values = lay.tile(encode_payload(subkey, payload))
    hw, hh = -(-w // 2), -(-h // 2)  # half resolution (chip = CANON = 3.5 px)
    qw, qh = -(-hw // 2), -(-hh // 2)  # quarter resolution
    half = cv2.resize(rgb, (hw, hh), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(half, cv2.COLOR_RGB2GRAY).astype(np.float32)
    # perceptual mask from a quarter-resolution subsample (nearest: keeps fine texture in the activity measure)
    s, std = strength_map(cv2.resize(gray, (qw, qh), interpolation=cv2.INTER_NEAREST))
    if mask is not None:
        mq = np.ascontiguousarray(mask.view(np.uint8)[::4, ::4])
        s *= cv2.erode(mq, np.ones((3, 3), np.uint8))  # fade out a little inside the mask's edge
    s = np.minimum(s, energy_ceiling(s, std))
    active = s > 0.05
    if not active.any():
        return rgb.copy()
    # work only on the part that gets a mark (a product on white: its bounding box), tile-aligned
    qy0, qy1 = _span(active.any(axis=1), qh)
    qx0, qx1 = _span(active.any(axis=0), qw)
    s = s[qy0:qy1, qx0:qx1]
    gray = gray[2 * qy0 : 2 * qy1, 2 * qx0 : 2 * qx1]
    ch, cw = gray.shape
    s_half = cv2.resize(s, (cw, ch), interpolation=cv2.INTER_LINEAR)

    # informed embedding: the reader's view of the unmarked picture, chip by chip
    hp, act = dsp.whiten_parts(gray, CANON)
    host = dsp.chip_values(
        dsp.clean_fold(dsp.fold_aligned(np.clip(hp / act, -dsp.CLIP, dsp.CLIP)), lay.pilots), (0.0, 0.0)
    )
    # how strongly each chip will be present, and its energy: smooth maps, folded at quarter resolution
    act_q = cv2.resize(act, (s.shape[1], s.shape[0]), interpolation=cv2.INTER_AREA)
    n = CANON_TILE
    weight = cv2.resize(dsp.fold_aligned(s / act_q, n // 2), (n, n), interpolation=cv2.INTER_LINEAR)
    energy_map = cv2.resize(dsp.fold_aligned(s * s, n // 2), (n, n), interpolation=cv2.INTER_LINEAR)
    unit = dsp.rendered_tile(values, CANON)
    gain = dsp.chip_values(weight * dsp.highpass_cyclic(unit, CANON), (0.0, 0.0)) * values
    energy = dsp.chip_values(energy_map, (0.0, 0.0))
    amps = informed_amplitudes(values, host, gain, np.maximum(energy, 0.0))
    chips = without_pilots(lay, values * amps)  # the pilots' frequencies carry the pilots alone
    period = dsp.rendered_tile(chips, CANON) + PILOT_AMP * lay.pilot_period(CANON_TILE)

    delta = cv2.multiply(s_half, dsp.tiled(period, (ch, cw)))
    u = _cv2_any.add(delta, float(_OFFSET), dtype=cv2.CV_8U)  # rounded, saturated
    y0, x0 = 4 * qy0, 4 * qx0
    y1, x1 = min(h, 4 * qy1), min(w, 4 * qx1)
    rh, rw = y1 - y0, x1 - x0
    big = cv2.resize(u, (2 * cw, 2 * ch), interpolation=cv2.INTER_LINEAR)[:rh, :rw]
    m8 = mask[y0:y1, x0:x1].view(np.uint8) if mask is not None else None
    pos = np.zeros((rh, rw), np.uint8)
    neg = np.zeros((rh, rw), np.uint8)
    _cv2_any.subtract(big, _OFFSET, dst=pos, mask=m8)
    _cv2_any.subtract(cv2.bitwise_not(big), 255 - _OFFSET, dst=neg, mask=m8)  # (255 - big) - 127 = 128 - big
    if (rh, rw) == (h, w):
        out = cv2.add(rgb, cv2.merge([pos, pos, pos]))
        region = out
    else:
        out = rgb.copy()
        region = out[y0:y1, x0:x1]
        cv2.add(region, cv2.merge([pos, pos, pos]), dst=region)
    cv2.subtract(region, cv2.merge([neg, neg, neg]), dst=region)
    return out
