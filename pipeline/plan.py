"""Planning a run: jobs per photo and preset, rerun keys, and the up-to-date / missing / stale decisions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import PIPELINE_VERSION
from pipeline.catalog import CatalogItem
from pipeline.ledger import StoredRecord
from pipeline.marks import fonts
from pipeline.models import Expected, Failure, ImageJob, Owner, Status
from pipeline.presets import Preset, render_output_name


@dataclass(frozen=True)
class PhotoPlan:
    """One source photo and the export job of each preset it goes to (in preset order)."""

    source: str  # absolute path
    source_display: str
    jobs: tuple[ImageJob, ...]


def owner_digest(owner: Owner) -> str:
    """What of the owner profile changes outputs: names, URL, mark text, the logo's and the font's bytes, the
    metadata it keeps."""
    logo = b""
    if owner.watermark_logo:
        try:
            logo = Path(owner.watermark_logo).read_bytes()
        except OSError:
            logo = owner.watermark_logo.encode()
    fields: list[str] = [owner.name, owner.copyright, owner.url, owner.watermark_text]
    if owner.watermark_font:  # only when set: the keys of profiles without a font stay as they were
        fields.append("font:" + fonts.digest(owner.watermark_font))
    if owner.keep_metadata:  # likewise: profiles that keep nothing keep their keys
        fields.append("keep:" + ",".join(owner.keep_metadata))
    blob = json.dumps(fields, ensure_ascii=False)
    return hashlib.sha256(blob.encode() + hashlib.sha256(logo).digest()).hexdigest()


def job_key(source_sha256: str, job: ImageJob, key_fingerprint: str, owner_digest_hex: str) -> str:
    """The rerun key: unchanged source bytes, preset, key, owner, pipeline version, identity and output name
    give the same key. It does not depend on where the catalog is or how its path was typed."""
    parts = [
        "catalogmark-job:v1",
        source_sha256,
        job.preset.digest,
        key_fingerprint,
        PIPELINE_VERSION,
        job.identity,
        owner_digest_hex,
        Path(job.output).name,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def record_id_for(key: str) -> str:
    return "r" + hashlib.sha256(("record|" + key).encode()).hexdigest()[:23]


def plan_photos(items: Sequence[CatalogItem], presets: Sequence[Preset], out_dir: str
                ) -> tuple[list[PhotoPlan], list[Failure]]:
    """Every photo with its export jobs; two jobs claiming one output path fail up front (the later one), as does
    every export of an item the catalog found a problem with (an unusable SKU)."""
    out_root = Path(out_dir).resolve()
    failures: list[Failure] = []
    claimed: dict[str, str] = {}
    plans: list[PhotoPlan] = []
    for item in items:
        if item.problem is not None:
            failures.extend(Failure(item.display, "catalog", item.problem, preset.name) for preset in presets)
            continue
        jobs: list[ImageJob] = []
        for preset in presets:
            n = item.position if item.role == "gallery" else 0
            name = render_output_name(preset, sku=item.sku, role=item.role, n=n, position=item.position,
                                      stem=Path(item.source).stem)
            output = str(out_root / preset.name / name)
            try:
                output.encode("utf-8")
            except UnicodeEncodeError:  # {stem} of a file name with bytes that are not UTF-8
                failures.append(Failure(item.display, "export", "the file name is not valid UTF-8 (shown with "
                                        f"U+FFFD) and preset {preset.name} names outputs after it ({{stem}}): "
                                        "rename the file", preset.name))
                continue
            if output in claimed:
                failures.append(Failure(item.display, "export",
                                        f"output name {name!r} collides with {claimed[output]} (preset {preset.name})",
                                        preset.name))
                continue
            claimed[output] = item.display
            jobs.append(ImageJob(item.source, item.display, item.sku, item.role,  # type: ignore[arg-type]
                                 item.position, preset, output))
        if jobs:
            plans.append(PhotoPlan(item.source, item.display, tuple(jobs)))
    return plans, failures


def expected_from(stored: StoredRecord) -> Expected:
    r = stored.record
    return Expected(record_id=r.record_id, job_key=r.job_key, output_sha256=r.output_sha256,
                    source_sha256=r.source_sha256, preset_digest=r.preset_digest, key_fingerprint=r.key_fingerprint,
                    payload=r.payload, width=r.width, height=r.height, output_bytes=r.output_bytes)


def decide(job: ImageJob, source_sha256: str, key: str, key_fingerprint: str, expected: Expected | None,
           output_sha256: str | None) -> tuple[Status, str]:
    """Is this export up to date? ("current", "") or ("missing" | "stale", the reason, in words).

    ``output_sha256`` is the SHA-256 of the file at ``job.output`` now, or None if there is none.
    """
    if expected is None:
        if output_sha256 is None:
            return "missing", "never exported"
        return "stale", "the output file has no ledger record"
    if expected.job_key != key:
        if expected.source_sha256 != source_sha256:
            why = "the source changed"
        elif expected.preset_digest != job.preset.digest:
            why = f"preset {job.preset.name} changed"
        elif expected.key_fingerprint != key_fingerprint:
            why = "the owner key changed"
        else:
            why = "the owner profile or the pipeline version changed"
        return ("missing" if output_sha256 is None else "stale"), why
    if output_sha256 is None:
        return "missing", "the output file was deleted"
    if output_sha256 != expected.output_sha256:
        return "stale", "the output file was modified after export"
    return "current", ""
