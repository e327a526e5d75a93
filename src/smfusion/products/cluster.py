"""Where the product's tasks run: this process, a local Dask cluster, or any running Dask scheduler.

* ``scheduler="tcp://host:8786"`` (or a scheduler file, ``*.json``): connect to a
  cluster started elsewhere (``dask scheduler`` + ``dask worker``, dask-jobqueue,
  Kubernetes, cloud). Workers need smfusion installed and the output folder
  on a shared filesystem.
* ``workers=N``: start a ``distributed.LocalCluster`` of N worker processes with
  ``threads_per_worker`` threads each (one torch thread per task).
* neither: run the tasks one after the other in this process (no cluster).

The dashboard address is printed when a client starts.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator, Optional

from smfusion.errors import ConfigError

__all__ = ["dask_client"]

WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MALLOC_ARENA_MAX": "2"}


@contextlib.contextmanager
def dask_client(workers: Optional[int] = None, threads_per_worker: int = 1, scheduler: Optional[str] = None,
                memory_limit: str | float = "auto", dashboard_address: str = ":8787", client=None,
                progress: bool = True) -> Iterator[Optional[object]]:
    """A ``distributed.Client`` for the module docstring's three cases (None: in this process).

    ``client``: an existing client, used as it is (not closed here).
    """
    if client is not None:
        yield client
        return
    if scheduler is None and not workers:
        yield None
        return
    if workers is not None and workers < 1 or threads_per_worker < 1:
        raise ConfigError("workers and threads_per_worker must be >= 1")
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler is not None:
            kw = {"scheduler_file": scheduler} if str(scheduler).endswith(".json") else {"address": scheduler}
            try:
                c = Client(timeout="30s", **kw)
            except OSError as exc:
                raise ConfigError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
            c.wait_for_workers(1, timeout=120)
        else:
            cluster = LocalCluster(n_workers=int(workers), threads_per_worker=int(threads_per_worker),
                                   processes=True, memory_limit=memory_limit, dashboard_address=dashboard_address,
                                   env=dict(WORKER_ENV))
            c = Client(cluster)
        if progress:
            n = len(c.scheduler_info().get("workers", {}))
            print(f"dask: {n} worker(s) at {c.scheduler.address}; dashboard: {c.dashboard_link}", file=sys.stderr)
        try:
            yield c
        finally:
            c.close()
    finally:
        if cluster is not None:
            cluster.close()
