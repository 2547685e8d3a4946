"""The only module that talks to joblib: an unordered parallel map over loky processes or a dask cluster."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, TypeVar

import joblib

from pipeline.errors import ConfigError
from pipeline.models import WorkerDeath

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("loky", "dask")
#: How often a wait for results looks at the ``stop`` event (seconds; no result is ever late because of it).
POLL_SECONDS = 0.2
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
    try:
        client = Client(scheduler, timeout=10, set_as_default=False)
    except OSError as exc:
        raise ConfigError(f"cannot reach dask scheduler {scheduler}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


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
    tasks = (joblib.delayed(func)(item, *args) for item in items)
    with _dask_client(scheduler) as client, joblib.parallel_config(backend="dask", client=client):
        parallel = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)
        for result in parallel(tasks):
            yield result
            if stop is not None and stop.is_set():
                return


def _worker_init() -> None:
    """In each loky worker: Ctrl-C in a terminal signals the whole process group; the parent decides what stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _executor(jobs: int) -> Any:
    from joblib.externals.loky import get_reusable_executor

    threads = str(max(1, default_jobs() // jobs))
    env = {var: os.environ.get(var, threads) for var in _THREAD_VARS}
    return get_reusable_executor(max_workers=jobs, timeout=IDLE_WORKER_SECONDS, initializer=_worker_init, env=env)


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
            # loky's manager thread fails (KeyError, InvalidStateError) when it is shut down with kill_workers while
            # a submitted item is not yet handed to a worker, or was cancelled: let every item reach its worker
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and not all(f.running() or f.done() for f in running):
                time.sleep(0.005)
            executor.shutdown(wait=True, kill_workers=True)  # killed and reaped: no temp file written after this
