"""Trace benchmark: candidate search and full single-suspect trace latency over a synthetic 100k-record ledger.

    python bench/trace_bench.py [--records 100000] [--suspects 40] [--bases 200]
    python bench/trace_bench.py --calibrate [--products 120]
    python bench/trace_bench.py --cost [--presets aliexpress,amazon,shopify]

The synthetic ledger is realistic in what the index sees: real trace data (``tests.synthetic.trace_blobs``) of ``--bases``
product shots on white and photos, and from them ``--records`` distinct records whose hashes and ORB sketch
have the same bit statistics (each bit of a base hash flipped with p = 0.35, each ORB descriptor bit with
p = 0.2 — far enough that no synthetic record is a near-duplicate of its base, so they are distractors, close
enough that white-background bit patterns and descriptor structure stay).  Distractor candidates get their
base's real registration features, so verification does real work.  The traced suspects are attacked copies
of real target exports, watermarked with the invisible watermark.  Everything runs on one core
(``cv2.setNumThreads(1)``, BLAS threads 1).

``--calibrate`` measures the verdict's registration false-match calibration: attacked copies of products
registered against *other* products of the same shape, label layout and fonts (the hardest negatives we can
make), reporting how many pairs were tried, how many would have been accepted, and the score margins, plus
the share of attacked copies not traced (MISS_RATE).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.keys import OwnerKey  # noqa: E402
from pipeline.trace import candidates as cd  # noqa: E402
from pipeline.trace import index as ix  # noqa: E402
from pipeline.trace import signatures as sg  # noqa: E402
from pipeline.trace import verdict as vd  # noqa: E402
from pipeline.trace.register import SuspectFeatures, register  # noqa: E402
from pipeline.trace.tracer import Tracer  # noqa: E402
from tests import synthetic  # noqa: E402
from tests.synthetic import MemoryStore  # noqa: E402

cv2.setNumThreads(1)


def _pct(xs: list[float]) -> str:
    a = np.array(xs) * 1000
    return f"p50 {np.percentile(a, 50):7.1f} ms   p95 {np.percentile(a, 95):7.1f} ms   p99 {np.percentile(a, 99):7.1f} ms"


def _flip_bits(rng: np.random.Generator, packed: np.ndarray, p: float) -> np.ndarray:
    bits = np.unpackbits(packed, axis=-1)
    bits ^= (rng.random(bits.shape) < p).astype(np.uint8)
    return np.packbits(bits, axis=-1)


def synthetic_keys(base: list[bytes], n: int, seed: int = 0) -> list[bytes]:
    """``n`` distinct search-key blobs with the bit statistics of the ``base`` blobs (see the module docstring)."""
    rng = np.random.default_rng(seed)
    table = np.frombuffer(b"".join(base), sg.SEARCH_DTYPE)
    pick = rng.integers(0, len(table), n)
    out = table[pick].copy()
    for name in ("pdq", "pdq_trim", "phash", "phash_trim"):
        out[name] = _flip_bits(rng, out[name], 0.35)
    out["pdq_regions"] = _flip_bits(rng, out["pdq_regions"], 0.35)
    out["sketch_desc"] = _flip_bits(rng, out["sketch_desc"], 0.2)
    geo = out["sketch_geo"].astype(np.int16)
    geo[..., :2] += rng.integers(-20, 21, geo[..., :2].shape, dtype=np.int16)
    geo[..., 2] += rng.integers(-40, 41, geo[..., 2].shape, dtype=np.int16)
    out["sketch_geo"][..., :2] = np.clip(geo[..., :2], 0, 255)
    out["sketch_geo"][..., 2] = geo[..., 2] % 256
    return [r.tobytes() for r in out]


def base_images(n: int) -> list[np.ndarray]:
    import skimage.data

    photos = [np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
              for name in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")]
    return photos + [synthetic.product_shot(10_000 + i, (800, 800)) for i in range(max(0, n - len(photos)))]


def bench(records: int, n_suspects: int, n_bases: int) -> None:
    key = OwnerKey(bytes(range(32)))
    from pipeline import invisible

    t0 = time.perf_counter()
    bases = base_images(n_bases)
    base_blobs = [synthetic.trace_blobs(im) for im in bases]
    print(f"base trace data: {len(bases)} in {time.perf_counter() - t0:.1f} s "
          f"({(time.perf_counter() - t0) / len(bases) * 1000:.0f} ms per 800 px photo with one export)")
    sizes_k = [len(k) for k, _f in base_blobs]
    sizes_f = [len(f) for _k, f in base_blobs]
    print(f"search keys {sizes_k[0]} B per record; features median {int(np.median(sizes_f))} B, max {max(sizes_f)} B")

    store = MemoryStore()
    t0 = time.perf_counter()
    keys = synthetic_keys([k for k, _f in base_blobs], records)
    for i, blob in enumerate(keys):
        b = i % len(base_blobs)
        h, w = bases[b].shape[:2]
        store.records[f"syn{i}"] = {"record_id": f"syn{i}", "payload": f"{i:010x}", "sku": f"S{i}",
                                    "preset": "bench", "source": f"syn/{i}.jpg", "output": f"out/{i}.jpg",
                                    "extra": {"frame": synthetic.identity_frame(w, h)}}
        store.traces[f"syn{i}"] = (blob, base_blobs[b][1])
    targets = []
    for j in range(max(4, n_suspects // 4)):
        im = synthetic.product_shot(50_000 + j, (800, 800))
        payload = 0x5A00000000 + j
        marked = invisible.embed(im, key, payload, None)
        rid = f"target{j}"
        store.add({"record_id": rid, "payload": f"{payload:010x}", "sku": f"T{j}", "preset": "bench",
                   "source": f"targets/{j}.jpg", "output": f"out/t{j}.jpg",
                   "extra": {"frame": synthetic.identity_frame(800, 800)}}, *synthetic.trace_blobs(marked, im))
        targets.append((rid, marked))
    print(f"synthetic ledger: {len(store.traces)} records built in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    tracer = Tracer(store, key)
    idx = tracer.index
    mem = sum(a.nbytes for a in (idx.pdq, idx.pdq_trim, idx.pdq_regions, idx.phash, idx.phash_trim, idx.sk_desc,
                                 idx.sk_owner, idx.sk_angle, idx.sk_level, idx.sk_xy, idx.sk_centre))  # sk_words: a view
    mem += sum(v.nbytes + p.nbytes for v, p in idx.mih)
    print(f"index build: {time.perf_counter() - t0:.2f} s for {len(idx)} records, ~{mem / 2**20:.0f} MiB of arrays")

    names = ["jpeg50", "crop50", "crop80", "hflip", "rot3", "screenshot", "pad20", "thumb30", "chain", "paint_out"]
    suite = synthetic.attack_suite(11)
    suspects = []
    for i in range(n_suspects):
        rid, marked = targets[i % len(targets)]
        name = names[i % len(names)]
        suspects.append((rid, name, suite[name](marked)))

    q_times, s_times, t_times = [], [], []
    top1 = topk = correct = 0
    stages: dict[str, list[float]] = {}
    for rid, _name, im in suspects:
        t = time.perf_counter()
        q = ix.query_signature(im)
        t1 = time.perf_counter()
        cands = idx.search(q, k=tracer.k)
        t2 = time.perf_counter()
        q_times.append(t1 - t)
        s_times.append(t2 - t1)
        ids = [c.record_id for c in cands]
        top1 += bool(ids and ids[0] == rid)
        topk += rid in ids
    for rid, _name, im in suspects:
        t = time.perf_counter()
        res = tracer.trace_image(im)
        t_times.append(time.perf_counter() - t)
        correct += res.verdict.verdict == "match" and res.verdict.record_id == rid
        for k, v in res.timings.items():
            stages.setdefault(k, []).append(v)
    n = len(suspects)
    print(f"\n{len(idx)} records, {n} attacked suspects ({', '.join(names)}), one core:")
    print(f"  query features (suspect hashes + ORB) {_pct(q_times)}")
    print(f"  candidate search (index lookup)      {_pct(s_times)}")
    print(f"  search total                         {_pct([a + b for a, b in zip(q_times, s_times, strict=True)])}")
    print(f"  full trace (one suspect)             {_pct(t_times)}")
    for k in ("search", "register", "watermark"):
        if k in stages:
            print(f"    stage {k:10s}                     {_pct(stages[k])}")
    print(f"  right record in top-1 {top1}/{n}, in top-{tracer.k} {topk}/{n}; verdict 'match' on the right "
          f"record {correct}/{n}")


def calibrate(n_products: int) -> None:
    """Hard-negative registration calibration (see the module docstring)."""
    suite = synthetic.attack_suite(13)
    names = ["jpeg50", "resize50", "thumb30", "crop80", "crop50", "hflip", "rot3", "screenshot", "banner",
             "bright_contrast", "blur_noise", "chain", "paint_out", "aspect15", "pad20", "letterbox"]
    ims = [synthetic.product_shot(i, (640, 640)) for i in range(n_products)]
    blobs = [synthetic.trace_blobs(im) for im in ims]
    sigs = [sg.export_trace(k, f, sg.Frame.identity(640, 640)) for k, f in blobs]
    index = ix.TraceIndex.build((str(i), k) for i, (k, _f) in enumerate(blobs))
    pos: list[tuple[float, float]] = []
    tiers: dict[str, int] = {}
    missed = 0
    neg_pairs = 0
    neg_accept = 0
    neg_scores: list[tuple[float, float, int]] = []
    for i, im in enumerate(ims):
        for name in names[i % 4::4]:  # a quarter of the attacks per product, rotating
            q = suite[name](im)
            hd = index.hash_distances(ix.query_signature(q))
            pdq = np.min(np.stack([hd[k][0] for k in ("full", "trim", "region", "surround")]), axis=0)
            f = SuspectFeatures.compute(q)
            r = register(f, sigs[i])
            tier = cd.registration_tier(r, int(pdq[i]))
            tiers[tier] = tiers.get(tier, 0) + 1
            missed += tier not in ("strong", "corroborated")
            pos.append((r.ncc, r.ncc_grey))
            # negatives: every other product of the same shape (same silhouette, label layout, fonts) + 2 others
            others = [j for j in range(i % 6, n_products, 6) if j != i][:6] + [(i + 1) % n_products,
                                                                               (i + 7) % n_products]
            for j in others:
                rn = register(f, sigs[j])
                neg_pairs += 1
                neg_tier = cd.registration_tier(rn, int(pdq[j]))
                neg_accept += neg_tier in ("strong", "corroborated")
                if rn.ok:
                    neg_scores.append((rn.ncc, rn.ncc_grey, rn.inliers))
    print(f"positive tiers: {tiers}")
    pos_arr = np.array(pos)
    print(f"positives: {len(pos)} attacked copies, not verified: {missed} "
          f"(miss rate {missed / len(pos):.4f}); colour NCC min {pos_arr[:, 0].min():.3f}, grey min "
          f"{pos_arr[:, 1].min():.3f}")
    if neg_scores:
        ns = np.array(neg_scores)
        print(f"negatives: {neg_pairs} registrations against other products, accepted {neg_accept}; "
              f"of {len(ns)} geometrically valid: colour NCC max {ns[:, 0].max():.3f}, grey max {ns[:, 1].max():.3f}, "
              f"inliers max {int(ns[:, 2].max())}")
    print(f"rule of three: false-match rate < {3 / max(1, neg_pairs):.2e} at 95 % confidence "
          f"(verdict.REG_CAL_PAIRS = {vd.REG_CAL_PAIRS})")


def cost(preset_names: list[str]) -> None:
    """CPU cost of the trace data of a run: ``photo_features`` once per photo (the upright photo at the working
    resolution of the largest preset, as the runner decodes it) and ``export_search_keys`` per export (with its
    512 px downscale; the export's own PDQ/pHash, which the runner computes anyway, are not counted)."""
    from pipeline.imaging import hashes
    from pipeline.presets import load_preset
    from pipeline.stages.ingest import load_rgb, plan_geometry

    samples = Path(__file__).resolve().parents[1] / "sample_images"
    files = sorted(p for p in samples.rglob("*") if p.suffix.lower() in {".jpg", ".png", ".webp"})
    specs = [load_preset(n).canvas for n in preset_names]
    per_photo, per_export, sizes = [], [], []
    for f in files:
        photo, _ = load_rgb(f)
        side = max(max(plan_geometry(photo.shape[1], photo.shape[0], sp).scaled) for sp in specs)
        photo = hashes.downscale(photo, side)
        t = time.process_time()
        blob = sg.photo_features(photo)
        per_photo.append(time.process_time() - t)
        sizes.append(len(blob))
        for sp in specs:
            canvas, _frame = synthetic.place_photo(photo, sp)
            small = hashes.downscale(canvas, hashes.HASH_SIDE)  # the runner's, not counted
            pdq, q = hashes.pdq(small)
            ph = hashes.phash(small)
            t2 = time.process_time()
            sg.export_search_keys(small, width=canvas.shape[1], height=canvas.shape[0], pdq=pdq, pdq_quality=q,
                                  phash=ph)
            per_export.append(time.process_time() - t2)
    print(f"{len(files)} photos ({', '.join(preset_names)}), CPU time on one core:")
    print(f"  photo_features       median {np.median(per_photo) * 1000:6.1f} ms  max {max(per_photo) * 1000:6.1f} ms"
          f"  ({int(np.median(sizes))} B per photo)")
    print(f"  export_search_keys   median {np.median(per_export) * 1000:6.1f} ms  max {max(per_export) * 1000:6.1f} ms"
          " per export (plus the runner's 512 px downscale + PDQ)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--suspects", type=int, default=40)
    ap.add_argument("--bases", type=int, default=200)
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--products", type=int, default=120)
    ap.add_argument("--cost", action="store_true", help="CPU cost of the trace data per photo and per export")
    ap.add_argument("--presets", default="aliexpress,amazon,shopify")
    args = ap.parse_args()
    if args.cost:
        cost(args.presets.split(","))
    elif args.calibrate:
        calibrate(args.products)
    else:
        bench(args.records, args.suspects, args.bases)


if __name__ == "__main__":
    main()
