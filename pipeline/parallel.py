"""The only module that talks to joblib and dask: an unordered parallel map over loky processes or a dask cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, TypeVar

from pipeline.errors import BackendError, ConfigError
from pipeline.models import WorkerDeath

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("loky", "dask")
#: How often a wait for results looks at the ``stop`` event (seconds; no result is ever late because of it).
POLL_SECONDS = 0.2
#: dask: how long the client waits for a lost scheduler to come back, and for a cluster with no workers to get one.
DASK_GRACE_SECONDS = 20.0
#: Idle loky workers shut down after this long (as joblib's default); the next map starts fresh ones.
IDLE_WORKER_SECONDS = 300
#: Thread-pool sizes of numerical libraries in the workers, as joblib sets them (cores / workers each).
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _dask_client(scheduler: str | None) -> Iterator[Any]:
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ConfigError("--backend dask needs the dask extra: pip install 'catalogmark[dask]'") from exc
    if not scheduler:
        raise ConfigError("--backend dask needs --scheduler tcp://HOST:PORT (the dask scheduler address)")
    # distributed logs a lost connection as ERROR with tracebacks; what failed is raised as one clear BackendError
    logs = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.split(".")[0] == "distributed"]
    levels = [log.level for log in logs]
    for log in logs:  # each: dask's logging config gives some of them (distributed.client, ...) their own level
        log.setLevel(logging.CRITICAL)
    try:
        try:
            client = Client(scheduler, timeout=10, set_as_default=False)
        except OSError as exc:
            raise ConfigError(f"cannot reach dask scheduler {scheduler}: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)


def map_unordered(
    func: Callable[..., R],
    items: Iterable[T],
    *,
    args: tuple[Any, ...] = (),
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    on_worker_death: Callable[[T, WorkerDeath], R] | None = None,
    stop: threading.Event | None = None,
) -> Generator[R, None, None]:
    """Yield ``func(item, *args)`` for every item, in completion order.

    Results stream back as they finish so the caller can write them while workers go on; each worker holds one item
    at a time. ``jobs=1`` with the loky backend runs in this process (no pickling, easy debugging).

    loky: a worker process that dies (kill -9, the OOM killer, a crash in native code) costs only the item it held:
    the pool is rebuilt with fresh workers, the items that were in flight with it are tried again one at a time, and
    the one whose worker dies alone is yielded as ``on_worker_death(item, WorkerDeath(...))`` (without that callback
    the pool's ``BrokenProcessPool`` is raised). When ``stop`` is set, the map ends within ``POLL_SECONDS``:
    unfinished items are dropped and their workers killed (in-process, after the current item).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if backend == "loky" and jobs == 1:
        for item in items:
            if stop is not None and stop.is_set():
                return
            yield func(item, *args)
        return
    if backend == "loky":
        yield from _loky_map(func, items, args, jobs, on_worker_death, stop)
        return
    yield from _dask_map(func, items, args, jobs, scheduler, stop)


def _dask_map(func: Callable[..., R], items: Iterable[T], args: tuple[Any, ...], jobs: int, scheduler: str | None,
              stop: threading.Event | None) -> Iterator[R]:
    """Futures on the cluster, at most ``jobs`` in flight; every task runs on a dask worker, never in this process.

    Driven through dask.distributed's client directly rather than joblib's dask backend, which runs the work in
    the client when the cluster has one thread or ``jobs`` is 1, hangs when the workers cannot import the task, and
    raises the scheduler's connection errors as tracebacks. A task that raises means the cluster, not the image,
    failed (``process_photo`` turns every per-image problem into data), so every failure here is a BackendError.
    """
    from dask.distributed import wait as dask_wait

    pending = iter(items)
    with _dask_client(scheduler) as client:
        running: dict[Any, T] = {}
        lost_since: float | None = None  # when the client last stopped being connected
        idle_since: float | None = None  # when the cluster was last seen without workers
        while True:
            while len(running) < jobs:
                try:
                    item = next(pending)
                except StopIteration:
                    break
                running[client.submit(func, item, *args, pure=False)] = item
            if not running or (stop is not None and stop.is_set()):
                for future in running:
                    future.cancel()
                return
            try:
                with client.as_current():  # the client is not the process-wide default (set_as_default=False)
                    done, _ = dask_wait(list(running), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            except Exception as exc:  # FuturesCancelledError: the client gave up on a lost scheduler
                if "Cancelled" not in type(exc).__name__:
                    raise
                raise _lost(scheduler, type(exc).__name__) from None
            if client.status != "running":
                lost_since = lost_since or time.monotonic()
                if client.status in ("closing", "closed") or time.monotonic() - lost_since > DASK_GRACE_SECONDS:
                    raise _lost(scheduler, f"client {client.status}")
                continue
            lost_since = None
            if any(f.status == "cancelled" for f in done):
                raise _lost(scheduler, "its tasks were cancelled")
            if not done:  # nothing came back this poll: is there still a worker to run it?
                idle_since = _check_workers(client, scheduler, idle_since)
            for future in done:
                running.pop(future)
                if future.status == "error":
                    raise _task_failure(future.exception(), scheduler)
                yield future.result()


def _lost(scheduler: str | None, why: str) -> BackendError:
    return BackendError(f"lost the dask scheduler {scheduler} ({why}); the exports that came back are recorded")


_NEEDS_PACKAGE = "install the same catalogmark version in the workers' environment"


def _check_workers(client: Any, scheduler: str | None, idle_since: float | None) -> float | None:
    """When the cluster was first seen without workers (None: it has some). None started, or none left: a worker
    that cannot unpickle a task (catalogmark not importable there) dies on its first one and, without a nanny,
    nothing replaces it, so the task would wait forever. No worker for the grace period is an error."""
    if client.nthreads():
        return None
    idle_since = idle_since or time.monotonic()
    if time.monotonic() - idle_since > DASK_GRACE_SECONDS:
        raise BackendError(f"the dask cluster {scheduler} has had no workers for {DASK_GRACE_SECONDS:.0f} s: start "
                           f"some (dask worker {scheduler}), or they died or left (a worker that cannot import "
                           "catalogmark dies on its first task); " + _NEEDS_PACKAGE)
    return idle_since


def _task_failure(exc: BaseException | None, scheduler: str | None) -> BackendError:
    if isinstance(exc, ImportError) or "No module named" in str(exc):
        return BackendError(f"the dask workers of {scheduler} cannot run catalogmark ({type(exc).__name__}: {exc}); "
                            + _NEEDS_PACKAGE)
    if type(exc).__name__ == "KilledWorker":  # a task that killed allowed-failures workers (each restarted)
        return BackendError(f"catalogmark tasks keep killing the workers of {scheduler} ({exc}); if the workers "
                            "cannot import catalogmark, " + _NEEDS_PACKAGE)
    return BackendError(f"a task failed on the dask cluster {scheduler}: {type(exc).__name__}: {exc}")


def _worker_init() -> None:
    """In each loky worker: Ctrl-C in a terminal signals the whole process group; the parent decides what stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_workers: Any = None  # the loky executor last used, for stop_workers
_warming: list[Future[object]] = []  # prestart's warm-up items


def _executor(jobs: int) -> Any:
    global _workers
    from joblib.externals.loky import get_reusable_executor

    threads = str(max(1, default_jobs() // jobs))
    env = {var: os.environ.get(var, threads) for var in _THREAD_VARS}
    _workers = get_reusable_executor(max_workers=jobs, timeout=IDLE_WORKER_SECONDS, initializer=_worker_init,
                                     env=env)
    return _workers


def prestart(jobs: int, backend: str, warm: Callable[[], object]) -> None:
    """Start the workers of a coming ``map_unordered(jobs=jobs, backend=backend)`` now and run ``warm()`` once on
    each (imports, say), so that their start-up overlaps with what the caller still does before the map: a loky
    worker is a fresh interpreter that imports the work's modules, about half a second before its first item,
    otherwise on every run's critical path. Returns at once (the workers start in their own processes); the map
    reuses them. Nothing for one job or dask."""
    if backend != "loky" or jobs < 2:
        return
    executor = _executor(jobs)
    _warming[:] = [executor.submit(warm) for _ in range(jobs)]  # not waited for: the map's items queue behind


def stop_workers() -> None:
    """Kill the idle loky workers now, for a process that is about to exit (at exit each would otherwise wind
    down its own interpreter while loky waits: ~0.2 s). Call it only when no map is running."""
    global _workers
    executor, _workers = _workers, None
    if executor is not None:
        _handed_over(_warming)
        executor.shutdown(wait=True, kill_workers=True)
    _warming.clear()


def _handed_over(futures: Iterable[Future[Any]], timeout: float = 2.0) -> None:
    """Wait (at most ``timeout``) until each submitted item has reached a worker or finished: loky's manager thread
    fails (KeyError, InvalidStateError) when it is shut down with kill_workers while a submitted item is not yet
    handed to a worker, or was cancelled."""
    pending = list(futures)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(f.running() or f.done() for f in pending):
        time.sleep(0.005)


def _death(exc: BaseException) -> WorkerDeath:
    """What loky says about the worker that died (its message lists the dead workers' exit codes)."""
    codes = re.search(r"exit codes of the workers are \{([^}]*)\}", str(exc))
    found = [int(c) for c in re.findall(r"\((-?\d+)\)", codes.group(1))] if codes else []
    return WorkerDeath(found[0] if found else None)


def _loky_map(func: Callable[..., R], items: Iterable[T], args: tuple[Any, ...], jobs: int,
              on_worker_death: Callable[[T, WorkerDeath], R] | None, stop: threading.Event | None) -> Iterator[R]:
    """Futures on loky's reusable executor, at most ``jobs`` in flight (one each worker). Workers get their next
    item before the results are handed on, so they do not wait while the caller writes."""
    from joblib.externals.loky.process_executor import BrokenProcessPool

    pending = iter(items)
    suspects: deque[T] = deque()  # in flight when the pool broke with others: each is tried again alone
    running: dict[Future[R], T] = {}
    ready: list[R] = []
    exhausted = False
    alone = False  # the one item running is a suspect: nothing is submitted beside it
    executor = None

    def stopped() -> bool:
        return stop is not None and stop.is_set()

    try:
        while not stopped():
            if suspects or (running and alone):
                alone = True  # one suspect at a time: if the pool breaks now, it was that item
                if not running:
                    executor = _executor(jobs)
                    item = suspects.popleft()
                    running[executor.submit(func, item, *args)] = item
            else:
                alone = False
                while len(running) < jobs and not exhausted:
                    try:
                        item = next(pending)
                    except StopIteration:
                        exhausted = True
                        break
                    executor = _executor(jobs)
                    running[executor.submit(func, item, *args)] = item
            while ready:
                yield ready.pop(0)
                if stopped():
                    return
            if not running:
                return
            done, _ = wait(list(running), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                # the pool is broken: every other unfinished future fails too (or has just finished)
                wait(list(running))
                done = set(running)
            broken: list[tuple[T, BaseException]] = []
            for future in done:
                item = running.pop(future)
                exc = future.exception()
                if exc is None:
                    ready.append(future.result())
                elif isinstance(exc, BrokenProcessPool):
                    broken.append((item, exc))
                else:
                    raise exc
            if not broken or stopped():
                continue
            if on_worker_death is None:
                raise broken[0][1]
            if len(broken) == 1:  # the only item a worker held when the pool broke: that item killed it
                ready.append(on_worker_death(broken[0][0], _death(broken[0][1])))
            else:
                suspects.extend(item for item, _ in broken)
    finally:
        if running and executor is not None:  # abandoned (stop, or the consumer gave up): kill, do not finish
            _handed_over(running)  # let every item reach its worker first
            executor.shutdown(wait=True, kill_workers=True)  # killed and reaped: no temp file written after this
