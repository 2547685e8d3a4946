"""The keyed tile of the invisible watermark: geometry constants, chip roles and signs, pilot tones, from the key.

The mark is a square tile of TILE x TILE "chips" repeated over the picture. A chip is CHIP_PX canvas pixels at
any canvas size: the smallest size that still leaves 2-pixel chips in a 30 % thumbnail (smaller chips mean more
independent chips per picture and less interference from the picture itself, which is what limits reading).

- Every chip carries a coded payload bit (each coded bit on two or three chips far apart) times a keyed +-1
  sign.
- PILOTS keyed sinusoids at harmonics of the tile period ride on top: a handful of strong lines in the
  picture's spectrum whose positions give the reader the tiling lattice (scale, aspect, rotation, mirror)
  however the copy was resized, rotated or cropped, and whose keyed phases, once the tiles are folded
  together, give the tile's cyclic shift and whether the copy is mirrored.
- The pilots differ per picture (collusion resistance): the key defines a family of VARIANTS pilot sets
  (frequencies and phases), and each export uses the one its payload selects (``codec.pilot_variant``, a keyed
  hash of the payload), so averaging many exports of one owner no longer adds up one fixed template: each set
  is in 1/VARIANTS of them. The reader tries every set. Marks made before the family existed (scheme 1) used
  one set from the key alone: ``LEGACY``, which the reader still tries, and the embedder never uses.

Everything derives from ``key.subkey("invisible")`` through SHAKE-256, which (unlike numpy's generators) is frozen
forever, so a mark made today reads in ten years.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from pipeline.invisible.codec import CODED_BITS

TILE = 24  # chips per tile side
CHIPS = TILE * TILE  # 576
CHIP_PX = 7  # canvas pixels per chip; a tile is TILE * CHIP_PX = 168 px
CANON = CHIP_PX / 2  # pixels per chip at the embedder's half resolution and in the reader's folded tile
CANON_TILE = round(TILE * CANON)  # 84
PILOTS = 6  # pilot tones
PILOT_RING = (5.5, 10.5)  # their frequencies, in cycles per tile (periods of 2.3 to 4.4 chips), scheme 1
# scheme 2's sets keep off the ring's inner edge: higher harmonics pin the lattice down more precisely (a set of
# low ones misread about one blind read in 30 that scheme 1's set, by luck mostly high, got right)
FAMILY_RING = (6.5, 10.5)
PILOT_MAX_SIDELOBE = 0.7  # their shift correlation's highest sidelobe, relative to the peak (best of 16 draws)
PILOT_MIN_ANGLE = math.radians(15)  # minimum angle between two pilots
PILOT_AXIS_ANGLE = math.radians(12)  # and away from the axes (where straight edges put spectral lines)
VARIANTS = 32  # pilot sets per key (a power of two: the payload's keyed hash picks one, uniformly)
LEGACY = -1  # the variant index of scheme 1's single pilot set (read only)
SCHEME = 2  # 1: one pilot set per key (before the family); 2: VARIANTS sets, one per export


def _stream(subkey: bytes, label: str, n: int) -> bytes:
    return hashlib.shake_256(subkey + b"|catalogmark/invisible/" + label.encode()).digest(n)


@dataclass(frozen=True)
class Layout:
    """Where each chip of the tile goes, and the pilot tones, for one key."""

    sign: np.ndarray  # (TILE, TILE) float32 +-1: the keyed sign of every chip
    data_rows: np.ndarray  # (CHIPS,) row of each chip, in keyed order
    data_cols: np.ndarray  # (CHIPS,) column of each chip
    data_bit: np.ndarray  # (CHIPS,) index of the coded bit each chip carries
    pilots: np.ndarray  # (PILOTS, 2) int: (kx, ky) cycles per tile of each pilot tone
    pilot_phase: np.ndarray  # (PILOTS,) radians
    variant: int  # which pilot set of the key's family (LEGACY: scheme 1's)
    _cache: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def tile(self, coded: np.ndarray) -> np.ndarray:
        """The tile's chip values (+-1, float32) for CODED_BITS coded 0/1 bits."""
        values = np.ones((TILE, TILE), np.float32)
        values[self.data_rows, self.data_cols] = 1.0 - 2.0 * coded[self.data_bit].astype(np.float32)
        return values * self.sign

    def pilot_period(self, n: int) -> np.ndarray:
        """One tile period of the pilot tones sampled on an n x n grid (unit amplitude each), float32, read-only."""
        key = ("pilot_period", n)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        t = np.arange(n) / n
        out = np.zeros((n, n), np.float64)
        for (kx, ky), ph in zip(self.pilots, self.pilot_phase, strict=True):
            out += np.cos(2 * np.pi * (kx * t[None, :] + ky * t[:, None]) + ph)
        result = out.astype(np.float32)
        result.setflags(write=False)
        self._cache[key] = result
        return result


def _off_axis(kx: int, ky: int) -> bool:
    ang = math.atan2(ky, kx) % (math.pi / 2)
    return PILOT_AXIS_ANGLE <= ang <= math.pi / 2 - PILOT_AXIS_ANGLE


@lru_cache(maxsize=1)
def _shift_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dy, dx) of the shifts over the canonical tile more than 3 pixels from the origin (cyclically), and the
    cosine of one cycle per tile at each integer phase, for ``_sidelobe``: computed once per process."""
    g = np.arange(CANON_TILE)
    dy, dx = np.meshgrid(g, g, indexing="ij")
    wrap_y, wrap_x = np.minimum(dy, CANON_TILE - dy), np.minimum(dx, CANON_TILE - dx)
    far = np.hypot(wrap_x, wrap_y) > 3
    table = np.cos(2 * np.pi * np.arange(CANON_TILE) / CANON_TILE)
    return dy[far], dx[far], table


def _sidelobe(pilots: list[tuple[int, int]]) -> float:
    """Highest sidelobe of the pilots' shift correlation over the canonical tile, relative to its peak."""
    dy, dx, table = _shift_grid()
    # cos(2 pi (kx dx + ky dy) / n) by table lookup at the phase taken modulo n (integers: the same angle)
    c = sum(table[(kx * dx + ky * dy) % CANON_TILE] for kx, ky in pilots)
    return float(np.max(np.asarray(c))) / len(pilots)


def _pilot_set(subkey: bytes, variant: int) -> tuple[np.ndarray, np.ndarray]:
    """PILOTS keyed tile harmonics: in the ring, off the axes, spread in angle, and with low shift sidelobes
    (the first keyed draw that qualifies), and their keyed phases. Scheme 1's labels for LEGACY."""
    prefix = "" if variant == LEGACY else f"v2/{variant}/"
    lo, hi = PILOT_RING if variant == LEGACY else FAMILY_RING
    r = math.ceil(hi)
    cand = [(kx, ky) for kx in range(-r, r + 1) for ky in range(0, r + 1)
            if lo <= math.hypot(kx, ky) <= hi and (ky > 0 or kx > 0) and _off_axis(kx, ky)]
    best: tuple[float, list[tuple[int, int]]] = (2.0, [])
    for attempt in range(16):
        rnd = np.frombuffer(_stream(subkey, f"{prefix}pilots/{attempt}", 8 * len(cand)), dtype=">u8")
        chosen: list[tuple[int, int]] = []
        for i in np.argsort(rnd, kind="stable"):
            kx, ky = cand[int(i)]
            ang = math.atan2(ky, kx)
            seps = [abs((ang - math.atan2(cy, cx) + math.pi / 2) % math.pi - math.pi / 2) for cx, cy in chosen]
            if all(d >= PILOT_MIN_ANGLE for d in seps):
                chosen.append((kx, ky))
            if len(chosen) == PILOTS:
                break
        side = _sidelobe(chosen)
        if side < best[0]:
            best = (side, chosen)
        if side <= PILOT_MAX_SIDELOBE:
            break
    phases = np.frombuffer(_stream(subkey, f"{prefix}pilot-phase", 2 * PILOTS), dtype=">u2") / 65536.0 * 2 * np.pi
    return np.array(best[1], np.int64), phases.astype(np.float64)


def read_variants() -> tuple[int, ...]:
    """Every pilot set a reader tries: the family, then scheme 1's."""
    return (*range(VARIANTS), LEGACY)


@lru_cache(maxsize=4 * (VARIANTS + 1))
def layout_for(subkey: bytes, variant: int) -> Layout:
    """The keyed layout of one pilot ``variant`` (0..VARIANTS-1, or LEGACY) for one ``key.subkey("invisible")``
    (cached: the same key marks a whole catalog). The chips are the same in every variant; the pilots differ."""
    if not (0 <= variant < VARIANTS or variant == LEGACY):
        raise ValueError(f"pilot variant must be in [0, {VARIANTS}) or LEGACY, got {variant}")
    order = np.argsort(np.frombuffer(_stream(subkey, "order", 8 * CHIPS), dtype=">u8"), kind="stable")
    signs = np.unpackbits(np.frombuffer(_stream(subkey, "sign", CHIPS // 8), np.uint8))[:CHIPS]
    sign = (1.0 - 2.0 * signs.astype(np.float32)).reshape(TILE, TILE)
    data = order
    # the copies of a coded bit are CODED_BITS apart in the keyed order: independent positions
    data_bit = np.arange(CHIPS) % CODED_BITS
    pilots, phases = _pilot_set(subkey, variant)
    return Layout(
        sign=sign,
        data_rows=(data // TILE).astype(np.intp),
        data_cols=(data % TILE).astype(np.intp),
        data_bit=data_bit.astype(np.intp),
        pilots=pilots,
        pilot_phase=phases,
        variant=variant,
    )
