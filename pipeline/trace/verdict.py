"""Verdict: fuse hash distances, registration, the informed watermark read, metadata and the visible mark.

How the confidence is calibrated (and what it means): ``confidence`` of a "match" is ``1 - p`` where ``p`` is
an upper bound on the probability that an image *not* derived from the matched export would produce the
evidence seen.  Each independent decisive signal contributes its own bound and the bounds multiply (the
watermark's keyed check does not depend on the picture's content, so it is independent of the registration):

* **Invisible watermark** payload equal to the record's payload: the reader's analytic false-positive bound
  (``Detection.false_positive_probability``: the keyed check, 2^-26 per decode, 2^-31 per blind decode
  through a scheme 2 pilot set), accepted when <= 1e-6. When every decode missed, the registered exports' own
  payloads are tested (``pipeline.trace.marktest``: the copy's correlation z with the export's chips, bound
  exp(-z^2 / 2) per test by Hoeffding over the key's chip signs, counted for every test; present at
  ``DETECT_Z``).
* **Registration**: a non-degenerate affine with >= ``MIN_INLIERS`` RANSAC inliers, then the aligned suspect
  is compared with the export's thumbnail (``register.dense_ncc``): tile-median correlations of the colour
  layout and of the grey fine detail.  *strong* when colour >= ``NCC_STRONG`` and grey >= ``NCC_GREY_STRONG``;
  *corroborated* when colour >= ``NCC_MATCH``, grey >= ``NCC_GREY_MATCH`` and the global perceptual hash agrees
  (best PDQ distance <= 31).  Either is decisive; its bound is the rule of three over the hard-negative
  calibration set: ``REG_CAL_PAIRS`` registrations of attacked copies against *other* products on the same
  white background with the same silhouette, label layout, label fonts and striped prints, none of which
  passed, so the false-match rate is < 3 / ``REG_CAL_PAIRS`` at 95 % confidence (``bench/trace_bench.py
  --calibrate --products 300``: 1200 attacked copies scored colour >= 0.962, the 9600 other-product
  registrations <= 0.832, and none of them passed either tier).
* **Signed metadata** naming the record, with a valid signature by the owner's key and pixels matching the
  signed pHash: Ed25519 forgery is infeasible, but metadata can be copied onto other pixels, so it only counts
  when the pixels match too (``pixels_match``); its bound is taken as 1e-9.

Hash distances and the visible-mark check are reported as supporting signals, never decisive on their own:
unrelated products on white can sit close in PDQ space.  A "no-match" has ``confidence = 1 - MISS_RATE``
(the measured share of attacked copies the pipeline fails to trace), lowered when partial evidence exists.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeGuard

import numpy as np

from pipeline.invisible.chiptest import DETECT_Z
from pipeline.ledger import StoredRecord
from pipeline.metadata.check import MetadataCheck
from pipeline.trace.candidates import (
    HASH_CORROBORATES,
    NCC_GREY_MATCH,
    NCC_GREY_STRONG,
    NCC_MATCH,
    NCC_STRONG,
    WM_MAX_FP,
    CandidateEvidence,
    payload_hex,
    pick_registered,
    registration_tier,
)
from pipeline.trace.evidence import (
    NOT_READ_REASON,
    TESTED,
    CandidateRegistration,
    CandidateSummary,
    HashSignal,
    PilotCheck,
    RegistrationSignal,
    RegistrationThresholds,
    Signals,
    Verdict,
    VisibleCheck,
    WatermarkReading,
)
from pipeline.trace.index import PDQ_MATCH, PHASH_MATCH, Candidate
from pipeline.trace.register import MIN_INLIERS, Registration

REG_CAL_PAIRS = 9600  # hard-negative registrations in the calibration run, zero accepted (see module docstring)
REG_FALSE_MATCH = 3.0 / REG_CAL_PAIRS
META_FALSE_MATCH = 1e-9
MISS_RATE = 0.01  # share of attacked copies not traced: measured 0 of 1240 (calibration + bench), bounded at 1 %
P_FLOOR = 1e-12  # confidences are reported no closer to 1 than this

THRESHOLDS = RegistrationThresholds(NCC_STRONG, NCC_GREY_STRONG, NCC_MATCH, NCC_GREY_MATCH, HASH_CORROBORATES)

__all__ = ["Verdict", "decide", "read_watermark", "with_pilot_check"]


# ------------------------------------------------------------------------------------------- watermark


def read_watermark(suspect: np.ndarray, key: Any, *, registration: Registration | None = None,
                   export_size: tuple[int, int] | None = None) -> WatermarkReading:
    """Read the invisible watermark: informed (``Hint`` from the registration) when registered, else blind."""
    if key is None:
        return WatermarkReading.unavailable("no owner key: the invisible watermark needs the secret key")
    try:
        from pipeline import invisible
    except ImportError as exc:  # the watermark package is optional for trace: report, do not fail
        return WatermarkReading.unavailable(f"invisible watermark reader unavailable ({exc})")
    informed = registration is not None and registration.ok and export_size is not None
    try:
        if informed:
            assert registration is not None and export_size is not None
            hint = invisible.Hint(homography=registration.matrix.astype(np.float64),
                                  export_size=(int(export_size[0]), int(export_size[1])))
            det = invisible.read(suspect, key, hint=hint)
        else:
            det = invisible.read(suspect, key)
    except Exception as exc:  # a reader failure on an odd image must not stop the trace of a whole folder
        return WatermarkReading.unavailable(f"watermark reader failed: {type(exc).__name__}: {exc}")
    found = bool(det.found)
    return WatermarkReading(
        available=True, mode="informed" if informed else "blind", found=found,
        payload=payload_hex(det.payload) if found else None, confidence=round(float(det.confidence), 4),
        bit_errors=None if det.bit_errors is None else int(det.bit_errors),
        false_positive_probability=float(det.false_positive_probability))


# -------------------------------------------------------------------------------------------- decision


def registration_signal(reg: Registration | None, pdq_distance: int | None = None) -> RegistrationSignal:
    if reg is None:
        return RegistrationSignal.not_attempted()
    tier = registration_tier(reg, pdq_distance)
    return RegistrationSignal(
        ok=reg.ok, reason=reg.reason, verified=tier in ("strong", "corroborated"), tier=tier,
        inliers=reg.inliers, matches=reg.matches, min_inliers=MIN_INLIERS, ncc=round(reg.ncc, 3),
        ncc_grey=round(reg.ncc_grey, 3), thresholds=THRESHOLDS, mirrored=reg.mirrored,
        inlier_spread=round(reg.spread, 4), transform=reg.transform if reg.ok else None)


def hash_signal(c: Candidate, quality: int | None = None) -> HashSignal:
    return HashSignal(pdq_distance=c.pdq_distance, pdq_threshold=PDQ_MATCH, pdq_variant=c.pdq_variant,
                      phash_distance=c.phash_distance, phash_threshold=PHASH_MATCH,
                      sketch_votes=round(c.sketch_score, 2), distances=dict(c.distances), match=c.hash_match,
                      suspect_pdq_quality=quality)


def candidate_summary(ev: CandidateEvidence) -> CandidateSummary:
    c, r = ev.candidate, ev.registration
    return CandidateSummary(
        record_id=c.record_id, score=round(c.score, 3), pdq_distance=c.pdq_distance,
        phash_distance=c.phash_distance, sketch_votes=round(c.sketch_score, 2),
        registration=None if r is None else CandidateRegistration(r.ok, r.inliers, round(r.ncc, 3)))


def _metadata_ok(meta: MetadataCheck | None) -> TypeGuard[MetadataCheck]:
    """A signed claim by the owner's key whose pixels match the signed pHash."""
    return meta is not None and meta.present and meta.signature_valid and meta.signer_verified and meta.pixels_match


def _choose(evidence: list[CandidateEvidence], meta: MetadataCheck | None) -> CandidateEvidence | None:
    """The candidate the evidence names: the export whose payload the picture carries (registered first), else
    the registered one that explains it best, else the one its valid signed metadata names."""
    chosen = next((ev for ev in evidence if ev.watermark_matches and ev.registered), None)
    if chosen is None:
        chosen = next((ev for ev in evidence if ev.watermark_matches), None)
    if chosen is None:
        verified = [ev for ev in evidence if ev.registered]
        if verified:
            chosen = pick_registered(verified)
    if chosen is None and _metadata_ok(meta) and meta.record_id:
        chosen = next((ev for ev in evidence if ev.record_id == meta.record_id), None)
    return chosen


def decide(evidence: list[CandidateEvidence], *, metadata: MetadataCheck | None = None,
           blind_watermark: WatermarkReading | None = None, payload_records: list[StoredRecord] | None = None,
           pdq_quality: int | None = None) -> Verdict:
    """Fuse everything into one verdict (see the module docstring for the calibration).

    ``evidence``: candidates in search order, registered/read as far as the tracer got; ``metadata``: the
    suspect's signed-metadata check; ``blind_watermark``: a blind read (when nothing registered);
    ``payload_records``: ledger records carrying the payload that read decoded.
    """
    chosen = _choose(evidence, metadata)
    bw = blind_watermark
    blind_record: StoredRecord | None = None
    if chosen is None and bw is not None and bw.found and bw.fp_bound <= WM_MAX_FP:
        blind_record = payload_records[0] if payload_records else None
    base = Signals(candidates=tuple(candidate_summary(ev) for ev in evidence[:8]), metadata=metadata)
    if chosen is not None:
        return _from_candidate(chosen, evidence, base, bw, metadata, pdq_quality)
    if blind_record is not None:
        return _from_blind_read(blind_record, base, bw)
    return _no_match(evidence, base, bw, payload_records, pdq_quality)


def _no_match(evidence: list[CandidateEvidence], signals: Signals, bw: WatermarkReading | None,
              payload_records: list[StoredRecord] | None, pdq_quality: int | None) -> Verdict:
    """Nothing decisive: say what was checked, and how close it came (lowers the confidence)."""
    findings: list[str] = []
    best = max((ev.registration.ncc for ev in evidence if ev.registration is not None and ev.registration.ok),
               default=0.0)
    partial = float(np.clip(best / NCC_STRONG, 0.0, 1.0)) * 0.5
    first = evidence[0] if evidence else None
    unreadable = sorted({ev.registration.reason.removeprefix("not registered: ") for ev in evidence
                         if ev.registration is not None and ev.registration.reason.startswith("not registered:")})
    signals = replace(
        signals, hash=hash_signal(first.candidate, pdq_quality) if first is not None else None,
        watermark=bw if bw is not None else (first.watermark if first is not None and first.watermark else
                                             WatermarkReading.unavailable(NOT_READ_REASON)),
        unreadable_candidates=tuple(unreadable) if unreadable else None)
    if unreadable:
        findings.append("Some candidate records could not be checked: " + "; ".join(unreadable) + ".")
    if bw is not None and bw.found and not payload_records:
        findings.append(f"An invisible watermark made with the owner's key was found (payload {bw.payload}),"
                        " but no ledger record carries that payload.")
    findings.append("No export in the ledger matches this picture: no candidate aligned with it, no invisible "
                    "watermark of the owner was found, and no valid signed metadata names one of the owner's "
                    "records." if not evidence else
                    f"The closest ledger records were checked ({len(evidence)}); none aligned with this picture "
                    "and no watermark of the owner was found in it. It is not one of the owner's exports as far "
                    "as the evidence shows.")
    return Verdict("no-match", round((1 - MISS_RATE) * (1 - partial), 4), None, None, findings, signals)


def _from_candidate(chosen: CandidateEvidence, evidence: list[CandidateEvidence], signals: Signals,
                    bw: WatermarkReading | None, meta: MetadataCheck | None, pdq_quality: int | None) -> Verdict:
    """A named candidate: a match if a decisive signal (watermark, registration, signed metadata) backs it."""
    findings: list[str] = []
    p_parts: dict[str, float] = {}
    signals = replace(
        signals, hash=hash_signal(chosen.candidate, pdq_quality),
        registration=registration_signal(chosen.registration, chosen.candidate.pdq_distance),
        watermark=chosen.watermark or bw or WatermarkReading.unavailable(NOT_READ_REASON),
        visible_mark=chosen.visible or VisibleCheck(status="unchecked"))
    if chosen.watermark_matches:
        w = chosen.watermark
        assert w is not None
        p_parts["watermark"] = w.fp_bound
        findings.append(_watermark_finding(w, p_parts["watermark"]))
    if chosen.registered and chosen.registration is not None:
        p_parts["registration"] = REG_FALSE_MATCH
        findings.extend(_registration_findings(chosen))
    elif chosen.candidate.hash_match:
        findings.append(f"The perceptual hashes are close (PDQ distance {chosen.candidate.pdq_distance} of 256, "
                        f"threshold {PDQ_MATCH}).")
    findings.extend(_visible_findings(chosen.visible))
    if not chosen.watermark_matches and chosen.registered:
        twins = [ev for ev in evidence if ev is not chosen and ev.registered and ev.source == chosen.source]
        if twins:
            signals = replace(signals, other_exports_aligned=tuple(ev.record_id for ev in twins))
            findings.append(_twins_finding(chosen, twins))
    if _metadata_ok(meta) and meta.record_id == chosen.record_id:
        p_parts["metadata"] = META_FALSE_MATCH
        findings.append("The file still carries the owner's signed metadata naming this record, and the "
                        "signature verifies with the owner's public key.")
    if not p_parts:  # only hashes or a weak registration: not enough to claim a match
        signals = replace(signals, note="candidate found but not verified")
        findings.insert(0, "A similar export exists, but the evidence is not strong enough to call this a copy.")
        return Verdict("no-match", round((1 - MISS_RATE) * 0.5, 4), None, None, findings, signals)
    return _match(chosen.record, chosen.record_id, p_parts, findings, signals)


def _watermark_finding(w: WatermarkReading, p: float) -> str:
    if w.mode == TESTED:
        return (f"The picture carries the owner's invisible watermark for exactly this export (payload {w.payload}): "
                "too little of it survived to decode the payload, but registered onto the export the copy correlates "
                f"with the data chips that payload dictates (z = {w.chip_z}; {DETECT_Z:g} needed). On a picture "
                f"without the owner's mark the chance of that is at most {p:.1e} (Hoeffding's bound over the key's "
                "chip signs, counting every export tested).")
    return (f"The picture carries the owner's invisible watermark with payload {w.payload}, which is the "
            f"payload of exactly this export (read {w.mode or ''}, {w.bit_errors} bit errors "
            f"corrected). The chance of that happening by accident is at most {p:.1e}.")


def with_pilot_check(verdict: Verdict, check: PilotCheck | None) -> Verdict:
    """The verdict with the removal-attempt check on its export (``pipeline.trace.tamper``) among its signals and,
    when the check found the pilots attacked, a finding that says so with the measurement behind it."""
    if check is None:
        return verdict
    findings = list(verdict.findings)
    if check.attacked and check.ratio_db is not None:
        lo, hi = check.unattacked_range_db or (float("nan"), float("nan"))
        flagged, of = check.false_alarms or (0, 0)
        findings.append(
            "The copy shows signs that its invisible watermark was attacked: the pilot tones a reader uses to find "
            f"the mark are {check.ratio_db:+.1f} dB relative to the mark's data chips, which are still clearly "
            f"there (correlation z = {check.chip_z:.1f}). Ordinary processing weakens both together: copies "
            f"re-encoded, resized, cropped, blurred or recoloured measure {lo:+.1f} to {hi:+.1f} dB, and this "
            f"check flags below {check.flag_below_db:+.1f} dB ({flagged} of {of} such copies flagged). Pilots "
            "notched out of the picture are what a removal attempt leaves.")
    return replace(verdict, findings=findings, signals=replace(verdict.signals, pilots=check))


def _from_blind_read(rec: StoredRecord, signals: Signals, bw: WatermarkReading | None) -> Verdict:
    """No candidate named, but a blind read found a payload that a ledger record carries."""
    assert bw is not None
    p_parts = {"watermark": bw.fp_bound}
    findings = [f"The picture carries the owner's invisible watermark with payload {bw.payload} "
                f"(read blind, {bw.bit_errors} bit errors corrected), which identifies this export. "
                f"The chance of that by accident is at most {p_parts['watermark']:.1e}. The picture itself "
                "could not be aligned with the export's stored features."]
    return _match(rec, rec.record.record_id, p_parts, findings, replace(signals, watermark=bw))


def _match(rec: StoredRecord | None, record_id: str, p_parts: dict[str, float], findings: list[str],
           signals: Signals) -> Verdict:
    p = max(float(np.prod(list(p_parts.values()))), P_FLOOR)
    signals = replace(signals, false_match_probability={"combined": p, **p_parts})
    r = None if rec is None else rec.record
    findings.insert(0, f"This picture is a copy of the owner's export {r.output if r else ''} "
                       f"(SKU {r.sku if r else '?'}, preset {r.preset if r else '?'}), made from the original "
                       f"{r.source if r else '?'}.")
    return Verdict("match", round(1 - p, 12), record_id, p, findings, signals)


def _registration_findings(chosen: CandidateEvidence) -> list[str]:
    reg = chosen.registration
    assert reg is not None
    tier = registration_tier(reg, chosen.candidate.pdq_distance)
    return [
        f"The picture lines up with the owner's export point for point: {reg.inliers} matching features "
        f"agree on one geometric transform, and after alignment its colours correlate with the export's "
        f"at {reg.ncc:.2f} and its fine detail at {reg.ncc_grey:.2f}"
        + (f" (decisive above {NCC_STRONG} and {NCC_GREY_STRONG})." if tier == "strong" else
           f", and the perceptual hash of the whole picture agrees (PDQ distance "
           f"{chosen.candidate.pdq_distance} of 256)."),
        _transform_sentence(reg.transform),
    ]


def _visible_findings(v: VisibleCheck | None) -> list[str]:
    status = None if v is None else v.status
    if status == "removed":
        return ["The owner's visible watermark has been removed from this copy: its keyed position no "
                "longer matches the export while the rest of the picture does."]
    if status == "present":
        return ["The owner's visible watermark is still in place at its keyed position."]
    return []


def _twins_finding(chosen: CandidateEvidence, twins: list[CandidateEvidence]) -> str:
    reg = chosen.registration
    names = ", ".join(f"{ev.record.record.preset if ev.record else '?'} "
                      f"({ev.registration.inliers if ev.registration else 0} matching features)" for ev in twins)
    return (f"Other exports of the same original also line up with it: {names}. This export was named "
            f"because it explains the picture best ({reg.inliers if reg else 0} matching features); without "
            "an invisible-watermark read, which of these exports was copied is less certain than that the "
            "picture is the owner's.")


def _transform_sentence(t: dict[str, Any]) -> str:
    parts = []
    if t.get("mirrored"):
        parts.append("mirrored")
    if abs(t.get("rotation_deg", 0)) >= 0.5:
        way = "counter-clockwise" if t["rotation_deg"] > 0 else "clockwise"
        parts.append(f"rotated {abs(t['rotation_deg']):.1f} degrees {way}")
    kept = t.get("export_area_kept", 1.0)
    if kept < 0.97:
        parts.append(f"cropped to about {kept:.0%} of the export's area")
    sc = t.get("scale", 1.0)
    if abs(sc - 1) > 0.03:
        parts.append(f"rescaled to {sc:.0%} of the export's size")
    if t.get("aspect_change", 1.0) > 1.05:
        parts.append(f"stretched (aspect ratio changed by {t['aspect_change'] - 1:.0%})")
    if not parts:
        return "The copy has the export's geometry (no crop, rotation or flip)."
    return "Compared with the export, the copy was " + ", ".join(parts) + "."
