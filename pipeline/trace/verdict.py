"""Verdict: fuse hash distances, registration, the informed watermark read, metadata and the visible mark.

How the confidence is calibrated (and what it means): ``confidence`` of a "match" is ``1 - p`` where ``p`` is
an upper bound on the probability that an image *not* derived from the matched export would produce the
evidence seen.  Each independent decisive signal contributes its own bound and the bounds multiply (the
watermark's keyed check does not depend on the picture's content, so it is independent of the registration):

* **Invisible watermark** payload equal to the record's payload: the reader's analytic false-positive bound
  (``Detection.false_positive_probability``: the keyed check, 2^-26 per decode, 2^-31 per blind decode
  through a scheme 2 pilot set), accepted when <= 1e-6.
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

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pipeline.ledger import StoredRecord
from pipeline.trace import signatures as sg
from pipeline.trace.evidence import (
    NOT_READ_REASON,
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

NCC_STRONG = 0.9  # colour-layout correlation (tile median) decisive on its own ...
NCC_GREY_STRONG = 0.7  # ... together with this grey-detail correlation
NCC_MATCH = 0.8  # colour-layout correlation decisive only with a global perceptual-hash match ...
NCC_GREY_MATCH = 0.5  # ... together with this grey-detail correlation
HASH_CORROBORATES = 31  # PDQ distance (of 256) that corroborates a registration
REG_CAL_PAIRS = 9600  # hard-negative registrations in the calibration run, zero accepted (see module docstring)
REG_FALSE_MATCH = 3.0 / REG_CAL_PAIRS
WM_MAX_FP = 1e-6
META_FALSE_MATCH = 1e-9
MISS_RATE = 0.01  # share of attacked copies not traced: measured 0 of 1240 (calibration + bench), bounded at 1 %
P_FLOOR = 1e-12  # confidences are reported no closer to 1 than this
PAYLOAD_HEX = 10  # PAYLOAD_BITS / 4
THRESHOLDS = RegistrationThresholds(NCC_STRONG, NCC_GREY_STRONG, NCC_MATCH, NCC_GREY_MATCH, HASH_CORROBORATES)

__all__ = ["CandidateEvidence", "Verdict", "decide", "payload_hex", "read_watermark", "registration_tier",
           "with_pilot_check"]


def payload_hex(value: Any) -> str | None:
    """A payload as the ledger stores it (10 lowercase hex digits), from an int, bytes or hex string."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.hex().rjust(PAYLOAD_HEX, "0")
    if isinstance(value, str):
        return value.strip().lower().removeprefix("0x").rjust(PAYLOAD_HEX, "0")
    return f"{int(value):0{PAYLOAD_HEX}x}"


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


@dataclass
class CandidateEvidence:
    """Everything learnt about one candidate record (``record`` None: the ledger has no row for its id)."""

    candidate: Candidate
    record: StoredRecord | None
    signature: sg.ExportTrace | None  # its search keys, frame and photo features (None: not loaded)
    registration: Registration | None = None
    watermark: WatermarkReading | None = None
    visible: VisibleCheck | None = None
    mark: np.ndarray | None = field(default=None, repr=False)  # the visible mark's footprint (thumbnail frame)
    padding: float | None = None  # register.padding_agreement: the copy shows this export's background there

    @property
    def record_id(self) -> str:
        return self.candidate.record_id

    @property
    def source(self) -> str | None:
        return None if self.record is None else self.record.record.source

    @property
    def payload(self) -> str | None:
        """The record's payload as 10 hex digits (None: no invisible mark, or no record)."""
        return None if self.record is None else payload_hex(self.record.record.payload)

    @property
    def registered(self) -> bool:
        r = self.registration
        return registration_tier(r, self.candidate.pdq_distance) in ("strong", "corroborated")

    @property
    def watermark_matches(self) -> bool:
        w = self.watermark
        return bool(w is not None and w.found and w.payload and w.payload == self.payload
                    and w.fp_bound <= WM_MAX_FP)


def registration_tier(r: Registration | None, pdq_distance: int | None = None) -> str:
    """"strong" | "corroborated" (decisive), "weak" (aligned but not enough), "none"."""
    if r is None or not r.ok or r.inliers < MIN_INLIERS:
        return "none"
    if r.ncc >= NCC_STRONG and r.ncc_grey >= NCC_GREY_STRONG:
        return "strong"
    if (r.ncc >= NCC_MATCH and r.ncc_grey >= NCC_GREY_MATCH and pdq_distance is not None
            and pdq_distance <= HASH_CORROBORATES):
        return "corroborated"
    return "weak"


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


NCC_TIE = 0.02  # registered exports whose correlation is this close to the best one explain the picture equally well


def pick_registered(verified: list[CandidateEvidence]) -> CandidateEvidence:
    """The export that best explains the suspect among the registered candidates: the best export of each photo
    (``pick_twin``), then among photos the one that covers the copy and that the copy covers (``mutual_cover``).

    Two different photos of the owner can both align with one copy: a room mock-up contains the flat artwork of
    the packshot, a detail shot is a crop of the table shot. Their colour correlations say little about which was
    copied (a mock-up's wall correlates with a packshot's white once the artwork dominates, an overlay lowers the
    right one's); what does is the geometry: a copy of an export lies inside that export's frame and fills it,
    while a copy of the packshot fills only the artwork's part of the mock-up, and a copy of the table shot
    overhangs the detail shot. Then the most RANSAC inliers, then the colour correlation.
    """
    photos: dict[str, list[CandidateEvidence]] = {}
    for e in verified:
        photos.setdefault(e.source or e.record_id, []).append(e)
    best = [pick_twin(group) for group in photos.values()]
    return max(best, key=lambda e: (round(mutual_cover(e.registration), 1),
                                    e.registration.inliers if e.registration else 0,
                                    e.registration.ncc if e.registration else 0.0))


def mutual_cover(reg: Registration | None) -> float:
    """How well a registration says "this copy is that export": the smaller of the share of the export the copy
    covers and the share of the copy the export covers (1: the copy is the export, at most cropped slightly)."""
    if reg is None or not reg.ok:
        return 0.0
    return min(reg.overlap, reg.suspect_share)


def pick_twin(verified: list[CandidateEvidence]) -> CandidateEvidence:
    """The export that best explains the suspect among registered exports of one photo.

    Two exports of one photo (say the Amazon and the Shopify preset) both align with a copy of either, with colour
    correlations a few thousandths apart; that difference is noise. What separates them is the geometry and the
    marks of the export itself, so among those within NCC_TIE of the best correlation the winner is, in order:
    an export whose frame holds the copy (``fits_frame``: a copy lies inside the frame of the export it was made
    from); one whose own visible mark is in the copy (``visible_mark_check``'s ``own_mark``: the copy matches the
    export with its mark clearly better than without; the other exports of the photo do not carry it); the most
    RANSAC inliers (exports of one photo share one fit, so this separates crops: a cover export keeps only the
    inliers inside it); an export whose visible mark, if it has one, is not missing from the copy (a copy that
    fits neither frame, a screenshot say, without the mark is better explained by the twin that never had it; a
    painted-out copy of the marked export is told apart before this, by its frame); the tightest frame (the larger
    share of the export the copy covers: an uncropped copy covers all of its own export, less of a twin with more
    padding); the export whose padding the copy shows in its background colour (``register.padding_agreement``: a
    screenshot of an export with less padding, on a page that is not white, shows the page where its twin expects
    background); the smaller PDQ distance.
    """
    best = max(e.registration.ncc for e in verified if e.registration is not None)
    close = [e for e in verified if e.registration is not None and e.registration.ncc >= best - NCC_TIE]

    def rank(e: CandidateEvidence) -> tuple[bool, bool, int, bool, float, float, int, float]:
        r = e.registration
        return (fits_frame(r), e.visible is not None and e.visible.own_mark, r.inliers if r else 0,
                _marks_consistent(e), round(r.overlap if r else 0.0, 2),
                round(1.0 if e.padding is None else e.padding, 1),
                -(e.candidate.pdq_distance if e.candidate.pdq_distance is not None else 256),
                r.ncc if r else 0.0)

    return max(close, key=rank)


def _marks_consistent(e: CandidateEvidence) -> bool:
    """False when the export has a visible mark and the copy shows it removed or altered."""
    return not (e.visible is not None and e.visible.expected and e.visible.status in ("removed", "altered"))


FRAME_SLACK = 0.006  # share of the export's side a copy may overhang its frame by registration error alone


def fits_frame(reg: Registration | None) -> bool:
    """Does the suspect lie inside the export's frame (as any copy made from that export does, unless the thief
    added a border)? A copy of the Shopify export of a photo overhangs the Amazon export of the same photo by
    the difference in their padding, so this tells such twins apart before the inlier count does."""
    if reg is None or not reg.ok:
        return False
    x0, y0, x1, y1 = reg.transform["suspect_covers_export_box"]
    ew, eh = reg.export_size
    if not ew or not eh:
        return False
    return max(-x0 / ew, -y0 / eh, (x1 - ew) / ew, (y1 - eh) / eh) <= FRAME_SLACK


def _metadata_ok(meta: dict[str, Any]) -> bool:
    """A signed claim by the owner's key whose pixels match the signed pHash."""
    return bool(meta.get("present") and meta.get("signature_valid") and meta.get("signer_verified", True)
                and meta.get("pixels_match"))


def _choose(evidence: list[CandidateEvidence], meta: dict[str, Any]) -> CandidateEvidence | None:
    """The candidate the evidence names: the export whose payload the picture carries (registered first), else
    the registered one that explains it best, else the one its valid signed metadata names."""
    chosen = next((ev for ev in evidence if ev.watermark_matches and ev.registered), None)
    if chosen is None:
        chosen = next((ev for ev in evidence if ev.watermark_matches), None)
    if chosen is None:
        verified = [ev for ev in evidence if ev.registered]
        if verified:
            chosen = pick_registered(verified)
    if chosen is None and _metadata_ok(meta) and meta.get("record_id"):
        chosen = next((ev for ev in evidence if ev.record_id == meta["record_id"]), None)
    return chosen


def decide(evidence: list[CandidateEvidence], *, metadata: dict[str, Any] | None = None,
           blind_watermark: WatermarkReading | None = None, payload_records: list[StoredRecord] | None = None,
           pdq_quality: int | None = None) -> Verdict:
    """Fuse everything into one verdict (see the module docstring for the calibration).

    ``evidence``: candidates in search order, registered/read as far as the tracer got; ``metadata``: the
    suspect's signed-metadata check; ``blind_watermark``: a blind read (when nothing registered);
    ``payload_records``: ledger records carrying the payload that read decoded.
    """
    chosen = _choose(evidence, metadata or {})
    bw = blind_watermark
    blind_record: StoredRecord | None = None
    if chosen is None and bw is not None and bw.found and bw.fp_bound <= WM_MAX_FP:
        blind_record = payload_records[0] if payload_records else None
    base = Signals(candidates=tuple(candidate_summary(ev) for ev in evidence[:8]), metadata=metadata)
    if chosen is not None:
        return _from_candidate(chosen, evidence, base, bw, metadata or {}, pdq_quality)
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
                    bw: WatermarkReading | None, meta: dict[str, Any], pdq_quality: int | None) -> Verdict:
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
        findings.append(
            f"The picture carries the owner's invisible watermark with payload {w.payload}, which is the "
            f"payload of exactly this export (read {w.mode or ''}, {w.bit_errors} bit errors "
            f"corrected). The chance of that happening by accident is at most {p_parts['watermark']:.1e}.")
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
    if _metadata_ok(meta) and meta.get("record_id") == chosen.record_id:
        p_parts["metadata"] = META_FALSE_MATCH
        findings.append("The file still carries the owner's signed metadata naming this record, and the "
                        "signature verifies with the owner's public key.")
    if not p_parts:  # only hashes or a weak registration: not enough to claim a match
        signals = replace(signals, note="candidate found but not verified")
        findings.insert(0, "A similar export exists, but the evidence is not strong enough to call this a copy.")
        return Verdict("no-match", round((1 - MISS_RATE) * 0.5, 4), None, None, findings, signals)
    return _match(chosen.record, chosen.record_id, p_parts, findings, signals)


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
