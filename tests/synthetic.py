"""Synthetic product shots on white, and trace's parametrised copy attacks, for trace calibration, tests and bench.

Deterministic given a seed; pure numpy/OpenCV/Pillow, no I/O.  The products are deliberately similar to one
another (same white background, same kinds of shapes, labels and gradients): they are the hard negatives a
trace verdict must never confuse.  The attacks here are the parametrised forms trace needs beyond the fixed
suite of ``tests/attacks.py`` (crops of any area, padding, letterboxing, painting out a box); encoding is shared
with that suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np

from pipeline.ledger import INT_FIELDS, JSON_FIELDS, NULLABLE_FIELDS, RECORD_FIELDS, RunInfo, StoredRecord
from pipeline.models import Record
from tests.attacks import _encode

_SHAPES = ("bottle", "box", "ellipse", "can", "shoe", "jar")


def product_shot(seed: int, size: tuple[int, int] = (800, 800), shape: str | None = None) -> np.ndarray:
    """One product-like object (body, label, print, highlights, soft shadow) centred on pure white, RGB uint8."""
    rng = np.random.default_rng(seed)
    w, h = size
    shape = shape or _SHAPES[seed % len(_SHAPES)]
    img = np.full((h, w, 3), 255, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cx, cy = w / 2 + rng.uniform(-0.06, 0.06) * w, h / 2 + rng.uniform(-0.05, 0.05) * h
    bw, bh = w * rng.uniform(0.22, 0.36), h * rng.uniform(0.28, 0.40)
    x0, y0, x1, y1 = int(cx - bw), int(cy - bh), int(cx + bw), int(cy + bh)
    if shape == "ellipse":
        cv2.ellipse(mask, (int(cx), int(cy)), (int(bw), int(bh)), 0, 0, 360, 255, -1)
    elif shape == "box":
        cv2.rectangle(mask, (x0, y0), (x1, y1), 255, -1)
    elif shape == "bottle":
        cv2.rectangle(mask, (int(cx - bw * 0.7), int(cy - bh * 0.3)), (int(cx + bw * 0.7), y1), 255, -1)
        cv2.rectangle(mask, (int(cx - bw * 0.25), y0), (int(cx + bw * 0.25), int(cy - bh * 0.2)), 255, -1)
        cv2.ellipse(mask, (int(cx), int(cy - bh * 0.3)), (int(bw * 0.7), int(bh * 0.2)), 0, 180, 360, 255, -1)
    elif shape == "can":
        cv2.rectangle(mask, (int(cx - bw * 0.8), y0 + 20), (int(cx + bw * 0.8), y1 - 20), 255, -1)
        cv2.ellipse(mask, (int(cx), y0 + 20), (int(bw * 0.8), 20), 0, 0, 360, 255, -1)
        cv2.ellipse(mask, (int(cx), y1 - 20), (int(bw * 0.8), 20), 0, 0, 360, 255, -1)
    elif shape == "shoe":
        pts = np.array([[x0, y1], [x0, int(cy)], [int(cx - bw * 0.2), int(cy - bh * 0.1)],
                        [int(cx), y0 + int(bh * 0.6)], [int(cx + bw * 0.3), int(cy)], [x1, int(cy + bh * 0.4)],
                        [x1, y1]], np.int32)
        cv2.fillPoly(mask, [pts], 255)
    else:  # jar
        cv2.rectangle(mask, (x0, int(cy - bh * 0.6)), (x1, y1), 255, -1)
        cv2.rectangle(mask, (int(cx - bw * 0.8), y0), (int(cx + bw * 0.8), int(cy - bh * 0.6)), 255, -1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0 = rng.uniform(30, 220, 3)
    c1 = rng.uniform(30, 220, 3)
    t = np.clip((xx - x0) / max(1.0, x1 - x0), 0, 1)[..., None]
    body = c0 * (1 - t) + c1 * t
    shade = 0.75 + 0.35 * np.cos((xx - cx) / max(1.0, bw) * 1.4)[..., None]  # cylindrical shading
    body = body * shade
    # printed pattern: stripes / dots with random frequency, plus fine texture
    freq = rng.uniform(0.02, 0.08)
    ang = rng.uniform(0, np.pi)
    stripes = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * freq * 2 * np.pi)[..., None]
    body = body + stripes * rng.uniform(8, 30)
    body = body + cv2.GaussianBlur(rng.normal(0, 14, (h, w, 3)).astype(np.float32), (0, 0), 1.2)
    canvas = np.clip(body, 0, 254).astype(np.uint8)
    # a label with text and a logo
    lx0, ly0 = int(cx - bw * 0.55), int(cy - bh * 0.05)
    lx1, ly1 = int(cx + bw * 0.55), int(cy + bh * 0.45)
    label_col = tuple(int(v) for v in rng.uniform(200, 250, 3))
    cv2.rectangle(canvas, (lx0, ly0), (lx1, ly1), label_col, -1)
    words = ["ORGANIC", "PREMIUM", "NATURAL", "CLASSIC", "ULTRA", "FRESH", "PURE", "DELUXE", "SPORT", "HOME"]
    ink = tuple(int(v) for v in rng.uniform(10, 120, 3))
    scale = max(0.5, (lx1 - lx0) / 260)
    cv2.putText(canvas, str(rng.choice(words)), (lx0 + 8, ly0 + int((ly1 - ly0) * 0.35)),
                cv2.FONT_HERSHEY_DUPLEX, scale, ink, 2, cv2.LINE_AA)
    cv2.putText(canvas, f"{int(rng.integers(10, 999))} ml  No.{int(rng.integers(100, 9999))}",
                (lx0 + 8, ly0 + int((ly1 - ly0) * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.6, ink, 1, cv2.LINE_AA)
    for _ in range(int(rng.integers(2, 5))):
        r = int(rng.uniform(0.03, 0.08) * w)
        px, py = int(rng.uniform(x0 + r, max(x0 + r + 1, x1 - r))), int(rng.uniform(y0 + r, max(y0 + r + 1, y1 - r)))
        cv2.circle(canvas, (px, py), r, tuple(int(v) for v in rng.uniform(0, 250, 3)), -1, cv2.LINE_AA)
        cv2.circle(canvas, (px, py), max(2, r // 2), tuple(int(v) for v in rng.uniform(0, 250, 3)), -1, cv2.LINE_AA)
    # soft contact shadow under the product, then composite onto white
    shadow = np.zeros((h, w), np.float32)
    cv2.ellipse(shadow, (int(cx), y1), (int(bw * 1.05), max(4, int(bh * 0.06))), 0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 9) * 0.35
    img = (img.astype(np.float32) * (1 - shadow[..., None])).astype(np.uint8)
    m = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[..., None] / 255.0
    out = img.astype(np.float32) * (1 - m) + canvas.astype(np.float32) * m
    return np.clip(out, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------- attacks



SMALL_SIDE = 720  # at 800 px the per-bit informed embedding decodes this product's payload for most payloads


def small_product(side: int = SMALL_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """A product (a shoe) covering about a fifth of a ``side`` px white canvas, and its mask (not pure white): a few
    tiles, too few for the invisible mark's payload to decode (at SMALL_SIDE, unattacked, under the test keys
    measured: 18 of 18 key and payload pairs), its chips still there (chip test z 6.1-9.3, JPEG 70 included)."""
    rgb = product_shot(100, (side, side))
    return rgb, ~np.all(rgb == 255, axis=2)

def jpeg(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    return _encode(rgb, "JPEG", quality)


def webp(rgb: np.ndarray, quality: int = 50) -> np.ndarray:
    return _encode(rgb, "WEBP", quality)


def resize(rgb: np.ndarray, factor: float, fy: float | None = None) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (max(8, round(w * factor)), max(8, round(h * (fy if fy is not None else factor))))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def crop_area(rgb: np.ndarray, keep: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Keep ``keep`` of the area (same aspect), centred or (with ``rng``) at a random position."""
    h, w = rgb.shape[:2]
    s = float(np.sqrt(keep))
    cw, ch = round(w * s), round(h * s)
    if rng is None:
        x, y = (w - cw) // 2, (h - ch) // 2
    else:
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return np.ascontiguousarray(rgb[y:y + ch, x:x + cw])


def pad(rgb: np.ndarray, frac: float = 0.2, colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    h, w = rgb.shape[:2]
    py, px = round(h * frac / 2), round(w * frac / 2)
    return cv2.copyMakeBorder(rgb, py, py, px, px, cv2.BORDER_CONSTANT, value=colour)


def letterbox(rgb: np.ndarray, aspect: float = 16 / 9, colour: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Place the picture in a wider (or taller) frame of ``aspect`` with bars of ``colour``."""
    h, w = rgb.shape[:2]
    if w / h < aspect:
        nw = round(h * aspect)
        left = (nw - w) // 2
        return cv2.copyMakeBorder(rgb, 0, 0, left, nw - w - left, cv2.BORDER_CONSTANT, value=colour)
    nh = round(w / aspect)
    top = (nh - h) // 2
    return cv2.copyMakeBorder(rgb, top, nh - h - top, 0, 0, cv2.BORDER_CONSTANT, value=colour)


def hflip(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, ::-1])


def rotate(rgb: np.ndarray, degrees: float, crop: bool = True) -> np.ndarray:
    """Rotate about the centre; with ``crop`` keep the largest axis-aligned inner rectangle (no fill)."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    out = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if not crop:
        return out
    a = abs(np.deg2rad(degrees))
    # inner rectangle of a w x h rectangle rotated by a (same aspect): scale factor
    f = 1.0 / (np.cos(a) + np.sin(a) * max(w / h, h / w))
    cw, ch = int(w * f), int(h * f)
    x, y = (w - cw) // 2, (h - ch) // 2
    return np.ascontiguousarray(out[y:y + ch, x:x + cw])


def brightness_contrast(rgb: np.ndarray, brightness: float = 1.0, contrast: float = 1.0) -> np.ndarray:
    f = rgb.astype(np.float32) * brightness
    f = (f - 128) * contrast + 128
    return np.clip(f, 0, 255).astype(np.uint8)


def blur(rgb: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    return cv2.GaussianBlur(rgb, (0, 0), sigma)


def noise(rgb: np.ndarray, sigma: float = 8, seed: int = 0) -> np.ndarray:
    n = np.random.default_rng(seed).normal(0, sigma, rgb.shape)
    return np.clip(rgb.astype(np.float32) + n, 0, 255).astype(np.uint8)


def banner(rgb: np.ndarray, frac: float = 0.15, text: str = "BEST PRICE") -> np.ndarray:
    """A coloured text banner pasted over the bottom ``frac`` of the picture."""
    out = rgb.copy()
    h, w = out.shape[:2]
    bh = max(4, int(h * frac))
    out[h - bh:] = (200, 30, 30)
    cv2.putText(out, text, (w // 10, h - bh // 3), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, bh / 40), (255, 255, 255), 2)
    return out


def screenshot(rgb: np.ndarray, scale: float = 0.7, border: int = 60, page: tuple[int, int, int] = (242, 242, 245),
               ui: bool = True) -> np.ndarray:
    """The picture scaled inside a web page: a page-coloured border, optionally a header bar and text lines."""
    small = resize(rgb, scale)
    h, w = small.shape[:2]
    out = np.full((h + 2 * border + (40 if ui else 0), w + 2 * border + (220 if ui else 0), 3), page, np.uint8)
    top = border + (40 if ui else 0)
    out[top:top + h, border:border + w] = small
    if ui:
        out[:32] = (40, 60, 90)
        cv2.putText(out, "shop.example  > Home > Kitchen", (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        for i in range(6):
            y = top + 20 + i * 28
            cv2.line(out, (w + 2 * border, y), (out.shape[1] - 20, y), (120, 120, 120), 6)
    return _encode(out, "PNG", 100)


def paint_out(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Inpaint a region given as fractions (x0, y0, x1, y1): what a thief does to a visible mark."""
    h, w = rgb.shape[:2]
    m = np.zeros((h, w), np.uint8)
    m[int(box[1] * h):int(box[3] * h), int(box[0] * w):int(box[2] * w)] = 255
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(cv2.inpaint(bgr, m, 5, cv2.INPAINT_TELEA), cv2.COLOR_BGR2RGB)


def attack_suite(seed: int = 0) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The named copy attacks trace must survive (the hash-only cases and the hard geometric ones)."""
    rng = np.random.default_rng(seed)
    return {
        "jpeg50": lambda im: jpeg(im, 50),
        "webp50": lambda im: webp(im, 50),
        "resize50": lambda im: jpeg(resize(im, 0.5), 85),
        "thumb30": lambda im: jpeg(resize(im, 0.3), 85),
        "crop80": lambda im: jpeg(crop_area(im, 0.8, rng), 85),
        "crop50": lambda im: jpeg(crop_area(im, 0.5, rng), 85),
        "crop50_centre": lambda im: jpeg(crop_area(im, 0.5), 85),
        "pad20": lambda im: jpeg(pad(im, 0.2), 85),
        "letterbox": lambda im: jpeg(letterbox(im, 16 / 9), 85),
        "hflip": lambda im: jpeg(hflip(im), 85),
        "rot3": lambda im: jpeg(rotate(im, 3.0), 85),
        "aspect15": lambda im: jpeg(resize(im, 1.0, 0.85), 85),
        "screenshot": lambda im: screenshot(im),
        "banner": lambda im: jpeg(banner(im), 85),
        "bright_contrast": lambda im: jpeg(brightness_contrast(im, 1.2, 0.8), 85),
        "blur_noise": lambda im: jpeg(noise(blur(im, 1.5), 8), 85),
        "chain": lambda im: jpeg(resize(crop_area(im, 0.8, rng), 800 / max(im.shape[:2])), 70),
        "paint_out": lambda im: jpeg(paint_out(im, (0.55, 0.1, 0.9, 0.3)), 85),
    }


# ------------------------------------------------------------------------------ exports of a photo, for trace


def place_photo(photo: np.ndarray, spec: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """An export canvas of the upright ``photo`` on a preset canvas spec (``pipeline.presets.CanvasSpec``), the way
    the runner derives it (``ingest.plan_geometry``: scale the whole photo, then pad/crop at the plan's offset), and
    its trace frame (``record["extra"]["frame"]``)."""
    from pipeline.stages.ingest import plan_geometry

    h, w = photo.shape[:2]
    plan = plan_geometry(w, h, spec)
    sw, sh = plan.scaled
    cw, ch = plan.canvas
    ox, oy = plan.offset
    interp = cv2.INTER_AREA if sw <= w else cv2.INTER_LINEAR
    scaled = photo if (sw, sh) == (w, h) else cv2.resize(photo, (sw, sh), interpolation=interp)
    canvas = np.empty((ch, cw, 3), np.uint8)
    canvas[:] = spec.background
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(cw, ox + sw), min(ch, oy + sh)
    canvas[y0:y1, x0:x1] = scaled[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    frame = {"scaled": [sw, sh], "offset": [ox, oy], "canvas": [cw, ch], "background": list(spec.background)}
    return canvas, frame


def trace_blobs(export: np.ndarray, photo: np.ndarray | None = None, *,
                features: bytes | None = None) -> tuple[bytes, bytes]:
    """(search keys, features) of one export as the per-photo runner makes them: features of the unmarked
    ``photo`` (or ``features`` already computed for it, as the runner does once per photo; without either, the
    export is its own photo: identity frame) and the export's search keys from its 512 px frame with its own
    global PDQ and pHash."""
    from pipeline.trace import signatures as sg

    if features is None:
        features = sg.photo_features(export if photo is None else photo)
    return search_keys(export), features


def search_keys(export: np.ndarray) -> bytes:
    """One export's search keys as the runner makes them (its global PDQ at 512 px and pHash reused)."""
    from pipeline.imaging import hashes
    from pipeline.trace import signatures as sg

    h, w = export.shape[:2]
    small = hashes.downscale(export, hashes.HASH_SIDE)
    pdq, quality = hashes.pdq(small)
    return sg.export_search_keys(small, width=w, height=h, pdq=pdq, pdq_quality=quality, phash=hashes.phash(export))


def identity_frame(w: int, h: int) -> dict[str, Any]:
    """The frame of a ``w`` x ``h`` export that is its photo (no scaling, no padding)."""
    return {"scaled": [w, h], "offset": [0, 0], "canvas": [w, h], "background": [255, 255, 255]}


def stored_record(doc: dict[str, Any]) -> StoredRecord:
    """A ledger record from a partial dict of its columns (tests and benchmarks): absent text columns read "",
    numbers 0, ``capture``/``extra`` {}, ``payload``/``visible_mark`` None; chain columns likewise."""
    fields: dict[str, Any] = {}
    for name in RECORD_FIELDS:
        default: Any = (None if name in NULLABLE_FIELDS else {} if name in JSON_FIELDS else
                        0 if name in INT_FIELDS else "")
        fields[name] = doc.get(name, default)
    return StoredRecord(record=Record(**fields), seq=int(doc.get("seq", 0)), run_id=str(doc.get("run_id", "")),
                        prev_hash=str(doc.get("prev_hash", "")), record_hash=str(doc.get("record_hash", "")))


class MemoryStore:
    """A ledger stand-in held in memory (tests and benchmarks): records as dicts of their columns (read back as
    :class:`StoredRecord`, see :func:`stored_record`) plus their trace blobs."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.traces: dict[str, tuple[bytes, bytes]] = {}
        self.run_list: list[RunInfo] = []

    def add(self, record: dict[str, Any], search_keys: bytes, features: bytes) -> None:
        rid = str(record["record_id"])
        self.records[rid] = record
        self.traces[rid] = (search_keys, features)

    def get(self, record_id: str) -> StoredRecord | None:
        doc = self.records.get(record_id)
        return None if doc is None else stored_record(doc)

    def get_trace(self, record_id: str) -> tuple[bytes, bytes] | None:
        return self.traces.get(record_id)

    def iter_search_keys(self) -> Iterator[tuple[str, bytes]]:
        for rid, (keys, _features) in self.traces.items():
            yield rid, keys

    def find_by_payload(self, payload_hex: str) -> list[StoredRecord]:
        want = payload_hex.strip().lower()
        return [stored_record(r) for r in self.records.values() if str(r.get("payload") or "").lower() == want]

    def runs(self) -> list[RunInfo]:
        return list(self.run_list)
