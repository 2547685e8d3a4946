"""The only module that talks to joblib: an unordered parallel map over loky processes or a dask cluster."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import joblib

from pipeline.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("loky", "dask")


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
) -> Iterator[R]:
    """Yield ``func(item, *args)`` for every item, in completion order.

    Results stream back as they finish so the caller can write them while workers go on; each worker holds one item
    at a time. ``jobs=1`` with the loky backend runs in this process (no pickling, easy debugging).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    tasks = (joblib.delayed(func)(item, *args) for item in items)
    if backend == "loky":
        parallel = joblib.Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered", batch_size=1)
        yield from parallel(tasks)
        return
    with _dask_client(scheduler) as client, joblib.parallel_config(backend="dask", client=client):
        parallel = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)
        yield from parallel(tasks)
