"""Robustness benchmark of the invisible watermark and trace against two attack suites, next to `invisible-watermark`.

For every image of the sample catalog (``sample_images/``, or scikit-image photos if it is absent) and a set of
generated product shots on pure white, a 40-bit payload is embedded with catalogmark's keyed watermark (and with
``invisible-watermark``'s dwtDct and dwtDctSvd methods). The marked images are recorded, with their trace data,
in a real ledger in a temporary folder, beside 24 unrelated distractor exports. Every attack of the in-house
suite (``tests/attacks.py``) and of AugLy's image augmentations (``bench/augly_suite.py``) is applied, and per
attack the bench prints the exact-payload recovery of:

- the blind read (``pipeline.invisible.read``, no hint);
- the informed read: the suspect registered against its original export with trace's own registration
  (``pipeline.trace.register``) and read with that hint, else blind, as trace reads a registered copy;
- tested: the informed read, or, when it and the blind read miss, the test of the export's own payload in the
  registered copy (``pipeline.trace.marktest``: are its chips there, z >= DETECT_Z), as trace tests;
- trace: the real ``pipeline.trace`` Tracer over that ledger names the right record (and how often it named
  another one);
- the baseline's blind reads.

Also printed: a summary per suite, PSNR / SSIM of the marked images, catalogmark's false-positive counts on
unmarked pictures and on pictures marked with another key (with the analytic bound), trace on unrelated product
shots, and embed/read timings (single OpenCV thread).

    python bench/robustness.py [--quick] [--speed] [--jobs N] [--attacks a,b,...] [--augly augly:x,...|none]

``--quick``: 3 catalog images, 2 product shots and every attack; ``--speed``: only the timing section. The extra
packages: ``pip install -r bench/requirements-robustness.txt`` (AugLy among them) and
``pip install --no-deps invisible-watermark`` (its metadata requires torch, which dwtDct/dwtDctSvd never use);
``make robustness`` does both. Without AugLy only the in-house suite is measured, without invisible-watermark only
catalogmark's columns are printed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import multiprocessing
import os
import sys
import tempfile
import time
import types
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import invisible  # noqa: E402
from pipeline.keys import OwnerKey  # noqa: E402
from pipeline.models import PAYLOAD_BITS  # noqa: E402
from tests.attacks import ATTACKS  # noqa: E402

KEY = OwnerKey(bytes(range(32)))
OTHER = OwnerKey(bytes(range(100, 132)))
MAX_SIDE = 2000  # canvases are at most this long (presets' range is 800-2600)


# ------------------------------------------------------------------------------------------------ images


def _flatten(im: Image.Image) -> np.ndarray:
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[:2]
    if max(h, w) > MAX_SIDE:
        f = MAX_SIDE / max(h, w)
        rgb = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def catalog_images(limit: int | None) -> list[tuple[str, np.ndarray]]:
    files = sorted(p for p in (ROOT / "sample_images").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    out = []
    for p in files[:limit]:
        with Image.open(p) as im:
            out.append((str(p.relative_to(ROOT / "sample_images")), _flatten(im)))
    if not out:  # no sample catalog: scikit-image's bundled photos
        from skimage import data

        for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")[:limit]:
            rgb = np.ascontiguousarray(getattr(data, name)()[..., :3])
            h, w = rgb.shape[:2]
            f = 1200 / max(h, w)
            out.append((f"skimage:{name}", cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)))
    return out


def product_shots(n: int) -> list[tuple[str, np.ndarray]]:
    """Generated product shots on pure white (the trace module's generator), sizes across the presets' range."""
    from tests.synthetic import product_shot

    sizes = [800, 1000, 1200, 1600, 2000, 900, 1400, 1800]
    return [(f"shot{i}_{sizes[i % len(sizes)]}", product_shot(100 + i, (sizes[i % len(sizes)],) * 2)) for i in range(n)]


def white_mask(rgb: np.ndarray) -> np.ndarray | None:
    """Pure-white roles keep their white pixels: the mask is "not exactly white" when the picture has a white
    background (more than 20 % of pure white pixels), else None (the whole canvas may change)."""
    white = np.all(rgb == 255, axis=2)
    return ~white if white.mean() > 0.2 else None


# ------------------------------------------------------------------------------------------------ methods


def _imwatermark() -> types.ModuleType | None:
    """The invisible-watermark package without its torch-only RivaGAN module (dwtDct/dwtDctSvd never use it)."""
    try:
        import pywt  # noqa: F401
    except ImportError:
        return None
    if "imwatermark.rivaGan" not in sys.modules:
        stub = types.ModuleType("imwatermark.rivaGan")

        class RivaWatermark:  # placeholder for the RivaGAN class the package imports at top level
            def __init__(self, *a: object, **k: object) -> None:
                raise RuntimeError("rivaGan needs torch")

        stub.RivaWatermark = RivaWatermark  # type: ignore[attr-defined]
        sys.modules["imwatermark.rivaGan"] = stub
    try:
        return importlib.import_module("imwatermark")
    except ImportError:
        return None


def _bits(payload: int) -> list[int]:
    return [(payload >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)]


class Ours:
    name = "catalogmark"

    def embed(self, rgb: np.ndarray, payload: int, mask: np.ndarray | None) -> np.ndarray:
        return invisible.embed(rgb, KEY, payload, mask)

    def read(self, rgb: np.ndarray, payload: int) -> bool:
        d = invisible.read(rgb, KEY)
        return bool(d.found and d.payload == payload)


class Baseline:
    def __init__(self, method: str) -> None:
        self.method = method
        self.name = method
        self.mod = _imwatermark()

    def embed(self, rgb: np.ndarray, payload: int, mask: np.ndarray | None) -> np.ndarray:
        assert self.mod is not None
        enc = self.mod.WatermarkEncoder()
        enc.set_watermark("bits", _bits(payload))
        bgr = enc.encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), self.method)
        out = cv2.cvtColor(np.clip(bgr, 0, 255).astype(np.uint8), cv2.COLOR_BGR2RGB)
        if mask is not None:  # same rule as ours: pixels outside the mask stay as they were
            out[~mask] = rgb[~mask]
        return out

    def read(self, rgb: np.ndarray, payload: int) -> bool:
        assert self.mod is not None
        try:
            bits = self.mod.WatermarkDecoder("bits", PAYLOAD_BITS).decode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), self.method)
        except Exception:  # too small, degenerate...: a failed read
            return False
        return [int(b) for b in bits] == _bits(payload)


def methods() -> list[Ours | Baseline]:
    out: list[Ours | Baseline] = [Ours()]
    if _imwatermark() is not None and not os.environ.get("ROBUSTNESS_NO_BASELINE"):
        out += [Baseline("dwtDct"), Baseline("dwtDctSvd")]
    return out


# ------------------------------------------------------------------------------------------------ the ledger

OWNER_NAME = "Robustness Bench"
N_DISTRACTORS = 24


def _payload(name: str) -> int:
    return zlib.crc32(name.encode()) & ((1 << PAYLOAD_BITS) - 1)


def _record_id(i: int) -> str:
    return f"bench{i:04d}"


def prepare(task: tuple[str, np.ndarray, bool]) -> dict[str, Any]:
    """One picture marked with our key, with its trace data (search keys of the export, features of the unmarked
    photo: the export is its own photo, identity frame); for a measured picture also its quality and the
    false-positive reads."""
    cv2.setNumThreads(1)
    from tests.synthetic import trace_blobs

    name, rgb, measured = task
    mask = white_mask(rgb)
    payload = _payload(name)
    marked = invisible.embed(rgb, KEY, payload, mask)
    keys, features = trace_blobs(marked, rgb)
    out: dict[str, Any] = {"name": name, "payload": payload, "marked": marked, "keys": keys, "features": features}
    if measured:
        out["quality"] = _psnr_ssim(rgb, marked)
        out["region_quality"] = _psnr_ssim(rgb, marked, mask)
        fp_unmarked = invisible.read(rgb, KEY)  # the unmarked picture read with our key
        fp_other = invisible.read(invisible.embed(rgb, OTHER, payload, mask), KEY)  # marked with another key
        out["fp"] = (fp_unmarked.found, fp_other.found,
                     max(fp_unmarked.false_positive_probability, fp_other.false_positive_probability))
        out["white_kept"] = mask is None or bool(np.all(marked[~mask] == 255))
    return out


def build_ledger(path: Path, prepared: list[dict[str, Any]]) -> str:
    """A real ledger at ``path``: one sealed run holding every prepared export (measured pictures first, then the
    distractors) with its trace data, as a catalogmark run records them. Returns the run's Merkle root."""
    from pipeline.canonical import payload_hex
    from pipeline.ledger import Ledger
    from pipeline.models import Record

    records = []
    for i, p in enumerate(prepared):
        h, w = p["marked"].shape[:2]
        records.append(Record(
            record_id=_record_id(i), job_key=f"job{i}", source=f"bench/{p['name']}", source_sha256=f"{i:064x}",
            sku=f"SKU{i}", role="main", position=1, preset="bench", preset_digest="d" * 64,
            output=f"/bench/out/{i:04d}.png", output_sha256=f"{i:064x}", output_bytes=w * h * 3,
            pixel_sha256=f"{i:064x}", width=w, height=h, format="png", phash="0" * 16, pdq="0" * 64, pdq_quality=100,
            payload=payload_hex(p["payload"]), owner=OWNER_NAME, key_fingerprint="bench", signature="",
            capture={}, visible_mark=None, created_at="2026-01-01T00:00:00Z",
            extra={"frame": {"scaled": [w, h], "offset": [0, 0], "canvas": [w, h], "background": [255, 255, 255]}}))
    ledger = Ledger.open(path)
    try:
        ledger.begin_run("bench-run", {"pipeline": "robustness-bench"})
        ledger.append("bench-run", records)
        ledger.put_traces([(_record_id(i), p["keys"], p["features"]) for i, p in enumerate(prepared)])
        return ledger.finish_run("bench-run", {"processed": len(records)})
    finally:
        ledger.close()


_TRACERS: dict[str, Any] = {}


def _tracer(ledger_path: str) -> Any:
    """The real pipeline.trace Tracer over the bench ledger, built once per worker process."""
    if ledger_path not in _TRACERS:
        from pipeline.ledger import Ledger
        from pipeline.trace.tracer import Tracer

        _TRACERS[ledger_path] = Tracer(Ledger.open(ledger_path), KEY)
    return _TRACERS[ledger_path]


def _export_trace(tracer: Any, record_id: str) -> Any:
    """The export's trace data as trace loads it from the ledger (frame, photo features, search keys)."""
    from pipeline.trace import signatures as sg

    stored = tracer.store.get(record_id)
    keys, features = tracer.store.get_trace(record_id)
    return sg.ExportTrace(frame=sg.frame_of(stored), photo=sg.PhotoFeatures.from_bytes(features),
                          keys=sg.TraceSignature.from_bytes(keys))


# ------------------------------------------------------------------------------------------------ attacks


REMOVAL = ("removal:notch+jpeg90", "removal:notch+scale70+jpeg80", "removal:notch1+jpeg90")


def removal_attacks(payload: int) -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """Removal attempts by a thief who knows this export's pilot tones (tests/collusion.notch_pilots): the pilots
    notched (+-2 FFT bins, or +-1) and the picture re-encoded, or also resized to 70 %."""
    from pipeline.invisible.embedder import export_layout
    from tests.attacks import _encode
    from tests.collusion import notch_pilots

    pilots = export_layout(KEY.subkey("invisible"), payload).pilots

    def scaled(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        return cv2.resize(rgb, (round(w * 0.7), round(h * 0.7)), interpolation=cv2.INTER_AREA)

    return {
        "removal:notch+jpeg90": lambda rgb, seed: _encode(notch_pilots(rgb, pilots), "JPEG", 90),
        "removal:notch+scale70+jpeg80": lambda rgb, seed: _encode(scaled(notch_pilots(rgb, pilots)), "JPEG", 80),
        "removal:notch1+jpeg90": lambda rgb, seed: _encode(notch_pilots(rgb, pilots, 1), "JPEG", 90),
    }


def suite_attacks(suite: str, payload: int = 0) -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """The attacks of one suite by name: "in-house" (tests/attacks.py), "augly" (bench/augly_suite.py) or
    "removal" (removal_attacks, which are made for the export of ``payload``)."""
    if suite == "in-house":
        return dict(ATTACKS)
    if suite == "removal":
        return removal_attacks(payload)
    from bench import augly_suite

    return {name: (lambda rgb, seed, _a=a: _a(rgb)) for name, a in augly_suite.attacks().items()}


def _safe(read: Callable[[], bool]) -> bool:
    try:
        return read()
    except ValueError:  # too small to read (e.g. < 16 px): a miss
        return False


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Every attack of one suite on one marked picture: blind read, informed read (registered against the known
    original export, as trace does), trace against the bench ledger, and the baseline's blind reads."""
    cv2.setNumThreads(1)
    name, payload, record_id = task["name"], task["payload"], task["record_id"]
    rgb, marked = task["rgb"], task["marked"]
    attacks = suite_attacks(task["suite"], payload)
    tracer = _tracer(task["ledger"])
    original = _export_trace(tracer, record_id)
    seed = zlib.crc32(name.encode())
    baselines = [m for m in methods() if isinstance(m, Baseline)]
    base_marked: dict[str, np.ndarray | None] = {}
    for m in baselines:
        try:
            base_marked[m.name] = m.embed(rgb, payload, white_mask(rgb))
        except Exception as exc:  # the baseline refuses small pictures
            print(f"  {m.name} cannot embed {name}: {exc}", file=sys.stderr)
            base_marked[m.name] = None
    rows: dict[str, dict[str, Any]] = {}
    read_ms: list[float] = []
    for a in task["attacks"]:
        try:
            suspect = np.ascontiguousarray(attacks[a](marked, seed))
        except Exception as exc:  # an augmentation that fails on this picture: reported, not counted
            rows[a] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        t0 = time.perf_counter()
        blind = _safe(lambda s=suspect: bool((d := invisible.read(s, KEY)).found and d.payload == payload))
        read_ms.append((time.perf_counter() - t0) * 1e3)
        res = tracer.trace_image(suspect, name=f"{name}:{a}")
        v = res.verdict
        traced = v.verdict == "match" and v.record_id == record_id
        wrong = v.verdict == "match" and v.record_id != record_id
        registered, informed, tested = _informed(suspect, res.evidence if traced else None, original, payload,
                                                 blind)
        pc = v.signals.pilots if traced else None
        row: dict[str, Any] = {"blind": blind, "informed": informed, "tested": tested, "registered": registered, "trace": traced,
                               "wrong": wrong, "named": v.record_id, "confidence": v.confidence,
                               "size": suspect.shape[:2],
                               "pilots": None if pc is None or not pc.measured else (pc.ratio_db, pc.attacked)}
        for m in baselines:
            row[m.name] = _baseline_read(m, base_marked[m.name], attacks[a], seed, payload)
        rows[a] = row
    quality = {m: _psnr_ssim(rgb, bm) for m, bm in base_marked.items() if bm is not None}
    return {"name": name, "suite": task["suite"], "size": rgb.shape[:2], "rows": rows, "read_ms": read_ms,
            "quality": quality}


def _informed(suspect: np.ndarray, ev: Any, original: Any, payload: int, blind: bool) -> tuple[bool, bool, bool]:
    """(registered, informed read found the payload, informed read or the test of the export's payload found it)
    for a suspect whose original export is known: trace's own reading when it named that export and read it
    registered (the same registration, hinted read and, when the decodes missed, the same payload test), else the
    suspect registered against the original here; a registered read that misses falls back to the blind one, as
    trace does."""
    from pipeline.trace import marktest
    from pipeline.trace.evidence import TESTED
    from pipeline.trace.register import SuspectFeatures, register
    from pipeline.trace.verdict import read_watermark

    def hit(w: Any) -> bool:
        return bool(w.found and w.payload is not None and int(w.payload, 16) == payload)

    if ev is not None and ev.registration is not None and ev.registration.ok and ev.watermark is not None:
        decoded = (hit(ev.watermark) and ev.watermark.mode != TESTED) or blind
        return True, decoded, decoded or hit(ev.watermark)
    if min(suspect.shape[:2]) < invisible.MIN_SIDE:
        return False, blind, blind
    reg = register(SuspectFeatures.compute(suspect), original, try_mirror=True)
    if not reg.ok:
        return False, blind, blind
    size = (original.width, original.height)
    decoded = hit(read_watermark(suspect, KEY, registration=reg, export_size=size)) or blind
    tested = decoded or marktest.correlate(suspect, reg.matrix, size, KEY.subkey(invisible.SUBKEY_PURPOSE),
                                           payload).present
    return True, decoded, tested


def _baseline_read(m: Baseline, marked: np.ndarray | None, attack: Callable[[np.ndarray, int], np.ndarray],
                   seed: int, payload: int) -> bool:
    if marked is None:
        return False
    try:
        return m.read(np.ascontiguousarray(attack(marked, seed)), payload)
    except Exception:  # the attack or the read fails on the baseline's picture: a miss
        return False


def trace_negative(task: tuple[str, np.ndarray, str]) -> tuple[str, str, str | None]:
    """Trace one picture that is in no record of the ledger: (name, verdict, record named)."""
    cv2.setNumThreads(1)
    name, rgb, ledger = task
    v = _tracer(ledger).trace_image(rgb, name=name).verdict
    return name, v.verdict, v.record_id


# ------------------------------------------------------------------------------------------------ report


def _psnr_ssim(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> tuple[float, float]:
    """PSNR and mean SSIM of ``b`` against ``a``, over the whole picture or over ``region`` only (the product:
    SSIM's map is computed on the whole picture and averaged there)."""
    from skimage.metrics import structural_similarity

    sel = np.ones(a.shape[:2], bool) if region is None else region
    mse = float(np.mean((a[sel].astype(np.float64) - b[sel]) ** 2))
    psnr = 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)
    _, smap = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    return psnr, float(np.mean(smap.mean(axis=2)[sel]))


COLUMNS = ("blind", "informed", "tested", "registered", "trace")


def suite_table(suite: str, results: list[dict[str, Any]], attacks: list[str], base_names: list[str]) -> dict[str, float]:
    """Print one suite's per-attack rows; return the suite's mean of each column over its attacks."""
    heads = ["blind", "informed", "tested", "reg", "trace", "wrong", "flagged"] + base_names
    head = f"{'attack':<34}" + "".join(f"{h:>10}" for h in heads)
    print(f"\n{suite} suite ({len(attacks)} attacks):")
    print(head)
    print("-" * len(head))
    cols = [*COLUMNS, *base_names]
    per_attack: dict[str, list[float]] = {c: [] for c in cols}
    for a in attacks:
        rows = [r["rows"][a] for r in results if a in r["rows"] and "error" not in r["rows"][a]]
        errors = sum(1 for r in results if "error" in r["rows"].get(a, {}))
        if not rows:
            print(f"{a:<34}  failed on every picture")
            continue
        rates = {c: float(np.mean([bool(x[c]) for x in rows])) for c in cols}
        for c in cols:
            per_attack[c].append(rates[c])
        wrong = sum(bool(x["wrong"]) for x in rows)
        measured = [x["pilots"] for x in rows if x.get("pilots")]
        flagged = f"{sum(bool(m[1]) for m in measured)}/{len(measured)}"
        cells = [rates[c] for c in COLUMNS]
        line = f"{a:<34}" + "".join(f"{x:>10.0%}" for x in cells) + f"{wrong:>10d}{flagged:>10}"
        line += "".join(f"{rates[b]:>10.0%}" for b in base_names)
        if errors:
            line += f"   ({errors} pictures failed the augmentation)"
        print(line)
    print("-" * len(head))
    means = {c: float(np.mean(v)) if v else float("nan") for c, v in per_attack.items()}
    print(f"{'mean over attacks':<34}" + "".join(f"{means[c]:>10.0%}" for c in COLUMNS) + f"{'':>20}"
          + "".join(f"{means[b]:>10.0%}" for b in base_names))
    return means


def pilot_report(results: list[dict[str, Any]]) -> None:
    """The removal-attempt check: its ratio and false alarms on the copies of the in-house and AugLy suites (none
    of them a removal attempt), and what it flags of the removal suite (pipeline/trace/tamper.py's constants)."""
    from pipeline.trace import tamper

    clean = [x["pilots"] for r in results if r["suite"] != "removal" for x in r["rows"].values()
             if x.get("pilots")]
    removal = [x["pilots"] for r in results if r["suite"] == "removal" for x in r["rows"].values()
               if x.get("pilots")]
    if clean:
        ratios = [c[0] for c in clean]
        print(f"removal-attempt check on copies not attacked that way (in-house + AugLy, traced, chips z >= "
              f"{tamper.CHIP_Z_MIN:g}): {len(clean)} measured, pilot/chip ratio {min(ratios):+.1f} to "
              f"{max(ratios):+.1f} dB (median {np.median(ratios):+.1f}), flagged below {tamper.RATIO_FLAG_DB:+.1f} dB: "
              f"{sum(bool(c[1]) for c in clean)} (false alarms; tamper.py states {tamper.FALSE_ALARMS} of "
              f"{tamper.CLEAN_COPIES}, range {tamper.CLEAN_RANGE_DB[0]:+.1f} to {tamper.CLEAN_RANGE_DB[1]:+.1f} dB)")
    if removal:
        print(f"removal-attempt check on the removal suite (own pilots notched): {sum(bool(c[1]) for c in removal)}"
              f" of {len(removal)} measured copies flagged, ratio {min(c[0] for c in removal):+.1f} to "
              f"{max(c[0] for c in removal):+.1f} dB")


def report(prepared: list[dict[str, Any]], results: list[dict[str, Any]], suites: dict[str, list[str]],
           base_names: list[str], negatives: list[tuple[str, str, str | None]],
           quality: dict[str, list[tuple[float, float]]]) -> None:
    n = len(prepared)
    print(f"\nExact-payload recovery over {n} images ({PAYLOAD_BITS}-bit payload). blind: invisible.read without a hint; "
          "informed: the suspect registered against its original export (trace's registration) and read with that "
          "hint, else blind, as trace reads; tested: informed, or the test of the export's own payload found its chips "
          "(pipeline.trace.marktest, when the decodes miss, as trace tests); reg: registered; trace: pipeline.trace's Tracer over a ledger of "
          f"{n} + {N_DISTRACTORS} distractor exports names the right record; wrong: trace named another record; "
          "flagged: of the traced copies whose removal-attempt check measured (pipeline.trace.tamper), how many it "
          "flagged as a watermark attack; "
          f"{', '.join(base_names) or 'no baseline'}: invisible-watermark's blind read.")
    summary = {}
    for suite, attacks in suites.items():
        summary[suite] = suite_table(suite, [r for r in results if r["suite"] == suite], attacks, base_names)
    print("\nSummary (mean over the attacks of each suite):")
    head = f"{'suite':<14}" + "".join(f"{h:>10}" for h in ("blind", "informed", "tested", "reg", "trace",
                                                            *base_names))
    print(head)
    for suite, m in summary.items():
        print(f"{suite:<14}" + "".join(f"{m[c]:>10.0%}" for c in (*COLUMNS, *base_names)))
    print()
    for m, q in quality.items():
        if q:
            ps = [x[0] for x in q]
            ss = [x[1] for x in q]
            print(f"{m:<14} PSNR mean {np.mean(ps):5.2f} dB (min {np.min(ps):5.2f})   SSIM mean {np.mean(ss):.4f} "
                  f"(min {np.min(ss):.4f})   (marked vs original, {len(q)} images)")
    region = [p["region_quality"] for p in prepared if "region_quality" in p]
    if region:
        ps, ss = [x[0] for x in region], [x[1] for x in region]
        print(f"{'  product only':<14} PSNR mean {np.mean(ps):5.2f} dB (min {np.min(ps):5.2f})   SSIM mean "
              f"{np.mean(ss):.4f} (min {np.min(ss):.4f})   (catalogmark, over each picture's not-white mask: "
              f"floors 35 dB, 0.96)")
    fp_u = sum(bool(p["fp"][0]) for p in prepared)
    fp_o = sum(bool(p["fp"][1]) for p in prepared)
    bound = max(float(p["fp"][2]) for p in prepared)
    print(f"catalogmark false positives: unmarked {fp_u}/{n}, other key {fp_o}/{n}; analytic bound per image "
          f"<= {bound:.2e}")
    false_matches = [x for x in negatives if x[1] == "match"]
    print(f"trace false matches on {len(negatives)} unrelated product shots (in no record): {len(false_matches)}"
          + "".join(f"\n  {nm} -> {rid}" for nm, _v, rid in false_matches))
    print(f"catalogmark white background kept exactly: {sum(bool(p['white_kept']) for p in prepared)}/{n}")
    ms = [t for r in results for t in r["read_ms"]]
    if ms:
        print(f"catalogmark blind read: mean {np.mean(ms):.0f} ms, max {np.max(ms):.0f} ms (attacked suspects, "
              "one thread)")
    wrong = [(r["name"], a, x["named"], x["confidence"]) for r in results for a, x in r["rows"].items()
             if x.get("wrong")]
    names = {_record_id(i): p["name"] for i, p in enumerate(prepared)}
    print(f"trace named the wrong record: {len(wrong)} of {sum(len(r['rows']) for r in results)} attacked copies"
          + "".join(f"\n  {nm} under {a} -> {rid} ({names.get(rid, 'a distractor')}), confidence {c:.3f}"
                    for nm, a, rid, c in wrong))
    pilot_report(results)
    print("catalogmark blind-read misses by image:")
    for p in prepared:
        missed = [a for r in results if r["name"] == p["name"]
                  for a, x in r["rows"].items() if "error" not in x and not x["blind"]]
        if missed:
            h, w = p["marked"].shape[:2]
            total = sum(len(r["rows"]) for r in results if r["name"] == p["name"])
            print(f"  {p['name']} ({w}x{h}): {len(missed)}/{total} -- {', '.join(missed)}")


def speed() -> None:
    """Embed and read timings on one core, at the sizes the issue names."""
    cv2.setNumThreads(1)
    from tests.synthetic import product_shot

    print("\nTimings (one OpenCV thread, median of 5):")
    for w, h in ((2000, 2000), (2000, 1500), (1200, 1200), (800, 800)):
        rgb = product_shot(7, (w, h))
        mask = white_mask(rgb)
        invisible.embed(rgb, KEY, 1, mask)
        te, tr = [], []
        for i in range(5):
            t0 = time.perf_counter()
            out = invisible.embed(rgb, KEY, i, mask)
            te.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            invisible.read(out, KEY)
            tr.append(time.perf_counter() - t0)
        print(f"  {w}x{h}: embed {np.median(te) * 1e3:6.1f} ms   read (unattacked) {np.median(tr) * 1e3:6.1f} ms")
    # the read's tail: every attack of the suite on a few marked pictures, one process, nothing else running
    times = []
    for i, rgb in enumerate([product_shot(7, (1600, 1600)), *[im for _n, im in catalog_images(4)]]):
        marked = invisible.embed(rgb, KEY, 0x1234567890, white_mask(rgb))
        for attack in ATTACKS.values():
            suspect = attack(marked, i)
            t0 = time.perf_counter()
            invisible.read(suspect, KEY)
            times.append(time.perf_counter() - t0)
    a = np.array(times) * 1e3
    print(f"  blind read of {len(a)} attacked suspects, one process: mean {a.mean():.0f} ms, "
          f"p95 {np.percentile(a, 95):.0f} ms, max {a.max():.0f} ms")


def _map(fn: Callable[[Any], Any], tasks: list[Any], jobs: int, what: str = "") -> list[Any]:
    """``[fn(t) for t in tasks]`` on ``jobs`` processes, in order; with ``what``, a progress line per task on
    stderr."""
    t0 = time.time()

    def done(k: int) -> None:
        if what:
            print(f"  {what}: {k}/{len(tasks)} done, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)

    if jobs > 1 and len(tasks) > 1:
        # spawn, not fork: a forked child inherits OpenCV's thread pool mid-state and can hang
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            futures = [ex.submit(fn, t) for t in tasks]
            for k, _f in enumerate(as_completed(futures), 1):
                done(k)
            return [f.result() for f in futures]
    out = []
    for k, t in enumerate(tasks, 1):
        out.append(fn(t))
        done(k)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few images only")
    ap.add_argument("--speed", action="store_true", help="timings only")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--attacks", default="", help="comma-separated subset of the in-house suite: " + ", ".join(ATTACKS))
    ap.add_argument("--augly", default="", help="comma-separated subset of the AugLy suite (augly:NAME), or 'none'")
    ap.add_argument("--removal", default="", help="comma-separated subset of the removal attempts (" +
                    ", ".join(REMOVAL) + "), or 'none'")
    ap.add_argument("--images", type=int, default=None, help="catalog pictures (default: all; --quick: 3)")
    ap.add_argument("--shots", type=int, default=None, help="generated product shots (default 8; --quick: 2)")
    ap.add_argument("--no-baseline", action="store_true", help="measure catalogmark only")
    ap.add_argument("--no-speed", action="store_true", help="leave out the timing section")
    args = ap.parse_args(argv)
    if args.speed:
        speed()
        return 0
    if args.no_baseline:
        os.environ["ROBUSTNESS_NO_BASELINE"] = "1"  # inherited by the worker processes
    attacks = [a for a in args.attacks.split(",") if a] or list(ATTACKS)
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        ap.error(f"unknown attacks: {', '.join(unknown)}")
    suites = {"in-house": attacks}
    if args.removal != "none":
        chosen_removal = [a for a in args.removal.split(",") if a] or list(REMOVAL)
        bad_removal = [a for a in chosen_removal if a not in REMOVAL]
        if bad_removal:
            ap.error(f"unknown removal attacks: {', '.join(bad_removal)}")
        suites["removal"] = chosen_removal
    from bench import augly_suite

    if args.augly != "none":
        if augly_suite.available():
            aug = list(augly_suite.attacks())
            chosen = [a for a in args.augly.split(",") if a] or aug
            bad = [a for a in chosen if a not in aug]
            if bad:
                ap.error(f"unknown or skipped AugLy attacks: {', '.join(bad)}")
            suites["augly"] = chosen
            print(f"AugLy {importlib.metadata.version('augly')}: {len(aug)} of "
                  f"{len(augly_suite.NAMES)} image augmentations run here; skipped:")
            for name, why in {**augly_suite.NOT_ATTACKS, **augly_suite.skipped()}.items():
                print(f"  {name}: {why}")
        else:
            print("augly not installed: only the in-house suite is measured (pip install -r bench/requirements-robustness.txt)")
    n_images = args.images if args.images is not None else (3 if args.quick else None)
    n_shots = args.shots if args.shots is not None else (2 if args.quick else 8)
    images = catalog_images(n_images) + product_shots(n_shots)
    names = [m.name for m in methods()]
    if len(names) == 1 and not args.no_baseline:
        print("invisible-watermark not installed: only catalogmark is measured "
              "(pip install -r bench/requirements-robustness.txt && pip install --no-deps invisible-watermark)")
    from tests.synthetic import product_shot

    sizes = [800, 1000, 1200, 1600, 640, 900]
    distractors = [(f"distractor{i}", product_shot(500 + i, (sizes[i % len(sizes)],) * 2), False)
                   for i in range(N_DISTRACTORS)]
    negatives = [(f"unrelated{i}", product_shot(900 + i, (1000, 1000))) for i in range(8)]
    sys.stdout.flush()
    t0 = time.time()
    prepared = _map(prepare, [(n, rgb, True) for n, rgb in images] + distractors, args.jobs, "marking")
    measured, others = prepared[: len(images)], prepared[len(images):]
    with tempfile.TemporaryDirectory(prefix="catalogmark-robustness-") as tmp:
        ledger = str(Path(tmp) / "ledger.sqlite")
        build_ledger(Path(ledger), measured + others)
        tasks = [{"name": p["name"], "payload": p["payload"], "record_id": _record_id(i), "rgb": rgb,
                  "marked": p["marked"], "suite": suite, "attacks": attack_names, "ledger": ledger}
                 for i, (p, (_n, rgb)) in enumerate(zip(measured, images, strict=True))
                 for suite, attack_names in suites.items()]
        tasks.sort(key=lambda t: -t["marked"].size * len(t["attacks"]))  # largest first: the pool ends together
        results = _map(run_one, tasks, args.jobs, "attacking (picture x suite)")
        neg = _map(trace_negative, [(n, rgb, ledger) for n, rgb in negatives], args.jobs)
    quality: dict[str, list[tuple[float, float]]] = {"catalogmark": [p["quality"] for p in measured]}
    for r in results:
        if r["suite"] == "in-house":
            for m, q in r["quality"].items():
                quality.setdefault(m, []).append(q)
    report(measured, results, suites, [n for n in names if n != "catalogmark"], neg, quality)
    n_att = sum(len(v) for v in suites.values())
    print(f"({len(images)} images x {n_att} attacks, {N_DISTRACTORS} distractors, in {time.time() - t0:.0f} s "
          f"with {args.jobs} jobs)")
    if not args.no_speed:
        speed()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
