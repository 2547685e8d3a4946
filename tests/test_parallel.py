"""Tests for pipeline.parallel: unordered streaming map over loky and a real local dask cluster."""

from __future__ import annotations

import os

import pytest

from pipeline.errors import ConfigError
from pipeline.parallel import map_unordered


def square_plus(x: int, offset: int) -> tuple[int, int]:
    return x, x * x + offset


def worker_pid(_x: int) -> int:
    import time

    time.sleep(0.05)
    return os.getpid()


def test_in_process_and_loky_give_every_result_once():
    for jobs in (1, 2):
        results = list(map_unordered(square_plus, range(20), args=(3,), jobs=jobs))
        assert sorted(results) == [(x, x * x + 3) for x in range(20)]


def test_loky_uses_worker_processes():
    pids = set(map_unordered(worker_pid, range(8), jobs=2))
    assert os.getpid() not in pids


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="unknown backend"):
        list(map_unordered(square_plus, [1], args=(0,), backend="spark"))
    with pytest.raises(ConfigError, match="at least 1"):
        list(map_unordered(square_plus, [1], args=(0,), jobs=0))
    with pytest.raises(ConfigError, match="--scheduler"):
        list(map_unordered(square_plus, [1], args=(0,), backend="dask"))


@pytest.fixture(scope="module")
def dask_scheduler():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def test_dask_backend_on_a_real_local_cluster(dask_scheduler):
    results = list(map_unordered(square_plus, range(10), args=(1,), jobs=2, backend="dask", scheduler=dask_scheduler))
    assert sorted(results) == [(x, x * x + 1) for x in range(10)]


def test_unreachable_scheduler_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot reach dask scheduler"):
        list(map_unordered(square_plus, [1], args=(0,), backend="dask", scheduler="tcp://127.0.0.1:9"))
