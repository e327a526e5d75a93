"""A product's sizes against the machine (or the cluster) before any block is computed.

Estimates (float32 values, 4 bytes each):

* one task (a cell block x time block): ``chunk_sites x (chunk_days + warm-up) x (inputs + members x
  (noise_runs + 1) x 2 + layers) x 4`` -- the block's inputs, each member's mean and variance of every
  pass, and the layers it writes;
* one time step of a grid-layout field: ``ny x nx x 28`` bytes (float32 output, float64 sum and count of
  sites sharing a cell, the encoded and compressed copies of the writer);
* the data on disk: ``sites x steps x layers x 4`` (cells without a site are NaN and compress away).

Each is compared with :mod:`smfusion.resources` (memory of this machine, or the smallest worker memory
limit of a ``--scheduler`` cluster; free space where the output goes) and refused with one line naming the
argument, the estimate and the limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from smfusion.errors import ConfigError
from smfusion.resources import PROCESS_BYTES, check_memory, check_processes, fmt_bytes, free_disk_bytes

__all__ = ["task_bytes", "check_local", "check_cluster", "check_grid_window", "check_sites_window", "check_disk"]

GRID_BYTES_PER_CELL = 28


def task_bytes(run, chunk_sites: int, chunk_days: int, noise_runs: int, n_layers: int) -> int:
    """Estimated peak bytes of one task (module docstring)."""
    kw = run.adapter.model_kwargs()
    inputs = int(kw.get("n_dynamic", 0)) + int(kw.get("n_static", 0))
    per_site_day = inputs + len(run.members) * (noise_runs + 1) * 2 + n_layers
    days = chunk_days + int(run.cfg.periods.warmup_days if run.cfg.periods is not None else 0)
    return 4 * int(chunk_sites) * days * per_site_day


def check_local(workers: Optional[int], threads_per_worker: int, task: int) -> None:
    """A local cluster of ``workers`` processes (None or 0: this process) against this machine's cores and
    memory, each holding one task of ``task`` bytes per thread."""
    hint = "use smaller --chunk-sites / --chunk-days"
    if workers:
        check_processes(workers, "--workers", threads=threads_per_worker,
                        per_process=PROCESS_BYTES + threads_per_worker * task)
    else:
        check_memory(PROCESS_BYTES + task, f"one block (--chunk-sites x --chunk-days) of {fmt_bytes(task)}", hint)


def check_cluster(client, task: int) -> None:
    """A running cluster's workers against one task each: the smallest worker memory limit must hold it."""
    workers = client.scheduler_info().get("workers", {})
    limits = [int(w.get("memory_limit") or 0) for w in workers.values()]
    limits = [m for m in limits if m > 0]
    if limits and PROCESS_BYTES + task > min(limits):
        raise ConfigError(f"one block (--chunk-sites x --chunk-days) needs about {fmt_bytes(PROCESS_BYTES + task)}"
                          f", more than the {fmt_bytes(min(limits))} memory limit of the cluster's smallest worker",
                          hint="use smaller --chunk-sites / --chunk-days, or workers with more memory")


def check_grid_window(grid: str, ny: int, nx: int) -> None:
    """One time step of the ``ny x nx`` output window on ``grid`` against this machine's memory."""
    check_memory(GRID_BYTES_PER_CELL * int(ny) * int(nx), f"--grid {grid}: one day of the {ny} x {nx} output window",
                 "use a coarser --grid, or --layout site")


def check_sites_window(grid: str, lat, lon) -> None:
    """The grid-layout window over the sites at ``lat``/``lon`` on ``grid`` (a name; unknown names refused)."""
    import numpy as np

    from smfusion.grids.ease2 import get_grid, latlon_to_rowcol

    rows, cols = latlon_to_rowcol(get_grid(grid), np.asarray(lat), np.asarray(lon))
    ok = rows >= 0
    if ok.any():
        check_grid_window(grid, rows[ok].max() - rows[ok].min() + 1, cols[ok].max() - cols[ok].min() + 1)


def check_disk(out: str | Path, n_sites: int, n_steps: int, n_layers: int) -> None:
    """The product's data (``n_sites x n_steps x n_layers`` float32) against the free space where it goes."""
    need = 4 * int(n_sites) * int(n_steps) * int(n_layers)
    free = free_disk_bytes(out)
    if need > free:
        raise ConfigError(f"--out {out}: the product's data need about {fmt_bytes(need)}, more than the "
                          f"{fmt_bytes(free)} free there", hint="free space, a shorter period or fewer sites")
