"""Candidate search: which ledger records could a suspect image have been copied from (in memory, vectorised).

Two channels over the records' search keys (see signatures.py), fused into one ranked candidate list:

1. **Hashes** (wins re-encoding, resizing, colour changes, flips/rotations by 90 deg, padding, letterboxes):
   the suspect's 8 dihedral PDQ hashes vs each record's PDQ; the suspect's border-trimmed content (dihedral)
   vs the record's trimmed content; the suspect vs the record's centre 80 %/64 % regions (a centred crop) and
   the suspect's centre regions vs the record (a copy with extra surround); pHash of full and trimmed image.
   Hamming distances over packed uint64 words with ``np.bitwise_count`` (one XOR + popcount per word).
2. **ORB sketch** (wins crops down to 50 % of the area, small rotations, screenshots with page furniture):
   each record keeps 32 spread ORB keypoints.  The suspect's ORB descriptors (and those of its mirror image)
   are looked up with a multi-index hash (six 24-bit chunks of the 256-bit descriptor, sorted arrays +
   ``searchsorted``), verified by full Hamming distance, weighted by how many records a descriptor hits
   (generic corners such as label text count little), and voted per record into (rotation, scale) bins: a
   record's score is its best bin, i.e. matches that agree on one similarity transform.

Cost: memory ~1.5 KB per record (100k records: ~150 MB incl. lookup tables); one query is ~20-40 ms at 100k
records on one core (see ``bench/trace_bench.py``).  Beyond ~1M records: keep the hash channel (PDQ is built
for FAISS ``IndexBinaryFlat``/``IndexBinaryMultiHash``, and a multi-index hash over the 256-bit PDQ with
radius 31 is exact), shard the sketch tables by record-id prefix across processes or move them to a FAISS
binary IVF index (or replace the sketch with a learned copy-detection descriptor such as SSCD in an IVF-PQ
index); the per-suspect verification cost stays constant because only the top-k candidates are loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from pipeline.imaging import hashes
from pipeline.trace import signatures as sg

PDQ_MATCH = 31  # Meta's recommended PDQ match threshold (of 256 bits)
PHASH_MATCH = 10  # common pHash match threshold (of 64 bits)
REFLECTION_PDQ = 64  # a reflected hash variant this close says "mirrored copy" (see Candidate.reflected)
ORB_MAX_DIST = 50  # Hamming distance (of 256) for an ORB descriptor match
ORB_MARGIN = 2  # ... and no more than this above the best match of that query descriptor anywhere
MIH_CHUNKS = (0, 3, 6, 9, 12, 15)  # byte offsets of the 24-bit ORB descriptor chunks that are indexed
MIH_MAX_BUCKET = 64  # chunk values shared by more descriptors than this are stop-words (flat-area corners)
QUERY_ORB = 1000  # ORB keypoints detected on the suspect's 512 px frame (per orientation)
QUERY_ORB_FINE = 3000  # ... and on its finer frame (screenshots: page text must not use up the budget)
QUERY_FINE_SIDE = 1024  # second, finer query pyramid for suspects larger than the 512 px search frame
ANGLE_BINS = 12
HASH_DECISIVE = 16  # a PDQ distance this small (full picture or trimmed content) skips the ORB sketch
SKETCH_DECISIVE = 10.0  # an unmirrored sketch vote this high, twice the runner-up, skips the mirrored pass
CENTRE_BINS = 5  # Hough cells for the predicted record centre: 1/5 of the 512 px frame


@dataclass
class Candidate:
    """One record the suspect may come from, with the evidence that put it on the list."""

    record_id: str
    score: float  # fused ranking score in [0, 1]
    pdq_distance: int  # best PDQ distance over the hash variants (0..256)
    pdq_variant: str  # which comparison gave it, e.g. "full/rot0", "trim/flip", "region80"
    phash_distance: int  # best pHash distance (0..64)
    sketch_score: float  # best (rotation, scale)-consistent ORB vote
    sketch_mirrored: bool = False  # that vote came from the mirror image of the suspect
    distances: dict[str, int] = field(default_factory=dict)

    @property
    def hash_match(self) -> bool:
        return self.pdq_distance <= PDQ_MATCH or self.phash_distance <= PHASH_MATCH

    @property
    def reflected(self) -> bool:
        """The search saw a mirror image: the ORB vote came from the mirrored suspect, or the best hash comparison
        was a reflection (a left-right mirror, an upside-down flip, a transpose) at a distance closer than
        unrelated pictures come (~128 of 256 bits; the best of 8 variants of an unrelated picture is a
        reflection half the time, and each costs a mirrored registration)."""
        return self.sketch_mirrored or (self.pdq_variant.rsplit("/", 1)[-1] in _REFLECTIONS
                                        and self.pdq_distance <= REFLECTION_PDQ)


@dataclass
class QuerySignature:
    """What the search needs from a suspect image (computed once, reused for every lookup)."""

    pdq_dihedral: np.ndarray  # (8, 32) packed
    pdq_quality: int
    trim_dihedral: np.ndarray  # (8, 32)
    regions: np.ndarray  # (2 * len(REGION_AREAS), 32): each centre region, identity and mirrored
    phash: np.ndarray  # (4, 8): full, full mirrored, trimmed, trimmed mirrored
    frames: tuple[np.ndarray, ...]  # the suspect at 512 px (and at <= 1024 px when larger): ORB is run on these
    size: tuple[int, int]  # suspect width, height
    _orb: dict[tuple[bool, bool], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def orb(self, mirrored: bool, fine: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """ORB descriptors (n, 32) and geometry (n, 4: x, y, angle, level) in the suspect's 512 px frame, of the
        suspect or of its mirror image, from the 512 px frame only or also from the finer frame (computed on
        first use: most suspects are decided without the mirror or the fine frame)."""
        key = (mirrored, fine and len(self.frames) > 1)
        if key not in self._orb:
            self._orb[key] = _query_orb(self.frames if key[1] else self.frames[:1], mirrored)
        return self._orb[key]


# pdqhash's dihedral order (ThreatExchange): identity, rotations, then the four reflections; index 5 is the
# left-right mirror (a horizontally flipped copy), index 4 the upside-down flip.
_DIHEDRAL_NAMES = ("rot0", "rot90", "rot180", "rot270", "flip-vertical", "mirror", "transpose", "anti-transpose")
# the variants that are reflections (a mirrored copy, whatever its rotation): the dihedral four and the regions'
# and surrounds' "/flip"; registering such a copy needs the mirrored suspect's features
_REFLECTIONS = frozenset(_DIHEDRAL_NAMES[4:]) | {"flip"}
_MIRROR = 5


def query_signature(rgb: np.ndarray) -> QuerySignature:
    """Hashes and ORB features of a suspect image (H x W x 3 uint8 RGB)."""
    small = hashes.downscale(rgb, sg.SEARCH_SIDE)
    mirror = np.ascontiguousarray(small[:, ::-1])
    tx0, ty0, tx1, ty1 = sg.content_box_fast(small)
    trimmed = np.ascontiguousarray(small[ty0:ty1, tx0:tx1])
    dihedral, quality = hashes.pdq_dihedral(small)
    regions = []
    for area in sg.REGION_AREAS:
        regions.append(np.frombuffer(hashes.pdq(sg.centre_region(small, area))[0], np.uint8))
        regions.append(np.frombuffer(hashes.pdq(sg.centre_region(mirror, area))[0], np.uint8))
    phash = np.stack([np.frombuffer(hashes.phash(im), np.uint8)
                      for im in (small, mirror, trimmed, np.ascontiguousarray(trimmed[:, ::-1]))])
    big = hashes.downscale(rgb, QUERY_FINE_SIDE) if max(rgb.shape[:2]) > sg.SEARCH_SIDE * 1.25 else None
    return QuerySignature(
        pdq_dihedral=dihedral, pdq_quality=quality, trim_dihedral=hashes.pdq_dihedral(trimmed)[0],
        regions=np.stack(regions), phash=phash, frames=(small,) if big is None else (small, big),
        size=(rgb.shape[1], rgb.shape[0]),
    )


def _query_orb(frames: tuple[np.ndarray, ...], mirrored: bool) -> tuple[np.ndarray, np.ndarray]:
    """ORB of the suspect's frames, every keypoint expressed in the suspect's 512 frame (long side SEARCH_SIDE):
    position in that frame's pixels, pyramid level shifted so that ORB_SCALE ** level is its size there."""
    parts_d, parts_g = [], []
    for i, img in enumerate(frames):
        img = np.ascontiguousarray(img[:, ::-1]) if mirrored else img
        n = QUERY_ORB if i == 0 else (QUERY_ORB_FINE if not mirrored else QUERY_ORB)
        d, g = sg.orb_features(sg.to_gray(img), n)
        f = max(img.shape[:2]) / sg.SEARCH_SIDE
        g[:, :2] /= f
        g[:, 3] -= np.log(f) / np.log(sg.ORB_SCALE)
        parts_d.append(d)
        parts_g.append(g)
    return np.concatenate(parts_d), np.concatenate(parts_g)


def _clear_winner(scores: np.ndarray) -> bool:
    if len(scores) == 0:
        return False
    top2 = np.partition(scores, -2)[-2:] if len(scores) > 1 else np.array([0.0, scores[0]])
    return bool(top2[1] >= SKETCH_DECISIVE and top2[1] >= 2 * top2[0])


def _words(packed: np.ndarray) -> np.ndarray:
    """(..., 32) or (..., 8) uint8 -> (..., 4) or (..., 1) uint64 (for XOR + popcount)."""
    a = np.ascontiguousarray(packed, dtype=np.uint8)
    return a.view(np.uint64)


def _chunks(desc: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 ORB descriptors -> (n, len(MIH_CHUNKS)) uint32 24-bit chunk values."""
    d = np.ascontiguousarray(desc, dtype=np.uint8).astype(np.uint32)
    return np.stack([d[:, o] | (d[:, o + 1] << 8) | (d[:, o + 2] << 16) for o in MIH_CHUNKS], axis=1)


def _hamming(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    """q: (m, W) uint64, db: (W, N) uint64 (word-major, each word a contiguous row) -> (m, N) distances.

    Word by word (XOR + popcount + add on contiguous rows) rather than ``.sum(axis=1)`` over (N, W): the
    short-axis reduction is the slow part in numpy.
    """
    out = np.empty((q.shape[0], db.shape[1]), np.uint16)
    for i in range(q.shape[0]):
        acc = np.bitwise_count(db[0] ^ q[i, 0]).astype(np.uint16)
        for w in range(1, db.shape[0]):
            acc += np.bitwise_count(db[w] ^ q[i, w])
        out[i] = acc
    return out


class TraceIndex:
    """In-memory candidate index over the search keys of every record of a ledger."""

    def __init__(self, record_ids: list[str], table: np.ndarray) -> None:
        self.record_ids = record_ids
        n = len(record_ids)
        self.n = n
        self.width = table["width"].astype(np.int64)
        self.height = table["height"].astype(np.int64)
        self.quality = table["pdq_quality"].astype(np.int64)
        self.pdq = np.ascontiguousarray(_words(table["pdq"]).T)  # (4, N): word-major for _hamming
        self.pdq_trim = np.ascontiguousarray(_words(table["pdq_trim"]).T)
        self.pdq_regions = np.ascontiguousarray(_words(table["pdq_regions"]).transpose(1, 2, 0))  # (R, 4, N)
        self.phash = _words(table["phash"])[:, 0]
        self.phash_trim = _words(table["phash_trim"])[:, 0]
        # ORB sketch, flattened over (record, slot), invalid slots dropped
        k = sg.SKETCH_K
        valid = (np.arange(k)[None, :] < table["n_sketch"][:, None]).ravel()
        self.sk_owner = np.repeat(np.arange(n, dtype=np.int32), k)[valid]
        self.sk_desc = np.ascontiguousarray(table["sketch_desc"].reshape(n * k, 32)[valid])
        geo = table["sketch_geo"].reshape(n * k, 4)[valid]
        self.sk_angle = geo[:, 2].astype(np.float32) * (360.0 / 256)
        # positions and levels in each record's 512 frame (long side SEARCH_SIDE), like the query's
        w512 = self.width * sg.SEARCH_SIDE / np.maximum(1, np.maximum(self.width, self.height))
        h512 = self.height * sg.SEARCH_SIDE / np.maximum(1, np.maximum(self.width, self.height))
        f_rec = np.minimum(1.0, np.maximum(self.width, self.height) / sg.SEARCH_SIDE)
        owner_w, owner_h = w512[self.sk_owner], h512[self.sk_owner]
        self.sk_xy = np.stack([geo[:, 0] / 255.0 * owner_w, geo[:, 1] / 255.0 * owner_h], axis=1).astype(np.float32)
        self.sk_centre = np.stack([owner_w / 2, owner_h / 2], axis=1).astype(np.float32)
        self.sk_level = (geo[:, 3] - np.log(f_rec[self.sk_owner]) / np.log(sg.ORB_SCALE)).astype(np.float32)
        self.sk_words = _words(self.sk_desc)  # (M, 4)
        chunks = _chunks(self.sk_desc)  # (M, len(MIH_CHUNKS)) uint32
        self.mih: list[tuple[np.ndarray, np.ndarray]] = []
        for c in range(chunks.shape[1]):
            vals = chunks[:, c]
            perm = np.argsort(vals, kind="stable").astype(np.int32)
            self.mih.append((vals[perm], perm))

    # ---------------------------------------------------------------- construction
    @classmethod
    def build(cls, items: Iterable[tuple[str, bytes]]) -> TraceIndex:
        """From ``(record_id, search_keys)`` pairs (e.g. ``ledger.iter_search_keys()``); bad blobs are skipped."""
        ids: list[str] = []
        blobs: list[bytes] = []
        for rid, blob in items:
            if len(blob) == sg.SEARCH_KEYS_SIZE and blob[:4] == sg.SEARCH_MAGIC:
                ids.append(rid)
                blobs.append(bytes(blob))
        table = np.frombuffer(b"".join(blobs), sg.SEARCH_DTYPE) if blobs else np.zeros(0, sg.SEARCH_DTYPE)
        return cls(ids, table)

    def __len__(self) -> int:
        return self.n

    # ---------------------------------------------------------------- hash channel
    def hash_distances(self, q: QuerySignature) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per comparison kind: (best distance per record, the (variants, N) distance matrix).

        The best variant of a record is ``matrix[:, i].argmin()``, computed only for the records picked:
        an argmin over axis 0 of the whole matrix costs more than all the Hamming distances together."""
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        d = _hamming(_words(q.pdq_dihedral), self.pdq)
        out["full"] = (d.min(axis=0), d)
        d = _hamming(_words(q.trim_dihedral), self.pdq_trim)
        out["trim"] = (d.min(axis=0), d)
        # suspect = a centred crop of the record: suspect (identity, mirrored) vs the record's centre regions
        qfull = _words(q.pdq_dihedral[[0, _MIRROR]])
        parts = [_hamming(qfull, self.pdq_regions[r]) for r in range(self.pdq_regions.shape[0])]
        d = np.concatenate(parts)
        out["region"] = (d.min(axis=0), d)
        # suspect = the record with extra surround: the suspect's centre regions vs the record
        d = _hamming(_words(q.regions), self.pdq)
        out["surround"] = (d.min(axis=0), d)
        ph = _words(q.phash)[:, 0]
        dp = np.minimum(
            np.bitwise_count(self.phash[None, :] ^ ph[:2, None]).min(axis=0),
            np.bitwise_count(self.phash_trim[None, :] ^ ph[2:, None]).min(axis=0),
        ).astype(np.uint16)
        out["phash"] = (dp, dp[None, :])
        return out

    # ---------------------------------------------------------------- sketch channel
    def sketch_scores(self, q: QuerySignature) -> np.ndarray:
        """Per record: the largest (rotation, scale)-consistent, specificity-weighted ORB vote."""
        return self.sketch_votes(q)[0]

    def sketch_votes(self, q: QuerySignature) -> tuple[np.ndarray, np.ndarray]:
        """Per record: the best vote and whether it came from the mirrored suspect."""
        scores = np.zeros(self.n, np.float32)
        mirrored_best = np.zeros(self.n, bool)
        if not len(self.sk_desc):
            return scores, mirrored_best
        passes = [(False, False), (False, True), (True, False), (True, True)]
        if len(q.frames) == 1:
            passes = [(False, False), (True, False)]
        for n_pass, (mirrored, fine) in enumerate(passes):
            if n_pass and _clear_winner(scores):
                break  # decided: the finer frame or the mirror image (a flipped copy) cannot change the result
            desc, geo = q.orb(mirrored, fine)
            if not len(desc):
                continue
            qi, di = self._mih_pairs(desc)
            if not len(qi):
                continue
            dist = np.bitwise_count(_words(desc)[qi] ^ self.sk_words[di]).sum(axis=1).astype(np.int64)
            # a Lowe-style distinctiveness test: keep matches within ORB_MARGIN of the query's best match
            near = dist <= ORB_MAX_DIST
            qi, di, dist = qi[near], di[near], dist[near]
            if not len(qi):
                continue
            key = qi * 512 + dist  # per query descriptor, its best distance: the first of its sorted run
            key.sort()
            head = np.flatnonzero(np.r_[True, key[1:] // 512 != key[:-1] // 512])
            best_d = np.full(len(desc), 1 << 16, np.int64)
            best_d[key[head] // 512] = key[head] % 512
            ok = dist <= best_d[qi] + ORB_MARGIN
            qi, di = qi[ok], di[ok]
            if not len(qi):
                continue
            # one-to-one: each record keypoint keeps its closest query descriptor (repeated texture such as
            # stripes would otherwise let one record keypoint collect dozens of votes) ...
            order = np.lexsort((dist[ok], di))
            qi, di = qi[order], di[order]
            first = np.r_[True, di[1:] != di[:-1]]
            qi, di = qi[first], di[first]
            rec = self.sk_owner[di]
            # ... and each query descriptor votes once per record, weighted by 1 / number of records it hits
            pair = np.unique(qi.astype(np.int64) * self.n + rec, return_index=True)[1]
            qi, di, rec = qi[pair], di[pair], rec[pair]
            hits = np.bincount(qi, minlength=len(desc))[qi]
            weight = 1.0 / hits
            # Hough voting (Lowe 2004): each match predicts the rotation, the scale and where the record's
            # centre falls in the suspect; a record scores the weight of its largest consistent cluster
            dang = (geo[qi, 2] - self.sk_angle[di]) % 360.0
            dlev = geo[qi, 3] - self.sk_level[di]
            scale = np.power(sg.ORB_SCALE, dlev)
            th = np.deg2rad(dang)
            v = self.sk_centre[di] - self.sk_xy[di]
            cx = geo[qi, 0] + scale * (np.cos(th) * v[:, 0] - np.sin(th) * v[:, 1])
            cy = geo[qi, 1] + scale * (np.sin(th) * v[:, 0] + np.cos(th) * v[:, 1])
            abin = np.floor(dang / (360.0 / ANGLE_BINS)).astype(np.int64)
            lbin = np.floor(dlev + 8).astype(np.int64).clip(0, 16)
            cell = sg.SEARCH_SIDE / CENTRE_BINS
            xbin = np.floor(cx / cell + CENTRE_BINS).astype(np.int64).clip(0, 3 * CENTRE_BINS)
            ybin = np.floor(cy / cell + CENTRE_BINS).astype(np.int64).clip(0, 3 * CENTRE_BINS)
            nb = 3 * CENTRE_BINS + 2
            rec64 = rec.astype(np.int64)
            keys, ws = [], []
            for da in (0, 1):  # soft binning: every vote goes to the 2 x 2 x 2 x 2 neighbouring cells
                for dl in (0, 1):
                    for dx in (0, 1):
                        for dy in (0, 1):
                            k = (((rec64 * ANGLE_BINS + (abin + da) % ANGLE_BINS) * 18 + lbin + dl) * nb
                                 + xbin + dx) * nb + ybin + dy
                            keys.append(k)
                            ws.append(weight)
            allk = np.concatenate(keys)
            uniq, inv = np.unique(allk, return_inverse=True)
            sums = np.bincount(inv, weights=np.concatenate(ws))
            owner = uniq // (ANGLE_BINS * 18 * nb * nb)  # sorted, so each record is one segment
            seg = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            best = np.zeros(self.n, np.float64)
            best[owner[seg]] = np.maximum.reduceat(sums, seg)
            if mirrored:
                mirrored_best |= best > scores
            scores = np.maximum(scores, best.astype(np.float32))
        return scores, mirrored_best

    def _mih_pairs(self, desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidate (query index, sketch index) pairs sharing at least one indexed 24-bit chunk exactly.

        Multi-index hashing (Norouzi et al.) with exact chunk lookups by binary search in sorted arrays; a pair
        may come out more than once (one per shared chunk), which the voting tolerates.
        """
        chunks = _chunks(desc)
        qs, ds = [], []
        for c, (vals, perm) in enumerate(self.mih):
            order = np.argsort(chunks[:, c], kind="stable")  # sorted needles: cache-friendly binary searches
            qv = chunks[order, c]
            lo = np.searchsorted(vals, qv, "left")
            cnt = np.searchsorted(vals, qv, "right") - lo
            cnt[cnt > MIH_MAX_BUCKET] = 0
            total = int(cnt.sum())
            if not total:
                continue
            starts = np.repeat(lo, cnt)
            offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            ds.append(perm[starts + offs])
            qs.append(np.repeat(order, cnt))
        if not qs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(qs).astype(np.int64), np.concatenate(ds).astype(np.int64)

    # ---------------------------------------------------------------- fused search
    def search(self, q: QuerySignature, k: int = 16) -> list[Candidate]:
        """Top-``k`` candidates: the best by hash distance and the best by sketch vote, merged."""
        if self.n == 0:
            return []
        hd = self.hash_distances(q)
        kinds = ("full", "trim", "region", "surround")
        stack = np.stack([hd[kind][0] for kind in kinds])  # (4, N)
        pdq_best = stack.min(axis=0).astype(np.int64)
        phash_best = hd["phash"][0].astype(np.int64)
        if min(int(hd["full"][0].min()), int(hd["trim"][0].min())) <= HASH_DECISIVE:
            # a near-identical global hash: re-encoded/resized/flipped copy; local features add nothing
            sketch, sketch_mirrored = np.zeros(self.n, np.float32), np.zeros(self.n, bool)
        else:
            sketch, sketch_mirrored = self.sketch_votes(q)
        # scores in [0, 1]: hash similarity (PDQ 0 -> 1, >= 96 -> 0; pHash 0 -> 1, >= 24 -> 0); sketch votes
        hash_sim = np.maximum(np.clip((96 - pdq_best) / 96, 0, 1), np.clip((24 - phash_best) / 24, 0, 1))
        sketch_sim = sketch / (sketch + 4.0)
        fused = np.maximum(hash_sim, sketch_sim)
        pick: list[int] = []
        kh = max(1, k // 3)
        for order in (np.argsort(-hash_sim, kind="stable")[:kh], np.argsort(-sketch_sim, kind="stable")[:k],
                      np.argsort(-fused, kind="stable")[:k]):
            for i in order:
                if int(i) not in pick and len(pick) < k:
                    pick.append(int(i))
        pick.sort(key=lambda i: -fused[i])
        out = []
        for i in pick:
            kind = kinds[int(stack[:, i].argmin())]
            variant = int(hd[kind][1][:, i].argmin())
            if kind in ("full", "trim"):
                label = f"{kind}/{_DIHEDRAL_NAMES[variant]}"
            elif kind == "region":
                label = f"region{round(sg.REGION_AREAS[variant // 2] * 100)}" + ("/flip" if variant % 2 else "")
            else:
                label = f"surround{round(sg.REGION_AREAS[variant // 2] * 100)}" + ("/flip" if variant % 2 else "")
            out.append(Candidate(
                record_id=self.record_ids[i], score=float(fused[i]), pdq_distance=int(pdq_best[i]),
                pdq_variant=label, phash_distance=int(phash_best[i]), sketch_score=float(sketch[i]),
                sketch_mirrored=bool(sketch_mirrored[i]),
                distances={kind_: int(hd[kind_][0][i]) for kind_ in (*kinds, "phash")},
            ))
        return out
