"""Trace orchestration: suspects in, verdicts (and the evidence pack) out, from the ledger and the key alone.

Per suspect: decode -> candidate search over the in-memory index -> SIFT registration of the top candidates
(the photo's features from the ledger's trace side table: fitted once per photo, mapped through each candidate
export's frame) -> informed watermark read with the registration as a hint (blind read if nothing registered)
-> signed-metadata check of the file -> visible-mark check -> verdict.
The index is built once per trace run and reused for every suspect of a folder sweep.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline import files
from pipeline.catalog import is_image_file
from pipeline.errors import InputError, LedgerError
from pipeline.invisible import chiptest
from pipeline.ledger import RunInfo, StoredRecord
from pipeline.metadata.check import MetadataCheck
from pipeline.trace import marktest
from pipeline.trace import signatures as sg
from pipeline.trace.candidates import CandidateEvidence, registration_tier
from pipeline.trace.evidence import (
    TESTED,
    LedgerProof,
    PilotCheck,
    TimestampSignal,
    Verdict,
    WatermarkReading,
)
from pipeline.trace.index import Candidate, QuerySignature, TraceIndex, query_signature
from pipeline.trace.register import (
    PhotoFit,
    Registration,
    SuspectFeatures,
    fit_photo,
    no_registration,
    padding_agreement,
    register_export,
)
from pipeline.trace.result import TraceResult
from pipeline.trace.verdict import decide, read_watermark, with_pilot_check
from pipeline.trace.visible import mark_layer, visible_mark_check

SUSPECT_MAX_SIDE = 2048  # suspects are decoded at most this large (registration and watermark read both fit)
TOP_K = 16  # candidates registered per suspect
MARK_CACHE = 32  # re-rendered visible marks a Tracer keeps (see Tracer._marks)
MIRROR_RETRY = 6  # candidates re-registered with the mirrored suspect when nothing aligned
MAX_WATERMARK_READS = 3  # informed reads per suspect (one per distinct registered export, best first)
PHOTO_CACHE = 64  # parsed photo features kept across the suspects of a sweep (candidates recur)


def build_index(store: Any) -> TraceIndex:
    return TraceIndex.build(store.iter_search_keys())


def key_warning(store: Any, key: Any) -> str | None:
    """Why ``key`` cannot read the invisible marks of this ledger's exports (it signed none of its records), in
    one sentence; None if it signed some (or the store cannot say). Without it a trace with another owner's key
    says only "no match"."""
    if key is None or not hasattr(store, "key_fingerprints"):
        return None
    counts = store.key_fingerprints()
    if not counts or key.fingerprint in counts:
        return None
    made = ", ".join(f"{fp} ({n} records)" for fp, n in list(counts.items())[:3])
    return (f"the key given ({key.fingerprint}) made none of the ledger's records (made with {made}): its "
            "invisible watermarks cannot be read and their signed metadata is not checked against the right key; "
            "pass that owner's key (--key-file)")


def _note_payload(evidence: list[CandidateEvidence], reading: WatermarkReading) -> None:
    """Give a found payload to every candidate whose export carries it."""
    for ev in evidence:
        if ev.payload == reading.payload:
            ev.watermark = reading


def _widened(mark: np.ndarray | None) -> np.ndarray | None:
    """The mark's footprint grown by 2 px: what registration leaves out of its correlations."""
    return None if mark is None else cv2.dilate(mark.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def _padding(rgb: np.ndarray, ev: CandidateEvidence) -> float | None:
    """register.padding_agreement of a registered candidate, from its frame (the photo's box on the canvas)."""
    if ev.registration is None or ev.signature is None:
        return None
    f = ev.signature.frame
    box = (f.offset[0], f.offset[1], f.offset[0] + f.scaled[0], f.offset[1] + f.scaled[1])
    return padding_agreement(rgb, ev.registration, f.canvas, box, f.background)


def expand_suspects(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively for images (sorted); a missing path is an InputError."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if is_image_file(q)))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such suspect file or folder")
    return out


class _Fits:
    """One RANSAC fit per photo (and mirror flag) for one suspect, mapped through each candidate export's frame:
    exports of one photo share the fit."""

    def __init__(self, feats: SuspectFeatures) -> None:
        self.feats = feats
        self._fits: dict[tuple[bytes, bool], PhotoFit] = {}
        self.photo_of: dict[int, bytes] = {}  # id(evidence) -> its photo's key

    def register(self, ev: CandidateEvidence, mirror: bool) -> Registration:
        assert ev.signature is not None
        photo_key = self.photo_of[id(ev)]
        if (photo_key, mirror) not in self._fits:
            self._fits[(photo_key, mirror)] = fit_photo(self.feats, ev.signature.photo, try_mirror=mirror)
        return register_export(self._fits[(photo_key, mirror)], self.feats, ev.signature, exclude=_widened(ev.mark))


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
        self._runs: dict[str, RunInfo] | None = None
        self._photos: dict[bytes, sg.PhotoFeatures] = {}
        # the visible marks re-rendered for candidates, by record and thumbnail size: a folder sweep meets the same
        # exports again and again (~45 ms a rendering at 2048 px); the newest MARK_CACHE kept (~2.4 MB each)
        self._marks: OrderedDict[tuple[str, tuple[int, int]], tuple[np.ndarray | None, np.ndarray | None]] = (
            OrderedDict())

    def run_of(self, record: StoredRecord) -> RunInfo | None:
        if self._runs is None:
            try:
                self._runs = {str(r.run_id): r for r in self.store.runs()}
            except Exception:  # a store without runs (tests, exports): the report just omits the Merkle root
                self._runs = {}
        return self._runs.get(str(record.run_id))

    def _export(self, record_id: str, record: StoredRecord | None) -> tuple[sg.ExportTrace | None, str, bytes]:
        """The candidate export from the ledger (search keys, frame, its photo's features), or why not; and the
        key of its photo (exports of one photo share it: one fit serves them all)."""
        blobs = self.store.get_trace(record_id)
        if blobs is None:
            return None, "the record has no trace data", b""
        keys, features = blobs
        digest = hashlib.sha256(features).digest()
        try:
            photo = self._photos.get(digest)
            if photo is None:
                photo = sg.PhotoFeatures.from_bytes(features)
                if len(self._photos) >= PHOTO_CACHE:
                    self._photos.pop(next(iter(self._photos)))
                self._photos[digest] = photo
            sig = sg.TraceSignature.from_bytes(keys)
            frame = sg.frame_of(record)
        except sg.SignatureError as exc:
            return None, str(exc), digest
        if frame is None:
            return None, "the record has no export frame (extra.frame)", digest
        return sg.ExportTrace(frame=frame, photo=photo, keys=sig), "", digest

    def trace_image(self, rgb: np.ndarray, *, name: str = "<image>", data: bytes | None = None,
                    seen: datetime | None = None) -> TraceResult:
        """One suspect's trace; ``seen`` is when the copy was found (its file time), for the priority finding."""
        if min(rgb.shape[:2]) < sg.MIN_SIDE:
            v = Verdict("no-match", 0.0, None, None, [f"The picture is {rgb.shape[1]}x{rgb.shape[0]} pixels: too small "
                                                       "to carry any evidence either way."])
            return TraceResult(suspect=name, verdict=v, suspect_rgb=rgb, error="too small to trace")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        q: QuerySignature = query_signature(rgb)
        cands = self.index.search(q, k=self.k)
        timings["search"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        evidence = self._register(rgb, cands)
        timings["register"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        blind, payload_records = self._read_watermarks(rgb, evidence)
        timings["watermark"] = time.perf_counter() - t2
        metadata = self._metadata(data, rgb)
        for ev in evidence:
            if ev.registered and ev.signature is not None and ev.record is not None:
                ev.visible = visible_mark_check(rgb, ev.registration, ev.signature, ev.record.record, self.owner,
                                                mask=ev.mark)
                ev.padding = _padding(rgb, ev)
        verdict = decide(evidence, metadata=metadata, blind_watermark=blind, payload_records=payload_records,
                         pdq_quality=q.pdq_quality)
        record = None
        chosen = None
        if verdict.record_id is not None:
            chosen = next((ev for ev in evidence if ev.record_id == verdict.record_id), None)
            record = chosen.record if chosen is not None else (payload_records[0] if payload_records else None)
        if verdict.verdict == "match" and chosen is not None:
            t3 = time.perf_counter()
            verdict = with_pilot_check(verdict, self._pilot_check(rgb, chosen))
            timings["pilots"] = time.perf_counter() - t3
        timings["total"] = time.perf_counter() - t0
        run = self.run_of(record) if record else None
        proof = self.ledger_proof(record, run, seen) if record is not None else None
        if proof is not None and proof.sentence and verdict.verdict == "match":
            verdict.findings.append(proof.sentence)
        return TraceResult(suspect=name, verdict=verdict, record=record, run=run, evidence=chosen,
                           suspect_rgb=rgb, timings=timings, ledger_proof=proof)

    def ledger_proof(self, record: StoredRecord, run: RunInfo | None, seen: datetime | None) -> LedgerProof | None:
        """The record's inclusion proof to its run root, the run's timestamps re-checked, and the priority they
        give over a copy seen at ``seen`` (None: now); None for a store without proofs (tests' MemoryStore)."""
        if not hasattr(self.store, "inclusion_proof"):
            return None
        from pipeline.priority import priority_of, priority_sentence
        from pipeline.timestamp import check_stamps

        r = record.record
        try:
            proof = self.store.inclusion_proof(r.record_id, seq=record.seq)
        except LedgerError as exc:  # the run is not sealed yet, or the ledger lost the row
            return LedgerProof(record_hash=record.record_hash, problem=str(exc))
        stamps = check_stamps(self.store.timestamps(record.run_id), proof.root)
        found = seen is not None
        seen = seen or datetime.now(UTC).replace(microsecond=0)
        pr = priority_of(run.finished_at if run is not None else r.created_at, stamps, seen,
                         "this copy was found (its file time)" if found else "this copy was traced")
        sentence = priority_sentence(pr)
        return LedgerProof(
            record_hash=proof.record_hash, leaf_index=proof.leaf_index, tree_size=proof.tree_size,
            path_length=len(proof.audit_path), root=proof.root, verifies=proof.verifies,
            timestamps=tuple(TimestampSignal(s.authority, s.token.tsa_url, s.gen_time, s.verifies, s.check.problem)
                             for s in stamps),
            recorded_at=pr.recorded_at, vouched_by=pr.vouched_by, seen_at=pr.seen_at, days_before=pr.days_before,
            sentence=sentence[:1].upper() + sentence[1:] + ".")

    def _register(self, rgb: np.ndarray, cands: list[Candidate]) -> list[CandidateEvidence]:
        """Each candidate with its registration (in search order), until one export aligned decisively; then a
        mirrored retry on the best few if none aligned."""
        fits = _Fits(SuspectFeatures.compute(rgb))
        evidence: list[CandidateEvidence] = []
        strong_sources: set[str] = set()
        for c in cands:
            record = self.store.get(c.record_id)
            source = str(None if record is None else record.record.source)
            if strong_sources and source not in strong_sources and not c.hash_match:
                # one export already aligned decisively: only other exports of the same original (another
                # preset), or of another photo whose hash says it is this very picture (the packshot of the
                # artwork a mock-up shows), can still change the answer, so the rest are listed but not
                # registered (~40 ms each)
                evidence.append(CandidateEvidence(candidate=c, record=record, signature=None, registration=None))
                continue
            ev = self._registered(c, record, fits)
            evidence.append(ev)
            if registration_tier(ev.registration, c.pdq_distance) == "strong":
                strong_sources.add(source)
        if not any(ev.registered for ev in evidence):
            # nothing aligned: maybe a mirrored copy the search did not flag; try the mirror on the best few
            for ev in evidence[:MIRROR_RETRY]:
                if ev.signature is not None and not (ev.registration and ev.registration.mirrored):
                    mreg = fits.register(ev, True)
                    if ev.registration is None or (mreg.ok, mreg.ncc) > (ev.registration.ok, ev.registration.ncc):
                        ev.registration = mreg
        return evidence

    def _registered(self, c: Candidate, record: StoredRecord | None, fits: _Fits) -> CandidateEvidence:
        """One candidate registered against the suspect (or why it could not be)."""
        sig, why, photo_key = self._export(c.record_id, record)
        ev = CandidateEvidence(candidate=c, record=record, signature=sig, registration=None)
        if sig is None:
            size = (0, 0) if record is None else (int(record.record.width or 0), int(record.record.height or 0))
            ev.registration = no_registration(f"not registered: {why}", export_size=size)
            return ev
        assert record is not None  # sg.frame_of(None) is None: a candidate without a record has no signature
        ev.mark = self._mark(record, sig)
        fits.photo_of[id(ev)] = photo_key
        # the mirrored suspect's SIFT pass (~200 ms) only where the search saw a mirror image
        ev.registration = fits.register(ev, c.reflected)
        return ev

    def _read_watermarks(self, rgb: np.ndarray, evidence: list[CandidateEvidence],
                         ) -> tuple[WatermarkReading | None, list[StoredRecord]]:
        """Informed watermark reads, best registered candidates first, one per distinct export; the blind read
        when those found nothing. Returns the blind reading when nothing registered, and the records carrying
        its payload."""
        ranked = sorted((ev for ev in evidence if ev.registered),
                        key=lambda e: -(e.registration.ncc if e.registration else 0.0))[:MAX_WATERMARK_READS]
        for ev in ranked:
            assert ev.signature is not None
            ev.watermark = read_watermark(rgb, self.key, registration=ev.registration,
                                          export_size=(ev.signature.width, ev.signature.height))
            if ev.watermark.found:
                if not ev.watermark_matches:
                    # the payload names another export (e.g. another preset of the same photo): note it
                    _note_payload(evidence, ev.watermark)
                break
        if any(ev.watermark and ev.watermark.found for ev in ranked):
            return None, []
        # nothing aligned, or the informed read (one decode in the registered frame, which a registration a pixel
        # or two off can miss) found nothing: the blind read searches the lattice itself
        bw = read_watermark(rgb, self.key)
        if ranked:
            if bw.found:
                _note_payload(evidence, replace(bw, mode="blind (after the informed read missed)"))
            if not any(ev.watermark and ev.watermark.found for ev in ranked):
                self._test_payloads(rgb, ranked)
            return None, []
        payload_records: list[StoredRecord] = []
        if bw.found and bw.payload:
            try:
                payload_records = list(self.store.find_by_payload(bw.payload))
            except Exception:
                payload_records = []
        return bw, payload_records

    def _test_payloads(self, rgb: np.ndarray, ranked: list[CandidateEvidence]) -> None:
        """Every decode missed: test each registered export's own payload (``trace.marktest``, a far easier
        question than decoding it); the highest correlation, if it clears DETECT_Z, becomes that export's
        watermark reading, its false-positive bound counting every test made."""
        if self.key is None:
            return
        subkey = self.key.subkey("invisible")
        tested: list[tuple[chiptest.ChipTest, CandidateEvidence]] = []
        for ev in ranked:
            reg, sig, payload = ev.registration, ev.signature, ev.payload
            if payload is None or reg is None or sig is None:
                continue
            try:
                ev.folded = marktest.fold_registered(rgb, reg.matrix, (sig.width, sig.height))
                tested.append((chiptest.chip_test(ev.folded, subkey, int(payload, 16)), ev))
            except Exception:  # supporting evidence: an odd picture must not stop the trace of a folder
                continue
        if not tested:
            return
        best, ev = max(tested, key=lambda t: t[0].z)
        if best.present:
            ev.watermark = WatermarkReading(
                available=True, mode=TESTED, found=True, payload=ev.payload, bit_errors=None,
                false_positive_probability=chiptest.fp_bound(best.z, len(tested)), chip_z=round(best.z, 2))

    def _pilot_check(self, rgb: np.ndarray, ev: CandidateEvidence) -> PilotCheck | None:
        """The removal-attempt check on the named export (None: it has no invisible mark, or no key/alignment)."""
        reg, sig = ev.registration, ev.signature
        if self.key is None or ev.payload is None or reg is None or not reg.ok or sig is None:
            return None
        try:
            from pipeline.trace.tamper import measure_pilots

            folded = ev.folded or marktest.fold_registered(rgb, reg.matrix, (sig.width, sig.height))
            return measure_pilots(folded, self.key.subkey("invisible"), int(ev.payload, 16))
        except Exception as exc:  # a supporting signal: an odd picture must not stop the trace of a folder
            return PilotCheck(measured=False, reason=f"the check failed: {type(exc).__name__}: {exc}")

    def _mark(self, record: StoredRecord, sig: sg.ExportTrace) -> np.ndarray | None:
        """The export's visible-mark footprint in its thumbnail frame (None: no mark), and the mark itself put on
        ``sig`` (the thumbnail is of the unmarked photo); rendered once per candidate (~30 ms) for registration
        and the visible-mark check alike."""
        if not record.record.visible_mark:
            return None
        at = (record.record.record_id, sig.thumb_size)
        if at in self._marks:
            self._marks.move_to_end(at)
        else:
            rendered = mark_layer(record.record, sig.thumb_size, self.owner)
            for arr in rendered:  # shared by every suspect from now on: nobody may write into them
                if arr is not None:
                    arr.setflags(write=False)
            self._marks[at] = rendered
            while len(self._marks) > MARK_CACHE:
                self._marks.popitem(last=False)
        mask, layer = self._marks[at]
        sig.mark_layer = layer
        return mask

    def _metadata(self, data: bytes | None, rgb: np.ndarray) -> MetadataCheck | None:
        if data is None:
            return None
        try:
            from pipeline.metadata.check import check_claim
            from pipeline.metadata.read import read_embedded

            meta = read_embedded(data)
            return check_claim(meta, rgb, self.public_key)
        except Exception as exc:  # metadata is a supporting signal: never let it stop a trace
            return MetadataCheck(present=False, signature_valid=False, owner=None, payload=None, record_id=None,
                                 phash_distance=None, problems=[f"the check failed: {type(exc).__name__}: {exc}"])

    def trace_path(self, path: Path, *, seen: datetime | None = None) -> TraceResult:
        """One suspect file's trace; ``seen`` is when the copy was found (None: the file's modification time)."""
        from pipeline.stages.ingest import load_rgb

        try:
            data = files.read_limited(path, files.SUSPECT_MAX_BYTES)
            rgb, capture = load_rgb(data, max_side=SUSPECT_MAX_SIDE)
        except Exception as exc:  # an unreadable suspect is a per-file result, not a crash of the sweep
            msg = str(exc).removeprefix("<bytes>: ")  # the decoder saw bytes; the suspect's path is named already
            v = Verdict("no-match", 0.0, None, None, [f"The file could not be read as an image: {msg}"])
            return TraceResult(suspect=str(path), verdict=v, error=msg)
        if seen is None:
            with contextlib.suppress(OSError):
                seen = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC).replace(microsecond=0)
        res = self.trace_image(rgb, name=str(path), data=data, seen=seen)
        res.capture = capture.as_dict()
        res.suspect_sha256 = hashlib.sha256(data).hexdigest()
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
