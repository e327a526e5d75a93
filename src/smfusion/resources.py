"""What this machine offers (cores, memory, disk), and the checks that bound a request by it before any work.

Every size smfusion is asked for -- worker processes, training processes, a
model, a product grid -- is compared here with the machine that would run it,
so an absurd request ends as one ConfigError naming the argument, the
estimate and the limit, before anything is started or written. The figures
are estimates (stated in each caller's docstring); the limits are what the
operating system reports: the CPUs this process may run on (affinity), the
physical memory (or a smaller cgroup limit, as in a container or a batch job),
the free space of the output's file system.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

from smfusion.errors import ConfigError

__all__ = ["cpu_count", "memory_bytes", "free_disk_bytes", "fmt_bytes", "check_processes",
           "check_memory", "PROCESS_BYTES"]

# processes (x threads) allowed per CPU core: two, so a small machine can still run a 2-process test or debug
# run; beyond that they only compete for the cores
PER_CORE = 2
# resident memory of one smfusion worker process before its task's data (Python, numpy, torch, xarray, dask):
# ~0.35 GB measured for a Dask worker that has imported smfusion.products on CPU torch 2.x
PROCESS_BYTES = 400 * 2**20


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else every CPU)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cgroup_limit() -> Optional[int]:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def memory_bytes() -> int:
    """Physical memory of this machine, or the smaller limit of the cgroup (container, batch job) it runs in."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: psutil (a dependency of dask.distributed)
        import psutil

        total = int(psutil.virtual_memory().total)
    limit = _cgroup_limit()
    return min(total, limit) if limit else total


def free_disk_bytes(path: str | Path) -> int:
    """Free space of the file system that holds ``path`` (its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def fmt_bytes(n: float) -> str:
    """``n`` bytes as text: ``512 MB``, ``3.2 GB``, ``16 TB``."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB", "MB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def check_processes(n: int, what: str, *, threads: int = 1, per_process: int = PROCESS_BYTES,
                    cores: Optional[int] = None, memory: Optional[int] = None, where: str = "this machine") -> None:
    """Refuse ``n`` processes of ``threads`` threads each (named ``what``, e.g. ``--workers``) when they need
    more than :data:`PER_CORE` threads per core of ``cores`` or more memory (``per_process`` bytes each) than
    ``memory`` (default: this machine's :func:`cpu_count` and :func:`memory_bytes`)."""
    if n < 1:
        raise ConfigError(f"{what} {n}: must be at least 1")
    cores = cpu_count() if cores is None else cores
    memory = memory_bytes() if memory is None else memory
    if n * threads > PER_CORE * cores:
        raise ConfigError(f"{what} {n}" + (f" x {threads} threads" if threads > 1 else "")
                          + f" is more than {PER_CORE} per CPU core of the {cores} core(s) of {where}",
                          hint=f"use at most {max(1, PER_CORE * cores // threads)}; more only compete for the cores")
    if n * per_process > memory:
        raise ConfigError(f"{what} {n}: about {fmt_bytes(n * per_process)} for {n} processes "
                          f"({fmt_bytes(per_process)} each) exceeds the {fmt_bytes(memory)} of memory of {where}",
                          hint=f"use at most {max(1, memory // per_process)}")


def check_memory(need: int, what: str, hint: str, *, memory: Optional[int] = None,
                 where: str = "this machine") -> None:
    """Refuse a request (``what``, naming the argument or config key) whose estimated ``need`` in bytes exceeds
    ``memory`` (default: :func:`memory_bytes`)."""
    memory = memory_bytes() if memory is None else memory
    if need > memory:
        raise ConfigError(f"{what} needs about {fmt_bytes(need)} of memory, more than the {fmt_bytes(memory)} "
                          f"of {where}", hint=hint)
