"""End to end: the presets with a product-fill rule (``[canvas] min_fill``), through the real CLI on the sample
catalog. Every main image of every such preset is measured on the output file itself (the product's box on
white, its longer extent against the frame) and must reach the preset's target, or say in its record and in the
run's warnings that the upscale limit stopped it; a trace of a trimmed export still names that export."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import pipeline.runner
from pipeline.imaging.productbox import fill_of, product_box
from pipeline.keys import OwnerKey, write_key
from pipeline.presets import list_presets, load_preset
from tests.conftest import FIXED_SECRET
from tests.helpers import SAMPLES, cm

FILL_PRESETS = tuple(p.name for p in list_presets() if p.canvas.min_fill)
OTHER = "shopify"  # no fill rule: its exports of the same photos are the other frames trace must tell apart

# The runner hands ingest each export's role (a fill rule names roles: Amazon's is the main image's only).
_RUNNER_PASSES_ROLE = re.search(r"canvas_for\([^)]*role", Path(pipeline.runner.__file__).read_text()) is not None
pytestmark = pytest.mark.skipif(not _RUNNER_PASSES_ROLE, reason="the runner does not pass job.role to "
                                "ingest.canvas_for / open_photo yet (the product-fill rule needs the role)")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("fill-e2e")
    (d / "catalogmark.toml").write_text('[owner]\nname = "Example Studio"\ncopyright = "(c) 2026 Example Studio"\n')
    write_key(OwnerKey(FIXED_SECRET), d / "owner.key")
    args = ["run", str(SAMPLES), "--out", str(d / "out"), "--ledger", str(d / "ledger.sqlite"),
            "--key-file", str(d / "owner.key"), "--jobs", "2", "--json", "--quiet"]
    for p in (*FILL_PRESETS, OTHER):
        args += ["--preset", p]
    r = cm(*args, cwd=d)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    with sqlite3.connect(d / "ledger.sqlite") as db:
        extra = {out: json.loads(e) for out, e in db.execute("SELECT output, extra FROM records")}
    return {"dir": d, "doc": doc, "extra": extra}


def measured_fill(path: str) -> float:
    a = np.asarray(Image.open(path).convert("RGB"))
    box = product_box(a, (255, 255, 255))
    assert box is not None, path
    return fill_of(box, (a.shape[1], a.shape[0]))


def test_presets_with_the_rule() -> None:
    assert {"amazon", "lazada"} <= set(FILL_PRESETS)
    assert load_preset("amazon").canvas.fill_roles == ("main",)


def test_every_main_image_reaches_its_presets_fill(run):
    outputs = run["doc"]["outputs"]
    warned = {w["message"]: w["exports"] for w in run["doc"].get("warnings", [])}
    checked, short = 0, 0
    lines = []
    for o in outputs:
        preset = load_preset(o["preset"])
        fill = run["extra"][o["output"]].get("fill")
        if o["preset"] not in FILL_PRESETS or o["role"] not in preset.canvas.fill_roles:
            assert fill is None, o["output"]  # no rule, no fill record (gallery images, other presets)
            continue
        got = measured_fill(o["output"])
        lines.append(f"{o['preset']:16} {o['sku']:14} fill {got:.3f} (record {fill['reached']:.3f}, "
                     f"upscale {fill['upscale']:.3f})")
        assert fill["target"] == preset.canvas.min_fill
        # the JPEG measures about the same: its ringing and the mark's chips at the product's edge can push the
        # box of not-white pixels out by a few px (+0.0105 measured on RUG-STONE's lazada main after the per-bit
        # informed embedding)
        assert abs(got - fill["reached"]) <= 0.015, (o["output"], got, fill)
        if fill["met"]:
            assert got >= preset.canvas.min_fill, (o["output"], got, fill)
        else:  # the documented shortfall: the upscale limit stopped it, and the run said so
            short += 1
            assert fill["upscale"] >= preset.canvas.max_upscale - 0.01 and got < preset.canvas.min_fill
            assert any("min_fill" in m for m in warned), warned
        assert fill["upscale"] <= preset.canvas.max_upscale + 0.01
        checked += 1
    print("\n" + "\n".join(lines))
    n_mains = len([p for p in SAMPLES.iterdir() if p.is_dir()])
    assert checked == n_mains * len(FILL_PRESETS)
    assert short == 0  # the sample mains all reach their targets within the presets' upscale limits


def test_fill_exports_keep_exact_white_and_a_true_frame(run):
    for o in run["doc"]["outputs"]:
        preset = load_preset(o["preset"])
        if o["role"] != "main" or o["preset"] not in FILL_PRESETS or "main" not in preset.pure_white_roles:
            continue
        a = np.asarray(Image.open(o["output"]).convert("RGB")).astype(int)
        for corner in (a[:8, :8], a[:8, -8:], a[-8:, :8], a[-8:, -8:]):
            if (np.abs(corner - 255) <= 2).all():
                assert (corner == 255).all(), o["output"]
        frame = run["extra"][o["output"]]["frame"]
        assert frame["canvas"] == [preset.canvas.width, preset.canvas.height]
        (sw, sh), (ox, oy) = frame["scaled"], frame["offset"]
        # the scaled photo covers the frame on an axis where it is larger, stays inside where smaller
        for size, off, side in ((sw, ox, preset.canvas.width), (sh, oy, preset.canvas.height)):
            assert (off <= 0 and off + size >= side) if size >= side else (0 <= off <= side - size)


def test_a_trimmed_export_is_traced_to_itself(run, tmp_path):
    d = run["dir"]
    by = {(o["preset"], o["sku"], o["role"]): o for o in run["doc"]["outputs"]}
    trimmed = [o for o in run["doc"]["outputs"] if o["preset"] == "amazon" and o["role"] == "main"
               and min(run["extra"][o["output"]]["frame"]["offset"]) < 0]
    assert trimmed, "the sample catalog has an Amazon main enlarged past the frame (trimmed)"
    want = {}
    for o in trimmed[:2]:
        a = np.asarray(Image.open(o["output"]).convert("RGB"))
        h, w = a.shape[:2]
        p = tmp_path / f"{o['sku']}-copy.jpg"
        Image.fromarray(a[h // 10: h - h // 10, w // 8: w - w // 10]).save(p, quality=85)  # a thief's crop
        want[str(p)] = o["record_id"]
        other = by[(OTHER, o["sku"], "main")]
        q = tmp_path / f"{o['sku']}-{OTHER}.jpg"
        Image.open(other["output"]).convert("RGB").save(q, quality=90)
        want[str(q)] = other["record_id"]
    r = cm("trace", *want, "--ledger", str(d / "ledger.sqlite"), "--key-file", str(d / "owner.key"), "--json",
           cwd=d)
    docs = json.loads(r.stdout)
    assert len(docs) == len(want), r.stderr
    for doc in docs:
        assert doc["verdict"] == "match", doc
        assert doc["match"]["record_id"] == want[doc["suspect"]], (doc["suspect"], doc["match"])


def test_a_product_too_small_for_the_upscale_limit_is_exported_with_a_warning(tmp_path):
    cat = tmp_path / "catalog" / "TINY-1"
    cat.mkdir(parents=True)
    a = np.full((600, 600, 3), 255, np.uint8)
    a[200:400, 220:380] = (40, 90, 150)  # 200 px tall: 85 % of Amazon's 2000 px needs 8.5x, the limit is 1.5x
    Image.fromarray(a).save(cat / "main.png")
    write_key(OwnerKey(FIXED_SECRET), tmp_path / "owner.key")
    (tmp_path / "catalogmark.toml").write_text('[owner]\nname = "Example Studio"\ncopyright = "(c) Example"\n')
    r = cm("run", str(tmp_path / "catalog"), "--preset", "amazon", "--out", str(tmp_path / "out"), "--ledger",
           str(tmp_path / "l.sqlite"), "--key-file", str(tmp_path / "owner.key"), "--json", "--quiet", cwd=tmp_path)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["failed"] == 0 and doc["processed"] == 1, r.stderr
    assert [w["exports"] for w in doc["warnings"] if "min_fill 0.85" in w["message"]] == [1], doc["warnings"]
    with sqlite3.connect(tmp_path / "l.sqlite") as db:
        (extra,) = db.execute("SELECT extra FROM records").fetchone()
    fill = json.loads(extra)["fill"]
    assert fill["met"] is False and fill["upscale"] == pytest.approx(1.5, abs=0.01)
    got = measured_fill(doc["outputs"][0]["output"])
    assert abs(got - fill["reached"]) <= 0.01 and got < 0.85
