"""What trace knows about one candidate export (``CandidateEvidence``), the registration tiers that make an
alignment decisive, and which of several aligned exports a copy came from (``pick_registered``: one photo's
exports by ``pick_twin``, then photos by how well copy and export cover each other).

The thresholds are calibrated as ``verdict``'s docstring says; the verdict combines what this module ranks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.invisible.chiptest import Folded
from pipeline.ledger import StoredRecord
from pipeline.trace import signatures as sg
from pipeline.trace.evidence import VisibleCheck, WatermarkReading
from pipeline.trace.index import Candidate
from pipeline.trace.register import MIN_INLIERS, Registration

NCC_STRONG = 0.9  # colour-layout correlation (tile median) decisive on its own ...
NCC_GREY_STRONG = 0.7  # ... together with this grey-detail correlation
NCC_MATCH = 0.8  # colour-layout correlation decisive only with a global perceptual-hash match ...
NCC_GREY_MATCH = 0.5  # ... together with this grey-detail correlation
HASH_CORROBORATES = 31  # PDQ distance (of 256) that corroborates a registration
WM_MAX_FP = 1e-6
PAYLOAD_HEX = 10  # PAYLOAD_BITS / 4


def payload_hex(value: Any) -> str | None:
    """A payload as the ledger stores it (10 lowercase hex digits), from an int, bytes or hex string."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.hex().rjust(PAYLOAD_HEX, "0")
    if isinstance(value, str):
        return value.strip().lower().removeprefix("0x").rjust(PAYLOAD_HEX, "0")
    return f"{int(value):0{PAYLOAD_HEX}x}"


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
    # the registered copy folded into this export's tile (marktest.fold_registered), made once for the payload
    # test and reused by the removal-attempt check
    folded: Folded | None = field(default=None, repr=False)

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
                marks_consistent(e), round(r.overlap if r else 0.0, 2),
                round(1.0 if e.padding is None else e.padding, 1),
                -(e.candidate.pdq_distance if e.candidate.pdq_distance is not None else 256),
                r.ncc if r else 0.0)

    return max(close, key=rank)


def marks_consistent(e: CandidateEvidence) -> bool:
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
