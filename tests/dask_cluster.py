"""A real dask cluster on 127.0.0.1 as separate processes (scheduler + workers), for tests that stop its parts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.helpers import REPO

# A worker whose environment lacks catalogmark (and this test package): imports of them fail in the worker.
_NO_PACKAGE = ("import sys; sys.modules['pipeline'] = None; sys.modules['tests'] = None; "
               "from distributed.cli.dask_worker import main; main()")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def kill_scheduler(self) -> None:
        self.scheduler.kill()
        self.scheduler.wait(10)


@contextmanager
def local_cluster(workers: int = 1, *, threads: int = 1, without_package: bool = False) -> Iterator[Cluster]:
    """Start ``dask scheduler`` and ``workers`` ``dask worker`` processes; wait until every worker is connected."""
    from dask.distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = os.environ | {"PYTHONPATH": str(REPO), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", str(port), "--no-dashboard"], **quiet)  # type: ignore[call-overload]
    cluster = Cluster(address, sched)
    try:
        worker_cmd = (["-c", _NO_PACKAGE] if without_package else ["-m", "distributed.cli.dask_worker"])
        for _ in range(workers):
            cluster.workers.append(subprocess.Popen(  # type: ignore[call-overload]
                [sys.executable, *worker_cmd, address, "--nthreads", str(threads), "--no-nanny", "--no-dashboard"],
                **quiet))
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5, set_as_default=False) as c:
                    if len(c.nthreads()) >= workers:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the test dask cluster did not start within 60 s")
            time.sleep(0.3)
        yield cluster
    finally:
        for p in (*cluster.workers, sched):
            if p.poll() is None:
                p.kill()
            p.wait(10)
