"""Trace: find which export a stolen copy came from, verify it, and write the evidence pack."""

from __future__ import annotations

from pipeline.trace.result import TraceResult
from pipeline.trace.signatures import TraceSignature, export_search_keys, photo_features
from pipeline.trace.tracer import Tracer, build_index, trace_files

__all__ = ["TraceResult", "TraceSignature", "Tracer", "build_index", "export_search_keys",
           "photo_features", "trace_files"]
