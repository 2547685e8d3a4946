"""Tests for run planning: rerun keys, output-name collisions, and the up-to-date decisions with their reasons."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pipeline import plan
from pipeline.catalog import CatalogItem
from pipeline.models import Expected


def _job(make_preset, tmp_path: Path, **kw):
    item = CatalogItem(str(tmp_path / "a.jpg"), "cat/S/a.jpg", "S", "main", 0)
    plans, failures = plan.plan_photos([item], [make_preset(**kw)], str(tmp_path / "out"))
    assert not failures
    return plans[0].jobs[0]


def test_job_key_changes_with_every_input(make_preset, tmp_path, owner, owner_key, other_key):
    job = _job(make_preset, tmp_path)
    od = plan.owner_digest(owner)
    base = plan.job_key("aa", job, owner_key.fingerprint, od)
    assert base == plan.job_key("aa", job, owner_key.fingerprint, od)
    assert base != plan.job_key("ab", job, owner_key.fingerprint, od)
    assert base != plan.job_key("aa", dataclasses.replace(job, preset=make_preset(digest="1" * 64)),
                                owner_key.fingerprint, od)
    assert base != plan.job_key("aa", job, other_key.fingerprint, od)
    assert base != plan.job_key("aa", job, owner_key.fingerprint,
                                plan.owner_digest(dataclasses.replace(owner, url="x")))
    # where the catalog is, and how its path was typed, do not matter
    moved = dataclasses.replace(job, source="/elsewhere/a.jpg", source_display="a.jpg")
    assert base == plan.job_key("aa", moved, owner_key.fingerprint, od)


def _expected(job, key: str, **kw) -> Expected:
    base = Expected(record_id="r1", job_key=key, output_sha256="o" * 64, source_sha256="aa",
                    preset_digest=job.preset.digest, key_fingerprint="kf", payload=None, width=1, height=1,
                    output_bytes=1)
    return dataclasses.replace(base, **kw)


def test_decide_names_the_reason(make_preset, tmp_path):
    job = _job(make_preset, tmp_path)
    key = "k" * 64
    exp = _expected(job, key)
    assert plan.decide(job, "aa", key, "kf", exp, "o" * 64) == ("current", "")
    assert plan.decide(job, "aa", key, "kf", None, None) == ("missing", "never exported")
    assert plan.decide(job, "aa", key, "kf", None, "x" * 64) == ("stale", "the output file has no ledger record")
    assert plan.decide(job, "aa", key, "kf", exp, None) == ("missing", "the output file was deleted")
    assert plan.decide(job, "aa", key, "kf", exp, "x" * 64) == ("stale", "the output file was modified after export")
    assert plan.decide(job, "ab", "j" * 64, "kf", exp, "o" * 64) == ("stale", "the source changed")
    other = _expected(job, key, preset_digest="2" * 64)
    assert plan.decide(job, "aa", "j" * 64, "kf", other, "o" * 64) == ("stale", f"preset {job.preset.name} changed")
    assert plan.decide(job, "aa", "j" * 64, "kf2", exp, "o" * 64) == ("stale", "the owner key changed")
    assert plan.decide(job, "aa", "j" * 64, "kf", exp, "o" * 64) == (
        "stale", "the owner profile or the pipeline version changed")
