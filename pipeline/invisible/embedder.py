"""Embedding of the invisible watermark: the keyed chip tile, rendered smooth, shaped by a perceptual mask and by
the picture itself (informed embedding), added to luminance.

The same delta is added to R, G and B (so to luminance, and not to chroma, which JPEG's 4:2:0 subsampling would
halve). Everything is computed at half resolution (a chip is 3.5 px there and the pattern is smooth at that
scale), the perceptual mask at quarter resolution; only one resize, two merges and two saturating adds touch
full-resolution pixels.

Informed embedding: at that half resolution the embedder computes what a reader will compute for every chip (the
picture's own interference with the chip, which dominates reading), and sets the chips' amplitudes so the reader
sees every coded bit (the sum of its chips) with the intended sign and a common margin: bits the picture already
pushes the right way get little energy, bits it pushes the wrong way get more, and within a bit the chips that
cost least per unit of gain carry most; hopeless bits are left to the error correction. It then simulates the
reader on the marked picture in the folded tile (the mark's own activity in the normalisation, the chips'
leakage onto their neighbours, the spectral clean-up acting on picture and mark together) and solves again,
READER_ROUNDS times: the predicted chip values then match the reader's to a correlation of ~0.99 (0.91 without),
which is what decides the weak cases, small products whose few tiles leave a thin margin. The total energy is
unchanged (same PSNR); the reader's effective signal-to-noise ratio rises several-fold on natural photos.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from pipeline.invisible import dsp
from pipeline.invisible.codec import CODED_BITS, encode_payload, pilot_variant
from pipeline.invisible.layout import CANON, CANON_TILE, PILOTS, TILE, VARIANTS, Layout, layout_for

# Perceptual mask: strength = ALPHA * local std + a floor, then capped so that the mark's mean square stays within
# PSNR_TARGET and the SSIM budget (the most textured areas are capped first). The floor is the larger of FLOOR,
# faded in over the first FLAT_STD grey levels of local activity, and FLAT_FLOOR, which flat areas get too (a
# flat-coloured product, a black decal: without it they carried no mark at all, and the blind read missed them
# on every attack), wherever the picture leaves room: at most 1/HEADROOM of the distance to black or white of
# the darkest (brightest) channel nearby, so the mark is never clipped into a shift of the mean there (SSIM's
# luminance term punishes that in dark areas). Pixels outside the embedder's ``mask`` -- a preset's pure-white
# background -- still get nothing.
ALPHA = 0.30
FLOOR = 0.8
FLAT_STD = 1.0
FLAT_FLOOR = 1.5  # grey levels; below ~1 JPEG 50's quantiser zeroes the mark on flat areas (measured)
HEADROOM = 2.0
ACTIVITY_WINDOW = 5  # quarter-resolution pixels (~3 chips)
PSNR_TARGET = 42.5  # the requirement is 42 dB
SSIM_BUDGET = 0.010  # predicted mean SSIM loss allowed (the requirement is SSIM >= 0.99)
REGION_PSNR_TARGET = 35.5  # the same over the product (the mask) alone: the requirement is 35 dB there
REGION_SSIM_BUDGET = 0.060  # and SSIM >= 0.96 there (the predictor overstates the loss: 0.965 measured at this budget)
SSIM_KAPPA = 0.65  # measured ratio of true SSIM loss to the uncalibrated predictor: 0.49-0.81 (median 0.62)
_C2 = (0.03 * 255) ** 2  # SSIM's contrast constant
CHIP_POWER = 0.75  # mean square of the rendered +-1 chip pattern (bicubic pulses)
PILOT_SHARE = 0.35  # share of the mark's power in the pilot tones
PILOT_AMP = math.sqrt(PILOT_SHARE * CHIP_POWER / (1 - PILOT_SHARE) / (PILOTS / 2))  # amplitude of each tone
PATTERN_POWER = CHIP_POWER / (1 - PILOT_SHARE)
# Informed embedding: per-chip amplitude multipliers stay within [A_MIN, A_MAX].
A_MIN = 0.3
A_MAX = 3.0
MARGIN_STEPS = 24  # bisection steps of the common margin
READER_ROUNDS = 2  # informed embedding re-solved against the simulated reader's view of the marked picture
_OFFSET = 128  # the half-resolution delta travels as uint8 around this offset
_cv2_any: Any = cv2  # OpenCV's stubs reject scalar operands, which its arithmetic accepts


def _local_std(gray: np.ndarray, k: int) -> np.ndarray:
    mean = cv2.boxFilter(gray, -1, (k, k), borderType=cv2.BORDER_REFLECT)
    sq = cv2.boxFilter(gray * gray, -1, (k, k), borderType=cv2.BORDER_REFLECT)
    return np.sqrt(np.maximum(sq - mean * mean, 0.0))


def headroom(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, how far (grey levels) the darkest channel is from black and the brightest from white, the least
    over a 3 x 3 neighbourhood: how much a delta added equally to R, G and B can swing without clipping."""
    # OpenCV's per-channel min / max: numpy's reduction over a last axis of 3 is ~20x slower (13 ms against
    # 0.6 ms at 500 x 500, measured); the same values
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    room = cv2.min(cv2.min(cv2.min(r, g), b), 255 - cv2.max(cv2.max(r, g), b))
    return cv2.erode(room, np.ones((3, 3), np.uint8)).astype(np.float32)


def strength_map(gray: np.ndarray, room: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel amplitude (grey levels) of the mark from the local activity of the (quarter-resolution)
    luminance and the room the colours leave (``headroom``, same resolution); and the fine-scale activity SSIM
    sees (for the SSIM budget)."""
    std = _local_std(gray, ACTIVITY_WINDOW)
    # texture, not isolated edges: the minimum over a neighbourhood keeps a product's outline from carrying a halo
    std = cv2.erode(std, np.ones((3, 3), np.uint8))
    floor = np.maximum(FLOOR * np.minimum(std * (1.0 / FLAT_STD), 1.0), np.minimum(FLAT_FLOOR, room / HEADROOM))
    s = ALPHA * std + floor
    return s.astype(np.float32), _local_std(gray, 3)


def energy_ceiling(s: np.ndarray, std: np.ndarray, region: float = 1.0) -> float:
    """The largest strength T such that min(s, T) keeps the mark within the PSNR target and the SSIM budget,
    over the whole canvas and over the product (``region``: the share of the canvas the mask lets the mark
    into; outside it ``s`` is 0), so that a small product on a large white canvas does not take the whole
    canvas's budget alone: REGION_PSNR_TARGET and REGION_SSIM_BUDGET there.

    MSE is mean(s^2) * PATTERN_POWER. SSIM's loss at a pixel is about var(mark) / (2 var(picture) + C2) over its
    7 x 7 window; ``SSIM_KAPPA`` (calibrated on photos and product shots) turns the quarter-resolution activity
    into that. Capping the strongest (most textured) areas first, rather than scaling everything down, spends
    the budget where the picture interferes least with reading.
    """
    max_ms = 255.0**2 / 10 ** (PSNR_TARGET / 10) / PATTERN_POWER
    sample = s.ravel()[::13]
    ssim_w = (SSIM_KAPPA * PATTERN_POWER) / (2.0 * std.ravel()[::13] ** 2 + _C2)

    region_ms = 255.0**2 / 10 ** (REGION_PSNR_TARGET / 10) / PATTERN_POWER
    share = max(region, 1e-6)

    def excess(t: float) -> float:
        m2 = np.minimum(sample, t) ** 2
        ms, loss = float(np.mean(m2)), float(np.mean(m2 * ssim_w))
        return max(ms / max_ms, loss / SSIM_BUDGET, ms / share / region_ms, loss / share / REGION_SSIM_BUDGET)

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


def informed_amplitudes(lay: Layout, values: np.ndarray, host: np.ndarray, gain: np.ndarray,
                        energy: np.ndarray) -> np.ndarray:
    """Per-chip amplitude multipliers: reach a common margin M on every coded bit that can afford it.

    ``values`` +-1 intended chip signs, ``host`` the reader's chip values on the unmarked picture, ``gain`` the
    reader's chip value per unit amplitude, ``energy`` each chip's share of the mark's energy (all TILE x TILE).
    The reader sums the chips of each coded bit (``reader.coded_soft``), so the margin is asked of that sum, not of
    every chip: a chip the picture pushes the wrong way is outvoted by its bit's other chips for far less energy
    than cancelling it (measured on small products on white: the unattacked read's coded-bit errors fell from ~25 %
    to ~12 % at the same PSNR). For a bit needing a sum T, the least-energy amplitudes are proportional to each
    chip's gain per unit of energy, within [A_MIN, A_MAX]: a = clip(mu * g / e). The bit's sum is piecewise
    linear in mu, with a knee where a chip reaches A_MIN or A_MAX; it is evaluated at every knee and mu found
    exactly between two (``_BitSolver``). M is the largest margin (per chip of the bit) whose total energy does
    not exceed that of plain unit amplitudes (below zero when the picture works against so many bits that undoing
    it alone would cost more); bits that cannot reach it even at A_MAX are left to the error correction at A_MIN.
    """
    return _BitSolver(lay, gain, energy).amplitudes(values, host)


class _BitSolver:
    """The chips of every coded bit side by side (CODED_BITS x the most chips a bit has, padded with chips of no
    gain and no energy), and each bit's sum at every knee of its piecewise-linear response (see
    ``informed_amplitudes``): written out because a bisection per bit cost ~50 ms an embed (measured). All of it
    depends on the gains and energies alone, so one solver serves every round of an embed; the picture's
    interference (``host``) enters each solve."""

    def __init__(self, lay: Layout, gain: np.ndarray, energy: np.ndarray) -> None:
        rows, cols, bit = lay.data_rows, lay.data_cols, lay.data_bit
        order = np.argsort(bit, kind="stable")
        self.lay = lay
        self.chips = np.bincount(bit, None, CODED_BITS)
        width = int(self.chips.max())
        first = np.concatenate([[0], np.cumsum(self.chips)[:-1]])
        slot = np.arange(order.size) - np.repeat(first, self.chips)  # each chip's place within its bit
        self.cell = (rows[order], cols[order])  # the chip grid position of every (bit, slot)
        self.where = (bit[order], slot)
        shape = (CODED_BITS, width)
        self.g = np.zeros(shape)
        self.e = np.zeros(shape)
        ratio = np.ones(shape)
        self.g[self.where] = np.maximum(gain[self.cell], 1e-6)
        self.e[self.where] = np.maximum(energy[self.cell], 1e-9)
        ratio[self.where] = self.g[self.where] / self.e[self.where]
        self.ratio = ratio
        self.budget = float(np.sum(energy))
        knees = np.where((self.e > 0)[:, :, None], np.stack([A_MIN / ratio, A_MAX / ratio], axis=2), np.inf)
        knees = np.sort(knees.reshape(CODED_BITS, -1), axis=1)
        knees = np.concatenate([np.zeros((CODED_BITS, 1)), knees], axis=1)
        last = np.max(np.where(np.isfinite(knees), knees, 0.0), axis=1, keepdims=True)
        self.knees = np.where(np.isfinite(knees), knees, last)  # (bits, knees), ascending from mu = 0
        self.sums = np.einsum("bk,bjk->bj", self.g,
                              np.clip(self.knees[:, :, None] * ratio[:, None, :], A_MIN, A_MAX))

    def helped(self, values: np.ndarray, host: np.ndarray) -> np.ndarray:
        """Each bit's sum on the unmarked picture, signed so that > 0 means the picture helps."""
        lay = self.lay
        return np.bincount(lay.data_bit, (values * host)[lay.data_rows, lay.data_cols].astype(np.float64),
                           CODED_BITS)

    def reach(self, helped: np.ndarray) -> np.ndarray:
        """The most each bit can get (every chip at A_MAX)."""
        return helped + A_MAX * self.g.sum(axis=1)

    def amplitudes(self, values: np.ndarray, host: np.ndarray) -> np.ndarray:
        """The TILE x TILE amplitudes of ``informed_amplitudes``."""
        helped = self.helped(values, host)

        def solve(hopeless: np.ndarray) -> float:  # largest margin within the energy budget (energy grows with it)
            lo, hi = 0.0, float(np.max(self.g)) * A_MAX * 4
            if self.energy(self.amps(lo, helped, hopeless)) > self.budget:
                # the picture pushes so many bits the wrong way that merely undoing it costs more than the budget:
                # the margin goes below zero, down to where every bit sits at A_MIN (energy A_MIN^2 of the budget)
                lo, hi = float(np.min((helped + A_MIN * self.g.sum(axis=1)) / np.maximum(self.chips, 1))) - 1e-9, lo
            for _ in range(MARGIN_STEPS):
                mid = 0.5 * (lo + hi)
                if self.energy(self.amps(mid, helped, hopeless)) > self.budget:
                    hi = mid
                else:
                    lo = mid
            return lo

        hopeless = np.zeros(CODED_BITS, bool)
        margin = solve(hopeless)
        # bits that cannot reach the margin even at A_MAX are left to the error correction; their energy goes to
        # the others
        hopeless = self.reach(helped) < margin * self.chips
        margin = solve(hopeless)
        return self.chip_grid(self.amps(margin, helped, hopeless), values.shape)

    def amps(self, margin: float, helped: np.ndarray, hopeless: np.ndarray) -> np.ndarray:
        """(bits, slots) amplitudes: each bit's chips at the least energy that gives it ``margin`` per chip, the
        picture already giving it ``helped``."""
        need = margin * self.chips - helped
        j = np.clip(np.sum(self.sums < need[:, None], axis=1), 1, self.knees.shape[1] - 1)
        b = np.arange(CODED_BITS)
        m0, m1 = self.knees[b, j - 1], self.knees[b, j]
        f0, f1 = self.sums[b, j - 1], self.sums[b, j]
        t = np.clip((need - f0) / np.maximum(f1 - f0, 1e-12), 0.0, 1.0)
        mu = m0 + t * (m1 - m0)
        a = np.clip(mu[:, None] * self.ratio, A_MIN, A_MAX)
        return np.where(hopeless[:, None], A_MIN, a)

    def energy(self, amps: np.ndarray) -> float:
        return float(np.sum(amps * amps * self.e))

    def chip_grid(self, amps: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        out = np.full(shape, A_MIN, np.float32)
        out[self.cell] = amps[self.where]
        return out


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
    room = headroom(cv2.resize(half, (qw, qh), interpolation=cv2.INTER_NEAREST))
    s, std = strength_map(cv2.resize(gray, (qw, qh), interpolation=cv2.INTER_NEAREST), room)
    if mask is not None:
        mq = np.ascontiguousarray(mask.view(np.uint8)[::4, ::4])
        s *= cv2.erode(mq, np.ones((3, 3), np.uint8))  # fade out a little inside the mask's edge
    s = np.minimum(s, energy_ceiling(s, std, 1.0 if mask is None else float(np.mean(mask))))
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

    # informed embedding: the reader's view of the marked picture, chip by chip, simulated in the folded tile
    unit = dsp.rendered_tile(values, CANON)
    pilots = PILOT_AMP * lay.pilot_period(CANON_TILE)
    # the reader's local activity includes the mark's own (uncorrelated with the picture: the powers add), which
    # on flat areas is most of it
    mark_power = float(np.mean(dsp.highpass_cyclic(unit + pilots, CANON) ** 2))
    hp, act = dsp.whiten_parts(gray, CANON, added=(s_half * s_half) * mark_power)
    host_fold = dsp.fold_aligned(np.clip(hp / act, -dsp.CLIP, dsp.CLIP))
    # how strongly each chip will be present, and its energy: smooth maps, folded at quarter resolution
    act_q = cv2.resize(act, (s.shape[1], s.shape[0]), interpolation=cv2.INTER_AREA)
    n = CANON_TILE
    weight = cv2.resize(dsp.fold_aligned(s / act_q, n // 2), (n, n), interpolation=cv2.INTER_LINEAR)
    energy_map = cv2.resize(dsp.fold_aligned(s * s, n // 2), (n, n), interpolation=cv2.INTER_LINEAR)
    gain = dsp.chip_values(weight * dsp.highpass_cyclic(unit, CANON), (0.0, 0.0)) * values
    energy = np.maximum(dsp.chip_values(energy_map, (0.0, 0.0)), 0.0)

    def seen(amps: np.ndarray | None) -> np.ndarray:
        """The reader's chip values for chip amplitudes ``amps`` (None: the unmarked picture): the folded picture
        plus the folded chips (each leaking onto its neighbours through the high-pass and the uneven cover of a
        small or irregular product), through the reader's spectral clean-up, which acts on both at once. The
        pilots are left out: chips bent to cancel their leak weaken the pilots themselves (measured: the blind
        read then lost the lattice on small products)."""
        folded = host_fold
        if amps is not None:
            pattern = dsp.rendered_tile(without_pilots(lay, values * amps), CANON)
            folded = folded + weight * dsp.highpass_cyclic(pattern, CANON)
        return dsp.chip_values(dsp.clean_fold(folded, lay.pilots), (0.0, 0.0))

    solver = _BitSolver(lay, gain, energy)
    amps = solver.amplitudes(values, seen(None))
    for _ in range(READER_ROUNDS):
        # whatever the chips' own gain does not explain (the picture, the neighbours' leakage, the clean-up's
        # clipping) counts as the picture's interference, and the amplitudes are solved again
        amps = solver.amplitudes(values, seen(amps) - values * gain * amps)
    chips = without_pilots(lay, values * amps)  # the pilots' frequencies carry the pilots alone
    period = dsp.rendered_tile(chips, CANON) + pilots

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
