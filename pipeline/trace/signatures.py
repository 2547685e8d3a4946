"""Trace data: per-export search keys, per-photo registration features and thumbnail, and the frame between them.

The work unit of a run is one source photo with every preset it goes to, so trace keeps two kinds of data:

* ``export_search_keys()`` — per export, fixed-size (``SEARCH_KEYS_SIZE`` = 1320 bytes), loaded for *every*
  record when a trace index is built: global PDQ + pHash (the export's own, computed once by the runner), PDQ +
  pHash of the border-trimmed content (padding, letterboxes, screenshots with a uniform border), PDQ of the
  centre 80 % / 64 % of the area (crops), and an ORB sketch of 32 spatially spread keypoints with their
  position, angle and pyramid level (crops of 50 %, rotations, screenshots: the cases global hashes lose).
  Fixed size so 100k records parse with one ``np.frombuffer``.
* ``photo_features()`` — per photo (the same blob is stored with each of its exports), loaded only for
  candidates: up to ``SIFT_MAX`` SIFT keypoints of the upright unmarked photo in normalised photo coordinates
  (descriptors as uint8) for RANSAC registration, and a <= ``THUMB_SIDE`` px WebP thumbnail of the photo for the
  verification correlation and the evidence report (so trace works without the export folder).
* the **frame** (``record["extra"]["frame"]``, see ``Frame``): how the export's pixels relate to the photo
  (``export_x = u * scaled_w + offset_x`` for u in [0, 1] across the photo, pad = positive offsets, cover =
  negative), so a registration to the photo maps into every export of it, and the photo thumbnail renders
  into the export's frame (pad areas in the preset background).

Every pHash, PDQ and area downscale comes from ``pipeline.imaging.hashes`` (the one implementation).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import cv2
import numpy as np
from PIL import Image

from pipeline.imaging import hashes
from pipeline.ledger import StoredRecord

SIG_VERSION = 2  # 1: per-export features in export pixels (before the per-photo runner); not readable any more
SEARCH_MAGIC = b"CMT1"
FEATURE_MAGIC = b"CMF2"
OLD_FEATURE_MAGICS = (b"CMF1",)
SEARCH_SIDE = hashes.HASH_SIDE  # hashes and the ORB sketch are computed on a 512 px long-side downscale
FEATURE_AREA = 448 * 448  # SIFT registration features on a copy of the photo of about this many pixels ...
FEATURE_SIDE = 768  # ... and at most this long a side (tall or wide photos keep detail across; measured in
#                     bench/trace_bench.py --cost: SIFT ~35 ms here, ~114 ms at 768 px long side)
SIFT_DETECT = 1500  # SIFT keypoints detected on the photo's feature frame ...
SIFT_MAX = 224  # ... of which this many, spread over the photo, are stored (224 * 136 B = 30 KB)
SIFT_CONTRAST = 0.04  # SIFT contrast threshold of the photo's features (OpenCV's default) ...
SIFT_CONTRAST_LOW = 0.02  # ... lowered where that finds fewer than SIFT_MAX keypoints (a smooth rug: ~70, too few to
#                           register a recompressed copy); suspects always use it (2.5x the SIFT time of 0.04 on a
#                           textured photo, which only trace pays there)
THUMB_SIDE = 384
THUMB_QUALITY = 75
THUMB_METHOD = 2  # WebP effort: 2 is ~3.6 ms at 384 px, 4 ~9.8 ms for 4 % fewer bytes
MIN_SIDE = 16  # smaller pictures carry too little to hash, match or read
SKETCH_K = 32  # ORB keypoints per record in the search keys
SKETCH_ORB = 600  # ORB keypoints detected on the export's 512 px frame, from which the sketch is chosen
REGION_AREAS = (0.80, 0.64)  # centre regions hashed for crop robustness (fraction of the area kept)
ORB_SCALE = 1.2  # ORB pyramid scale factor (the sketch stores the level; scale = ORB_SCALE ** level)
ORB_LEVELS = 8
COARSE_LEVEL = 2  # half of the sketch comes from pyramid levels >= 2 (features >= 45 px in the 512 frame)
WHITE = (255, 255, 255)

# One record's search keys, little-endian, fixed layout (parsed in bulk by index.py).
SEARCH_DTYPE = np.dtype(
    [
        ("magic", "S4"),
        ("width", "<u4"),
        ("height", "<u4"),
        ("pdq_quality", "u1"),
        ("flags", "u1"),
        ("n_sketch", "u1"),
        ("reserved", "u1"),
        ("trim", "<u2", (4,)),  # content box x0, y0, x1, y1 as fractions * 65535 of width/height
        ("pdq", "u1", (32,)),
        ("pdq_trim", "u1", (32,)),
        ("pdq_regions", "u1", (len(REGION_AREAS), 32)),
        ("phash", "u1", (8,)),
        ("phash_trim", "u1", (8,)),
        ("sketch_desc", "u1", (SKETCH_K, 32)),
        ("sketch_geo", "u1", (SKETCH_K, 4)),  # x, y (fraction * 255), angle (deg * 256/360), pyramid level
    ]
)
SEARCH_KEYS_SIZE = SEARCH_DTYPE.itemsize
# features blob header: magic, version, flags, keypoints, photo w, h, feature-frame w, h, thumbnail bytes
_FEATURE_HEAD = "<4sHHIIIIII"


class SignatureError(ValueError):
    """A search-keys or features blob is malformed (wrong magic, version or size) or of an older format."""


# --------------------------------------------------------------------------------------------- helpers


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _check_rgb(rgb: np.ndarray, what: str) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"{what}: expected H x W x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{what}: a {w}x{h} image is too small to trace (min side {MIN_SIDE} px)")


def content_box(rgb: np.ndarray, tol: int = 16, min_frac: float = 0.004, rounds: int = 3) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the content inside uniform borders (padding, letterbox, white studio bg).

    The border colour is the median of the outer frame; a row/column is content when more than ``min_frac`` of
    its pixels differ from it by more than ``tol`` (JPEG ringing stays under that).  Repeated for nested borders
    (a grey page around a white-background photo).  Returns the full frame if nothing is trimmed or the content
    would be degenerate.
    """
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = 0, 0, w, h
    for _ in range(rounds):
        sub = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        sh, sw = sub.shape[:2]
        if sh < 16 or sw < 16:
            break
        # the frame one pixel in: the outermost row/column is often a resampling blend with the previous border
        frame = np.concatenate([sub[1], sub[-2], sub[:, 1], sub[:, -2]])
        bg = np.median(frame, axis=0)
        # a pixel is content when a channel is more than tol from bg: for integer x, |x - bg| <= tol exactly when
        # ceil(bg - tol) <= x <= floor(bg + tol), which cv2.inRange tests on the uint8 pixels in one pass (no
        # int16 copy of the frame: ~3x cheaper than numpy, the same mask)
        lo = np.ceil(bg - tol).clip(0, 255)
        hi = np.floor(bg + tol).clip(0, 255)
        diff = cv2.inRange(sub, lo, hi) == 0
        diff[[0, -1], :] = False  # ... and is ignored when looking for content
        diff[:, [0, -1]] = False
        rows = np.flatnonzero(np.count_nonzero(diff, axis=1) > min_frac * sw)
        cols = np.flatnonzero(np.count_nonzero(diff, axis=0) > min_frac * sh)
        if rows.size == 0 or cols.size == 0:
            break
        # content reaching the (ignored) outermost row/column extends to it
        rows = np.r_[0, rows] if rows[0] == 1 else rows
        rows = np.r_[rows, sh - 1] if rows[-1] == sh - 2 else rows
        cols = np.r_[0, cols] if cols[0] == 1 else cols
        cols = np.r_[cols, sw - 1] if cols[-1] == sw - 2 else cols
        nx0, ny0, nx1, ny1 = x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1
        if (nx1 - nx0) < 0.1 * w or (ny1 - ny0) < 0.1 * h:
            break  # degenerate: a speck on a blank page is not the picture
        if (nx0, ny0, nx1, ny1) == (x0, y0, x1, y1):
            break
        x0, y0, x1, y1 = nx0, ny0, nx1, ny1
    return x0, y0, x1, y1


def content_box_fast(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """``content_box`` found on a <= 256 px copy, then refined at full resolution around that box (4x cheaper
    than a full-resolution search, same precision)."""
    h, w = rgb.shape[:2]
    tiny = hashes.downscale(rgb, 256)
    tx0, ty0, tx1, ty1 = content_box(tiny)
    if (tx0, ty0, tx1, ty1) == (0, 0, tiny.shape[1], tiny.shape[0]):
        return 0, 0, w, h
    ux, uy = w / tiny.shape[1], h / tiny.shape[0]
    mx, my = int(np.ceil(ux)) + 2, int(np.ceil(uy)) + 2
    x0, y0 = max(0, int(tx0 * ux) - mx), max(0, int(ty0 * uy) - my)
    x1, y1 = min(w, int(np.ceil(tx1 * ux)) + mx), min(h, int(np.ceil(ty1 * uy)) + my)
    rx0, ry0, rx1, ry1 = content_box(rgb[y0:y1, x0:x1], rounds=1)
    return x0 + rx0, y0 + ry0, x0 + rx1, y0 + ry1


def centre_region(rgb: np.ndarray, area: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = float(np.sqrt(area))
    cw, ch = max(1, round(w * s)), max(1, round(h * s))
    x, y = (w - cw) // 2, (h - ch) // 2
    return np.ascontiguousarray(rgb[y:y + ch, x:x + cw])


def _orb(nfeatures: int) -> cv2.ORB:
    return cv2.ORB.create(nfeatures=nfeatures, scaleFactor=ORB_SCALE, nlevels=ORB_LEVELS, fastThreshold=10,
                          edgeThreshold=15, patchSize=31)


def orb_features(gray: np.ndarray, nfeatures: int) -> tuple[np.ndarray, np.ndarray]:
    """ORB on a grayscale image: (n, 32) descriptors and (n, 4) float geometry x, y, angle (deg), level."""
    kps, des = _orb(nfeatures).detectAndCompute(gray, None)
    if des is None or not kps:
        return np.zeros((0, 32), np.uint8), np.zeros((0, 4), np.float32)
    geo = np.array([(k.pt[0], k.pt[1], k.angle, k.octave & 0xFF, k.response) for k in kps], np.float32)
    order = np.argsort(-geo[:, 4], kind="stable")
    return des[order], geo[order, :4]


def spread_select(xy: np.ndarray, k: int, shape: tuple[int, int], grid: int = 4) -> np.ndarray:
    """Indices of up to ``k`` points, strongest first (input order), spread over a grid x grid layout."""
    h, w = shape
    if len(xy) <= k:
        return np.arange(len(xy))
    cell = (np.clip(xy[:, 0] * grid // max(w, 1), 0, grid - 1) * grid
            + np.clip(xy[:, 1] * grid // max(h, 1), 0, grid - 1)).astype(int)
    per = max(1, -(-k // (grid * grid)))
    taken: dict[int, int] = {}
    chosen: list[int] = []
    for i, c in enumerate(cell):
        if taken.get(c, 0) < per:
            taken[c] = taken.get(c, 0) + 1
            chosen.append(i)
            if len(chosen) == k:
                break
    if len(chosen) < k:  # empty cells (white background): fill with the strongest remaining points
        rest = np.setdiff1d(np.arange(len(xy)), chosen, assume_unique=True)[: k - len(chosen)]
        chosen.extend(int(i) for i in rest)
    return np.array(sorted(chosen))


def sketch_select(geo: np.ndarray, shape: tuple[int, int], k: int = SKETCH_K) -> np.ndarray:
    """The sketch's keypoints: half from coarse pyramid levels (they survive thumbnails and screenshots, where
    fine detail is gone), half from any level (crops magnify the fine ones), each half spread over the frame."""
    coarse = np.flatnonzero(geo[:, 3] >= COARSE_LEVEL)
    first = coarse[spread_select(geo[coarse, :2], k // 2, shape)] if len(coarse) else np.zeros(0, np.int64)
    rest = np.setdiff1d(np.arange(len(geo)), first, assume_unique=True)
    second = rest[spread_select(geo[rest, :2], k - len(first), shape)] if len(rest) else np.zeros(0, np.int64)
    return np.sort(np.concatenate([first, second]).astype(np.int64))


def sift_features(gray: np.ndarray, nfeatures: int,
                  contrast: float = SIFT_CONTRAST_LOW) -> tuple[np.ndarray, np.ndarray]:
    """SIFT on a grayscale image: (n, 2) float32 coordinates, (n, 128) uint8 descriptors, strongest first.

    OpenCV's SIFT descriptors are already integers in 0..255 stored as float, so uint8 is lossless.
    """
    sift = cv2.SIFT.create(nfeatures=nfeatures, contrastThreshold=contrast)
    kps, des = sift.detectAndCompute(gray, None)
    if des is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8)
    resp = np.array([k.response for k in kps], np.float32)
    order = np.argsort(-resp, kind="stable")
    xy = np.array([k.pt for k in kps], np.float32)[order]
    return xy, np.clip(np.round(des[order]), 0, 255).astype(np.uint8)


def encode_thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE, quality: int = THUMB_QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(hashes.downscale(rgb, side)).save(buf, "WEBP", quality=quality, method=THUMB_METHOD)
    return buf.getvalue()


def decode_thumbnail(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


# ------------------------------------------------------------------------------------------ search keys


@dataclass
class TraceSignature:
    """One export's search keys (see the module docstring)."""

    width: int
    height: int
    pdq: bytes
    pdq_quality: int
    phash: bytes
    trim: tuple[int, int, int, int]  # content box in export pixels
    pdq_trim: bytes
    phash_trim: bytes
    pdq_regions: tuple[bytes, ...]  # one per REGION_AREAS
    sketch_desc: np.ndarray  # (n <= SKETCH_K, 32) uint8 ORB descriptors
    sketch_geo: np.ndarray  # (n, 4) float32: x, y in export pixels, angle (deg), pyramid level

    def search_keys(self) -> bytes:
        rec = np.zeros((), SEARCH_DTYPE)
        rec["magic"] = SEARCH_MAGIC
        rec["width"], rec["height"] = self.width, self.height
        rec["pdq_quality"] = max(0, min(255, self.pdq_quality))
        n = min(len(self.sketch_desc), SKETCH_K)
        rec["n_sketch"] = n
        x0, y0, x1, y1 = self.trim
        rec["trim"] = [round(x0 / self.width * 65535), round(y0 / self.height * 65535),
                       round(x1 / self.width * 65535), round(y1 / self.height * 65535)]
        rec["pdq"] = np.frombuffer(self.pdq, np.uint8)
        rec["pdq_trim"] = np.frombuffer(self.pdq_trim, np.uint8)
        rec["pdq_regions"] = np.stack([np.frombuffer(r, np.uint8) for r in self.pdq_regions])
        rec["phash"] = np.frombuffer(self.phash, np.uint8)
        rec["phash_trim"] = np.frombuffer(self.phash_trim, np.uint8)
        if n:
            rec["sketch_desc"][:n] = self.sketch_desc[:n]
            g = self.sketch_geo[:n]
            rec["sketch_geo"][:n, 0] = np.clip(np.round(g[:, 0] / self.width * 255), 0, 255)
            rec["sketch_geo"][:n, 1] = np.clip(np.round(g[:, 1] / self.height * 255), 0, 255)
            rec["sketch_geo"][:n, 2] = np.round(g[:, 2] * 256 / 360).astype(np.int64) % 256
            rec["sketch_geo"][:n, 3] = np.clip(g[:, 3], 0, 255)
        return rec.tobytes()

    @classmethod
    def from_bytes(cls, search_keys: bytes) -> TraceSignature:
        rec = parse_search_keys(search_keys)
        w, h = int(rec["width"]), int(rec["height"])
        n = int(rec["n_sketch"])
        t = rec["trim"].astype(np.float64) / 65535
        geo = rec["sketch_geo"][:n].astype(np.float32)
        geo[:, 0] = geo[:, 0] / 255 * w
        geo[:, 1] = geo[:, 1] / 255 * h
        geo[:, 2] = geo[:, 2] * 360 / 256
        return cls(
            width=w, height=h,
            pdq=rec["pdq"].tobytes(), pdq_quality=int(rec["pdq_quality"]), phash=rec["phash"].tobytes(),
            trim=(round(t[0] * w), round(t[1] * h), round(t[2] * w), round(t[3] * h)),
            pdq_trim=rec["pdq_trim"].tobytes(), phash_trim=rec["phash_trim"].tobytes(),
            pdq_regions=tuple(r.tobytes() for r in rec["pdq_regions"]),
            sketch_desc=rec["sketch_desc"][:n].copy(), sketch_geo=geo,
        )


def parse_search_keys(data: bytes) -> np.ndarray:
    if len(data) != SEARCH_KEYS_SIZE:
        raise SignatureError(f"trace search keys: expected {SEARCH_KEYS_SIZE} bytes, got {len(data)}")
    rec = np.frombuffer(data, SEARCH_DTYPE)[0]
    if rec["magic"] != SEARCH_MAGIC:
        raise SignatureError(f"trace search keys: bad magic {rec['magic']!r} (expected {SEARCH_MAGIC!r})")
    return rec


def export_signature(small: np.ndarray, *, width: int, height: int, pdq: bytes, pdq_quality: int,
                     phash: bytes) -> TraceSignature:
    """``export_search_keys`` as a ``TraceSignature`` (see there)."""
    _check_rgb(small, "export_search_keys")
    if max(small.shape[:2]) > SEARCH_SIDE:
        raise ValueError(f"export_search_keys: expected the export downscaled to <= {SEARCH_SIDE} px "
                         f"(hashes.downscale(pixels, hashes.HASH_SIDE)), got {small.shape[1]}x{small.shape[0]}")
    if len(pdq) != 32 or len(phash) != 8:
        raise ValueError(f"export_search_keys: pdq must be 32 bytes and phash 8, got {len(pdq)} and {len(phash)}")
    sh, sw = small.shape[:2]
    fx, fy = width / sw, height / sh
    bx0, by0, bx1, by1 = content_box_fast(small)
    trimmed = np.ascontiguousarray(small[by0:by1, bx0:bx1])
    trim = (round(bx0 * fx), round(by0 * fy), min(width, round(bx1 * fx)), min(height, round(by1 * fy)))
    regions = tuple(hashes.pdq(centre_region(small, a))[0] for a in REGION_AREAS)
    gray = to_gray(small)
    desc, geo = orb_features(gray, SKETCH_ORB)
    sel = sketch_select(geo, gray.shape)
    sdesc, sgeo = desc[sel], geo[sel].copy()
    sgeo[:, 0] *= fx
    sgeo[:, 1] *= fy
    return TraceSignature(
        width=width, height=height, pdq=bytes(pdq), pdq_quality=int(pdq_quality), phash=bytes(phash), trim=trim,
        pdq_trim=hashes.pdq(trimmed)[0], phash_trim=hashes.phash(trimmed), pdq_regions=regions,
        sketch_desc=sdesc, sketch_geo=sgeo,
    )


def export_search_keys(small: np.ndarray, *, width: int, height: int, pdq: bytes, pdq_quality: int,
                       phash: bytes) -> bytes:
    """One export's search keys (``SEARCH_KEYS_SIZE`` bytes), called once per export.

    ``small``: the decoded output downscaled with ``hashes.downscale(pixels, hashes.HASH_SIDE)``; ``width`` x
    ``height``: the export's full size; ``pdq``/``pdq_quality``: ``hashes.pdq(small)``; ``phash``: the export's
    global ``hashes.phash`` (8 bytes). Both are reused as they are, not computed again.
    """
    return export_signature(small, width=width, height=height, pdq=pdq, pdq_quality=pdq_quality,
                            phash=phash).search_keys()


# ------------------------------------------------------------------------------------------- the frame


@dataclass(frozen=True)
class Frame:
    """How an export relates to its photo: the whole upright photo scaled to ``scaled`` and placed at ``offset``
    on a ``canvas``-sized canvas of ``background`` (pad: positive offsets; cover: negative, i.e. cropped)."""

    scaled: tuple[int, int]
    offset: tuple[int, int]
    canvas: tuple[int, int]
    background: tuple[int, int, int] = WHITE

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Frame:
        try:
            sw, sh = (int(v) for v in d["scaled"])
            ox, oy = (int(v) for v in d["offset"])
            cw, ch = (int(v) for v in d["canvas"])
            bg = d.get("background") or WHITE
            r, g, b = (int(v) for v in bg)
        except (KeyError, TypeError, ValueError) as exc:
            raise SignatureError(f"trace frame: malformed {d!r} ({exc})") from exc
        if min(sw, sh, cw, ch) < 1:
            raise SignatureError(f"trace frame: degenerate sizes in {d!r}")
        return cls((sw, sh), (ox, oy), (cw, ch), (r, g, b))

    def as_dict(self) -> dict[str, Any]:
        return {"scaled": list(self.scaled), "offset": list(self.offset), "canvas": list(self.canvas),
                "background": list(self.background)}

    @classmethod
    def identity(cls, width: int, height: int) -> Frame:
        """The frame of an export that is the photo itself (tests, benchmarks)."""
        return cls((width, height), (0, 0), (width, height))

    def from_unit(self) -> np.ndarray:
        """3x3: normalised photo coordinates (u, v in [0, 1], pixel edges) -> export pixel coordinates (pixel
        centres at integers, as OpenCV and the registration use)."""
        (sw, sh), (ox, oy) = self.scaled, self.offset
        return np.array([[sw, 0.0, ox - 0.5], [0.0, sh, oy - 0.5], [0.0, 0.0, 1.0]])


def frame_of(record: StoredRecord | dict[str, Any] | None) -> Frame | None:
    """The export's frame from its ledger record (``extra["frame"]``; a StoredRecord or its dict); None if the
    record has none."""
    extra = (record.record.extra if isinstance(record, StoredRecord) else (record or {}).get("extra")) or {}
    d = extra.get("frame") if isinstance(extra, dict) else None
    return Frame.from_dict(d) if isinstance(d, dict) else None


# ------------------------------------------------------------------------------------------ photo features


@dataclass
class PhotoFeatures:
    """One photo's registration features and thumbnail (the features blob)."""

    size: tuple[int, int]  # the photo as given to photo_features (w, h)
    feature_size: tuple[int, int]  # the frame SIFT ran on (w, h); RANSAC tolerances are in its pixels
    uv: np.ndarray  # (n, 2) float32: keypoints in normalised photo coordinates (pixel edges at 0 and 1)
    desc: np.ndarray  # (n, 128) uint8
    thumbnail: bytes  # WebP, long side <= THUMB_SIDE

    def to_bytes(self) -> bytes:
        n = len(self.uv)
        head = struct.pack(_FEATURE_HEAD, FEATURE_MAGIC, SIG_VERSION, 0, n, *self.size, *self.feature_size,
                           len(self.thumbnail))
        return head + self.uv.astype("<f4").tobytes() + self.desc.astype(np.uint8).tobytes() + self.thumbnail

    @classmethod
    def from_bytes(cls, data: bytes) -> PhotoFeatures:
        hsize = struct.calcsize(_FEATURE_HEAD)
        if data[:4] in OLD_FEATURE_MAGICS:
            raise SignatureError(f"trace features: format {data[:4].decode()} of a catalogmark before per-photo trace "
                                 "data (SIG_VERSION 1); re-run the export to trace against this record")
        if len(data) < hsize:
            raise SignatureError(f"trace features: {len(data)} bytes is shorter than the header")
        magic, version, _flags, n, pw, ph, fw, fh, tlen = struct.unpack_from(_FEATURE_HEAD, data)
        if magic != FEATURE_MAGIC:
            raise SignatureError(f"trace features: bad magic {magic!r} (expected {FEATURE_MAGIC!r})")
        if version != SIG_VERSION:
            raise SignatureError(f"trace features: unsupported version {version}")
        need = hsize + n * 8 + n * 128 + tlen
        if len(data) != need:
            raise SignatureError(f"trace features: expected {need} bytes for {n} keypoints, got {len(data)}")
        off = hsize
        uv = np.frombuffer(data, "<f4", n * 2, off).reshape(n, 2).astype(np.float32)
        off += n * 8
        desc = np.frombuffer(data, np.uint8, n * 128, off).reshape(n, 128).copy()
        off += n * 128
        return cls(size=(pw, ph), feature_size=(fw, fh), uv=uv, desc=desc, thumbnail=bytes(data[off:off + tlen]))

    @cached_property
    def thumbnail_rgb(self) -> np.ndarray | None:
        return decode_thumbnail(self.thumbnail) if self.thumbnail else None

    def feature_xy(self) -> np.ndarray:
        """Keypoints in feature-frame pixels (pixel centres at integers)."""
        fw, fh = self.feature_size
        return (self.uv * np.array([fw, fh], np.float32) - 0.5).astype(np.float32)

    def to_unit(self) -> np.ndarray:
        """3x3: feature-frame pixels -> normalised photo coordinates (the inverse of ``feature_xy``)."""
        fw, fh = self.feature_size
        return np.array([[1.0 / fw, 0.0, 0.5 / fw], [0.0, 1.0 / fh, 0.5 / fh], [0.0, 0.0, 1.0]])


def feature_side(w: int, h: int) -> int:
    """Long side of the frame the photo's SIFT features are computed on (never larger than the photo)."""
    return max(1, min(max(w, h), FEATURE_SIDE, round(max(w, h) * float(np.sqrt(FEATURE_AREA / (w * h))))))


def compute_photo_features(photo: np.ndarray) -> PhotoFeatures:
    """``photo_features`` as a ``PhotoFeatures`` (see there)."""
    _check_rgb(photo, "photo_features")
    h, w = photo.shape[:2]
    side = feature_side(w, h)
    big = hashes.downscale(photo, max(side, THUMB_SIDE))  # one full-size pass, the smaller ones from it
    feat = hashes.downscale(big, side)
    fh, fw = feat.shape[:2]
    gray = to_gray(feat)
    xy, desc = sift_features(gray, SIFT_DETECT, SIFT_CONTRAST)
    if len(xy) < SIFT_MAX:  # a smooth photo: look again at lower contrast
        xy, desc = sift_features(gray, SIFT_DETECT, SIFT_CONTRAST_LOW)
    keep = spread_select(xy, SIFT_MAX, gray.shape, grid=6)
    xy, desc = xy[keep], desc[keep]
    uv = ((xy + 0.5) / np.array([fw, fh], np.float32)).astype(np.float32)
    return PhotoFeatures(size=(w, h), feature_size=(fw, fh), uv=uv, desc=desc,
                         thumbnail=encode_thumbnail(big))


def photo_features(photo: np.ndarray) -> bytes:
    """The features blob of one photo, called once per photo with the upright, unmarked working-resolution photo
    (H x W x 3 uint8 sRGB): SIFT keypoints in normalised photo coordinates and a thumbnail of the photo. The same
    blob goes with every export of the photo; each export's ``extra.frame`` maps it into that export."""
    return compute_photo_features(photo).to_bytes()


# ------------------------------------------------------------------------------------- an export, for trace


@dataclass
class ExportTrace:
    """What trace knows of one candidate export: its search keys, its frame and its photo's features."""

    frame: Frame
    photo: PhotoFeatures
    keys: TraceSignature | None = None
    # the visible mark at thumbnail size, float32 premultiplied RGB (0..255) + alpha (0..1) (set by the tracer)
    mark_layer: np.ndarray | None = None
    _marked: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def width(self) -> int:
        return self.frame.canvas[0]

    @property
    def height(self) -> int:
        return self.frame.canvas[1]

    @property
    def kp_desc(self) -> np.ndarray:
        return self.photo.desc

    def unit_to_export(self) -> np.ndarray:
        return self.frame.from_unit()

    def feature_to_export(self) -> np.ndarray:
        """3x3: photo feature-frame pixels -> export pixels."""
        return self.frame.from_unit() @ self.photo.to_unit()

    @cached_property
    def thumb_size(self) -> tuple[int, int]:
        """(w, h) of the export's thumbnail frame (a scaling of the export): <= THUMB_SIDE as the thumbnails of
        exports always were (the correlation and mark thresholds are calibrated there), and never finer than the
        photo thumbnail (a cover crop is not enlarged from it)."""
        cw, ch = self.frame.canvas
        k = THUMB_SIDE / max(cw, ch)
        t = self.photo.thumbnail_rgb
        if t is not None:
            k = min(k, t.shape[1] / self.frame.scaled[0] * 1.05)
        k = min(k, 1.0)
        return max(1, round(cw * k)), max(1, round(ch * k))

    @cached_property
    def plain_thumbnail(self) -> np.ndarray | None:
        """The photo thumbnail rendered into the export's thumbnail frame (pad areas in the background colour),
        without the visible mark."""
        t = self.photo.thumbnail_rgb
        if t is None:
            return None
        tw, th = self.thumb_size
        cw, ch = self.frame.canvas
        # photo-thumbnail pixels -> unit -> export continuous coords -> thumbnail pixels (centres at integers)
        pth, ptw = t.shape[:2]
        to_unit = np.array([[1.0 / ptw, 0, 0.5 / ptw], [0, 1.0 / pth, 0.5 / pth], [0, 0, 1]])
        (sw, sh), (ox, oy) = self.frame.scaled, self.frame.offset
        unit_to_cont = np.array([[sw, 0, ox], [0, sh, oy], [0, 0, 1.0]])
        cont_to_thumb = np.array([[tw / cw, 0, -0.5], [0, th / ch, -0.5], [0, 0, 1.0]])
        m = cont_to_thumb @ unit_to_cont @ to_unit
        return warp_resampled(t, m, (tw, th), self.frame.background)

    def thumbnail_rgb(self) -> np.ndarray | None:
        """The export as trace sees it, at thumbnail size: the photo in the export's frame, with the visible mark
        composited when the tracer could re-render it."""
        base = self.plain_thumbnail
        layer = self.mark_layer
        if base is None or layer is None or layer.shape[:2] != base.shape[:2]:
            return base
        if self._marked is None or self._marked[0] is not layer:
            out = layer[..., :3] + base.astype(np.float32) * (1 - layer[..., 3:])
            self._marked = (layer, np.clip(np.rint(out), 0, 255).astype(np.uint8))
        return self._marked[1]

    def export_to_thumb(self) -> np.ndarray:
        """3x3: export pixels -> thumbnail pixels (both with pixel centres at integers)."""
        tw, th = self.thumb_size
        sx, sy = tw / self.width, th / self.height
        return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])


def warp_resampled(src: np.ndarray, m: np.ndarray, size: tuple[int, int],
                   border: tuple[int, int, int] | int = 0, *, nearest: bool = False) -> np.ndarray:
    """``cv2.warpAffine`` of ``src`` by the 3x3 (or 2x3) ``m`` into ``size``, area-downscaling ``src`` first when
    the warp shrinks it a lot (bilinear sampling alone would alias)."""
    m = np.asarray(m, np.float64)
    m2 = m[:2]
    shrink = float(np.sqrt(abs(np.linalg.det(m2[:, :2]))))
    if shrink < 0.5 and not nearest:
        f = max(shrink * 1.5, 1 / 16)
        h, w = src.shape[:2]
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        src = cv2.resize(src, (nw, nh), interpolation=cv2.INTER_AREA)
        # small-image pixel centres -> original pixel coordinates
        back = np.array([[w / nw, 0, 0.5 * w / nw - 0.5], [0, h / nh, 0.5 * h / nh - 0.5], [0, 0, 1.0]])
        m2 = (np.vstack([m2, [0, 0, 1]]) @ back)[:2]
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    bv = tuple(float(c) for c in border) if isinstance(border, tuple) else float(border)
    return cv2.warpAffine(src, m2, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=bv)


def export_trace(search_keys: bytes | None, features: bytes, frame: Frame) -> ExportTrace:
    """Rebuild a candidate export from its ledger blobs and frame (raises SignatureError for a bad blob)."""
    keys = TraceSignature.from_bytes(search_keys) if search_keys is not None else None
    return ExportTrace(frame=frame, photo=PhotoFeatures.from_bytes(features), keys=keys)

