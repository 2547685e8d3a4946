"""Trace orchestration: suspects in, verdicts (and the evidence pack) out, from the ledger and the key alone.

Per suspect: decode -> candidate search over the in-memory index -> SIFT registration of the top candidates
(features from the ledger's trace side table) -> informed watermark read with the registration as a hint
(blind read if nothing registered) -> signed-metadata check of the file -> visible-mark check -> verdict.
The index is built once per trace run and reused for every suspect of a folder sweep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from pipeline.errors import InputError
from pipeline.trace import signatures as sg
from pipeline.trace.index import QuerySignature, TraceIndex, query_signature
from pipeline.trace.register import Registration, SuspectFeatures, register
from pipeline.trace.verdict import (
    CandidateEvidence,
    Verdict,
    decide,
    payload_hex,
    read_watermark,
    registration_tier,
)
from pipeline.trace.visible import mark_mask, visible_mark_check

SUSPECT_MAX_SIDE = 2048  # suspects are decoded at most this large (registration and watermark read both fit)
TOP_K = 16  # candidates registered per suspect
MIRROR_RETRY = 6  # candidates re-registered with the mirrored suspect when nothing aligned
MAX_WATERMARK_READS = 3  # informed reads per suspect (one per distinct registered export, best first)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp", ".avif"})


class TraceStore(Protocol):
    """What trace needs from the ledger (``pipeline.ledger.Ledger`` provides it)."""

    def get(self, record_id: str) -> dict[str, Any] | None: ...

    def get_trace(self, record_id: str) -> tuple[bytes, bytes] | None: ...

    def find_by_payload(self, payload_hex: str) -> list[dict[str, Any]]: ...

    def runs(self) -> list[dict[str, Any]]: ...


def iter_search_keys(store: Any) -> Iterator[tuple[str, bytes]]:
    """``(record_id, search_keys)`` for every record: the ledger's ``iter_search_keys`` if it has one (reads
    only the small blobs), else ``iter_traces`` (which also reads the features)."""
    fn = getattr(store, "iter_search_keys", None)
    if callable(fn):
        yield from fn()
        return
    for rid, keys, _features in store.iter_traces():
        yield rid, keys


def build_index(store: Any) -> TraceIndex:
    return TraceIndex.build(iter_search_keys(store))


@dataclass
class TraceResult:
    """One suspect's outcome, with what the report needs."""

    suspect: str
    verdict: Verdict
    record: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    evidence: CandidateEvidence | None = None
    suspect_rgb: np.ndarray | None = field(default=None, repr=False)
    capture: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``trace --json`` object (DESIGN.md) for this suspect."""
        rec = self.record
        match = None
        if self.verdict.verdict == "match" and rec is not None:
            match = {k: rec.get(k) for k in ("record_id", "source", "sku", "preset", "output")}
        signals = dict(self.verdict.signals)
        if self.error:
            signals["error"] = self.error
        signals["timings_ms"] = {k: round(v * 1000, 1) for k, v in self.timings.items()}
        return {"suspect": self.suspect, "verdict": self.verdict.verdict, "confidence": self.verdict.confidence,
                "match": match, "signals": signals}


def _widened(mark: np.ndarray | None) -> np.ndarray | None:
    """The mark's footprint grown by 2 px: what registration leaves out of its correlations."""
    return None if mark is None else cv2.dilate(mark.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def expand_suspects(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively for images (sorted); a missing path is an InputError."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES
                              and not q.name.startswith(".")))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such suspect file or folder")
    return out


class Tracer:
    """Traces suspects against one ledger with one key; build once, call ``trace_image`` per suspect."""

    def __init__(self, store: Any, key: Any = None, *, public_key: Any = None, owner: Any = None,
                 index: TraceIndex | None = None, k: int = TOP_K) -> None:
        self.store = store
        self.key = key
        self.public_key = public_key if public_key is not None else (key.public if key is not None else None)
        self.owner = owner
        self.k = k
        t = time.perf_counter()
        self.index = index if index is not None else build_index(store)
        self.index_seconds = time.perf_counter() - t
        self._runs: dict[str, dict[str, Any]] | None = None

    def run_of(self, record: dict[str, Any]) -> dict[str, Any] | None:
        if self._runs is None:
            try:
                self._runs = {str(r.get("run_id")): r for r in self.store.runs()}
            except Exception:  # a store without runs (tests, exports): the report just omits the Merkle root
                self._runs = {}
        return self._runs.get(str(record.get("run_id")))

    def _signature(self, record_id: str) -> sg.TraceSignature | None:
        blobs = self.store.get_trace(record_id)
        if blobs is None:
            return None
        try:
            return sg.TraceSignature.from_bytes(blobs[0], blobs[1])
        except sg.SignatureError:
            return None

    def trace_image(self, rgb: np.ndarray, *, name: str = "<image>", data: bytes | None = None) -> TraceResult:
        timings: dict[str, float] = {}
        if min(rgb.shape[:2]) < sg.MIN_SIDE:
            v = Verdict("no-match", 0.0, None, None, [f"The picture is {rgb.shape[1]}x{rgb.shape[0]} pixels: too small "
                                                       "to carry any evidence either way."], {})
            return TraceResult(suspect=name, verdict=v, suspect_rgb=rgb, error="too small to trace")
        t0 = time.perf_counter()
        q: QuerySignature = query_signature(rgb)
        cands = self.index.search(q, k=self.k)
        timings["search"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        feats = SuspectFeatures.compute(rgb)
        evidence: list[CandidateEvidence] = []
        strong_sources: set[str] = set()
        for c in cands:
            record = self.store.get(c.record_id) or {"record_id": c.record_id}
            if strong_sources and str(record.get("source")) not in strong_sources:
                # one export already aligned decisively: only other exports of the same original (another
                # preset) can still change the answer, so the rest are listed but not registered (~40 ms each)
                evidence.append(CandidateEvidence(candidate=c, record=record, signature=None, registration=None))
                continue
            sig = self._signature(c.record_id)
            reg: Registration | None = None
            mark = None
            if sig is not None:
                mark = self._mark(record, sig)
                # the mirrored suspect's SIFT pass (~200 ms) only where the search saw a mirror image
                hinted = "mirror" in c.pdq_variant or c.sketch_mirrored
                reg = register(feats, sig, try_mirror=hinted, exclude=_widened(mark))
            evidence.append(CandidateEvidence(candidate=c, record=record, signature=sig, registration=reg, mark=mark))
            if registration_tier(reg, c.pdq_distance) == "strong":
                strong_sources.add(str(record.get("source")))
        if not any(ev.registered for ev in evidence):
            # nothing aligned: maybe a mirrored copy the search did not flag; try the mirror on the best few
            for ev in evidence[:MIRROR_RETRY]:
                if ev.signature is not None and not (ev.registration and ev.registration.mirrored):
                    mreg = register(feats, ev.signature, try_mirror=True, exclude=_widened(ev.mark))
                    if ev.registration is None or (mreg.ok, mreg.ncc) > (ev.registration.ok, ev.registration.ncc):
                        ev.registration = mreg
        timings["register"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        # informed watermark reads, best registered candidates first, one per distinct export
        ranked = sorted((ev for ev in evidence if ev.registered),
                        key=lambda e: -(e.registration.ncc if e.registration else 0.0))
        blind: dict[str, Any] | None = None
        payload_records: list[dict[str, Any]] = []
        for ev in ranked[:MAX_WATERMARK_READS]:
            assert ev.signature is not None
            ev.watermark = read_watermark(rgb, self.key, registration=ev.registration,
                                          export_size=(ev.signature.width, ev.signature.height))
            if ev.watermark.get("found"):
                if ev.watermark_matches:
                    break
                # the payload names another export (e.g. another preset of the same photo): note it
                for other in evidence:
                    if payload_hex(other.record.get("payload")) == ev.watermark.get("payload"):
                        other.watermark = dict(ev.watermark)
                break
        if not any(ev.watermark and ev.watermark.get("found") for ev in ranked[:MAX_WATERMARK_READS]):
            # nothing aligned, or the informed read (one decode in the registered frame, which a registration a
            # pixel or two off can miss) found nothing: the blind read searches the lattice itself
            bw = read_watermark(rgb, self.key)
            if ranked:
                if bw.get("found"):
                    for ev in evidence:
                        if payload_hex(ev.record.get("payload")) == bw.get("payload"):
                            ev.watermark = dict(bw, mode="blind (after the informed read missed)")
            else:
                blind = bw
                if bw.get("found") and bw.get("payload"):
                    try:
                        payload_records = list(self.store.find_by_payload(bw["payload"]))
                    except Exception:
                        payload_records = []
        timings["watermark"] = time.perf_counter() - t2
        metadata = self._metadata(data, rgb)
        for ev in evidence:
            if ev.registered and ev.signature is not None:
                ev.visible = visible_mark_check(rgb, ev.registration, ev.signature, ev.record, self.owner,
                                                mask=ev.mark)
        verdict = decide(evidence, metadata=metadata, blind_watermark=blind, payload_records=payload_records,
                         pdq_quality=q.pdq_quality)
        timings["total"] = time.perf_counter() - t0
        record = None
        chosen = None
        if verdict.record_id is not None:
            chosen = next((ev for ev in evidence if str(ev.record.get("record_id")) == verdict.record_id), None)
            record = chosen.record if chosen is not None else (payload_records[0] if payload_records else None)
        return TraceResult(suspect=name, verdict=verdict, record=record,
                           run=self.run_of(record) if record else None, evidence=chosen,
                           suspect_rgb=rgb, timings=timings)

    def _mark(self, record: dict[str, Any], sig: sg.TraceSignature) -> np.ndarray | None:
        """The export's visible-mark footprint in its thumbnail frame (None: no mark); computed once per
        candidate (re-rendering the mark costs ~30 ms) for registration and the visible-mark check alike."""
        if not record.get("visible_mark"):
            return None
        thumb = sig.thumbnail_rgb()
        return None if thumb is None else mark_mask(record, thumb.shape[:2], self.owner)

    def _metadata(self, data: bytes | None, rgb: np.ndarray) -> dict[str, Any] | None:
        if data is None:
            return None
        try:
            from pipeline.metadata.check import check_claim
            from pipeline.metadata.read import read_embedded
            from pipeline.verify import _metadata_dict

            meta = read_embedded(data)
            return _metadata_dict(check_claim(meta, rgb, self.public_key))
        except Exception as exc:  # metadata is a supporting signal: never let it stop a trace
            return {"present": False, "error": f"{type(exc).__name__}: {exc}"}

    def trace_path(self, path: Path) -> TraceResult:
        from pipeline.stages.ingest import load_rgb

        try:
            data = Path(path).read_bytes()
            rgb, capture = load_rgb(data, max_side=SUSPECT_MAX_SIDE)
        except Exception as exc:  # an unreadable suspect is a per-file result, not a crash of the sweep
            msg = str(exc).removeprefix("<bytes>: ")  # the decoder saw bytes; the suspect's path is named already
            v = Verdict("no-match", 0.0, None, None, [f"The file could not be read as an image: {msg}"], {})
            return TraceResult(suspect=str(path), verdict=v, error=msg)
        res = self.trace_image(rgb, name=str(path), data=data)
        res.capture = capture.as_dict()
        return res


def trace_files(
    suspects: Sequence[str | Path],
    *,
    store: Any,
    key: Any = None,
    public_key: Any = None,
    owner: Any = None,
    report_html: str | Path | None = None,
    report_json: str | Path | None = None,
    k: int = TOP_K,
    progress: Callable[[TraceResult], None] | None = None,
) -> list[TraceResult]:
    """Trace suspect files and folders against ``store`` (a Ledger); optionally write the evidence pack.

    ``key`` (OwnerKey) reads the invisible watermark; ``public_key`` checks signed metadata (defaults to the
    key's public half); ``owner`` (Owner profile) lets the visible-mark check re-render the exact mark.
    """
    paths = expand_suspects(suspects)
    tracer = Tracer(store, key, public_key=public_key, owner=owner, k=k)
    results = []
    for p in paths:
        res = tracer.trace_path(p)
        results.append(res)
        if progress is not None:
            progress(res)
    if report_html is not None or report_json is not None:
        from pipeline.trace.report import write_report

        write_report(results, html_path=report_html, json_path=report_json,
                     info={"records_indexed": len(tracer.index), "index_seconds": round(tracer.index_seconds, 3),
                           "key_fingerprint": getattr(key, "fingerprint", None)})
    return results


class MemoryStore:
    """A ledger stand-in held in memory (tests, benchmarks, dry runs): records as dicts plus their trace blobs."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.traces: dict[str, tuple[bytes, bytes]] = {}
        self.run_list: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any], signature: sg.TraceSignature) -> None:
        rid = str(record["record_id"])
        self.records[rid] = record
        self.traces[rid] = (signature.search_keys(), signature.features())

    def get(self, record_id: str) -> dict[str, Any] | None:
        return self.records.get(record_id)

    def get_trace(self, record_id: str) -> tuple[bytes, bytes] | None:
        return self.traces.get(record_id)

    def iter_search_keys(self) -> Iterator[tuple[str, bytes]]:
        for rid, (keys, _features) in self.traces.items():
            yield rid, keys

    def find_by_payload(self, payload_hex: str) -> list[dict[str, Any]]:
        want = payload_hex.strip().lower()
        return [r for r in self.records.values() if str(r.get("payload") or "").lower() == want]

    def runs(self) -> list[dict[str, Any]]:
        return list(self.run_list)
