"""The runner: the only module that knows the stage order; drives workers and is the ledger's only writer.

A worker takes one source photo with every export of it that needs work (``process_photo``): it reads and hashes
the file once, decodes it once at the largest geometry its presets need, computes the trace features once, and
runs each export through the stages. Each export comes back as a record plus an fsynced temp file; the parent
commits the records and only then renames the temp files to their final names, so no output is ever visible
without its record.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import PIPELINE_VERSION, files
from pipeline.catalog import IgnoredFile, scan
from pipeline.errors import BackendError, ImageError, RunInterrupted
from pipeline.keys import OwnerKey
from pipeline.ledger import FileStat, Ledger
from pipeline.lock import run_lock
from pipeline.models import (
    Expected,
    ExportTask,
    Failure,
    ImageJob,
    ImageResult,
    Owner,
    PhotoResult,
    PhotoTask,
    Record,
    WorkerDeath,
)
from pipeline.parallel import map_unordered
from pipeline.plan import PhotoPlan, decide, expected_from, job_key, owner_digest, plan_photos, record_id_for
from pipeline.presets import Preset
from pipeline.progress import make_progress
from pipeline.timefmt import now_iso, source_timestamp

if TYPE_CHECKING:
    from pipeline.stages.ingest import Photo

LEDGER_BATCH = 64  # records per ledger transaction
LEDGER_FLUSH_SECONDS = 2.0
#: A file modified this recently is not put in the stat cache: a write within the file system's timestamp
#: granularity after we hashed it would leave the same stat with other bytes ("racy" entries, as git calls them).
RACY_SECONDS = 2.0


@dataclass(frozen=True)
class WorkContext:
    """What every worker needs besides its task (pickled once per task; small)."""

    owner: Owner
    key: OwnerKey
    timestamp: datetime
    owner_digest: str
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


@dataclass(frozen=True)
class CheckItem:
    """One output that ``--check`` found missing or stale, and why."""

    output: str
    source: str
    preset: str
    status: str  # "missing" | "stale"
    reason: str


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
    check_items: list[CheckItem] = field(default_factory=list)
    seconds: float = 0.0
    manifests: list[str] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)  # message -> number of exports it concerns
    backend_error: str | None = None  # the parallel backend failed as a whole: the run was sealed interrupted
    ignored: list[IgnoredFile] = field(default_factory=list)  # files under a SRC folder that are not images

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
            "warnings": [{"message": m, "exports": n} for m, n in self.warnings.items()],
            "ignored": [{"path": i.path, "reason": i.reason} for i in self.ignored],
        }
        if self.check:
            doc["check"] = {
                "current": self.current, "missing": self.missing, "stale": self.stale,
                "items": [{"output": c.output, "source": c.source, "preset": c.preset, "status": c.status,
                           "reason": c.reason} for c in self.check_items],
            }
        return doc


# ------------------------------------------------------------------------------------------------------------
# Worker side


@contextlib.contextmanager
def _at(stage: str) -> Iterator[None]:
    """Run one stage: an ImageError without a stage gets this one; any other exception is a bug in the stage,
    reported as this export's failure (it must not take the run down)."""
    try:
        yield
    except ImageError as exc:
        exc.stage = exc.stage or stage
        raise
    except MemoryError:
        raise ImageError("out of memory while processing this image", stage=stage) from None
    except Exception as exc:
        raise ImageError(f"internal error: {type(exc).__name__}: {exc}", stage=stage) from exc


def _failed(job: ImageJob, exc: ImageError, started: float) -> ImageResult:
    return ImageResult(job, "failed", failure=Failure(job.source_display, exc.stage or "ingest", str(exc),
                                                      job.preset.name), seconds=time.perf_counter() - started)


def _archive_source(archive: str, source: str, sha: str, data: bytes) -> None:
    """Keep the original, write-once, content-addressed, bytes (and so EXIF) untouched."""
    target = Path(archive) / sha[:2] / (sha + Path(source).suffix.lower())
    if target.exists():
        return
    files.write_atomic(target, data)
    os.chmod(target, 0o444)


def _photo_features(photo: Photo) -> bytes:
    """The photo's trace features (registration keypoints and thumbnail), computed once for all its exports."""
    from pipeline.stages import ingest
    from pipeline.trace import signatures as sg

    uw, uh = photo.upright_size
    f = min(1.0, max(sg.FEATURE_SIDE, sg.THUMB_SIDE) / max(uw, uh))
    size = (max(1, round(uw * f)), max(1, round(uh * f)))
    return sg.photo_features(ingest.upright(photo, size, sg.WHITE))


def _export(photo: Photo, features: Callable[[], bytes], job: ImageJob, key: str, ctx: WorkContext
            ) -> ImageResult:
    """One export of a decoded photo through the stages, in order; its output left as a temp file."""
    from pipeline.stages import export, fingerprint, hashrecord, ingest, watermark
    from pipeline.trace import signatures as sg

    started = time.perf_counter()
    rid = record_id_for(key)
    try:
        with _at("ingest"):
            canvas = ingest.canvas_for(photo, job.preset.canvas, job.role)
        with _at("watermark"):
            marked = watermark.watermark(canvas, job, ctx.owner, ctx.key)
        with _at("fingerprint"):
            fp = fingerprint.fingerprint(marked, canvas, job, ctx.owner, ctx.key, record_id=rid,
                                         timestamp=ctx.timestamp)
        with _at("export"):
            exported = export.encode(marked, fp, job)
        with _at("hashrecord"):
            record, small = hashrecord.hashrecord(
                exported, canvas, marked, fp, job, owner=ctx.owner, key_fingerprint=ctx.key.fingerprint,
                record_id=rid, job_key=key, timestamp=ctx.timestamp,
            )
            keys = sg.export_search_keys(small, width=record.width, height=record.height,
                                         pdq=bytes.fromhex(record.pdq), pdq_quality=record.pdq_quality,
                                         phash=bytes.fromhex(record.phash))
            trace = (keys, features())
            record.extra["frame"] = {"scaled": list(canvas.scaled), "offset": list(canvas.offset),
                                     "canvas": [record.width, record.height],
                                     "background": list(job.preset.canvas.background)}
            # the side table is outside the chain; the digest of its blobs in the chained record is not
            record.extra["trace_sha256"] = hashlib.sha256(trace[0] + trace[1]).hexdigest()
        with _at("export"):
            try:
                tmp = files.write_temp(job.output, exported.data)
            except OSError as exc:
                raise ImageError(f"cannot write {job.output}: {exc.strerror or exc}") from exc
    except ImageError as exc:
        return _failed(job, exc, started)
    return ImageResult(job, "processed", record=record, trace=trace, temp_path=str(tmp),
                       seconds=time.perf_counter() - started, warnings=fp.warnings + canvas.warnings)


def warm_worker() -> None:
    """Worker start-up ahead of the first photo (``parallel.prestart``): import what ``process_photo`` and the
    stages import on first use (~0.3 s in a fresh interpreter). Changes no result."""
    from pipeline.invisible import embedder  # noqa: F401
    from pipeline.stages import export, fingerprint, hashrecord, ingest, watermark  # noqa: F401
    from pipeline.trace import signatures  # noqa: F401


def prestart(jobs: int, backend: str) -> None:
    """Start the worker processes of a coming ``run`` with these ``jobs`` and ``backend`` now, in the background,
    so that their start-up overlaps with loading the owner profile, presets and key, scanning and planning
    (``parallel.prestart``; nothing for one job or dask). ``run`` uses them; unused, they exit with the process."""
    from pipeline import parallel

    parallel.prestart(jobs, backend, warm_worker)


def process_photo(task: PhotoTask, ctx: WorkContext) -> PhotoResult:
    """Worker: one source photo, read and decoded once, through every export of it that is not up to date.

    Never raises: every problem is a failed ImageResult of the exports it concerns.
    """
    from pipeline.stages import fingerprint, ingest

    started = time.perf_counter()
    if ctx.single_threaded:
        import cv2

        cv2.setNumThreads(1)
    name = task.source_display
    try:
        src = ingest.read_source(task.source, name)
    except ImageError as exc:
        return PhotoResult(task.source, None, None, [_failed(t.job, exc, started) for t in task.exports])
    st, sha = src.stat, src.sha256
    results: list[ImageResult] = []
    todo: list[tuple[ImageJob, str]] = []
    for t in task.exports:
        key = job_key(sha, t.job, ctx.key.fingerprint, ctx.owner_digest)
        if not task.force:
            out_sha = t.output_sha256 or files.file_sha256(t.job.output)
            status, _reason = decide(t.job, sha, key, ctx.key.fingerprint, t.expected, out_sha)
            if status == "current":
                results.append(ImageResult(t.job, "skipped", seconds=time.perf_counter() - started))
                continue
        todo.append((t.job, key))
    if todo:
        try:
            with _at("ingest"):
                if ctx.archive:
                    _archive_source(ctx.archive, task.source, sha, src.data)
                photo, problems = ingest.open_photo(
                    src, name, [job.preset.canvas for job, _ in todo], [job.role for job, _ in todo],
                    describe=any(fingerprint.keep_names(job, ctx.owner) for job, _ in todo))
        except ImageError as exc:
            results.extend(_failed(job, exc, started) for job, _ in todo)
        else:
            del src  # the encoded bytes are no longer needed: keep one image in memory, not two
            cache: list[bytes] = []

            def features() -> bytes:  # once per photo, and only if some export of it gets that far
                if not cache:
                    assert photo is not None
                    cache.append(_photo_features(photo))
                return cache[0]

            for (job, key), problem in zip(todo, problems, strict=True):
                if problem is not None or photo is None:
                    results.append(_failed(job, problem or ImageError(f"{name}: cannot be decoded", "ingest"),
                                           started))
                else:
                    results.append(_export(photo, features, job, key, ctx))
    stat = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    return PhotoResult(task.source, sha, stat, results)


def worker_died(task: PhotoTask, death: WorkerDeath) -> PhotoResult:
    """The result of a photo whose worker process died while it held it: every export of it failed."""
    return PhotoResult(task.source, None, None, [
        ImageResult(t.job, "failed", failure=Failure(task.source_display, "worker", death.message, t.job.preset.name))
        for t in task.exports])


# ------------------------------------------------------------------------------------------------------------
# Parent side


class _StatCache:
    """The ledger's stat cache for this run: lookups up front, new entries written at the end (not in --check)."""

    def __init__(self, ledger: Ledger | None, paths: Sequence[str]) -> None:
        self._known = ledger.file_stats(paths) if ledger is not None else {}
        self.new: dict[str, tuple[FileStat, str]] = {}

    def sha(self, path: str, *, hash_if_unknown: bool) -> str | None:
        """SHA-256 of the file at ``path`` from the cache when its stat is unchanged, else (optionally) by
        reading it; None if there is no file (or it is unknown and not to be read)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        now = FileStat.of(st)
        cached = self._known.get(path)
        if cached is not None and cached[0] == now:
            return cached[1]
        if not hash_if_unknown:
            return None
        sha = files.file_sha256(path)
        if sha is not None:
            self.remember(path, now, sha)
        return sha

    def remember(self, path: str, st: FileStat, sha: str) -> None:
        if time.time_ns() - st.mtime_ns > RACY_SECONDS * 1e9 and self._known.get(path) != (st, sha):
            self.new[path] = (st, sha)


def _entry(job: ImageJob, record: Record | Expected) -> dict[str, Any]:
    sha = record.output_sha256
    return {
        "source": job.source_display,
        "output": job.output,
        "sku": job.sku,
        "role": job.role,
        "preset": job.preset.name,
        "sha256": sha,
        "record_id": record.record_id,
        "payload": record.payload,
        "width": record.width,
        "height": record.height,
        "bytes": record.output_bytes,
    }


def _write_manifests(out_dir: str, outputs: list[dict[str, Any]], presets: Sequence[Preset]) -> list[str]:
    import json

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
        files.write_atomic(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        written.append(str(path))
    return written


def _remove_stale_temp_files(out_dir: str, presets: Sequence[Preset]) -> None:
    """A run killed mid-way leaves ``.<name>.<random>.part`` temp files (never a partial or unrecorded output):
    remove them."""
    for preset in presets:
        folder = Path(out_dir).resolve() / preset.name
        if folder.is_dir():
            for tmp in folder.rglob(".*" + files.TEMP_SUFFIX):
                tmp.unlink(missing_ok=True)


def _plan_tasks(plans: Sequence[PhotoPlan], expected: dict[str, Expected], cache: _StatCache, ctx: WorkContext,
                *, check: bool, force: bool, summary: RunSummary) -> list[PhotoTask]:
    """Decide in the parent whatever the stat cache allows (nothing read for an unchanged catalog); the rest
    becomes worker tasks. With ``check`` everything is decided here (sources hashed if need be) and nothing runs."""
    tasks: list[PhotoTask] = []
    for plan in plans:
        sha = None if force else cache.sha(plan.source, hash_if_unknown=check)
        if sha is None and not check:
            tasks.append(PhotoTask(plan.source, plan.source_display,
                                   tuple(ExportTask(j, expected.get(j.output)) for j in plan.jobs), force=force))
            continue
        todo: list[ExportTask] = []
        for job in plan.jobs:
            exp = expected.get(job.output)
            if sha is None:  # --check of a source that cannot be read
                summary.failed += 1
                summary.failures.append(Failure(job.source_display, "ingest",
                                                f"{job.source_display}: cannot read the source file", job.preset.name))
                continue
            key = job_key(sha, job, ctx.key.fingerprint, ctx.owner_digest)
            out_sha = cache.sha(job.output, hash_if_unknown=True)
            status, reason = decide(job, sha, key, ctx.key.fingerprint, exp, out_sha)
            if status == "current" and exp is not None:
                if check:
                    summary.current += 1
                else:
                    summary.skipped += 1
                summary.outputs.append(_entry(job, exp))
            elif check:
                summary.check_items.append(CheckItem(job.output, job.source_display, job.preset.name, status, reason))
                if status == "missing":
                    summary.missing += 1
                else:
                    summary.stale += 1
            else:
                todo.append(ExportTask(job, exp, out_sha))
        if todo:
            tasks.append(PhotoTask(plan.source, plan.source_display, tuple(todo), force=force))
    return tasks


class _Committer:
    """Parent-side ledger writes: the run is begun with its first record (an all-skipped rerun records no run),
    records and trace data go in batched transactions, and each output is renamed to its final name only after
    the transaction holding its record has committed."""

    def __init__(self, ledger: Ledger, options: RunOptions, ctx: WorkContext, total: int) -> None:
        self.ledger, self.options, self.ctx, self.total = ledger, options, ctx, total
        self.run_id: str | None = None
        self.pending: list[ImageResult] = []
        self.last_flush = time.monotonic()

    def add(self, result: ImageResult) -> None:
        self.pending.append(result)
        if len(self.pending) >= LEDGER_BATCH or time.monotonic() - self.last_flush > LEDGER_FLUSH_SECONDS:
            self.flush()

    def _begin(self) -> str:
        o = self.options
        run_id = "run-" + self.ctx.timestamp.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)
        self.ledger.begin_run(run_id, {
            "pipeline_version": PIPELINE_VERSION,
            "key_fingerprint": o.key.fingerprint,
            "owner": o.owner.name,
            "presets": {p.name: p.digest for p in o.presets},
            "sources": list(o.sources),
            "jobs": self.total,
            "argv": list(o.argv),
            "started_at": now_iso(),
        })
        return run_id

    def flush(self) -> None:
        batch = [r for r in self.pending if r.record is not None]
        self.pending = []
        self.last_flush = time.monotonic()
        if not batch:
            return
        if self.run_id is None:
            self.run_id = self._begin()
        self.ledger.append(self.run_id, [r.record for r in batch if r.record is not None])
        self.ledger.put_traces([(r.record.record_id, *r.trace) for r in batch
                                if r.record is not None and r.trace is not None])
        for r in batch:
            if r.temp_path is not None:
                files.publish(r.temp_path, r.job.output)

    def finish(self, counts: dict[str, int]) -> str | None:
        self.flush()
        if self.run_id is None:
            return None
        return self.ledger.finish_run(self.run_id, counts)

    def interrupt(self, counts: dict[str, int]) -> str | None:
        """Commit and publish what is pending, then seal the run as 'interrupted' (if it was begun)."""
        self.flush()
        if self.run_id is None:
            return None
        return self.ledger.interrupt_run(self.run_id, counts)


class _Stop(threading.Event):
    """Set by the first SIGINT / SIGTERM of a run: the run stops taking results, seals what it has and ends."""

    signum = 0
    abort = False  # --check: nothing to seal, stop at once


@contextlib.contextmanager
def _stop_on_signals(stop: _Stop) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (a second one kills the process as if catalogmark had no handler), for the
    duration of a run; only the main thread can install handlers, elsewhere signals keep their usual effect."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        stop.signum = signum
        stop.set()
        if stop.abort:
            raise RunInterrupted(f"interrupted by {signal.Signals(signum).name}", signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _tally(summary: RunSummary, result: ImageResult, expected: Expected | None) -> None:
    if result.status == "processed" and result.record is not None:
        summary.processed += 1
        summary.outputs.append(_entry(result.job, result.record))
        for w in result.warnings:
            summary.warnings[w] = summary.warnings.get(w, 0) + 1
    elif result.status == "skipped" and expected is not None:
        summary.skipped += 1
        summary.outputs.append(_entry(result.job, expected))
    elif result.status == "failed" and result.failure is not None:
        summary.failed += 1
        summary.failures.append(result.failure)


def run(options: RunOptions, *, on_result: Callable[[ImageResult], None] | None = None) -> RunSummary:
    """Run every (photo, preset) export; stream results back, commit them to the ledger, write manifests.

    SIGINT / SIGTERM (when called from the main thread): no new results are taken, what came back is committed and
    published, the run is sealed 'interrupted', the stat cache and manifests are written for what was done, and
    ``RunInterrupted`` is raised (exit code 130 / 143). Photos in worker processes are abandoned (their workers
    killed); with ``jobs=1`` the photo being processed is finished first. ``--check`` stops at once.
    """
    stop = _Stop()
    stop.abort = options.check
    exclusive = contextlib.nullcontext() if options.check else run_lock(options.ledger_path, options.out_dir)
    with _stop_on_signals(stop), exclusive:  # --check only reads: it takes no lock (lock.py)
        summary = _run(options, on_result, stop)
    if summary.backend_error is not None:
        done = (f"run {summary.run_id} sealed as interrupted with {summary.processed} new exports recorded"
                if summary.run_id is not None else "no export was recorded")
        raise BackendError(f"{summary.backend_error}: {done}; run again to finish")
    if stop.is_set():
        name = signal.Signals(stop.signum).name
        if summary.run_id is not None:
            raise RunInterrupted(f"interrupted by {name}: run {summary.run_id} sealed as interrupted with "
                                 f"{summary.processed} new exports recorded (merkle root {summary.merkle_root}); "
                                 "run again to finish", stop.signum)
        raise RunInterrupted(f"interrupted by {name} before any export was recorded; run again to finish",
                             stop.signum)
    return summary


def _run(options: RunOptions, on_result: Callable[[ImageResult], None] | None, stop: _Stop) -> RunSummary:
    started = time.perf_counter()
    ctx = WorkContext(options.owner, options.key, source_timestamp(), owner_digest(options.owner),
                      options.archive, single_threaded=options.jobs > 1)
    found = scan(list(options.sources))
    plans, upfront = plan_photos(found.items, options.presets, options.out_dir)
    summary = RunSummary(run_id=None, merkle_root=None, check=options.check, failures=list(upfront),
                         ignored=found.ignored)
    summary.failed = len(upfront)
    ledger_missing = not Path(options.ledger_path).exists()
    ledger = None if options.check and ledger_missing else Ledger.open(options.ledger_path)
    try:
        outputs = [j.output for p in plans for j in p.jobs]
        if ledger is not None and not options.check:
            ledger.recover()
            _remove_stale_temp_files(options.out_dir, options.presets)
        expected = ({out: expected_from(s) for out, s in ledger.latest_by_outputs(outputs).items()}
                    if ledger is not None else {})
        cache = _StatCache(ledger, [p.source for p in plans] + outputs)
        tasks = _plan_tasks(plans, expected, cache, ctx, check=options.check, force=options.force, summary=summary)
        if not options.check:
            assert ledger is not None
            _run_tasks(tasks, options, ctx, ledger, expected, cache, summary, on_result, stop)
            _remove_stale_temp_files(options.out_dir, options.presets)  # e.g. of a worker that died mid-write
            if cache.new:
                ledger.put_file_stats((path, st, sha) for path, (st, sha) in cache.new.items())
        summary.outputs.sort(key=lambda o: (o["preset"], o["output"]))
        if not options.check:
            summary.manifests = _write_manifests(options.out_dir, summary.outputs, options.presets)
    finally:
        if ledger is not None:
            ledger.close()
    summary.failures.sort(key=lambda f: (f.path, f.preset))
    summary.check_items.sort(key=lambda c: (c.preset, c.output))
    summary.seconds = time.perf_counter() - started
    return summary


def _run_tasks(tasks: list[PhotoTask], options: RunOptions, ctx: WorkContext, ledger: Ledger,
               expected: dict[str, Expected], cache: _StatCache, summary: RunSummary,
               on_result: Callable[[ImageResult], None] | None, stop: _Stop) -> None:
    total = sum(len(t.exports) for t in tasks)
    committer = _Committer(ledger, options, ctx, total)
    progress = make_progress(total, enabled=options.progress)
    results = map_unordered(process_photo, tasks, args=(ctx,), jobs=options.jobs, backend=options.backend,
                            scheduler=options.scheduler, on_worker_death=worker_died, stop=stop)
    try:
        for photo in results:
            if photo.sha256 is not None and photo.stat is not None:
                cache.remember(photo.source, FileStat(*photo.stat), photo.sha256)
            for result in photo.results:
                _tally(summary, result, expected.get(result.job.output))
                if result.status == "processed":
                    committer.add(result)
                if on_result:
                    on_result(result)
                failure = result.failure
                if failure is not None:  # escaped, on stderr: stdout stays the --json document
                    progress.fail(f"catalogmark: {failure.path} [{result.job.preset.name}] failed at "
                                  f"{failure.stage}: {failure.error}")
                progress.update(1, failed=failure is not None)
            if stop.is_set():
                break
    except BackendError as exc:  # the cluster, not an image: what came back is committed, the run sealed interrupted
        summary.backend_error = str(exc)
    finally:
        results.close()  # stopped early: the unfinished photos' workers are killed, not waited for
        counts = {"processed": summary.processed, "skipped": summary.skipped, "failed": summary.failed}
        if stop.is_set() or summary.backend_error is not None:
            summary.merkle_root = committer.interrupt(counts)
        else:
            summary.merkle_root = committer.finish(counts)
        summary.run_id = committer.run_id
        progress.close()
