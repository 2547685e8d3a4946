"""Typed trace evidence: what trace learnt about a suspect and the verdict's signals, each with its JSON.

``as_json()`` of each type is the object ``trace --json`` and the evidence report print (README.md "Trace");
the report and the CLI read the attributes. These are plain data: no image code, so any module may import them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # metadata.check imports the hashing code; this module stays plain data
    from pipeline.metadata.check import MetadataCheck

#: The reading when no watermark was read at all.
NOT_READ_REASON = "not read"
#: The mode of a reading that tested the registered export's own payload (``pipeline.trace.marktest``) after
#: every decode missed.
TESTED = "informed test of the export's payload (the decodes missed)"


@dataclass(frozen=True)
class WatermarkReading:
    """One read of the invisible watermark: informed (with a registration hint) or blind, or why none was made."""

    available: bool  # False: no key, no reader, or the reader failed (``reason`` says which)
    reason: str | None = None
    mode: str | None = None  # "informed", "blind", "blind (after the informed read missed)" or TESTED
    found: bool = False
    payload: str | None = None  # 10 lowercase hex digits, when found
    confidence: float | None = None
    bit_errors: int | None = None
    false_positive_probability: float | None = None
    chip_z: float | None = None  # TESTED: the copy's correlation with the export's chips (trace.marktest)

    @classmethod
    def unavailable(cls, reason: str) -> WatermarkReading:
        return cls(available=False, reason=reason)

    @property
    def fp_bound(self) -> float:
        """The false-positive bound of a find (1 when nothing was read)."""
        return 1.0 if self.false_positive_probability is None else float(self.false_positive_probability)

    def as_json(self) -> dict[str, Any]:
        if not self.available:
            return {"available": False, "reason": self.reason}
        doc = {"available": True, "mode": self.mode, "found": self.found, "payload": self.payload,
               "confidence": self.confidence, "bit_errors": self.bit_errors,
               "false_positive_probability": self.false_positive_probability}
        return doc if self.chip_z is None else doc | {"chip_z": self.chip_z}


@dataclass(frozen=True)
class VisibleCheck:
    """Is the record's visible mark still at its keyed place in the registered suspect?"""

    status: str  # "present" | "removed" | "altered" | "cropped-out" | "unchecked" | "none"
    expected: bool | None = None  # None: no check was made at all (the verdict's "unchecked" placeholder)
    note: str | None = None
    detail_ncc: float | None = None  # band-pass correlation in the mark's footprint (None: not measured)
    ncc: float | None = None  # tone correlation there
    detail_ncc_unmarked: float | None = None  # the same against the export without its mark
    own_mark: bool = False  # the copy carries this export's own mark (see verdict.pick_twin)
    thresholds: tuple[float, float] | None = None  # (present at or above, removed below)

    def as_json(self) -> dict[str, Any]:
        if self.expected is None:
            return {"status": self.status}
        doc: dict[str, Any] = {"expected": self.expected, "status": self.status}
        if self.detail_ncc is not None:
            present, removed = self.thresholds or (None, None)
            doc.update(detail_ncc=self.detail_ncc, ncc=self.ncc, detail_ncc_unmarked=self.detail_ncc_unmarked,
                       own_mark=self.own_mark, thresholds={"present": present, "removed_below": removed})
        doc["note"] = self.note
        return doc


@dataclass(frozen=True)
class PilotCheck:
    """The removal-attempt check (``pipeline.trace.tamper``): the export's pilot tones against its data chips."""

    measured: bool
    reason: str | None = None  # why not measured
    chip_z: float | None = None  # correlation of the copy with the export's chips (~N(0, 1) without them)
    ratio_db: float | None = None  # pilot / chip amplitude, dB (the larger over the pilot sets it may carry)
    pilot_set: str | None = None  # which set gave it: "payload's" (scheme 2) or "scheme 1"
    attacked: bool = False  # ratio below the flag threshold with the chips clearly present
    flag_below_db: float | None = None  # the threshold, and what it rests on (tamper's measured constants)
    chip_z_min: float | None = None
    unattacked_range_db: tuple[float, float] | None = None
    false_alarms: tuple[int, int] | None = None  # (flagged, of) unattacked copies

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"measured": self.measured, "attacked": self.attacked, "chip_z": self.chip_z}
        if not self.measured:
            doc["reason"] = self.reason
            return doc
        doc.update(ratio_db=self.ratio_db, pilot_set=self.pilot_set, flag_below_db=self.flag_below_db,
                   chip_z_min=self.chip_z_min,
                   unattacked_range_db=None if self.unattacked_range_db is None else list(self.unattacked_range_db),
                   false_alarms=None if self.false_alarms is None else
                   {"flagged": self.false_alarms[0], "of": self.false_alarms[1]})
        return doc


@dataclass(frozen=True)
class RegistrationThresholds:
    """When a registration is decisive: strong on its own, or corroborated by a PDQ match."""

    strong_colour: float
    strong_grey: float
    match_colour: float
    match_grey: float
    pdq: int

    def as_json(self) -> dict[str, Any]:
        return {"strong": {"colour": self.strong_colour, "grey": self.strong_grey},
                "with_hash_match": {"colour": self.match_colour, "grey": self.match_grey, "pdq": self.pdq}}


@dataclass(frozen=True)
class RegistrationSignal:
    """The chosen candidate's registration as the verdict reports it (``attempted`` False: there was none)."""

    ok: bool
    reason: str
    attempted: bool = True
    verified: bool = False
    tier: str = "none"
    inliers: int = 0
    matches: int = 0
    min_inliers: int = 0
    ncc: float = 0.0
    ncc_grey: float = 0.0
    thresholds: RegistrationThresholds | None = None
    mirrored: bool = False
    inlier_spread: float = 0.0
    transform: dict[str, Any] | None = None  # register.Registration.transform, when ok

    @classmethod
    def not_attempted(cls) -> RegistrationSignal:
        return cls(ok=False, reason="not attempted", attempted=False)

    def as_json(self) -> dict[str, Any]:
        if not self.attempted:
            return {"ok": False, "reason": self.reason}
        return {
            "ok": self.ok, "verified": self.verified, "tier": self.tier, "reason": self.reason,
            "inliers": self.inliers, "matches": self.matches, "min_inliers": self.min_inliers, "ncc": self.ncc,
            "ncc_grey": self.ncc_grey, "thresholds": None if self.thresholds is None else self.thresholds.as_json(),
            "mirrored": self.mirrored, "inlier_spread": self.inlier_spread, "transform": self.transform,
        }


@dataclass(frozen=True)
class HashSignal:
    """A candidate's perceptual-hash distances with their thresholds."""

    pdq_distance: int
    pdq_threshold: int
    pdq_variant: str
    phash_distance: int
    phash_threshold: int
    sketch_votes: float
    distances: dict[str, int]
    match: bool
    suspect_pdq_quality: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "pdq_distance": self.pdq_distance, "pdq_threshold": self.pdq_threshold, "pdq_variant": self.pdq_variant,
            "phash_distance": self.phash_distance, "phash_threshold": self.phash_threshold,
            "sketch_votes": self.sketch_votes, "distances": dict(self.distances), "match": self.match,
            "suspect_pdq_quality": self.suspect_pdq_quality,
        }


@dataclass(frozen=True)
class CandidateRegistration:
    """The short form of a candidate's registration in the candidate list."""

    ok: bool
    inliers: int
    ncc: float

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "inliers": self.inliers, "ncc": self.ncc}


@dataclass(frozen=True)
class CandidateSummary:
    """One checked candidate in the verdict's list (search score, distances, registration if attempted)."""

    record_id: str
    score: float
    pdq_distance: int
    phash_distance: int
    sketch_votes: float
    registration: CandidateRegistration | None

    def as_json(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "score": self.score, "pdq_distance": self.pdq_distance,
                "phash_distance": self.phash_distance, "sketch_votes": self.sketch_votes,
                "registration": None if self.registration is None else self.registration.as_json()}


@dataclass(frozen=True)
class Signals:
    """Everything the verdict rests on; a field is None when that signal is not reported."""

    candidates: tuple[CandidateSummary, ...] | None = None
    metadata: MetadataCheck | None = None  # the suspect's signed-metadata check (metadata.check.check_claim)
    hash: HashSignal | None = None
    registration: RegistrationSignal | None = None
    watermark: WatermarkReading | None = None
    visible_mark: VisibleCheck | None = None
    pilots: PilotCheck | None = None  # the removal-attempt check on the named export
    unreadable_candidates: tuple[str, ...] | None = None
    other_exports_aligned: tuple[str, ...] | None = None
    note: str | None = None
    false_match_probability: dict[str, float] | None = None  # "combined" and one bound per decisive signal

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.candidates is not None:
            doc["candidates"] = [c.as_json() for c in self.candidates]
        if self.metadata is not None:
            from pipeline.metadata.check import metadata_summary

            doc["metadata"] = metadata_summary(self.metadata)
        for name, value in (("hash", self.hash), ("registration", self.registration),
                            ("watermark", self.watermark), ("visible_mark", self.visible_mark),
                            ("pilots", self.pilots)):
            if value is not None:
                doc[name] = value.as_json()
        for name, items in (("unreadable_candidates", self.unreadable_candidates),
                            ("other_exports_aligned", self.other_exports_aligned)):
            if items is not None:
                doc[name] = list(items)
        if self.note is not None:
            doc["note"] = self.note
        if self.false_match_probability is not None:
            doc["false_match_probability"] = dict(self.false_match_probability)
        return doc


@dataclass(frozen=True)
class TimestampSignal:
    """One RFC 3161 token of the named record's run, re-checked against the run's root when traced."""

    authority: str  # the TSA certificate's subject (its URL if unreadable)
    tsa_url: str
    gen_time: str  # ISO 8601 UTC, the TSA's time
    verifies: bool
    problem: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"authority": self.authority, "tsa_url": self.tsa_url, "gen_time": self.gen_time,
                "verifies": self.verifies, "problem": self.problem or None}


@dataclass(frozen=True)
class LedgerProof:
    """The named record's proof of priority: its Merkle inclusion proof to the run root, the run's timestamps,
    and the priority they give in one sentence (``problem``: why there is no proof, e.g. the run is not sealed)."""

    record_hash: str = ""
    leaf_index: int | None = None
    tree_size: int | None = None
    path_length: int | None = None
    root: str | None = None
    verifies: bool = False
    timestamps: tuple[TimestampSignal, ...] = ()
    recorded_at: str | None = None  # earliest verified token's time, else the run's seal by the owner's clock
    vouched_by: str | None = None  # the TSA of that token; None: only the owner's clock
    seen_at: str | None = None  # when this copy was found (its file time) or traced
    days_before: int | None = None
    sentence: str = ""
    problem: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"record_hash": self.record_hash, "leaf_index": self.leaf_index, "tree_size": self.tree_size,
                "path_length": self.path_length, "root": self.root, "verifies": self.verifies,
                "timestamps": [t.as_json() for t in self.timestamps], "recorded_at": self.recorded_at,
                "vouched_by": self.vouched_by, "seen_at": self.seen_at, "days_before": self.days_before,
                "sentence": self.sentence, "problem": self.problem or None}


@dataclass
class Verdict:
    verdict: str  # "match" | "no-match"
    confidence: float
    record_id: str | None
    false_match_probability: float | None
    findings: list[str]
    signals: Signals = field(default_factory=Signals)

