"""The catalog-averaging attack on the invisible mark (Yang et al., NeurIPS 2024), and the same-size exports it needs.

A thief downloads N of one owner's exports of one canvas size (different photos, different payloads, one key),
averages their high-pass luma residual (picture minus a Gaussian blur of sigma 1.5), takes the 2-D FFT of the
average and zeroes its ``peaks`` strongest frequencies (each with its +-1 bin neighbourhood, and the mirror
frequency) in every channel of a target export. Whatever is identical in every export adds up in the average
while picture content averages out, so this finds a fixed synchronisation template. Method and old figures:
``../shared/research/attacks-round2.md``. Used by ``tests/test_invisible_collusion.py`` and
``bench/collusion.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from pipeline.invisible import Detection, Hint
from tests.attacks import _encode
from tests.synthetic import product_shot

HP_SIGMA = 1.5
_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
           "motorcycle", "cat", "brick", "grass", "gravel", "camera")


@lru_cache(maxsize=1)
def _sources() -> tuple[np.ndarray, ...]:
    from skimage import data

    out = []
    for name in _PHOTOS:
        img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
        arr = np.asarray(img)
        rgb = np.stack([arr] * 3, axis=2) if arr.ndim == 2 else arr[..., :3]
        out.append(np.ascontiguousarray(rgb))
    return tuple(out)


def _crop(rng: np.random.Generator, src: np.ndarray, size: int) -> np.ndarray:
    h, w = src.shape[:2]
    f = size / min(h, w) * rng.uniform(1.0, 1.25)
    big = cv2.resize(src, (max(size, round(w * f)), max(size, round(h * f))), interpolation=cv2.INTER_CUBIC)
    y = int(rng.integers(0, big.shape[0] - size + 1))
    x = int(rng.integers(0, big.shape[1] - size + 1))
    out = big[y : y + size, x : x + size]
    return out[:, ::-1] if rng.integers(2) else out


def photo_crop(seed: int, size: int) -> np.ndarray:
    """A size x size photograph: a 2 x 2 mosaic of seeded random crops (scale, position, mirror) of four of
    scikit-image's photos (at about their own resolution, so the picture stays as sharp as a camera's)."""
    rng = np.random.default_rng([seed, 77])
    srcs = _sources()
    half = size // 2
    picks = rng.choice(len(srcs), 4, replace=False)
    q = [_crop(rng, srcs[int(i)], size - half if j % 2 else half) for j, i in enumerate(picks)]
    top = np.hstack([q[0][:half, :half], q[1][:half, : size - half]])
    bottom = np.hstack([q[2][: size - half, :half], q[3][: size - half, : size - half]])
    return np.ascontiguousarray(np.vstack([top, bottom]))


def export_picture(seed: int, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One owner export of size x size: even seeds a generated product shot on white (with its not-white mask),
    odd seeds a photograph (no mask)."""
    if seed % 2 == 0:
        rgb = product_shot(1000 + seed, (size, size))
        return rgb, ~np.all(rgb == 255, axis=2)
    return photo_crop(seed, size), None


def payload_for(seed: int) -> int:
    return int(np.random.default_rng([seed, 40]).integers(0, 1 << 40))


def residual(rgb: np.ndarray) -> np.ndarray:
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return y - cv2.GaussianBlur(y, (0, 0), HP_SIGMA)


def averaged_spectrum(exports: Iterator[np.ndarray] | list[np.ndarray]) -> np.ndarray:
    """|FFT| of the mean high-pass residual of same-size exports (what the attacker learns)."""
    total: np.ndarray | None = None
    count = 0
    for rgb in exports:
        r = residual(rgb).astype(np.float64)
        total = r if total is None else total + r
        count += 1
    assert total is not None
    return np.asarray(np.abs(np.fft.fft2(total / count)))


MIN_FREQ = 0.02  # cycles per pixel: below this the average is the pictures' shared layout, not a template
MAX_FREQ = 0.45  # and near Nyquist the lines are the sources' JPEG block grid and resampling, not a mark
AXIS_BINS = 2  # lines on the axes are the pictures' borders and straight edges
BACKGROUND = 15  # bins: a peak's strength is its magnitude over the mean of this neighbourhood


def notch_mask(spectrum: np.ndarray, peaks: int) -> np.ndarray:
    """The boolean FFT mask of the ``peaks`` strongest frequencies of ``spectrum``, each widened by +-1 bin and
    mirrored. Strongest relative to their neighbourhood (lines, not the broad spectrum of the pictures' shared
    layout), between MIN_FREQ and MAX_FREQ and off the axes: the attacker's best use of a PSNR budget (an
    attacker who notched whatever line was strongest spent most of it on the sources' own block grid and
    borders, and missed 4 of scheme 1's 6 pilots)."""
    h, w = spectrum.shape
    shifted = np.fft.fftshift(spectrum).astype(np.float32)
    background = cv2.blur(shifted, (BACKGROUND, BACKGROUND), borderType=cv2.BORDER_REFLECT)
    mag = np.fft.ifftshift(shifted / (background + 1e-9)).astype(np.float64)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.hypot(fx, fy)
    mag[(radius < MIN_FREQ) | (radius > MAX_FREQ)] = 0
    mag[np.minimum(np.arange(h), h - np.arange(h)) <= AXIS_BINS, :] = 0
    mag[:, np.minimum(np.arange(w), w - np.arange(w)) <= AXIS_BINS] = 0
    mask = np.zeros((h, w), bool)
    found = 0
    for idx in np.argsort(-mag, axis=None):
        y, x = divmod(int(idx), w)
        if mask[y, x]:
            continue
        for yy, xx in ((y, x), (-y % h, -x % w)):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    mask[(yy + dy) % h, (xx + dx) % w] = True
        found += 1
        if found == peaks:
            break
    return mask


def notch(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Zero the masked frequencies in every channel."""
    out = np.empty_like(rgb)
    for c in range(3):
        spec = np.fft.fft2(rgb[..., c].astype(np.float64))
        spec[mask] = 0
        out[..., c] = np.clip(np.rint(np.fft.ifft2(spec).real), 0, 255).astype(np.uint8)
    return out


def notch_pilots(rgb: np.ndarray, pilots: np.ndarray, width: int = 2) -> np.ndarray:
    """The removal attempt of a thief who knows one export's pilot tones (``Layout.pilots``, cycles per tile of
    TILE * CHIP_PX px): zero them (+-``width`` FFT bins, and the mirror frequencies) in every channel of the whole
    picture. Used by tests/test_trace_tamper.py and make robustness's "removal" rows."""
    from pipeline.invisible.layout import CHIP_PX, TILE

    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), bool)
    period = TILE * CHIP_PX
    for kx, ky in pilots:
        for sx, sy in ((kx * w / period, ky * h / period), (-kx * w / period, -ky * h / period)):
            bx, by = round(sx), round(sy)
            for dy in range(-width, width + 1):
                for dx in range(-width, width + 1):
                    mask[(by + dy) % h, (bx + dx) % w] = True
    return notch(rgb, mask)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


Embed = Callable[[np.ndarray, int, np.ndarray | None], np.ndarray]


def marked_export(embed: Embed, seed: int, size: int) -> np.ndarray:
    rgb, mask = export_picture(seed, size)
    return embed(rgb, payload_for(seed), mask)


def learned_spectra(embed: Embed, size: int, learn: tuple[int, ...]) -> dict[int, np.ndarray]:
    """What the thief learns from the first N exports (seeds 0..N-1), for each N in ``learn`` (one pass)."""
    total = np.zeros((size, size), np.float64)
    out = {}
    for s in range(max(learn)):
        total += residual(marked_export(embed, s, size))
        if s + 1 in learn:
            out[s + 1] = np.asarray(np.abs(np.fft.fft2(total / (s + 1))))
    return out


@contextmanager
def fixed_pilots() -> Iterator[None]:
    """Mark as scheme 1 did (the key's one pilot set in every export): the template the attack finds. For the
    tests only: the library's embedder never does this."""
    from pipeline.invisible import embedder, layout

    saved = embedder.export_layout
    embedder.export_layout = lambda subkey, payload: layout.layout_for(subkey, layout.LEGACY)
    try:
        yield
    finally:
        embedder.export_layout = saved


@dataclass
class Row:
    """Recovery under one attack configuration (exports learned from, peaks notched)."""

    learn: int
    peaks: int
    blind: int = 0
    informed: int = 0
    targets: int = 0
    psnr: list[float] = field(default_factory=list)
    reads: list[tuple[bool, bool]] = field(default_factory=list)  # (blind, informed) per copy, beside its psnr

    def within(self, min_psnr: float) -> list[tuple[bool, bool]]:
        """The reads of the copies the attack kept at ``min_psnr`` dB or better."""
        return [r for p, r in zip(self.psnr, self.reads, strict=True) if p >= min_psnr]

    def line(self, scheme: str) -> str:
        return (f"{scheme:<14} {self.learn:>6} {self.peaks:>6} {self.blind:>4}/{self.targets:<4} "
                f"{100 * self.blind / max(1, self.targets):6.1f}% {self.informed:>4}/{self.targets:<4} "
                f"{100 * self.informed / max(1, self.targets):6.1f}% {min(self.psnr, default=0):7.2f} "
                f"{float(np.mean(self.psnr)) if self.psnr else 0:7.2f}")


HEADER = f"{'scheme':<14} {'learn':>6} {'peaks':>6} {'blind':>10} {'%':>7} {'informed':>10} {'%':>7} {'minPSNR':>7} {'avgPSNR':>7}"


def averaging_attack(embed: Embed, read: Callable[[np.ndarray, Hint | None], Detection], *, size: int,
                     learn: tuple[int, ...], peaks: tuple[int, ...], targets: list[int]) -> list[Row]:
    """Mark the exports and targets with ``embed``, learn the notch from the first ``learn`` exports, apply it
    (each ``peaks``) to every target, re-save as JPEG 90 and read blind and informed (identity registration)."""
    spectra = learned_spectra(embed, size, learn)
    rows = {(n, k): Row(n, k) for n in learn for k in peaks}
    hint = Hint(np.eye(3), (size, size))
    for t in targets:
        marked = marked_export(embed, t, size)
        for (n, k), row in rows.items():
            notched = notch(marked, notch_mask(spectra[n], k))
            copy = _encode(notched, "JPEG", 90)
            row.targets += 1
            row.psnr.append(psnr(marked, notched))
            blind, informed = read(copy, None), read(copy, hint)
            found = (bool(blind.found and blind.payload == payload_for(t)),
                     bool(informed.found and informed.payload == payload_for(t)))
            row.blind += found[0]
            row.informed += found[1]
            row.reads.append(found)
    return list(rows.values())
