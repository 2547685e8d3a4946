"""Per-export trace data: perceptual hashes, a crop-robust local-feature sketch, registration features, thumbnail.

Computed once at export time from the exported pixels (``compute_signature``) and stored by the ledger as two
blobs per record:

* ``search_keys()`` — fixed-size (``SEARCH_KEYS_SIZE`` = 1320 bytes), loaded for *every* record when a trace
  index is built: global PDQ + pHash, PDQ + pHash of the border-trimmed content (padding, letterboxes,
  screenshots with a uniform border), PDQ of the centre 80 % / 64 % of the area (crops), and an ORB sketch of
  32 spatially spread keypoints with their position, angle and pyramid level (crops of 50 %, rotations,
  screenshots: the cases global hashes lose).  Fixed size so 100k records parse with one ``np.frombuffer``.
* ``features()`` — up to ~40 KB, loaded only for candidates: up to 224 SIFT keypoints (coordinates in export
  pixels, descriptors as uint8) for RANSAC registration, and a <= 384 px WebP thumbnail for the verification
  correlation and the evidence report (so trace works without the export folder).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import cv2
import imagehash
import numpy as np
import pdqhash
from PIL import Image

SIG_VERSION = 1
SEARCH_MAGIC = b"CMT1"
FEATURE_MAGIC = b"CMF1"
SEARCH_SIDE = 512  # hashes and the ORB sketch are computed on a 512 px long-side downscale (as hashrecord does)
FEATURE_SIDE = 768  # SIFT registration features on a <= 768 px long-side downscale (~110 ms; 1024 px: ~210 ms)
THUMB_SIDE = 384
THUMB_QUALITY = 75
MIN_SIDE = 16  # smaller pictures carry too little to hash, match or read
SKETCH_K = 32  # ORB keypoints per record in the search keys
SIFT_MAX = 224  # SIFT keypoints per record in the features blob (224 * 136 B = 30 KB)
REGION_AREAS = (0.80, 0.64)  # centre regions hashed for crop robustness (fraction of the area kept)
ORB_SCALE = 1.2  # ORB pyramid scale factor (the sketch stores the level; scale = ORB_SCALE ** level)
ORB_LEVELS = 8
COARSE_LEVEL = 2  # half of the sketch comes from pyramid levels >= 2 (features >= 45 px in the 512 frame)

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


class SignatureError(ValueError):
    """A search-keys or features blob is malformed (wrong magic, version or size)."""


# --------------------------------------------------------------------------------------------- helpers


def downscale(rgb: np.ndarray, side: int) -> np.ndarray:
    """Area-downscale so the long side is at most ``side`` (never upscales); returns a C-contiguous array."""
    h, w = rgb.shape[:2]
    f = side / max(h, w)
    if f >= 1:
        return np.ascontiguousarray(rgb)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def pdq_bits(rgb: np.ndarray) -> np.ndarray:
    """PDQ hash of an RGB image as 32 packed bytes."""
    bits, _ = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8))


def pdq_with_quality(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8)), int(quality)


def pdq_dihedral(rgb: np.ndarray) -> np.ndarray:
    """The 8 dihedral PDQ hashes (identity, rotations, flips), (8, 32) packed bytes, from one DCT."""
    return pdq_dihedral_with_quality(rgb)[0]


def pdq_dihedral_with_quality(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """``pdq_dihedral`` and PDQ's quality score (the identity hash is the one ``pdq_bits`` gives)."""
    hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return np.stack([np.packbits(np.asarray(h, dtype=np.uint8)) for h in hashes]), int(quality)


def phash_bits(rgb: np.ndarray) -> np.ndarray:
    """imagehash's pHash (64 bits) as 8 packed bytes (same bits as the ledger's ``phash`` column)."""
    h = imagehash.phash(Image.fromarray(np.ascontiguousarray(rgb)))
    return np.packbits(np.asarray(h.hash, dtype=np.uint8).ravel())


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
        sub = rgb[y0:y1, x0:x1].astype(np.int16)
        sh, sw = sub.shape[:2]
        if sh < 16 or sw < 16:
            break
        # the frame one pixel in: the outermost row/column is often a resampling blend with the previous border
        frame = np.concatenate([sub[1], sub[-2], sub[:, 1], sub[:, -2]])
        bg = np.median(frame, axis=0)
        diff = (np.abs(sub - bg).max(axis=2) > tol)
        diff[[0, -1], :] = False  # ... and is ignored when looking for content
        diff[:, [0, -1]] = False
        rows = np.flatnonzero(diff.mean(axis=1) > min_frac)
        cols = np.flatnonzero(diff.mean(axis=0) > min_frac)
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
    tiny = downscale(rgb, 256)
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


def sift_features(gray: np.ndarray, nfeatures: int) -> tuple[np.ndarray, np.ndarray]:
    """SIFT on a grayscale image: (n, 2) float32 coordinates, (n, 128) uint8 descriptors, strongest first.

    OpenCV's SIFT descriptors are already integers in 0..255 stored as float, so uint8 is lossless.
    """
    sift = cv2.SIFT.create(nfeatures=nfeatures)
    kps, des = sift.detectAndCompute(gray, None)
    if des is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8)
    resp = np.array([k.response for k in kps], np.float32)
    order = np.argsort(-resp, kind="stable")
    xy = np.array([k.pt for k in kps], np.float32)[order]
    return xy, np.clip(np.round(des[order]), 0, 255).astype(np.uint8)


def encode_thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE, quality: int = THUMB_QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(downscale(rgb, side)).save(buf, "WEBP", quality=quality, method=4)
    return buf.getvalue()


def decode_thumbnail(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


# -------------------------------------------------------------------------------------------- signature


@dataclass
class TraceSignature:
    """Everything trace keeps about one export (see the module docstring for the two blobs)."""

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
    kp_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # export pixels
    kp_desc: np.ndarray = field(default_factory=lambda: np.zeros((0, 128), np.uint8))
    thumbnail: bytes = b""  # WebP, long side <= THUMB_SIDE
    version: int = SIG_VERSION

    # ------------------------------------------------------------------ search keys
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

    # ------------------------------------------------------------------ features
    def features(self) -> bytes:
        n = len(self.kp_xy)
        head = struct.pack("<4sHHII", FEATURE_MAGIC, self.version, 0, n, len(self.thumbnail))
        return (head + self.kp_xy.astype("<f4").tobytes() + self.kp_desc.astype(np.uint8).tobytes()
                + self.thumbnail)

    @classmethod
    def from_bytes(cls, search_keys: bytes, features: bytes | None = None) -> TraceSignature:
        """Rebuild a signature from its blobs (without ``features``: no keypoints and no thumbnail)."""
        rec = parse_search_keys(search_keys)
        w, h = int(rec["width"]), int(rec["height"])
        n = int(rec["n_sketch"])
        t = rec["trim"].astype(np.float64) / 65535
        geo = rec["sketch_geo"][:n].astype(np.float32)
        geo[:, 0] = geo[:, 0] / 255 * w
        geo[:, 1] = geo[:, 1] / 255 * h
        geo[:, 2] = geo[:, 2] * 360 / 256
        sig = cls(
            width=w, height=h,
            pdq=rec["pdq"].tobytes(), pdq_quality=int(rec["pdq_quality"]), phash=rec["phash"].tobytes(),
            trim=(round(t[0] * w), round(t[1] * h), round(t[2] * w), round(t[3] * h)),
            pdq_trim=rec["pdq_trim"].tobytes(), phash_trim=rec["phash_trim"].tobytes(),
            pdq_regions=tuple(r.tobytes() for r in rec["pdq_regions"]),
            sketch_desc=rec["sketch_desc"][:n].copy(), sketch_geo=geo,
        )
        if features is not None:
            sig.kp_xy, sig.kp_desc, sig.thumbnail = parse_features(features)
        return sig

    def thumbnail_rgb(self) -> np.ndarray | None:
        return decode_thumbnail(self.thumbnail) if self.thumbnail else None


def parse_search_keys(data: bytes) -> np.ndarray:
    if len(data) != SEARCH_KEYS_SIZE:
        raise SignatureError(f"trace search keys: expected {SEARCH_KEYS_SIZE} bytes, got {len(data)}")
    rec = np.frombuffer(data, SEARCH_DTYPE)[0]
    if rec["magic"] != SEARCH_MAGIC:
        raise SignatureError(f"trace search keys: bad magic {rec['magic']!r} (expected {SEARCH_MAGIC!r})")
    return rec


def parse_features(data: bytes) -> tuple[np.ndarray, np.ndarray, bytes]:
    hsize = struct.calcsize("<4sHHII")
    if len(data) < hsize:
        raise SignatureError(f"trace features: {len(data)} bytes is shorter than the header")
    magic, version, _, n, tlen = struct.unpack_from("<4sHHII", data)
    if magic != FEATURE_MAGIC:
        raise SignatureError(f"trace features: bad magic {magic!r} (expected {FEATURE_MAGIC!r})")
    if version != SIG_VERSION:
        raise SignatureError(f"trace features: unsupported version {version}")
    need = hsize + n * 8 + n * 128 + tlen
    if len(data) != need:
        raise SignatureError(f"trace features: expected {need} bytes for {n} keypoints, got {len(data)}")
    off = hsize
    xy = np.frombuffer(data, "<f4", n * 2, off).reshape(n, 2).astype(np.float32)
    off += n * 8
    desc = np.frombuffer(data, np.uint8, n * 128, off).reshape(n, 128).copy()
    off += n * 128
    return xy, desc, bytes(data[off:off + tlen])


def compute_signature(rgb: np.ndarray, *, features: bool = True) -> TraceSignature:
    """Trace data of one exported image (decoded output pixels, H x W x 3 uint8 RGB).

    ``features=False`` skips the registration features and thumbnail (search keys only: ~5x cheaper).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"compute_signature: expected H x W x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"compute_signature: a {w}x{h} image is too small to trace (min side {MIN_SIDE} px)")
    feat = downscale(rgb, FEATURE_SIDE)  # each smaller frame is made from the next larger one (one full-size pass)
    small = downscale(feat, SEARCH_SIDE)
    sh, sw = small.shape[:2]
    fx, fy = w / sw, h / sh
    pdq, quality = pdq_with_quality(small)
    bx0, by0, bx1, by1 = content_box_fast(small)
    trimmed = np.ascontiguousarray(small[by0:by1, bx0:bx1])
    trim = (round(bx0 * fx), round(by0 * fy), min(w, round(bx1 * fx)), min(h, round(by1 * fy)))
    regions = tuple(pdq_bits(centre_region(small, a)).tobytes() for a in REGION_AREAS)
    gray = to_gray(small)
    desc, geo = orb_features(gray, 600)
    sel = sketch_select(geo, gray.shape)
    sdesc, sgeo = desc[sel], geo[sel].copy()
    sgeo[:, 0] *= fx
    sgeo[:, 1] *= fy
    xy = np.zeros((0, 2), np.float32)
    kdesc = np.zeros((0, 128), np.uint8)
    thumb = b""
    if features:
        fgray = to_gray(feat)
        xy, kdesc = sift_features(fgray, 1500)
        keep = spread_select(xy, SIFT_MAX, fgray.shape, grid=6)
        xy, kdesc = xy[keep], kdesc[keep]
        xy = (xy + 0.5) * np.array([w / feat.shape[1], h / feat.shape[0]], np.float32) - 0.5  # pixel centres
        thumb = encode_thumbnail(feat)
    return TraceSignature(
        width=w, height=h, pdq=pdq.tobytes(), pdq_quality=quality, phash=phash_bits(small).tobytes(),
        trim=trim, pdq_trim=pdq_bits(trimmed).tobytes(), phash_trim=phash_bits(trimmed).tobytes(),
        pdq_regions=regions, sketch_desc=sdesc, sketch_geo=sgeo, kp_xy=xy.astype(np.float32),
        kp_desc=kdesc, thumbnail=thumb,
    )
