"""Tests for pipeline.parallel: unordered streaming map over loky and a real local dask cluster."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from pipeline.errors import BackendError, ConfigError
from pipeline.models import WorkerDeath
from pipeline.parallel import map_unordered, prestart, stop_workers


def square_plus(x: int, offset: int) -> tuple[int, int]:
    return x, x * x + offset


def worker_pid(_x: int) -> int:
    import time

    time.sleep(0.05)
    return os.getpid()


def dies_on(x: int, victims: tuple[int, ...]) -> int:
    """Kills its own worker process (as the OOM killer would) for the items in ``victims``."""
    time.sleep(0.05)  # so that several items are in flight together
    if x in victims:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def as_failure(item: int, death: WorkerDeath) -> str:
    return f"{item}: {death.message}"


def test_in_process_and_loky_give_every_result_once():
    for jobs in (1, 2):
        results = list(map_unordered(square_plus, range(20), args=(3,), jobs=jobs))
        assert sorted(results) == [(x, x * x + 3) for x in range(20)]


def test_loky_uses_worker_processes():
    pids = set(map_unordered(worker_pid, range(8), jobs=2))
    assert os.getpid() not in pids


def note_pid(folder: str) -> None:
    """A warm-up: leaves a file named after the worker's pid."""
    Path(folder, str(os.getpid())).touch()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_prestarted_workers_are_warmed_then_serve_the_map_and_stop(tmp_path: Path):
    stop_workers()  # a pool of this test's own
    prestart(2, "loky", functools.partial(note_pid, str(tmp_path)))
    pids = set(map_unordered(worker_pid, range(8), jobs=2))
    warmed = {int(p.name) for p in tmp_path.iterdir()}
    assert warmed and warmed <= pids  # the warm-up ran first, in the very processes the map then used
    assert os.getpid() not in pids
    stop_workers()
    assert not any(_alive(pid) for pid in pids)  # killed and reaped
    stop_workers()  # nothing left: a no-op


def test_prestart_does_nothing_for_one_job_or_dask(tmp_path: Path):
    for jobs, backend in ((1, "loky"), (2, "dask")):
        prestart(jobs, backend, functools.partial(note_pid, str(tmp_path)))
    time.sleep(0.3)
    assert list(tmp_path.iterdir()) == []


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


def test_a_dying_worker_costs_only_its_own_item():
    results = list(map_unordered(dies_on, range(12), args=((5,),), jobs=2, on_worker_death=as_failure))
    assert sorted(r for r in results if isinstance(r, int)) == [x for x in range(12) if x != 5]
    assert [r for r in results if isinstance(r, str)] == ["5: worker died (killed by signal 9: out of memory?)"]


def test_several_dying_workers_are_each_one_failure_and_the_pool_recovers():
    results = list(map_unordered(dies_on, range(10), args=((0, 1, 7),), jobs=2, on_worker_death=as_failure))
    assert sorted(r for r in results if isinstance(r, int)) == [2, 3, 4, 5, 6, 8, 9]
    assert sorted(r for r in results if isinstance(r, str)) == [
        f"{i}: worker died (killed by signal 9: out of memory?)" for i in (0, 1, 7)]
    # the next map gets a working pool
    assert sorted(map_unordered(square_plus, range(4), args=(0,), jobs=2)) == [(x, x * x) for x in range(4)]


def test_a_dying_worker_without_a_callback_raises():
    from joblib.externals.loky.process_executor import BrokenProcessPool

    with pytest.raises(BrokenProcessPool):
        list(map_unordered(dies_on, range(4), args=((2,),), jobs=2))


def test_worker_death_messages():
    assert WorkerDeath(-9).message == "worker died (killed by signal 9: out of memory?)"
    assert WorkerDeath(-11).message == "worker died (killed by signal 11, SIGSEGV)"
    assert WorkerDeath(3).message == "worker died (exit code 3)"
    assert WorkerDeath(None).message == "worker died (out of memory?)"


def slow(x: int) -> int:
    time.sleep(0.3)
    return x


@pytest.mark.parametrize("jobs", [1, 2])
def test_stop_ends_the_map_early(jobs):
    stop = threading.Event()
    seen = []
    for r in map_unordered(slow, range(40), jobs=jobs, stop=stop):
        seen.append(r)
        stop.set()
    assert 1 <= len(seen) < 40


def slow_square(x: int) -> int:
    time.sleep(0.3)
    return x * x


def test_dask_runs_on_the_workers_even_with_one_thread_and_one_job():
    pytest.importorskip("dask.distributed")
    from tests.dask_cluster import local_cluster

    with local_cluster(workers=1, threads=1) as cluster:
        pids = set(map_unordered(worker_pid, range(4), jobs=1, backend="dask", scheduler=cluster.address))
        assert pids and os.getpid() not in pids  # never silently in the client


def test_dask_workers_without_the_package_are_a_clear_error_within_seconds():
    pytest.importorskip("dask.distributed")
    from tests.dask_cluster import local_cluster

    with local_cluster(workers=1, without_package=True) as cluster:
        started = time.monotonic()
        with pytest.raises(BackendError, match="install the same catalogmark version in the workers"):
            list(map_unordered(square_plus, range(3), args=(0,), jobs=2, backend="dask", scheduler=cluster.address))
        assert time.monotonic() - started < 60  # bounded: the grace period, not forever


def test_a_lost_dask_scheduler_is_a_backend_error_not_a_hang():
    pytest.importorskip("dask.distributed")
    from tests.dask_cluster import local_cluster

    with local_cluster(workers=1) as cluster:
        got: list[int] = []
        started = time.monotonic()
        with pytest.raises(BackendError, match="lost the dask scheduler"):
            for r in map_unordered(slow_square, range(50), jobs=1, backend="dask", scheduler=cluster.address):
                got.append(r)
                if len(got) == 2:
                    cluster.kill_scheduler()
        assert len(got) >= 2 and time.monotonic() - started < 60
