"""Trace: find which export a stolen copy came from, verify it, and write the evidence pack."""

from __future__ import annotations

from pipeline.trace.signatures import TraceSignature, compute_signature
from pipeline.trace.tracer import MemoryStore, Tracer, TraceResult, build_index, trace_files

__all__ = ["MemoryStore", "TraceResult", "TraceSignature", "Tracer", "build_index", "compute_signature",
           "trace_files"]
