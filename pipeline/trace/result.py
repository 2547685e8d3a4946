"""One suspect's trace outcome: the verdict, the ledger record it names and what the evidence report shows.

Its own module so that the tracer (which makes it) and the report (which reads it) both import it and not each
other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.ledger import RunInfo, StoredRecord
from pipeline.trace.candidates import CandidateEvidence
from pipeline.trace.evidence import LedgerProof, Verdict


@dataclass
class TraceResult:
    """One suspect's outcome, with what the report needs.

    ``record`` is the record the verdict names (None: none, or the ledger has no row for it: then only
    ``verdict.record_id`` is known); ``evidence`` the candidate it was chosen from (None for a blind read).
    """

    suspect: str
    verdict: Verdict
    record: StoredRecord | None = None
    run: RunInfo | None = None
    evidence: CandidateEvidence | None = None
    suspect_rgb: np.ndarray | None = field(default=None, repr=False)
    capture: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    suspect_sha256: str | None = None  # SHA-256 of the bytes read (trace_path), hex; None when given pixels
    ledger_proof: LedgerProof | None = None  # the named record's inclusion proof, timestamps and priority

    @property
    def named(self) -> bool:
        """A record was named (a candidate or a blind read's payload), even if the ledger lacks its row."""
        return self.record is not None or self.evidence is not None

    def record_json(self) -> dict[str, Any]:
        """The named record's stored columns: all of them, only its id when the ledger has no row for it (its
        trace data outlived it), or {} if none was named."""
        if self.record is not None:
            return self.record.as_dict()
        return {} if self.evidence is None else {"record_id": self.evidence.record_id}

    def match_json(self) -> dict[str, Any] | None:
        """The ``match`` object of ``trace --json``: which export the suspect is a copy of (None: no match)."""
        if self.verdict.verdict != "match" or not self.named:
            return None
        if self.record is None:
            assert self.evidence is not None
            return {"record_id": self.evidence.record_id, "source": None, "sku": None, "preset": None,
                    "output": None}
        r = self.record.record
        return {"record_id": r.record_id, "source": r.source, "sku": r.sku, "preset": r.preset, "output": r.output}

    def as_json(self) -> dict[str, Any]:
        """The ``trace --json`` object (README.md "Trace") for this suspect."""
        match = self.match_json()
        signals = self.verdict.signals.as_json()
        if self.error:
            signals["error"] = self.error
        signals["timings_ms"] = {k: round(v * 1000, 1) for k, v in self.timings.items()}
        return {"suspect": self.suspect, "verdict": self.verdict.verdict, "confidence": self.verdict.confidence,
                "match": match, "signals": signals,
                "ledger_proof": None if self.ledger_proof is None else self.ledger_proof.as_json()}
