"""The product engine: (cell block x time block) tasks, each writing its own region of a Zarr store.

The domain's cells are cut into blocks of ``chunk_sites`` and the period into
blocks of ``chunk_days`` (whole composites). Task (s, t) reads the forcing of
cell block s over time block t plus the past it needs
(:mod:`smfusion.products.blocks`: the first block's warm-up, then the carried
LSTM state), predicts every member and noisy run, computes the product layers
with the layer function of :mod:`smfusion.products.longterm` and writes them
into region (s, t) of the work store with ``to_zarr(region=...)``: nothing is
gathered on the client. Task (s, t + 1) depends on (s, t) only through the
state; cell blocks are independent, so they run in parallel.

On a ``dask.distributed`` client the trained run is scattered to every worker
once and the tasks are submitted as futures (cell blocks in order, so states do
not pile up); without a client the same tasks run one after the other in this
process. Each finished task leaves a marker (and, when a later block follows,
its state) in the work folder: a killed job started again with the same request
skips the finished regions and continues each cell block from its last state.
Only one job works on an output at a time (``predict_product`` holds the
output's lock, :mod:`smfusion.io.lock`), so a job joins a work folder only when
the job that made it is gone; :func:`remove_work` deletes a work folder only
while it holds the engine's own files.

Work folder ``<out dir>/.<out name>.work/`` (it must be visible to every worker)::

    request.json   what fixes the values (run, period, chunking, noise, sites); a resume must match it
    layers.zarr    (site, time) layers, chunks = (cell block, time block)
    done/<s>_<t>   finished regions
    state/<s>_<t>.npz   the state after region (s, t), kept until (s, t + 1) is done
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from smfusion.errors import ConfigError, OutputError
from smfusion.io.atomic import atomic_path, process_alive, write_text
from smfusion.products.blocks import composite, load_from_days, time_mode

__all__ = ["Job", "Block", "plan", "open_work", "remove_work", "execute", "run_block", "load_sites"]

WORK_FORMAT = 1


@dataclass(frozen=True)
class Block:
    """One task: cell block ``sb`` (rows ``s0:s1`` of the domain) x time block ``tb`` (days start..end,
    work-store time indices ``t0:t1``), reading forcing from ``load_from``."""

    sb: int
    tb: int
    s0: int
    s1: int
    t0: int
    t1: int
    start: str
    end: str
    load_from: str
    first: bool
    keep_state: bool


@dataclass
class Job:
    """What every task shares besides the run (pickled with each task: keep it small)."""

    work: str
    sites: np.ndarray
    noise_runs: int
    noise: float
    seed: int
    days: int
    mode: str
    layers: Callable
    recalibration: str = "none"
    step: int = 1  # days per time step of the data (N for an adapter that composites its inputs)
    torch_threads: int = 1

    @property
    def store(self) -> Path:
        return Path(self.work) / "layers.zarr"

    def done_path(self, blk: Block) -> Path:
        return Path(self.work) / "done" / f"{blk.sb}_{blk.tb}"

    def state_path(self, sb: int, tb: int) -> Path:
        return Path(self.work) / "state" / f"{sb}_{tb}.npz"


def plan(run, n_sites: int, t_start: pd.Timestamp, t_end: pd.Timestamp, chunk_days: int, chunk_sites: int,
         days: int) -> list[list[Block]]:
    """Blocks per cell block (a chain along time); ``days``: days per output step, ``chunk_days`` a whole
    number of them."""
    cfg, mode = run.cfg, time_mode(run.members)
    starts = pd.date_range(t_start, t_end, freq=f"{chunk_days}D")
    per = chunk_days // days
    chains = []
    for sb, s0 in enumerate(range(0, n_sites, chunk_sites)):
        chain = []
        for tb, a in enumerate(starts):
            b = min(a + pd.Timedelta(days=chunk_days - 1), t_end)
            back = load_from_days(cfg, mode, first=tb == 0, lead=getattr(run.adapter, "lead", None))
            n_out = -(-((b - a).days + 1) // days)
            chain.append(Block(sb, tb, s0, min(s0 + chunk_sites, n_sites), tb * per, tb * per + n_out,
                               a.strftime("%Y-%m-%d"), b.strftime("%Y-%m-%d"),
                               (a - pd.Timedelta(days=back)).strftime("%Y-%m-%d"), tb == 0,
                               mode == "state" and tb + 1 < len(starts)))
        chains.append(chain)
    return chains


def load_sites(run, ids: np.ndarray, start: str, end: str) -> xr.Dataset:
    """Inputs of sites ``ids`` over ``start..end``: the adapter's ``load_sites`` when it has one
    (reads only those cells), else its whole ``load`` cut to ``ids``."""
    loader = getattr(run.adapter, "load_sites", None)
    if loader is not None:
        return loader(ids, start, end)
    return run.adapter.load(start, end, require_target=False, inputs_only=True).sel(site=ids)


def _request_hash(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def open_work(job: Job, request: dict, names: list[str], times: np.ndarray, n_sites: int, chunk_sites: int,
              per: int, restart: bool) -> set[tuple[int, int]]:
    """Create the work folder, or reopen it for the same request; returns the finished (sb, tb)."""
    work = Path(job.work)
    req = {"format": WORK_FORMAT, **request, "layers": names}
    req_file = work / "request.json"
    if work.exists():
        if not req_file.is_file():
            raise ConfigError(f"'{work}' exists but is not an smfusion work folder (no request.json): move it away")
        _check_owner_gone(work)
        try:
            same = json.loads(req_file.read_text()).get("hash") == _request_hash(req)
        except (OSError, ValueError, AttributeError):
            same = False  # unreadable request: another request's folder
        if same and not restart:
            write_text(work / OWNER, json.dumps(_me()))
            return {tuple(int(v) for v in p.name.split("_")) for p in (work / "done").iterdir()}
        if not restart:
            raise ConfigError(f"work folder '{work}' holds an unfinished product of another request; pass "
                              "restart=True (--restart) to discard it, or finish it with the same arguments")
        remove_work(work)
    import dask.array as da

    with atomic_path(work) as tmp:  # a crash while creating leaves no half-made folder
        (tmp / "done").mkdir(parents=True)
        (tmp / "state").mkdir()
        lazy = da.empty((n_sites, times.size), chunks=(chunk_sites, per), dtype=np.float32)
        tmpl = xr.Dataset({n: (("site", "time"), lazy) for n in names}, coords={"time": times})
        enc = {n: {"chunks": (chunk_sites, per), "_FillValue": np.float32(np.nan)} for n in names}
        tmpl.to_zarr(tmp / "layers.zarr", mode="w", compute=False, encoding=enc, zarr_format=2, consolidated=False)
        (tmp / "request.json").write_text(json.dumps({**req, "hash": _request_hash(req)}, indent=1, default=str))
        (tmp / OWNER).write_text(json.dumps(_me()))
    return set()


OWNER = "owner.json"  # the job working in a work folder: {host, pid, started}


def _me() -> dict:
    import datetime as _dt
    import socket

    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": now}


def _check_owner_gone(work: Path) -> None:
    """Refuse to join a work folder whose recorded job still runs on this host (where the output's lock could
    not be taken, e.g. a file system without locks); a job on another host is the lock's business."""
    import socket

    try:
        owner = json.loads((work / OWNER).read_text())
        host, pid = owner["host"], int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # no owner recorded (an older work folder): the output's lock decides
    if host == socket.gethostname() and pid != os.getpid() and process_alive(pid):
        raise OutputError(f"work folder in use by pid {pid} on {host} (started {owner.get('started', '?')})",
                          path=work, hint="wait for that job to finish; a job joins a work folder only once its "
                                          "owner is gone")


_WORK_FILE_RE = re.compile(r"^(request\.json|owner\.json|\.owner\.json\.smfusion-.+\.tmp|\.smfusion-output|done|"
                           r"state|layers\.zarr(/.+)?|done/\d+_\d+|state/\d+_\d+\.npz|"
                           r"(done|state)/\..+\.smfusion-[A-Za-z0-9]+-\d+-[0-9a-f]+.*\.(tmp|old))$")


def remove_work(work: str | Path) -> None:
    """Delete a work folder (module docstring), refusing one that holds anything the engine does not write
    there (a user's file is never deleted: OutputError naming it)."""
    work = Path(work)
    if not work.exists():
        return
    if work.is_symlink() or not work.is_dir():
        raise OutputError("is not a work folder smfusion made (a link or a file): not removed", path=work,
                          hint="move it away yourself")
    for dirpath, dirnames, filenames in os.walk(work):
        for name in dirnames + filenames:
            rel = (Path(dirpath) / name).relative_to(work).as_posix()
            if not _WORK_FILE_RE.match(rel) or (Path(dirpath) / name).is_symlink():
                raise OutputError(f"holds '{rel}', which smfusion did not write: the work folder is not removed",
                                  path=work, hint="move your file out of it, then run again")
    shutil.rmtree(work)


def _load_state(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:  # data only, whatever the NumPy default
        return {k: f[k] for k in f.files}


def _save_state(path: Path, state: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **state)


def run_block(run, job: Job, blk: Block, carry: Optional[dict] = None) -> Optional[dict]:
    """One task (module docstring): predict, write region (sb, tb), mark it done; returns the state."""
    import torch

    fixed_mmap_threshold()
    if torch.get_num_threads() != job.torch_threads:
        torch.set_num_threads(job.torch_threads)
    if carry is None and not blk.first and job.mode == "state":
        carry = _load_state(job.state_path(blk.sb, blk.tb - 1))
    ids = job.sites[blk.s0:blk.s1]
    ds = load_sites(run, ids, blk.load_from, blk.end)
    rng = np.random.default_rng(np.random.SeedSequence([job.seed, blk.sb, blk.tb]))
    use_carry = carry if (job.mode == "state" and not blk.first) else None
    dist, state = block_distribution(run, job, ds, ids, blk.start, blk.end, rng, carry=use_carry,
                                     keep_state=blk.keep_state)
    layers = job.layers(run, dist, ids, step_times(blk.start, blk.end, job.step), job.days)
    piece = xr.Dataset({k: (("site", "time"), np.asarray(v, dtype=np.float32)) for k, v in layers.items()})
    piece.to_zarr(job.store, region={"site": slice(blk.s0, blk.s1), "time": slice(blk.t0, blk.t1)},
                  zarr_format=2, consolidated=False)
    if state is not None:
        _save_state(job.state_path(blk.sb, blk.tb), state)
    write_text(job.done_path(blk), "")
    if not blk.first:
        job.state_path(blk.sb, blk.tb - 1).unlink(missing_ok=True)
    return state


def step_times(start: str, end: str, step: int) -> np.ndarray:
    """The data's time steps (every ``step`` days from ``start``) in ``start..end``."""
    return pd.date_range(start, end, freq=f"{step}D").values


def block_distribution(run, job: Job, ds: xr.Dataset, ids: np.ndarray, start: str, end: str, rng,
                       carry: Optional[dict] = None, keep_state: bool = False) -> tuple[dict, Optional[dict]]:
    """Each target's predictive distribution over ``start..end`` for cells ``ids`` (composited over
    ``job.days`` steps before the spread is taken, recalibrated as ``job.recalibration``), and the state."""
    b = run.adapter.eval_batches(ds, ids, (start, end))
    tf = (lambda a: composite(a, job.days, axis=1)) if job.days > 1 else None
    return run.predict_block(b, job.noise_runs, job.noise, rng, carry=carry, keep_state=keep_state,
                             recalibration=job.recalibration, transform=tf)


def execute(run, job: Job, chains: list[list[Block]], done: set, client=None, progress: bool = True) -> dict:
    """Run every block not in ``done``: on ``client`` (futures) or in this process. Returns counts."""
    todo = [[b for b in chain if (b.sb, b.tb) not in done] for chain in chains]
    todo = [c for c in todo if c]
    n_all = sum(len(c) for c in chains)
    n_todo = sum(len(c) for c in todo)
    bar = tqdm(total=n_all, initial=n_all - n_todo, desc="product", unit="block", disable=not progress)
    try:
        if client is None:
            for chain in todo:
                carry = None
                for blk in chain:
                    carry = run_block(run, job, blk, carry)
                    bar.update(1)
        else:
            _submit_all(run, job, todo, client, bar)
    finally:
        bar.close()
    return {"blocks": n_all, "skipped": n_all - n_todo, "run": n_todo}


def _submit_all(run, job: Job, todo: list[list[Block]], client, bar) -> None:
    """Futures for every block; cell blocks in order (priority), each chain through its state."""
    from distributed import as_completed

    token = os.urandom(4).hex()
    run_f = client.scatter(for_workers(run), broadcast=True, hash=False)
    job_f = client.scatter(job, broadcast=True, hash=False)  # the cell list goes once too
    futures = []
    for chain in todo:
        prev = None
        for blk in chain:
            fut = client.submit(run_block, run_f, job_f, blk, prev, key=f"smfusion-block-{blk.sb}-{blk.tb}-{token}",
                                priority=-blk.sb, pure=False)
            futures.append(fut)
            prev = fut if job.mode == "state" else None  # only a carried state chains the time blocks
    del prev, fut
    for fut in as_completed(futures):
        if fut.status != "finished":
            fut.result()  # raises the task's exception here
        bar.update(1)
    futures.clear()


def for_workers(run):
    """The run as sent to the workers: its climatologies without their per-slot value counts (a fitting
    diagnostic nothing predicts with; as large as the climatology itself)."""
    import copy
    import dataclasses

    sea = getattr(run.adapter, "seasonal", None)
    if sea is None or not getattr(sea, "clims", None):
        return run
    clims = {}
    for var, clim in sea.clims.items():
        clims[var] = copy.copy(clim)
        clims[var].counts = None
    adapter = copy.copy(run.adapter)
    adapter.seasonal = dataclasses.replace(sea, clims=clims)
    return dataclasses.replace(run, adapter=adapter)


def request_of(run, sites: np.ndarray, start: str, end: str, days: int, noise_runs: int, noise: float,
               chunk_days: int, chunk_sites: int, mode: str, recalibration: str = "none") -> dict:
    """The values that fix a product (a resumed job must have the same)."""
    ids = np.ascontiguousarray(np.asarray(sites).astype(np.int64))
    lead = {"lead": run.adapter.lead} if getattr(run.adapter, "lead", None) is not None else {}  # data integration
    return {**lead, "run_dir": str(Path(run.run_dir).resolve()), "config": run.cfg.hash(), "start": start, "end": end,
            "composite_days": days, "noise_runs": noise_runs, "noise": noise, "chunk_days": chunk_days,
            "chunk_sites": chunk_sites, "mode": mode, "n_sites": int(ids.size),
            "sites": hashlib.sha256(ids.tobytes()).hexdigest(), "members": len(run.members),
            "seed": run.cfg.uncertainty.seed, "recalibration": recalibration}


def fixed_mmap_threshold(nbytes: int = 8 << 20) -> None:
    """glibc only: serve allocations >= ``nbytes`` by mmap and stop glibc from raising that threshold.

    Every block allocates and frees arrays of tens of MB; with glibc's dynamic
    threshold these move onto the heap after the first free and fragment it, so
    peak memory crept up from block to block (measured: +18% for 3 years vs 1).
    With a fixed threshold they go back to the system when freed.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, int(nbytes))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
