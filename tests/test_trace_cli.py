"""End-to-end trace: export the sample catalog with the real CLI, attack the outputs, and `catalogmark trace` them.

Issue 4's acceptance: every attack of the invisible-watermark suite plus heavier crops (keep 50 % of the area)
and a painted-out visible mark; top-1 correct on >= 99 % of the attacked copies; no match at all on unrelated
pictures, other products on white among them. Every main image (the pictures thieves copy most) gets every attack
in its first preset's export (amazon) and a rotating half of them in the second's (shopify); gallery images get a
rotating share of four each, to keep the suite's time bounded (the trace of ~280 copies is most of its time).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from pipeline.keys import OwnerKey, write_key
from pipeline.ledger import Ledger
from pipeline.marks.visible import render_mark
from pipeline.models import Owner, VisibleMark
from tests.attacks import ATTACKS, _crop_sides
from tests.conftest import FIXED_SECRET, product_on_white, screenshot_html
from tests.helpers import REPO, SAMPLES, cm
from tests.synthetic import product_shot

PRESETS = ("amazon", "shopify")  # amazon: invisible mark only (pure white main); shopify: visible mark as well
ATTACKS_PER_OUTPUT = 4
MAIN_SHARE = 2  # main images' exports after the first preset's get one attack in MAIN_SHARE (rotating)
OWNER = Owner(name="Example Studio", copyright="(c) 2026 Example Studio. All rights reserved.",
              url="https://example.com/licensing", watermark_text="example.studio")


def crop50(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """Keep half the area (71 % of each side) at a seeded position."""
    return _crop_sides(rgb, 0.5 ** 0.5, seed)


def paint_out(rgb: np.ndarray, mark: VisibleMark) -> np.ndarray:
    """What a thief does to a visible mark: inpaint over its exact footprint (dilated a little)."""
    alpha = render_mark(OWNER, mark, (rgb.shape[1], rgb.shape[0]))[..., 3]
    mask = cv2.dilate((alpha > 4).astype(np.uint8) * 255, np.ones((7, 7), np.uint8))
    return cv2.cvtColor(cv2.inpaint(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), mask, 5, cv2.INPAINT_TELEA),
                        cv2.COLOR_BGR2RGB)


def save(rgb: np.ndarray, path: Path) -> None:
    """Suspects are saved as a thief's download would be: JPEG (quality 92)."""
    Image.fromarray(rgb).save(path, "JPEG", quality=92)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("trace-e2e")
    (d / "catalogmark.toml").write_text(
        f'[owner]\nname = "{OWNER.name}"\ncopyright = "{OWNER.copyright}"\nurl = "{OWNER.url}"\n\n'
        f'[watermark]\ntext = "{OWNER.watermark_text}"\n')
    # A fixed key: the mark's keyed placement decides some visible-mark readings, and a CI run must not depend on a
    # random draw (one random key in a clean-clone run read an intact copy's mark as not present; see the note).
    write_key(OwnerKey(FIXED_SECRET), d / "owner.key")
    args = ["run", str(SAMPLES), "--out", str(d / "out"), "--ledger", str(d / "ledger.sqlite"),
            "--key-file", str(d / "owner.key"), "--jobs", "2", "--json", "--quiet"]
    for p in PRESETS:
        args += ["--preset", p]
    r = cm(*args, cwd=d)
    assert r.returncode == 0, r.stderr
    outputs = json.loads(r.stdout)["outputs"]
    assert len(outputs) == 14 * len(PRESETS)
    return {"dir": d, "outputs": outputs}


@pytest.fixture(scope="module")
def attacked(exported) -> dict[str, Any]:
    """The attacked copies (suspect path -> expected record id) and the unrelated pictures, in two folders."""
    d = exported["dir"]
    sus, neg = d / "suspects", d / "unrelated"
    halves = (sus / "a", sus / "b")  # two folders, traced by two processes at once (2 cores)
    for folder in (*halves, neg):
        folder.mkdir(parents=True)
    expected: dict[str, str] = {}
    attack_of: dict[str, str] = {}
    suite = dict(ATTACKS) | {"crop50": crop50}
    names = sorted(suite)
    with Ledger.open(d / "ledger.sqlite") as led:
        records = {o["record_id"]: led.get(o["record_id"]) for o in exported["outputs"]}
    for i, o in enumerate(sorted(exported["outputs"], key=lambda o: o["output"])):
        rgb = np.asarray(Image.open(o["output"]).convert("RGB"))
        stem = f"{o['sku']}-{o['preset']}-{Path(o['output']).stem}"
        # main images (the ones thieves copy most) get every attack; gallery images a rotating share
        if o["role"] != "main":
            todo = [names[(i * ATTACKS_PER_OUTPUT + j) % len(names)] for j in range(ATTACKS_PER_OUTPUT)]
        elif o["preset"] == PRESETS[0]:
            todo = names
        else:
            todo = names[i % MAIN_SHARE::MAIN_SHARE]
        for name in todo:
            path = halves[len(expected) % 2] / f"{stem}--{re.sub(r'[^a-z0-9]+', '_', name.lower())}.jpg"
            save(suite[name](rgb, i), path)
            expected[str(path)], attack_of[str(path)] = o["record_id"], name
        stored = records[o["record_id"]]
        vm = stored.record.visible_mark if stored is not None else None
        if vm:  # the visible mark painted out, then the usual recompression
            mark = VisibleMark.from_dict(vm)
            path = halves[len(expected) % 2] / f"{stem}--painted_out.jpg"
            save(ATTACKS["jpeg70"](paint_out(rgb, mark), i), path)
            expected[str(path)], attack_of[str(path)] = o["record_id"], "painted-out"
    unrelated = {
        "chelsea": skimage.data.chelsea(), "camera": np.dstack([skimage.data.camera()] * 3),
        "cat": skimage.data.cat(), "ihc": skimage.data.immunohistochemistry(),
        "coins": np.dstack([skimage.data.coins()] * 3),
    }
    for seed in range(4):
        unrelated[f"white-product-{seed}"] = product_on_white((1600, 1600), 100 + seed)
        unrelated[f"product-shot-{seed}"] = product_shot(200 + seed, (1500, 1500))
    for name, rgb in unrelated.items():
        save(np.ascontiguousarray(rgb[..., :3]), neg / f"{name}.jpg")
    # trace must work from the ledger and the key alone, months later: the export folder is gone
    (d / "out").rename(d / "out-moved-away")
    return {"suspects": sus, "halves": halves, "unrelated": neg, "expected": expected, "attack_of": attack_of}


def trace_json(exported, *paths: Path, report: Path | None = None) -> tuple[int, list[dict[str, Any]], str]:
    d = exported["dir"]
    args = ["trace", *map(str, paths), "--ledger", str(d / "ledger.sqlite"), "--key-file", str(d / "owner.key"),
            "--json"]
    if report is not None:
        args += ["--report", str(report)]
    r = cm(*args, cwd=d)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else [], r.stderr


@pytest.fixture(scope="module")
def swept(exported, attacked) -> dict[str, Any]:
    """Folder sweeps over all attacked copies (the monthly sweep a seller does), two folders at once."""
    d = exported["dir"]
    env = os.environ.copy() | {"PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline", "trace", str(half), "--ledger",
                               str(d / "ledger.sqlite"), "--key-file", str(d / "owner.key"), "--json"],
                              cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for half in attacked["halves"]]
    outs = [p.communicate(timeout=900) for p in procs]
    docs = [doc for out, _err in outs for doc in (json.loads(out) if out.strip() else [])]
    return {"code": max(p.returncode for p in procs), "docs": docs, "stderr": "".join(e for _o, e in outs)}


def test_every_attacked_copy_is_traced_to_its_export(attacked, swept):
    docs = swept["docs"]
    assert len(docs) == len(attacked["expected"]) >= 14 * len(PRESETS) * ATTACKS_PER_OUTPUT, swept["stderr"]
    wrong = []
    for doc in docs:
        want = attacked["expected"][doc["suspect"]]
        got = (doc["match"] or {}).get("record_id")
        if doc["verdict"] != "match" or got != want:
            wrong.append((attacked["attack_of"][doc["suspect"]], Path(doc["suspect"]).name, doc["verdict"], got))
    timings = [d["signals"].get("timings_ms", {}).get("total", 0.0) for d in docs]
    print(f"\ntrace e2e: top-1 {len(docs) - len(wrong)}/{len(docs)} attacked copies; per-suspect total ms "
          f"p50 {np.percentile(timings, 50):.0f} p95 {np.percentile(timings, 95):.0f} max {max(timings):.0f}; "
          f"wrong: {wrong}")
    assert 1 - len(wrong) / len(docs) >= 0.99, wrong
    assert swept["code"] == (1 if any(d["verdict"] != "match" for d in docs) else 0)
    covered = set(attacked["attack_of"].values())
    assert covered >= set(ATTACKS) | {"crop50", "painted-out"}


def test_a_match_names_sku_preset_source_and_output(exported, swept):
    outputs = {o["record_id"]: o for o in exported["outputs"]}
    for doc in swept["docs"]:
        m = doc["match"]
        if m is None:
            continue
        o = outputs[m["record_id"]]
        assert (m["sku"], m["preset"]) == (o["sku"], o["preset"])
        assert Path(m["output"]).resolve() == Path(o["output"]).resolve()  # as recorded (the folder has moved)
        assert m["source"] == o["source"]
        assert 0.99 <= doc["confidence"] <= 1.0
        assert isinstance(doc["signals"], dict)


def test_painted_out_visible_mark_is_still_traced_and_reported(exported, attacked, swept):
    painted = [d for d in swept["docs"] if attacked["attack_of"][d["suspect"]] == "painted-out"]
    assert painted, "shopify marks every role: there must be painted-out copies"
    assert all(d["verdict"] == "match" for d in painted)
    # the original is never in doubt; which of its exports (Shopify's marked one or Amazon's unmarked one) was
    # copied can be, when the watermark cannot be read either (low-texture cut-outs): the report says so
    by_id = {o["record_id"]: o for o in exported["outputs"]}
    assert all(d["match"]["source"] == by_id[attacked["expected"][d["suspect"]]]["source"] for d in painted)
    exact = [d for d in painted if d["match"]["record_id"] == attacked["expected"][d["suspect"]]]
    assert len(exact) >= 0.9 * len(painted)
    # the report says the mark was removed (never that it is still there) ...
    status = {Path(d["suspect"]).name: d["signals"]["visible_mark"]["status"] for d in painted}
    assert all(v in ("removed", "altered") for v in status.values()), status
    print(f"\ntrace e2e: painted-out marks {sum(v == 'removed' for v in status.values())}/{len(status)} 'removed', "
          f"exact export {len(exact)}/{len(painted)}")
    assert sum(v == "removed" for v in status.values()) >= 0.8 * len(status), status
    # ... and that it is in place on intact copies of marked exports (where the copy still covers it)
    overlays = {"painted-out", "logo15", "banner18"}  # these may cover the mark on purpose
    intact = {Path(d["suspect"]).name: d["signals"]["visible_mark"] for d in swept["docs"]
              if attacked["attack_of"][d["suspect"]] not in overlays and d["match"]
              and d["signals"].get("visible_mark", {}).get("expected")}
    wrong = {name: vm for name, vm in intact.items() if vm["status"] not in ("present", "cropped-out")}
    assert intact and not wrong, wrong


def test_unrelated_pictures_never_match(exported, attacked):
    code, docs, err = trace_json(exported, attacked["unrelated"])
    assert len(docs) == len(list(attacked["unrelated"].iterdir())), err
    print(f"\ntrace e2e: unrelated pictures matched: {sum(d['verdict'] != 'no-match' for d in docs)}/{len(docs)}")
    assert [d["suspect"] for d in docs if d["verdict"] != "no-match"] == []
    assert all(d["match"] is None for d in docs)
    assert code == 1  # trace exits 1 when some suspect has no match


def test_evidence_report_renders_in_chromium(exported, attacked, chromium, tmp_path):
    picks = sorted(attacked["suspects"].rglob("*--crop50.jpg"))[:2] + sorted(attacked["unrelated"].glob("chelsea*"))
    report = tmp_path / "evidence.html"
    code, docs, err = trace_json(exported, *picks, report=report)
    assert code == 1 and [d["verdict"] for d in docs] == ["match", "match", "no-match"], err
    twin = json.loads(report.with_suffix(".json").read_text())
    assert [s["verdict"] for s in twin["suspects"]] \
        == ["match", "match", "no-match"]
    html = report.read_text()
    assert "src=\"http" not in html and "src='http" not in html  # self-contained: images embedded
    png = screenshot_html(chromium, report, tmp_path / "evidence.png", height=2000)
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.std() > 20
    assert (np.abs(pixels.astype(int) - [29, 43, 69]).sum(axis=2) < 12).mean() > 0.02  # header band drawn


def test_trace_usage_errors_are_clear(exported, attacked, tmp_path):
    d = exported["dir"]
    r = cm("trace", str(tmp_path / "nope.jpg"), "--ledger", str(d / "ledger.sqlite"),
           "--key-file", str(d / "owner.key"), cwd=d)
    assert r.returncode == 2 and "nope.jpg" in r.stderr and "Traceback" not in r.stderr
    some = sorted(attacked["suspects"].rglob("*.jpg"))[0]
    r = cm("trace", str(some), "--ledger", str(tmp_path / "missing.sqlite"), "--key-file", str(d / "owner.key"), cwd=d)
    assert r.returncode != 0 and "no ledger" in r.stderr and "Traceback" not in r.stderr
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    r = cm("trace", str(broken), "--ledger", str(d / "ledger.sqlite"), "--key-file", str(d / "owner.key"), "--json",
           cwd=d)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    doc = json.loads(r.stdout)[0]
    assert doc["verdict"] == "no-match" and doc["signals"].get("error")


def test_tracing_with_another_owners_key_says_so(exported, attacked, tmp_path):
    d = exported["dir"]
    write_key(OwnerKey(b"\x07" * 32), tmp_path / "other.key")
    some = sorted(attacked["suspects"].rglob("*.jpg"))[0]
    r = cm("trace", str(some), "--ledger", str(d / "ledger.sqlite"), "--key-file", str(tmp_path / "other.key"),
           "--json", cwd=d)
    assert "warning: the key given (cm1:" in r.stderr and "made none of the ledger's records" in r.stderr
    assert f"made with {OwnerKey(FIXED_SECRET).fingerprint} (28 records)" in r.stderr
    json.loads(r.stdout)  # the warning stays on stderr: --json is still one document
    r = cm("trace", str(some), "--ledger", str(d / "ledger.sqlite"), "--key-file", str(d / "owner.key"), cwd=d)
    assert "warning" not in r.stderr
