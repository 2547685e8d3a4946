"""Blind reading of the invisible watermark: pilot tones give the lattice, fold the tiles, pilot phases give the
shift and orientation, soft-decode.

1. Luminance at a work resolution (long side at most READ_LONG), whitened (``dsp.whiten``: high-passed and
   normalised by local activity, so the picture is mostly gone and white backgrounds contribute nothing).
2. The keyed pilot tones are strong lines in its spectrum; matching the strongest peaks to each keyed pilot set
   (the VARIANTS sets of scheme 2 and scheme 1's one, against the same peaks) gives candidate tiling lattices
   (scale, aspect change, rotation, mirror), whatever the crop; the best MAX_CANDIDATES of all sets are folded.
3. For a candidate lattice the residual (whitened at that chip size) is resampled onto the canonical tile grid
   and all tiles are summed ("folded"): crops only lose tiles, a pasted banner only dilutes the sum.
4. In the folded tile the pilots' phases give the tile's cyclic shift, for each of its ORIENTATIONS (as folded,
   mirrored, turned 180 degrees, both: a top-bottom mirror); the strength of that pilot correlation (a z-score)
   and how much the chips look like a codeword there (keyless) rank the hypotheses: they are decoded
   alternately in the order of each.
5. The lattice is refined from how the pilot phases drift between the halves of the picture (folded
   separately), then the chips are sampled, soft-decoded (Viterbi) and the keyed check verified; a decode
   through pilot set v of the family also needs a payload that selects v (``codec.pilot_variant``).
6. If nothing decoded, the hypothesis whose chips look most like a codeword (of those with pilot z >=
   POLISH_MIN_Z) has its lattice polished by the chips themselves (small perturbations kept when the codeword
   agreement rises) and is decoded with the last of the MAX_DECODES attempts.

False positives: every decode attempt counts (``fp_bound``), and each checks LIST_SIZE = 3 candidates of the list
decoder (``codec.decode_payload``): 3 * 2**-26 through scheme 1's set, 3 * 2**-26 / VARIANTS through one of the
family (the variant check is an independent keyed hash). A blind read makes at most MAX_DECODES = 8, at most
MAX_LEGACY_DECODES = 3 of them through scheme 1's set: <= 3 * (3 + 5/32) * 2**-26 = 1.4e-7 per picture
(``WORST_FP``; 4.7e-8 before the list decoder, 16 * 2**-26 = 2.4e-7 before the family). The choice of pilot set,
lattice and shift by pilot strength and codeword agreement uses no keyed check: free. An informed read makes one
decode, accepted on the keyed check alone: 3 * 2**-26 = 4.5e-8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from pipeline.invisible import dsp
from pipeline.invisible.codec import (
    CHECK_BITS,
    CODED_BITS,
    LIST_SIZE,
    Decoded,
    agreement,
    decode_payload,
    pilot_variant,
)
from pipeline.invisible.layout import (
    CANON,
    CANON_TILE,
    CHIP_PX,
    LEGACY,
    SCHEME,
    TILE,
    VARIANTS,
    Layout,
    layout_for,
    read_variants,
)

READ_LONG = 1024  # long side of the reader's work image (pixels)
PILOT_CHIP = 3.5  # chip size assumed by the whitening used for the pilot search
PEAK_WINDOW = 31  # spectral peaks are measured against the mean power of this neighbourhood (bins)
PILOT_FREQ = (0.012, 0.34)  # band searched for pilot lines (cycles per work pixel)
PILOT_PEAKS = 32  # strongest spectral peaks considered
PILOT_TOL = 2  # bins
PROPOSAL_PEAKS = 14  # of which the strongest propose lattices (pairs of them)
PILOT_MIN_MATCH = 4  # pilots that must be found for a lattice proposal
PILOT_FIT_TOL = 0.75  # bins: a matched peak further than this from the fitted lattice's pilot is dropped
MIN_CHIP, MAX_CHIP = 1.2, 16.0  # plausible chip sizes in the work image (pixels)
MAX_ANGLE = math.radians(25)  # plausible rotation of the lattice
SET_CANDIDATES = 5  # lattice candidates proposed per pilot set
MAX_CANDIDATES = 16  # lattice candidates folded and ranked (over all pilot sets together)
MAX_LEGACY_DECODES = 3  # of which at most this many through scheme 1's pilot set (they cost 2**-26 each)
SHIFTS_PER_HYPOTHESIS = 16  # pilot-correlation peaks compared (by codeword agreement) per hypothesis
HINTED_VARIANTS = 4  # informed read: the pilot sets with the most coherent pilots compared by codeword agreement
MAX_DECODES = 8  # decode attempts per read (the false-positive bound counts every one)
MIN_PILOT_Z = 3.0  # hypotheses whose pilot correlation is weaker are not worth a decode attempt
REFINE_ROUNDS = 3
POLISH_MIN_Z = MIN_PILOT_Z  # pilots at least this strong for a hypothesis to be polished when nothing decoded
POLISH_STEPS = (0.004, 0.002, 0.001)  # relative lattice perturbations tried, coarse to fine


@dataclass(frozen=True)
class Hint:
    """A known geometric relation between a suspect and the original export (from the trace registration).

    ``homography`` maps suspect pixel coordinates (x, y, 1) to the export's pixel coordinates; ``export_size``
    is the export's (width, height).
    """

    homography: np.ndarray
    export_size: tuple[int, int]


@dataclass
class Detection:
    """The result of a read."""

    found: bool
    payload: int | None
    confidence: float  # 0..1
    bit_errors: int | None  # coded-bit errors corrected by the ECC (of CODED_BITS)
    false_positive_probability: float  # analytic bound for an unmarked picture under the search that was run
    details: dict[str, Any] = field(default_factory=dict)


def fp_bound(decodes: int, legacy: int | None = None) -> float:
    """Union bound of the per-image false-positive probability after ``decodes`` decode attempts, of which
    ``legacy`` went through scheme 1's pilot set (None: count all of them so, the conservative figure).

    Each decode checks LIST_SIZE candidates. A legacy candidate passes by chance with probability
    2**-CHECK_BITS; one through pilot set v of the family must also have a payload that selects v
    (``codec.pilot_variant``, an independent keyed hash), so 2**-CHECK_BITS / VARIANTS. At least one decode's
    worth is always reported. Worst case of a blind read: MAX_LEGACY_DECODES legacy + the rest of MAX_DECODES
    through the family: 3 * (3 + 5/32) * 2**-26 = 1.4e-7.
    """
    legacy = decodes if legacy is None else min(legacy, decodes)
    cost = legacy + (decodes - legacy) / VARIANTS
    return LIST_SIZE * max(cost, 1.0 if decodes == 0 else 0.0, 1.0 / VARIANTS) * 2.0**-CHECK_BITS


WORST_FP = fp_bound(MAX_DECODES, MAX_LEGACY_DECODES)  # the bound of any blind read (1.4e-7)


# ------------------------------------------------------------------------------------------------ lattice


def work_image(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """Luminance scaled so the long side is at most READ_LONG; returns it and the scale factor applied."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    f = min(1.0, READ_LONG / max(h, w))
    if f < 1.0:
        gray = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return gray.astype(np.float32), f


def _para(m: float, c: float, p: float) -> float:
    d = m - 2 * c + p
    return 0.0 if d >= 0 else float(np.clip(0.5 * (m - p) / d, -0.5, 0.5))


def _normalise_basis(m: np.ndarray) -> np.ndarray:
    """Canonical->work matrices are equivalent up to the lattice's symmetries: make det > 0 (a mirrored copy is
    folded mirrored, and the shift search tries the mirror) and the first axis point along +x."""
    if np.linalg.det(m) < 0:
        m = m @ np.diag([-1.0, 1.0])
    if m[0, 0] < 0:
        m = -m
    return m


@lru_cache(maxsize=8)
def _tukey(n: int, alpha: float = 0.3) -> np.ndarray:
    """Tukey window: flat in the middle, cosine tapers over ``alpha`` of the length (no edge cross in the DFT)."""
    x = np.arange(n) / max(1, n - 1)
    w = np.ones(n, np.float32)
    edge = alpha / 2
    lo, hi = x < edge, x > 1 - edge
    w[lo] = 0.5 * (1 - np.cos(np.pi * x[lo] / edge))
    w[hi] = 0.5 * (1 - np.cos(np.pi * (1 - x[hi]) / edge))
    return w


@dataclass(frozen=True)
class Peaks:
    """The strongest spectral peaks of a whitened picture (where pilot lines may be), shared by every pilot set."""

    q: np.ndarray  # (P, 2) peak positions (x, y), bins from the centre, sub-bin
    strength: np.ndarray  # (P,) log of the peak's power over its background
    n: int  # DFT size
    lookup: np.ndarray  # (n, n) int32: which peak covers each bin (within PILOT_TOL, mirrored), -1 for none
    _pairs: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)

    def pairs(self) -> np.ndarray:
        """[q_a, s q_b] for every pair a < b of the PROPOSAL_PEAKS strongest peaks, s = +1 then -1: (P, 2, 2)."""
        if not self._pairs:
            ia, ib = np.triu_indices(min(self.q.shape[0], PROPOSAL_PEAKS), 1)
            qa, qb = self.q[ia], self.q[ib]
            self._pairs.append(np.concatenate([np.stack([qa, sgn * qb], axis=2) for sgn in (1.0, -1.0)]))
        return self._pairs[0]


def spectral_peaks(r: np.ndarray) -> Peaks | None:
    """The PILOT_PEAKS strongest local peaks of ``r``'s spectrum in the pilot band (None if there are too few)."""
    h, w = r.shape
    n = cv2.getOptimalDFTSize(max(h, w))
    pad = np.zeros((n, n), np.float32)
    pad[:h, :w] = (r - r.mean()) * _tukey(h)[:, None] * _tukey(w)[None, :]
    spec = cv2.dft(pad, flags=cv2.DFT_COMPLEX_OUTPUT)
    # float64: the box sums below subtract large numbers (a strong line inside both boxes)
    power = np.fft.fftshift(spec[..., 0].astype(np.float64) ** 2 + spec[..., 1].astype(np.float64) ** 2)
    # background: mean power over an annulus around each bin (the bin's own neighbourhood excluded, so a line
    # does not normalise itself away, and the mark's weaker lattice lines count as background)
    outer = cv2.boxFilter(power, -1, (PEAK_WINDOW, PEAK_WINDOW), normalize=False, borderType=cv2.BORDER_REFLECT)
    inner = cv2.boxFilter(power, -1, (5, 5), normalize=False, borderType=cv2.BORDER_REFLECT)
    norm = power / ((outer - inner) / (PEAK_WINDOW**2 - 25) + 1e-12)
    c = n // 2
    yy, xx = np.mgrid[-c : n - c, -c : n - c]
    rad = np.hypot(xx, yy) / n
    # half plane, and off the axes (straight edges and borders put lines there; no pilot lies near an axis)
    band = (rad >= PILOT_FREQ[0]) & (rad <= PILOT_FREQ[1]) & (yy > 0)
    band &= np.abs(xx) > np.maximum(2, 0.08 * np.abs(yy))
    band &= np.abs(yy) > np.maximum(2, 0.08 * np.abs(xx))
    dil = cv2.dilate(norm, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(band & (norm == dil))
    if ys.size < 3:
        return None
    order = np.argsort(-norm[ys, xs])[:PILOT_PEAKS]
    ys, xs = ys[order], xs[order]
    strength = np.log(np.maximum(norm[ys, xs], 1.0))
    logp = np.log(power + 1e-12)
    q = np.zeros((ys.size, 2))
    for i, (y, x) in enumerate(zip(ys, xs, strict=True)):
        if 0 < y < n - 1 and 0 < x < n - 1:
            q[i] = (x - c + _para(logp[y, x - 1], logp[y, x], logp[y, x + 1]),
                    y - c + _para(logp[y - 1, x], logp[y, x], logp[y + 1, x]))
        else:
            q[i] = (x - c, y - c)
    # every observed peak marks its neighbourhood in a lookup grid (and its mirror: the spectrum is symmetric)
    lookup = np.full((n, n), -1, np.int32)
    tol = PILOT_TOL
    for j in np.argsort(strength):  # strongest last: they win overlaps
        for mirror in (1, -1):
            bx, by = int(round(mirror * q[j, 0])) + c, int(round(mirror * q[j, 1])) + c
            lookup[max(0, by - tol) : by + tol + 1, max(0, bx - tol) : bx + tol + 1] = j
    return Peaks(q, strength, n, lookup)


@lru_cache(maxsize=4 * 33)
def _pilot_solve_cached(pilots: bytes, k: int) -> np.ndarray:
    p = np.frombuffer(pilots, np.int64).reshape(k, 2).astype(np.float64)
    pi, pj = np.nonzero(~np.eye(k, dtype=bool))
    pinv = np.linalg.inv(np.stack([np.column_stack([p[a], p[b]]) for a, b in zip(pi, pj, strict=True)]))
    out = np.einsum("bjk,lk->bjl", pinv, p)
    out.setflags(write=False)
    return out


def _pilot_solve(lay: Layout) -> np.ndarray:
    """For every ordered pair (i, j) of the set's pilots: [p_i, p_j]^-1 applied to every pilot, (pairs, 2, K)."""
    pilots = np.ascontiguousarray(lay.pilots, np.int64)
    return _pilot_solve_cached(pilots.tobytes(), pilots.shape[0])


def pilot_candidates(r: np.ndarray, lay: Layout, scale: float = 1.0) -> list[tuple[np.ndarray, float]]:
    """Candidate canonical->work matrices for ``lay``'s pilot set from ``r``'s spectral lines (``match_pilots``)."""
    peaks = spectral_peaks(r)
    return [] if peaks is None else match_pilots(peaks, lay, scale)


def match_pilots(peaks: Peaks, lay: Layout, scale: float = 1.0) -> list[tuple[np.ndarray, float]]:
    """Candidate canonical->work matrices from the spectral peaks for one pilot set, best first, with a score.

    Each pilot (kx, ky) cycles per tile appears as a line at q = (n / CANON_TILE) M^-T p in the n-point
    spectrum. Strong local peaks are matched to the keyed pilot set: every pair of peaks and every ordered pair
    of pilots (with the spectrum's sign ambiguity) proposes M; a proposal scores the strength of the peaks found
    where the other pilots should be. ``scale`` multiplies the returned matrices (``r`` was downsampled).
    """
    q, strength, n, lookup = peaks.q, peaks.strength, peaks.n, peaks.lookup
    c = n // 2
    p = lay.pilots.astype(np.float64)  # (K, 2) as (kx, ky)
    k = p.shape[0]
    # proposals: B maps pilot (kx, ky) to peak (qx, qy); B = [qa, s qb] [pi, pj]^-1, from the strongest peaks
    # (every pair a, b of peaks, both signs s, every ordered pair i, j of pilots); B p predicts every pilot
    qq = peaks.pairs()  # (P, 2, 2)
    solve = _pilot_solve(lay)  # (pilot pairs, 2, K): [pi, pj]^-1 p
    pred = qq[:, None, :, 0, None] * solve[None, :, None, 0, :] + qq[:, None, :, 1, None] * solve[None, :, None, 1, :]
    pred = pred.reshape(-1, 2, k).transpose(0, 2, 1)  # (N, K, 2) predicted peak positions (bins, centred)
    px = np.clip(np.rint(pred[..., 0]).astype(np.intp) + c, 0, n - 1)
    py = np.clip(np.rint(pred[..., 1]).astype(np.intp) + c, 0, n - 1)
    idx = lookup[py, px]  # (N, K): which peak each pilot lands on, -1 for none
    best = np.where(idx >= 0, strength[np.maximum(idx, 0)], 0.0)
    matched = (idx >= 0).sum(axis=1)
    score = best.sum(axis=1) + 100.0 * matched  # more pilots found first, then stronger
    good = np.nonzero(matched >= PILOT_MIN_MATCH)[0]
    good = good[np.argsort(-score[good])][: 20 * SET_CANDIDATES]
    out: list[tuple[np.ndarray, float]] = []
    for g in good:
        # least squares over every matched pilot, signs resolved
        sel = np.nonzero(idx[g] >= 0)[0]
        rows_p, rows_q = [], []
        for kk in sel:
            j = int(idx[g, kk])
            sg = 1.0 if np.sum((pred[g, kk] - q[j]) ** 2) <= np.sum((pred[g, kk] + q[j]) ** 2) else -1.0
            rows_p.append(p[kk])
            rows_q.append(sg * q[j])
        pp, qq_ = np.array(rows_p), np.array(rows_q)
        sol, *_ = np.linalg.lstsq(pp, qq_, rcond=None)
        # a strong line of the picture's own (a printed stripe) within PILOT_TOL of where a pilot belongs is
        # matched in its place and drags the lattice off by percents, which no later step recovers: drop the
        # match that fits worst while it is off by more than PILOT_FIT_TOL bins, down to PILOT_MIN_MATCH pilots
        while pp.shape[0] > PILOT_MIN_MATCH:
            err = np.hypot(*(pp @ sol - qq_).T)
            worst = int(np.argmax(err))
            if err[worst] <= PILOT_FIT_TOL:
                break
            pp, qq_ = np.delete(pp, worst, axis=0), np.delete(qq_, worst, axis=0)
            sol, *_ = np.linalg.lstsq(pp, qq_, rcond=None)
        b = sol.T  # q = B p
        try:
            m = np.linalg.inv((CANON_TILE / n) * b).T * scale
        except np.linalg.LinAlgError:
            continue
        m = _normalise_basis(m)
        chip = math.sqrt(abs(np.linalg.det(m))) * CANON
        c1, c2 = np.linalg.norm(m[:, 0]), np.linalg.norm(m[:, 1])
        cosang = abs(float(m[:, 0] @ m[:, 1])) / (c1 * c2)
        rot = abs(math.atan2(m[1, 0], m[0, 0]))
        if not (MIN_CHIP <= chip <= MAX_CHIP and 0.6 <= c1 / c2 <= 1.66 and cosang <= 0.35 and rot <= MAX_ANGLE):
            continue
        if any(np.max(np.abs(m - o)) < 0.02 * np.max(np.abs(o)) for o, _ in out):
            continue
        out.append((m, float(score[g])))
        if len(out) >= SET_CANDIDATES:
            break
    return out


# ------------------------------------------------------------------------------------------------ fold & shift


@dataclass
class Folded:
    """A residual resampled onto the canonical grid, as (tile rows, CANON_TILE, tile cols, CANON_TILE)."""

    blocks: np.ndarray
    m: np.ndarray  # canonical (x, y) -> work (x, y), 2 x 2

    def total(self, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        return np.asarray(self.blocks[rows, :, cols, :].sum(axis=(0, 2)))


def fold(r: np.ndarray, m: np.ndarray) -> Folded:
    """Resample ``r`` onto the canonical grid (``m`` maps canonical (x, y) to the residual's (x, y)), tile by tile."""
    h, w = r.shape
    minv = np.linalg.inv(m)
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64).T
    uc = minv @ corners
    umin = np.floor(uc.min(axis=1))
    umax = np.ceil(uc.max(axis=1))
    nx = max(1, math.ceil((umax[0] - umin[0]) / CANON_TILE))
    ny = max(1, math.ceil((umax[1] - umin[1]) / CANON_TILE))
    affine = np.hstack([m, (m @ umin)[:, None]]).astype(np.float64)
    warped = cv2.warpAffine(
        r, affine, (nx * CANON_TILE, ny * CANON_TILE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )
    return Folded(warped.reshape(ny, CANON_TILE, nx, CANON_TILE), m)


#: How a folded tile may sit relative to the embedded one, as (mirrored left-right, turned 180 degrees): the
#: lattice fit cannot tell a lattice from its mirror (det < 0 is folded mirrored) or from its negative (the
#: spectrum is symmetric), so a mirrored copy folds mirrored, an upside-down one turned, and a top-bottom
#: mirror (left-right mirror and turn) both. Trying all four is keyless: free for the false-positive bound.
Orientation = tuple[bool, bool]
UPRIGHT: Orientation = (False, False)
ORIENTATIONS: tuple[Orientation, ...] = (UPRIGHT, (True, False), (False, True), (True, True))


def oriented(folded: np.ndarray, orientation: Orientation) -> np.ndarray:
    """The folded tile as it would read upright under ``orientation`` (a view)."""
    flipped, turned = orientation
    f = folded[:, ::-1] if flipped else folded
    return f[::-1, ::-1] if turned else f


@dataclass
class ShiftHit:
    z: float  # strength of the pilot correlation at this shift (noise-normalised)
    shift: tuple[float, float]  # (dy, dx) canonical pixels: the tile's pattern is rolled by this much
    flipped: bool  # the folded tile is the embedded one mirrored left-right
    turned: bool = False  # ... turned 180 degrees (after the mirror)

    @property
    def orientation(self) -> Orientation:
        return (self.flipped, self.turned)


class PilotSync:
    """The pilot tones' keyed phases in a folded tile give its cyclic shift (and its orientation)."""

    def __init__(self, lay: Layout) -> None:
        self.layout = lay
        self.k = lay.pilots.astype(np.float64)  # (K, 2) (kx, ky)
        self.phase = lay.pilot_phase
        n = CANON_TILE
        g = np.arange(n, dtype=np.float64)
        self.dy, self.dx = np.meshgrid(g, g, indexing="ij")
        # a pattern rolled by d multiplies pilot k by exp(-2 pi i k.d / n): the correlation basis over every d
        arg = 2 * np.pi * (self.k[:, 0, None, None] * self.dx + self.k[:, 1, None, None] * self.dy) / n
        self.basis = np.exp(1j * arg)  # (K, n, n), built once per pilot set and read
        fy = np.fft.fftfreq(n)[:, None] * n
        fx = np.fft.rfftfreq(n)[None, :] * n
        self.ring = np.rint(np.hypot(fx, fy)).astype(np.intp)
        radii = np.rint(np.hypot(self.k[:, 0], self.k[:, 1])).astype(np.intp)
        self.noise_sel = np.isin(self.ring, radii)
        for kx, ky in lay.pilots:  # the pilot bins themselves are not noise
            for sx, sy in ((kx, ky), (-kx, -ky)):
                if sx >= 0:
                    self.noise_sel[sy % n, sx] = False
        for a in (self.k, self.dy, self.dx, self.basis, self.ring, self.noise_sel):
            a.setflags(write=False)  # shared by every read under the key (``syncs_for``)

    def coefficients(self, folded: np.ndarray, orientation: Orientation) -> tuple[np.ndarray, float]:
        """Each pilot's complex coefficient with its keyed phase removed, and the noise level per bin."""
        spec = np.fft.rfft2(oriented(folded, orientation))
        n = CANON_TILE
        vals = []
        for (kx, ky), ph in zip(self.layout.pilots, self.phase, strict=True):
            v = spec[ky % n, kx] if kx >= 0 else np.conj(spec[-ky % n, -kx])
            vals.append(v * np.exp(-1j * ph))
        noise = float(np.sqrt(np.mean(np.abs(spec[self.noise_sel]) ** 2))) or 1.0
        return np.array(vals), noise

    def coherence(self, folded: np.ndarray, orientation: Orientation) -> float:
        """Total pilot power in a folded tile relative to the noise: grows as the fold gets more coherent."""
        coef, noise = self.coefficients(folded, orientation)
        return float(np.sum(np.abs(coef) ** 2)) / noise**2

    def hits(self, folded: np.ndarray, orientations: tuple[Orientation, ...] = ORIENTATIONS,
             count: int = 1) -> list[ShiftHit]:
        """The ``count`` best shifts for each of ``orientations``, strongest first."""
        out = []
        n = CANON_TILE
        for orientation in orientations:
            coef, noise = self.coefficients(folded, orientation)
            c = np.sum(np.real(coef[:, None, None] * self.basis), axis=0)  # correlate over every shift
            z_map = (c / (noise * math.sqrt(len(coef) / 2))).astype(np.float32)
            wrapped = np.pad(z_map, 2, mode="wrap")
            dil = cv2.dilate(wrapped, np.ones((5, 5), np.uint8))[2:-2, 2:-2]
            ys, xs = np.nonzero(z_map >= dil)
            order = np.argsort(-z_map[ys, xs])[:count]
            for i in order:
                y, x = int(ys[i]), int(xs[i])
                sy = y + _para(z_map[(y - 1) % n, x], z_map[y, x], z_map[(y + 1) % n, x])
                sx = x + _para(z_map[y, (x - 1) % n], z_map[y, x], z_map[y, (x + 1) % n])
                out.append(ShiftHit(float(z_map[y, x]), (sy, sx), *orientation))
        out.sort(key=lambda h: -h.z)
        return out

    def region_shift(self, folded: np.ndarray, ref: ShiftHit) -> tuple[np.ndarray, float]:
        """How far (dy, dx) a region's pattern is rolled relative to ``ref``, from the pilot phase differences."""
        coef, noise = self.coefficients(folded, ref.orientation)
        n = CANON_TILE
        expect = -2 * np.pi * (self.k[:, 0] * ref.shift[1] + self.k[:, 1] * ref.shift[0]) / n
        dphi = np.angle(coef * np.exp(-1j * expect))
        weight = np.abs(coef)
        # dphi_i = -2 pi (kx dx + ky dy) / n, least squares weighted by each pilot's strength
        a = -2 * np.pi / n * np.column_stack([self.k[:, 1], self.k[:, 0]]) * weight[:, None]
        sol, *_ = np.linalg.lstsq(a, dphi * weight, rcond=None)
        z = float(np.sum(weight) / (noise * math.sqrt(len(coef))))
        return sol, z


def refine(r: np.ndarray, folded: Folded, hit: ShiftHit, sync: PilotSync) -> tuple[Folded, ShiftHit]:
    """Correct the lattice from how the pattern's roll drifts between the halves of the picture (left/right,
    top/bottom, folded separately from the same resampling): a lattice off by a fraction of a pixel per period
    makes the halves disagree by that fraction times the distance between the halves' centres (weighted by
    where the picture carries the mark). A correction is kept only if it makes the pilots more coherent."""
    best_f, best_h = folded, hit
    best_c = sync.coherence(best_f.total(), best_h.orientation)
    for _ in range(REFINE_ROUNDS):
        ny, nx = best_f.blocks.shape[0], best_f.blocks.shape[2]
        if nx < 2 or ny < 2:
            break
        weight = np.abs(best_f.blocks).sum(axis=(1, 3))  # (ny, nx): how much each tile carries
        centres = np.arange(max(nx, ny)) * CANON_TILE + CANON_TILE / 2
        shifts, spans = [], []
        for rows, cols in (
            (slice(None), slice(0, nx // 2)), (slice(None), slice(nx // 2, None)),
            (slice(0, ny // 2), slice(None)), (slice(ny // 2, None), slice(None)),
        ):
            d, z = sync.region_shift(best_f.total(rows, cols), best_h)
            if z < MIN_PILOT_Z:
                return best_f, best_h
            shifts.append(d)
            w = weight[rows, cols]
            tot = float(w.sum()) or 1.0
            spans.append((float((w.sum(axis=0) * centres[:nx][cols]).sum()) / tot,
                          float((w.sum(axis=1) * centres[:ny][rows]).sum()) / tot))
        # a roll seen in the oriented tile is the folded tile's roll, negated along each axis the orientation reverses
        sx = -1.0 if best_h.flipped != best_h.turned else 1.0
        sy = -1.0 if best_h.turned else 1.0
        span_x = max(spans[1][0] - spans[0][0], CANON_TILE / 2)
        span_y = max(spans[3][1] - spans[2][1], CANON_TILE / 2)
        d_lr = np.array([sx * (shifts[1][1] - shifts[0][1]), sy * (shifts[1][0] - shifts[0][0])])
        d_tb = np.array([sx * (shifts[3][1] - shifts[2][1]), sy * (shifts[3][0] - shifts[2][0])])
        # the pattern at canonical u sits at (I + E) u: the measured roll is -(E u), so E = -[d_lr d_tb] / spans
        e = -np.column_stack([d_lr / span_x, d_tb / span_y])
        if np.max(np.abs(e)) > 0.05:
            break
        m2 = best_f.m @ np.linalg.inv(np.eye(2) + e)
        f2 = fold(r, m2)
        c2 = sync.coherence(f2.total(), best_h.orientation)
        if c2 <= best_c:
            break
        best_f, best_h, best_c = f2, sync.hits(f2.total(), (best_h.orientation,))[0], c2
        if np.max(np.abs(e)) < 2e-4:  # converged
            break
    return best_f, best_h


def coded_soft(lay: Layout, chips: np.ndarray) -> np.ndarray:
    """Combine the chips of each coded bit into one soft value (positive = bit 0)."""
    v = chips * lay.sign
    soft = np.zeros(CODED_BITS, np.float64)
    np.add.at(soft, lay.data_bit, v[lay.data_rows, lay.data_cols])
    return soft


def best_shift(lay: Layout, folded: np.ndarray, hits: list[ShiftHit]) -> tuple[ShiftHit, np.ndarray, float]:
    """Among candidate shifts (all with the same orientation), the one whose chips look most like a codeword.

    The pilots' correlation has sidelobes; the code itself tells the aligned shift apart (``codec.agreement``),
    without the key, so trying many shifts this way costs no false-positive probability.
    """
    f = oriented(folded, hits[0].orientation)
    sm = dsp.matched(dsp.clean_fold(np.ascontiguousarray(f), lay.pilots))
    soft = np.stack([coded_soft(lay, dsp.sample_chips(sm, h.shift)) for h in hits])
    agree = agreement(soft)
    i = int(np.argmax(agree))
    return hits[i], soft[i], float(agree[i])


# ------------------------------------------------------------------------------------------------ the read


def _geometry(m: np.ndarray, f: float, hit: ShiftHit) -> dict[str, Any]:
    """Geometry of the detected lattice in suspect pixels (chip size, scale, rotation, aspect, mirror)."""
    v1, v2 = m[:, 0] * CANON_TILE / f, m[:, 1] * CANON_TILE / f
    rot = math.degrees(math.atan2(v1[1], v1[0])) + (180.0 if hit.turned else 0.0)
    rot = (rot + 180.0) % 360.0 - 180.0
    px, py = float(np.linalg.norm(v1)), float(np.linalg.norm(v2))
    return {
        "chip_px": round(math.sqrt(abs(np.linalg.det(m))) * CANON / f, 3),
        "scale": round(math.sqrt(px * py) / (CHIP_PX * TILE), 4),
        "rotation_deg": round(rot, 2),
        "aspect": round(px / py, 4),
        "flipped": hit.flipped,
        "turned": hit.turned,
        "shift": [round(hit.shift[0], 2), round(hit.shift[1], 2)],
    }


def _accepts(subkey: bytes, lay: Layout, dec: Decoded) -> bool:
    """A passing keyed check, and (scheme 2) a payload that selects the pilot set it was found through."""
    if not dec.ok or dec.payload is None:
        return False
    return lay.variant == LEGACY or pilot_variant(subkey, dec.payload, VARIANTS) == lay.variant


def _detection(dec: Decoded | None, z: float, tries: int, legacy: int, details: dict[str, Any],
               lay: Layout | None = None) -> Detection:
    fp = fp_bound(tries, legacy)
    details = dict(details, decodes=tries, pilot_z=round(z, 2))
    if lay is not None:
        details |= {"scheme": 1 if lay.variant == LEGACY else SCHEME, "pilot_set": lay.variant}
    if dec is not None and dec.ok:
        # confidence: 0.5 for a read that only just passed, up to 1 as the soft values approach a clean codeword
        # (random soft values agree with their best codeword at ~0.55; clean marks at 0.9 and more)
        conf = 0.5 + 0.5 * float(np.clip((dec.agreement - 0.55) / 0.35, 0.0, 1.0))
        return Detection(True, dec.payload, conf, dec.bit_errors, fp, details)
    return Detection(False, None, 0.0, None, fp, details)


class _Syncs:
    """The layout and pilot sync of every pilot set a reader tries, built once per key (``syncs_for``): a folder
    trace reads many pictures under one key, and building the 33 correlation bases took ~85 ms of each read."""

    def __init__(self, subkey: bytes) -> None:
        self.layouts = [layout_for(subkey, v) for v in read_variants()]
        self.cache: dict[int, PilotSync] = {}

    def sync(self, lay: Layout) -> PilotSync:
        if lay.variant not in self.cache:
            self.cache[lay.variant] = PilotSync(lay)
        return self.cache[lay.variant]


@lru_cache(maxsize=4)
def syncs_for(subkey: bytes) -> _Syncs:
    """The key's pilot syncs, kept for the next read (read-only after their lazy construction)."""
    return _Syncs(subkey)


class _Residuals:
    """Whitened work image per chip size (rounded to 5 %), computed once each."""

    def __init__(self, gray: np.ndarray) -> None:
        self.gray = gray
        self.cache: dict[int, np.ndarray] = {}

    def at(self, chip: float) -> np.ndarray:
        k = round(math.log(max(chip, 0.5)) / math.log(1.05))
        if k not in self.cache:
            self.cache[k] = dsp.whiten(self.gray, 1.05**k)
        return self.cache[k]


def read_pixels(rgb: np.ndarray, subkey: bytes, hint: Hint | None) -> Detection:
    syncs = syncs_for(subkey)
    if hint is not None:
        return _read_hinted(rgb, subkey, syncs, hint)
    gray, f = work_image(rgb)
    res = _Residuals(gray)
    peaks = spectral_peaks(res.at(PILOT_CHIP))
    # every pilot set proposes lattices from the same peaks; the best MAX_CANDIDATES of all of them are folded
    pooled: list[tuple[float, np.ndarray, Layout]] = []
    if peaks is not None:
        for lay in syncs.layouts:
            pooled += [(score, m, lay) for m, score in match_pilots(peaks, lay)]
    pooled.sort(key=lambda t: -t[0])
    hyps: list[tuple[ShiftHit, Folded, np.ndarray, Layout, Ranked]] = []
    agree: list[float] = []
    for _score, m, lay in pooled[:MAX_CANDIDATES]:
        r = res.at(math.sqrt(abs(np.linalg.det(m))) * CANON)
        fo = fold(r, m)
        ranked = _orient(lay, syncs.sync(lay), fo.total())
        hyps.append((ranked.top, fo, r, lay, ranked))
        agree.append(ranked.agree)
    order = _decode_order(hyps, agree)
    # the hypothesis polished when nothing decodes: the one whose chips look most like a codeword, of those with
    # pilots strong enough to be worth it
    polish = max((i for i in range(len(hyps)) if hyps[i][0].z >= POLISH_MIN_Z), key=lambda i: agree[i], default=None)
    hyps = [hyps[i] for i in order]
    details: dict[str, Any] = {"work_scale": round(f, 4), "candidates": len(pooled)}
    best_z = hyps[0][0].z if hyps else 0.0
    tries = legacy = 0
    for hit, fo, r, lay, ranked in hyps:
        if tries >= MAX_DECODES - 1:  # the last decode is kept for the polished hypothesis
            break
        if hit.z < MIN_PILOT_Z:
            continue
        if lay.variant == LEGACY:
            if legacy >= MAX_LEGACY_DECODES:
                continue
            legacy += 1
        fo, h, soft = _refined(lay, syncs.sync(lay), r, fo, hit, first=ranked)
        dec = decode_payload(subkey, soft)
        tries += 1
        if _accepts(subkey, lay, dec):
            return _detection(dec, h.z, tries, legacy, details | _geometry(fo.m, f, h), lay)
    if polish is not None and tries < MAX_DECODES:
        # the pilots can pin the lattice down a few tenths of a percent off (a picture's own stripes pull them, a
        # small product gives broad lines), enough to smear the chips at the far tiles and to shift them where
        # the product is: let the chips themselves (codeword agreement) polish it
        hit, fo, r, lay, _ranked = hyps[order.index(polish)]
        if lay.variant != LEGACY or legacy < MAX_LEGACY_DECODES:
            legacy += lay.variant == LEGACY
            fo, h, soft = _polish(lay, syncs.sync(lay), r, fo, hit)
            dec = decode_payload(subkey, soft)
            tries += 1
            if _accepts(subkey, lay, dec):
                return _detection(dec, h.z, tries, legacy, details | _geometry(fo.m, f, h) | {"polished": True}, lay)
    return _detection(None, best_z, tries, legacy, details)


@dataclass(frozen=True)
class Ranked:
    """A folded hypothesis' orientation by its strongest pilot shift (``top``), and of its
    SHIFTS_PER_HYPOTHESIS strongest shifts in that orientation the one whose chips look most like a codeword
    (``best``, its ``soft`` values and ``agree``ment): what ``_refined`` starts from, so it is not searched twice."""

    top: ShiftHit
    best: ShiftHit
    soft: np.ndarray
    agree: float


def _orient(lay: Layout, sync: PilotSync, folded: np.ndarray) -> Ranked:
    """The folded tile's orientation and its strongest pilot shift, with the codeword agreement there.

    Mirrored or not is told by the pilots: a mirror moves them to other bins. Turned or not is not: a turn keeps
    each pilot in its bin and conjugates its phase, and the correlation of K = 6 scrambled phases peaks nearly as
    high as the aligned one somewhere in the tile. So the strongest hit of either mirror is taken as it is and as
    turned, and the chips decide between the two (codeword agreement: keyless, so free)."""
    best: Ranked | None = None
    for turned in (False, True):
        hits = sync.hits(folded, ((False, turned), (True, turned)), SHIFTS_PER_HYPOTHESIS)
        top = hits[0]  # the strongest of both mirrors; then its mirror's strongest shifts, strongest first
        h, soft, a = best_shift(lay, folded, [x for x in hits if x.orientation == top.orientation])
        if best is None or a > best.agree:
            best = Ranked(top, h, soft, a)
    assert best is not None
    return best


def _decode_order(hyps: list[Any], agree: list[float]) -> list[int]:
    """Indices of the hypotheses in the order they are decoded: alternately the next strongest by pilot
    correlation and the next by codeword agreement (keyless, so free). The pilots alone rank a lattice that folds a picture's own stripes
    onto them above the true one, whose chips the code recognises; chips alone are noisy on a weak mark, where
    the pilots are the better guide."""
    by_z = sorted(range(len(hyps)), key=lambda i: -hyps[i][0].z)
    by_agree = sorted(range(len(hyps)), key=lambda i: -agree[i])
    order: list[int] = []
    for pair in zip(by_z, by_agree, strict=True):
        order += [i for i in dict.fromkeys(pair) if i not in order]
    return order


def _polish(lay: Layout, sync: PilotSync, r: np.ndarray, fo: Folded, hit: ShiftHit) -> tuple[Folded, ShiftHit, np.ndarray]:
    """Coordinate search over small relative perturbations of the lattice (each entry of the 2 x 2 matrix, by
    POLISH_STEPS), kept when the chips look more like a codeword (``codec.agreement``: keyless, so free)."""
    def evaluate(f2: Folded) -> tuple[ShiftHit, np.ndarray, float]:
        folded = f2.total()
        return best_shift(lay, folded, sync.hits(folded, (hit.orientation,), SHIFTS_PER_HYPOTHESIS))

    best_f = fo
    best_h, best_soft, best_a = evaluate(fo)
    for step in POLISH_STEPS:
        for i, j in ((0, 0), (1, 1), (0, 1), (1, 0)):
            for sgn in (1.0, -1.0):
                e = np.eye(2)
                e[i, j] += sgn * step
                f2 = fold(r, best_f.m @ e)
                h2, soft2, a2 = evaluate(f2)
                if a2 > best_a:
                    best_f, best_h, best_soft, best_a = f2, h2, soft2, a2
                    break  # this entry moved: on to the next
    return best_f, best_h, best_soft


def _refined(lay: Layout, sync: PilotSync, r: np.ndarray, fo: Folded, hit: ShiftHit,
             extra: tuple[ShiftHit, ...] = (), first: Ranked | None = None) -> tuple[Folded, ShiftHit, np.ndarray]:
    """The hypothesis' best shift and soft values, before or after lattice refinement: whichever looks more
    like a codeword (pilot phases alone can be pulled by a picture's own stripes; the code cannot). ``extra``:
    shifts known otherwise (the informed read's registration), compared too before refinement. ``first``: the
    best shift before refinement when already found (``_orient``)."""
    if first is not None and not extra:
        h, soft, agree = first.best, first.soft, first.agree
    else:
        folded = fo.total()
        hits = sync.hits(folded, (hit.orientation,), SHIFTS_PER_HYPOTHESIS) + list(extra)
        h, soft, agree = best_shift(lay, folded, hits)
    fo2, hit2 = refine(r, fo, hit, sync)
    if fo2 is not fo:
        folded2 = fo2.total()
        h2, soft2, agree2 = best_shift(lay, folded2, sync.hits(folded2, (hit2.orientation,), SHIFTS_PER_HYPOTHESIS))
        if agree2 > agree:
            return fo2, h2, soft2
    return fo, h, soft


ORIGIN = ShiftHit(0.0, (0.0, 0.0), False)  # the informed read's registered shift: tiles start at the export's origin


def _read_hinted(rgb: np.ndarray, subkey: bytes, syncs: _Syncs, hint: Hint) -> Detection:
    """Informed read: warp the suspect into the export's frame (at work resolution) where the lattice is known.

    The pilot set is not known: the HINTED_VARIANTS sets whose pilots are the most coherent in the folded tile
    give candidate shifts, and the registration itself gives one more (an export's tiles start at its origin,
    so the shift is ~0 in its frame: this survives pilots notched out); the candidates are compared by codeword
    agreement (keyless, so free) and only the best is decoded: one decode attempt. It is accepted on the keyed
    check alone (the pilot set it went through may be a wrong one whose notch hardly matters), so it costs
    2**-CHECK_BITS, as before the family."""
    ew, eh = hint.export_size
    f = min(1.0, READ_LONG / max(ew, eh))
    sw, sh = max(1, round(ew * f)), max(1, round(eh * f))
    hmat = np.diag([f, f, 1.0]) @ np.asarray(hint.homography, np.float64)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    warped = cv2.warpPerspective(gray, hmat, (sw, sh), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
    covered = cv2.warpPerspective(np.ones_like(gray), hmat, (sw, sh), flags=cv2.INTER_NEAREST)
    chip = CHIP_PX * f
    r = dsp.whiten(warped, chip) * (covered > 0.5)
    fo = fold(r, np.eye(2) * chip / CANON)
    folded = fo.total()
    ranked = sorted(syncs.layouts, key=lambda lay: -syncs.sync(lay).coherence(folded, UPRIGHT))
    best: tuple[float, Layout, ShiftHit] | None = None
    for lay in ranked[:HINTED_VARIANTS]:
        hits = syncs.sync(lay).hits(folded, (UPRIGHT,), SHIFTS_PER_HYPOTHESIS) + [ORIGIN]
        h, _soft, agree = best_shift(lay, folded, hits)
        if best is None or agree > best[0]:
            best = (agree, lay, h)
    assert best is not None
    _agree, lay, hit = best
    fo, h, soft = _refined(lay, syncs.sync(lay), r, fo, hit, (ORIGIN,))
    dec = decode_payload(subkey, soft)
    return _detection(dec if dec.ok else None, h.z, 1, 1, {"hinted": True} | _geometry(fo.m, f, h), lay)
