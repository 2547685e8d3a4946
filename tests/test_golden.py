"""Golden run: a fixed small catalog under SOURCE_DATE_EPOCH gives pinned outputs, records and preset digests.

The safety net for restructuring: a change either keeps every value below or changes them on purpose, and says so
in its commit. To re-pin after a deliberate change::

    CATALOGMARK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py

Pinned per export: the output's SHA-256 and the SHA-256 of the canonical JSON of its ledger record's fields (every
field, with the temporary folder written as ``<TMP>``; the chain fields are left out because run ids are random).
Also pinned: every built-in preset's digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.keys import OwnerKey, write_key
from pipeline.ledger import RECORD_FIELDS, canonical_json
from pipeline.presets import list_presets
from tests.conftest import FIXED_SECRET

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "golden-run.json"
SKUS = ("DECAL-HORSE", "MUG-ESPRESSO")  # PNG, JPEG and WebP sources; main and gallery roles
PRESETS = ("amazon", "shopify", "ebay", "aliexpress")
EPOCH = "1767225600"  # 2026-01-01T00:00:00Z
OWNER_TOML = (
    '[owner]\nname = "Example Studio"\ncopyright = "(c) 2026 Example Studio. All rights reserved."\n'
    'url = "https://example.com/licensing"\n\n[watermark]\ntext = "example.studio"\n'
)


def _normalise(value: object, tmp: str) -> object:
    if isinstance(value, str):
        return value.replace(tmp, "<TMP>")
    if isinstance(value, dict):
        return {k: _normalise(v, tmp) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, tmp) for v in value]
    return value


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory) -> dict[str, object]:
    work = tmp_path_factory.mktemp("golden")
    catalog = work / "catalog"
    for sku in SKUS:
        shutil.copytree(REPO / "sample_images" / sku, catalog / sku)
    (work / "catalogmark.toml").write_text(OWNER_TOML)
    write_key(OwnerKey(FIXED_SECRET), work / "owner.key")
    env = os.environ.copy() | {"PYTHONPATH": str(REPO), "SOURCE_DATE_EPOCH": EPOCH}
    args = [sys.executable, "-m", "pipeline", "run", "catalog", "--out", "out", "--ledger", "ledger.sqlite",
            "--key-file", "owner.key", "--jobs", "1", "--quiet"]
    for p in PRESETS:
        args += ["--preset", p]
    r = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    export = subprocess.run([sys.executable, "-m", "pipeline", "ledger", "export", "--ledger", "ledger.sqlite"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stderr
    tmp = str(work.resolve())
    exports: dict[str, dict[str, str]] = {}
    for line in export.stdout.splitlines():
        rec = json.loads(line)
        if rec["type"] != "record":
            continue
        fields = {name: _normalise(rec[name], tmp) for name in RECORD_FIELDS}
        out = Path(rec["output"]).resolve().relative_to(work.resolve() / "out").as_posix()
        exports[out] = {
            "output_sha256": hashlib.sha256((work / "out" / out).read_bytes()).hexdigest(),
            "record_sha256": hashlib.sha256(canonical_json(fields).encode()).hexdigest(),
            "pixel_sha256": str(rec["pixel_sha256"]),
            "payload": str(rec["payload"]),
        }
    presets = {p.name: p.digest for p in list_presets()}
    return {"exports": dict(sorted(exports.items())), "preset_digests": presets}


def test_golden_run_matches_pinned_values(golden_run):
    if os.environ.get("CATALOGMARK_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden_run, indent=1, sort_keys=True) + "\n")
        pytest.skip("golden values re-pinned")
    pinned = json.loads(GOLDEN.read_text())
    assert golden_run["preset_digests"] == pinned["preset_digests"]
    assert sorted(golden_run["exports"]) == sorted(pinned["exports"]), "a different set of outputs"
    changed = {
        out: sorted(k for k, v in values.items() if pinned["exports"][out][k] != v)
        for out, values in golden_run["exports"].items()
        if values != pinned["exports"][out]
    }
    assert not changed, f"outputs whose pinned values changed: {changed}"
