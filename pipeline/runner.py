"""The runner: the only module that knows the stage order; drives workers and is the ledger's only writer."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import PIPELINE_VERSION
from pipeline.catalog import discover
from pipeline.errors import ConfigError, ImageError
from pipeline.keys import OwnerKey
from pipeline.ledger import Ledger
from pipeline.models import Failure, ImageJob, ImageResult, Owner, Record, Status
from pipeline.parallel import map_unordered
from pipeline.presets import Preset, render_output_name
from pipeline.stages import export, fingerprint, hashrecord, ingest, watermark

LEDGER_BATCH = 64  # records per ledger transaction
LEDGER_FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class WorkContext:
    """What every worker needs besides its job (pickled once per task; small)."""

    owner: Owner
    key: OwnerKey
    timestamp: datetime
    check: bool = False
    force: bool = False
    archive: str | None = None
    single_threaded: bool = False  # True when several worker processes share the cores: no OpenCV thread pools


@dataclass
class RunOptions:
    sources: Sequence[str]
    presets: Sequence[Preset]
    out_dir: str
    ledger_path: str
    owner: Owner
    key: OwnerKey
    jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    check: bool = False
    force: bool = False
    archive: str | None = None
    progress: bool = True
    argv: Sequence[str] = ()


@dataclass
class RunSummary:
    run_id: str | None
    merkle_root: str | None
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    check: bool = False
    missing: int = 0
    stale: int = 0
    current: int = 0
    seconds: float = 0.0
    manifests: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.missing == 0 and self.stale == 0

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "run_id": self.run_id,
            "merkle_root": self.merkle_root,
            "processed": self.processed,
            "skipped": self.skipped,
            "failed": self.failed,
            "failures": [{"path": f.path, "stage": f.stage, "error": f.error, "preset": f.preset} for f in self.failures],
            "outputs": self.outputs,
        }
        if self.check:
            doc["check"] = {"current": self.current, "missing": self.missing, "stale": self.stale}
        return doc


def source_timestamp() -> datetime:
    """``SOURCE_DATE_EPOCH`` if set (reproducible builds convention), else now; whole seconds, UTC."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env is not None:
        try:
            return datetime.fromtimestamp(int(env), UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise ConfigError(f"SOURCE_DATE_EPOCH must be a Unix timestamp in seconds, got {env!r}") from exc
    return datetime.now(UTC).replace(microsecond=0)


def _owner_digest(owner: Owner) -> str:
    logo = b""
    if owner.watermark_logo:
        try:
            logo = Path(owner.watermark_logo).read_bytes()
        except OSError:
            logo = owner.watermark_logo.encode()
    blob = json.dumps([owner.name, owner.copyright, owner.url, owner.watermark_text], ensure_ascii=False)
    return hashlib.sha256(blob.encode() + hashlib.sha256(logo).digest()).hexdigest()


def job_key(source_sha256: str, job: ImageJob, ctx: WorkContext) -> str:
    """The rerun key: unchanged source bytes, preset, key, owner, pipeline version and identity -> same key."""
    parts = [
        "catalogmark-job:v1",
        source_sha256,
        job.preset.digest,
        ctx.key.fingerprint,
        PIPELINE_VERSION,
        job.identity,
        _owner_digest(ctx.owner),
        Path(job.output).name,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def record_id_for(key: str) -> str:
    return "r" + hashlib.sha256(("record|" + key).encode()).hexdigest()[:23]


def _file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def _archive_source(archive: str, source: str, sha: str) -> None:
    """Keep the original, write-once, content-addressed, bytes (and so EXIF) untouched."""
    target = Path(archive) / sha[:2] / (sha + Path(source).suffix.lower())
    if target.exists():
        return
    export.write_atomic(target, Path(source).read_bytes())
    os.chmod(target, 0o444)


def _trace_data(pixels: Any) -> tuple[bytes, bytes] | None:
    try:
        from pipeline.trace.signatures import compute_signature
    except ImportError:
        return None
    sig = compute_signature(pixels)
    return sig.search_keys(), sig.features()


def process_one(item: tuple[ImageJob, dict[str, Any] | None], ctx: WorkContext) -> ImageResult:
    """Worker: run one job through the five stages (or decide it is up to date). Never raises."""
    job, expected = item
    started = time.perf_counter()
    stage = "ingest"
    if ctx.single_threaded:
        import cv2

        cv2.setNumThreads(1)

    def failed(message: str) -> ImageResult:
        return ImageResult(
            job, "failed", failure=Failure(job.source_display, stage, message, job.preset.name),
            seconds=time.perf_counter() - started,
        )

    try:
        source_sha = _file_sha256(job.source)
        if source_sha is None:
            return failed("cannot read the source file")
        key = job_key(source_sha, job, ctx)
        if expected is not None and expected.get("job_key") == key and expected.get("output") == job.output:
            intact = _file_sha256(job.output) == expected.get("output_sha256")
            if intact and not ctx.force:
                up_to_date: Status = "current" if ctx.check else "skipped"
                return ImageResult(job, up_to_date, seconds=time.perf_counter() - started)
        if ctx.check:
            status: Status = "missing" if expected is None or not Path(job.output).exists() else "stale"
            return ImageResult(job, status, seconds=time.perf_counter() - started)

        canvas = ingest.ingest(job)
        if ctx.archive:
            _archive_source(ctx.archive, job.source, canvas.source_sha256)
        stage = "watermark"
        marked = watermark.watermark(canvas, job, ctx.owner, ctx.key)
        stage = "fingerprint"
        rid = record_id_for(key)
        fp = fingerprint.fingerprint(marked, canvas, job, ctx.owner, ctx.key, record_id=rid, timestamp=ctx.timestamp)
        stage = "export"
        exported = export.encode(marked, fp, job)
        stage = "hashrecord"
        record, pixels = hashrecord.hashrecord(
            exported, canvas, marked, fp, job, owner=ctx.owner, key_fingerprint=ctx.key.fingerprint,
            record_id=rid, job_key=key, timestamp=ctx.timestamp,
        )
        trace = _trace_data(pixels)
        if trace is not None:  # the side table is outside the chain; its digest in the record is not
            record.extra["trace_sha256"] = hashlib.sha256(trace[0] + trace[1]).hexdigest()
        stage = "export"
        export.write(exported)
        return ImageResult(job, "processed", record=record, trace=trace, seconds=time.perf_counter() - started)
    except ImageError as exc:
        stage = exc.stage or stage
        return failed(str(exc))
    except MemoryError:
        return failed("out of memory while processing this image")
    except Exception as exc:  # a bug in a stage must not take the run down; report it as this image's failure
        return failed(f"internal error: {type(exc).__name__}: {exc}")


def build_jobs(options: RunOptions) -> tuple[list[ImageJob], list[Failure]]:
    items = discover(list(options.sources))
    out_root = Path(options.out_dir).resolve()
    jobs: list[ImageJob] = []
    failures: list[Failure] = []
    claimed: dict[str, str] = {}
    for preset in options.presets:
        base = out_root / preset.name
        for item in items:
            n = item.position if item.role == "gallery" else 0
            name = render_output_name(
                preset, sku=item.sku, role=item.role, n=n, position=item.position, stem=Path(item.source).stem
            )
            output = str(base / name)
            if output in claimed:
                failures.append(Failure(item.display, "export",
                                        f"output name {name!r} collides with {claimed[output]} (preset {preset.name})",
                                        preset.name))
                continue
            claimed[output] = item.display
            jobs.append(ImageJob(item.source, item.display, item.sku, item.role, item.position,  # type: ignore[arg-type]
                                 preset, output))
    return jobs, failures


def _output_entry(job: ImageJob, record: Record | dict[str, Any]) -> dict[str, Any]:
    get = (lambda k: record.get(k)) if isinstance(record, dict) else (lambda k: getattr(record, k))
    return {
        "source": job.source_display,
        "output": job.output,
        "sku": job.sku,
        "role": job.role,
        "preset": job.preset.name,
        "sha256": get("output_sha256"),
        "record_id": get("record_id"),
        "payload": get("payload"),
        "width": get("width"),
        "height": get("height"),
        "bytes": get("output_bytes"),
    }


def _write_manifests(out_dir: str, outputs: list[dict[str, Any]], presets: Sequence[Preset]) -> list[str]:
    written = []
    for preset in presets:
        folder = Path(out_dir).resolve() / preset.name
        entries = sorted((o for o in outputs if o["preset"] == preset.name), key=lambda o: o["output"])
        doc = {
            "preset": preset.name,
            "preset_digest": preset.digest,
            "outputs": [
                {
                    "path": str(Path(o["output"]).relative_to(folder)),
                    "sku": o["sku"],
                    "role": o["role"],
                    "sha256": o["sha256"],
                    "size": o["bytes"],
                    "width": o["width"],
                    "height": o["height"],
                    "record_id": o["record_id"],
                    "source": o["source"],
                }
                for o in entries
            ],
        }
        path = folder / "manifest.json"
        export.write_atomic(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        written.append(str(path))
    return written


def _remove_stale_temp_files(out_dir: str, presets: Sequence[Preset]) -> None:
    """A run killed mid-write leaves ``.<name>.<random>.part`` temp files (never a partial output): tidy them."""
    for preset in presets:
        folder = Path(out_dir).resolve() / preset.name
        if folder.is_dir():
            for tmp in folder.rglob(".*.part"):
                tmp.unlink(missing_ok=True)


def run(options: RunOptions, *, on_result: Callable[[ImageResult], None] | None = None) -> RunSummary:
    """Run every (image, preset) job; stream results back, batch them into the ledger, write manifests."""
    started = time.perf_counter()
    ctx = WorkContext(options.owner, options.key, source_timestamp(), options.check, options.force, options.archive,
                      single_threaded=options.jobs > 1)
    jobs, upfront_failures = build_jobs(options)
    summary = RunSummary(run_id=None, merkle_root=None, check=options.check, failures=list(upfront_failures))
    summary.failed = len(upfront_failures)

    if options.check and not Path(options.ledger_path).exists():
        ledger = None
    else:
        ledger = Ledger.open(options.ledger_path)
    try:
        expected = {}
        if ledger is not None:
            if not options.check:
                ledger.recover()
            for job in jobs:
                expected[job.output] = ledger.latest_for(job.source_display, job.preset.name)
        run_id = None
        if not options.check:
            assert ledger is not None
            _remove_stale_temp_files(options.out_dir, options.presets)
            run_id = "run-" + ctx.timestamp.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)
            ledger.begin_run(run_id, {
                "pipeline_version": PIPELINE_VERSION,
                "key_fingerprint": options.key.fingerprint,
                "owner": options.owner.name,
                "presets": {p.name: p.digest for p in options.presets},
                "sources": list(options.sources),
                "jobs": len(jobs),
                "argv": list(options.argv),
                "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            })
            summary.run_id = run_id

        pending: list[ImageResult] = []
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal last_flush
            if ledger is not None and run_id is not None and pending:
                ledger.append(run_id, [r.record for r in pending if r.record is not None])
                traces = [(r.record.record_id, *r.trace) for r in pending if r.trace is not None and r.record]
                if traces:
                    ledger.put_traces(traces)
            pending.clear()
            last_flush = time.monotonic()

        progress = _progress(len(jobs), options.progress)
        try:
            for result in map_unordered(
                process_one, [(j, expected.get(j.output)) for j in jobs], args=(ctx,),
                jobs=options.jobs, backend=options.backend, scheduler=options.scheduler,
            ):
                _tally(summary, result, expected.get(result.job.output))
                if result.status == "processed":
                    pending.append(result)
                if len(pending) >= LEDGER_BATCH or time.monotonic() - last_flush > LEDGER_FLUSH_SECONDS:
                    flush()
                if on_result:
                    on_result(result)
                progress.update(1)
                if result.failure is not None:
                    progress.write(f"catalogmark: {result.failure.path} [{result.job.preset.name}] failed at "
                                   f"{result.failure.stage}: {result.failure.error}")
        finally:
            flush()
            progress.close()
        if ledger is not None and run_id is not None:
            summary.merkle_root = ledger.finish_run(run_id, {
                "processed": summary.processed, "skipped": summary.skipped, "failed": summary.failed,
            })
        summary.outputs.sort(key=lambda o: (o["preset"], o["output"]))
        if not options.check:
            summary.manifests = _write_manifests(options.out_dir, summary.outputs, options.presets)
    finally:
        if ledger is not None:
            ledger.close()
    summary.failures.sort(key=lambda f: (f.path, f.preset))
    summary.seconds = time.perf_counter() - started
    return summary


def _tally(summary: RunSummary, result: ImageResult, expected: dict[str, Any] | None) -> None:
    status = result.status
    if status == "processed" and result.record is not None:
        summary.processed += 1
        summary.outputs.append(_output_entry(result.job, result.record))
    elif status in ("skipped", "current") and expected is not None:
        if status == "skipped":
            summary.skipped += 1
        else:
            summary.current += 1
        summary.outputs.append(_output_entry(result.job, expected))
    elif status == "failed" and result.failure is not None:
        summary.failed += 1
        summary.failures.append(result.failure)
    elif status == "missing":
        summary.missing += 1
    elif status == "stale":
        summary.stale += 1


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def write(self, message: str) -> None:
        print(message, file=sys.stderr)

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True, desc="catalogmark")
