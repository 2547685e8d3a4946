"""Helpers shared by several test modules (fixtures live in conftest.py): the CLI as a subprocess, ledger reads."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_images"


def cm(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real ``catalogmark`` CLI (``python -m pipeline``) run from this checkout."""
    full_env = os.environ.copy() | {"PYTHONPATH": str(REPO)} | (env or {})
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)


def ledger_records(ledger: Any, *, run_id: str | None = None) -> list[dict[str, Any]]:
    """Every record (of one run, if given) in seq order, read through ``ledger export``'s JSON Lines: the stored
    columns without ``fmt``, dict columns as objects."""
    buf = io.StringIO()
    ledger.export_jsonl(buf)
    docs = [json.loads(line) for line in buf.getvalue().splitlines()]
    return [{k: v for k, v in doc.items() if k not in ("type", "fmt")} for doc in docs
            if doc["type"] == "record" and (run_id is None or doc["run_id"] == run_id)]
