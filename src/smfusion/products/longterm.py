"""Long-term product: every cell of the domain over any period, with uncertainty layers.

The period may run past the target's availability (forcing is all it needs).
The work is a graph of (cell block x time block) tasks
(:mod:`smfusion.products.engine`): ``chunk_sites`` cells x ``chunk_days`` days
each, the LSTM state carried from one time block to the next (other models
re-read their warm-up or their features' history:
:mod:`smfusion.products.blocks`), every task writing its own region of a Zarr
work store; the tasks run on a ``dask.distributed`` cluster (``workers``,
``scheduler`` or ``client``; :mod:`smfusion.products.cluster`) or in this
process. The final CF NetCDF/Zarr file is then written from the work store
(NetCDF as a last conversion in this process, chunk by chunk). Peak memory is
set by one block, not by the period or the domain; a killed job resumes.

Layers (target ``v``; named ``sm*`` for a single target, ``sm_<v>*`` otherwise;
:mod:`smfusion.products.layers`, docs/uncertainty.md):

* ``sm``: ensemble mean;
* ``sm_std``: total predictive std, ``sqrt(epistemic^2 + aleatoric^2)``;
* ``sm_epistemic_std``: std of the member means (ensembles of N > 1);
* ``sm_aleatoric_std``: sqrt of the mean member variance (probabilistic heads)
  plus the input-noise variance (``noise_runs`` > 0);
* ``sm_qNN``: predictive quantiles (``uncertainty.quantiles``, e.g. ``sm_q05``, ``sm_q95``);
* ``sm_climatology``: the run's target climatology (training period) on each date.

The spread layers are recalibrated as the run's ``uncertainty.recalibration`` says
(``recalibration`` overrides; fitted on held-out validation data only, before any
task runs). The std layers carry the CF modifier ``standard_error``; ``sm`` lists
them in ``ancillary_variables``.

``composite_days`` > 1 averages consecutive blocks of that many of the data's
time steps from ``start`` (the member means, each member's mixture components
and the noisy predictions are averaged before their spread is taken: errors
within a block count as fully correlated); ``time`` is the first day of each
block. The data's time step is one day, or N days for an adapter that
composites its inputs (``tb``; :mod:`smfusion.products.chain`). ``layout="grid"`` writes
(time, y, x) on an EASE-Grid 2.0 grid (default: the data's own ``ease2_grid``,
e.g. M09 for multiscale fine cells, else M36) over the bounding box of the
domain's cells, cells without a site being NaN; ``layout="site"`` writes (site, time).
Any series run works (sequence, multiscale); point runs predict examples, not a
domain (``smfusion predict-points``). A reader that draws its data for the window it is
asked for (the twin: ``drawn_per_window`` in :data:`smfusion.config.data.DATA_BY_READER`) is predicted in one
time block.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy
from smfusion.io.formats import output_kind, write_product
from smfusion.io.layer_names import CLIMATOLOGY, layer
from smfusion.io.ownership import check_output
from smfusion.products import engine, sizing
from smfusion.products.blocks import composite, time_mode
from smfusion.products.cluster import dask_client
from smfusion.products.layers import ancillary_of, applied_recalibration, distribution_layers, layer_attrs
from smfusion.runs import Run
from smfusion.io.lock import locked

__all__ = ["predict_product", "layer_names", "composite", "method_label"]


def method_label(cfg) -> str:
    """What made the product, from the run's config: CASM only where a sensor's observations are the inputs.

    Brightness temperatures through an adapter of sensor inputs (``tb``): CASM; another sensor's soil-moisture
    retrievals (a reader that gives retrievals, ``sensor_cells``): CASM-style transfer, retrieval to retrieval;
    anything else (forcing, statics): the model and its inputs, no CASM label.
    """
    from smfusion.data.adapters import adapter_name, get_adapter

    dyn, target = list(cfg.data.dynamic), ", ".join(cfg.data.target)
    sensor = get_adapter(adapter_name(cfg)).sensor_inputs  # the tb adapter
    if sensor and dyn and all(v.startswith("tb_") for v in dyn):
        return f"smfusion long-term soil-moisture product: CASM, brightness temperatures ({', '.join(dyn)}) -> {target}"
    if sensor or cfg.data.traits.gives_retrievals:
        return (f"smfusion long-term soil-moisture product: CASM-style sensor transfer on retrievals "
                f"({', '.join(dyn)}) -> {target} (retrieval to retrieval, not brightness temperatures)")
    shown = ", ".join(dyn[:6]) + (f" and {len(dyn) - 6} more" if len(dyn) > 6 else "")
    return f"smfusion long-term soil-moisture product: {cfg.model.name} from {shown or 'static inputs'} -> {target}"


def layer_names(targets: list[str]) -> dict[str, str]:
    """Target variable -> product layer prefix (``sm`` for a single target)."""
    return {v: "sm" if len(targets) == 1 else f"sm_{v}" for v in targets}


def _site_chunk(run: Run, dist: dict, sites: np.ndarray, times: np.ndarray, days: int) -> dict[str, np.ndarray]:
    """Layers (name -> (site, time')) of one block from its predictive distributions (target -> Predictive,
    already composited over ``days`` steps), the data's steps being ``times``."""
    names = layer_names(run.cfg.data.target)
    out = distribution_layers(dist, names, run.cfg.uncertainty.quantiles)
    for var, name in names.items():
        seasonal = getattr(run.adapter, "seasonal", None)
        clim = seasonal.clims.get(var) if seasonal is not None else None
        if clim is not None:
            c = np.full((len(sites), len(times)), np.nan, dtype=np.float32)
            known = np.isin(sites, clim.site_coords["site"])
            if known.any():
                c[known] = clim.climatology_for(times, site=sites[known]).values
            out[layer(name, CLIMATOLOGY)] = composite(c, days)
    return out


def _attrs(name: str, var: str, prefix: str, units: str, days: int, recal: str = "none") -> dict:
    attrs = layer_attrs(name[len(prefix):], var, units, recal)
    if attrs is None:
        kind = {"": f"predicted {var} (ensemble mean)",
                CLIMATOLOGY: f"day-of-year climatology of {var} (training period)"}
        attrs = {"long_name": kind[name[len(prefix):]], "units": units}
    if days > 1:
        attrs["cell_methods"] = f"time: mean (interval: {days} days)"
    return attrs


def _grid_index(lat, lon, grid) -> tuple[np.ndarray, np.ndarray, slice, slice]:
    rows, cols = latlon_to_rowcol(grid, lat, lon)
    if np.any(rows < 0):
        raise DataError(f"{int((rows < 0).sum())} sites lie outside grid {grid}", field="lat/lon")
    return rows, cols, slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1)


def _to_grid(values: np.ndarray, r: np.ndarray, c: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """(site, time) -> (time, y, x); sites sharing a cell are averaged (NaN ignored)."""
    values = np.asarray(values, dtype=np.float32)
    nt = values.shape[1]
    flat = r * nx + c
    out = np.full((nt, ny * nx), np.nan, dtype=np.float32)
    if np.unique(flat).size == flat.size:  # one site per cell: a scatter
        out[:, flat] = values.T
        return out.reshape(nt, ny, nx)
    ok = np.isfinite(values)
    s = np.zeros((ny * nx, nt))
    cnt = np.zeros((ny * nx, nt))
    np.add.at(s, flat, np.where(ok, values, 0.0))
    np.add.at(cnt, flat, ok.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan).astype(np.float32)
    return out.T.reshape(nt, ny, nx)


@locked("out", "predict --product")
def predict_product(
    run_dir: str | Path | Run,
    start: str,
    end: str,
    out: str | Path,
    *,
    layout: str = "site",
    grid: Optional[str] = None,
    composite_days: int = 1,
    noise_runs: Optional[int] = None,
    noise: Optional[float] = None,
    chunk_days: int = 366,
    chunk_sites: int = 2048,
    sites: Optional[np.ndarray] = None,
    progress: bool = True,
    recalibration: Optional[str] = None,
    workers: Optional[int] = None,
    threads_per_worker: int = 1,
    scheduler: Optional[str] = None,
    client=None,
    restart: bool = False,
    overwrite: bool = False,
    lead: Optional[int] = None,
) -> Path:
    """Write the long-term product of a trained run (see the module docstring); returns ``out``.

    ``noise_runs``/``noise`` default to the run's ``uncertainty`` section, ``recalibration`` (none, variance,
    isotonic) to its ``uncertainty.recalibration``. ``run_dir`` may be a loaded
    :class:`~smfusion.runs.Run` (products/chain.py sets its adapter's input compositing).
    ``out`` ending in ``.zarr`` gives Zarr, else NetCDF-4. Where the tasks run:
    ``client`` (a ``distributed.Client``), ``scheduler`` (address or scheduler
    file of a running cluster), ``workers`` (a local cluster of that many
    processes x ``threads_per_worker``), else this process. An unfinished job
    of the same request resumes; ``restart`` discards it. An existing ``out`` is
    refused unless ``overwrite`` (rules of :mod:`smfusion.io.ownership`), checked first. ``lead``:
    data-integration runs use the retrievals up to d - lead for day d (None: the run's lead); they are read
    by block like the forcing.
    """
    if layout not in ("site", "grid"):
        raise ConfigError(f"layout must be 'site' or 'grid', got {layout!r}")
    if composite_days < 1 or chunk_days < 1 or chunk_sites < 1:
        raise ConfigError("composite_days, chunk_days and chunk_sites must be >= 1")
    if workers and scheduler is not None:
        raise ConfigError(f"--workers {workers} starts a local cluster, --scheduler {scheduler} uses a running one",
                          hint="give one of them")
    if workers and client is None:
        sizing.check_local(workers, threads_per_worker, 0)  # cores first, in a moment; memory once a block is known
    t_start, t_end = pd.Timestamp(start), pd.Timestamp(end)
    if t_end < t_start:
        raise ConfigError(f"period ends before it starts: {start} .. {end}")
    run = (run_dir if isinstance(run_dir, Run) else Run.load(run_dir)).at_lead(lead)
    check_output(out, overwrite=overwrite, protect=[run.run_dir], kind=output_kind(out))
    engine.fixed_mmap_threshold()
    if run.layout != "site":
        raise ConfigError(f"predict --product: '{run.adapter.name}' runs predict examples, not a domain;"
                          " use smfusion predict-points")
    noise_runs = run.cfg.uncertainty.noise_runs if noise_runs is None else int(noise_runs)
    noise = float(run.cfg.uncertainty.noise if noise is None else noise)
    if run.cfg.data.traits.drawn_per_window:
        chunk_days = (t_end - t_start).days + 1
    step = int(getattr(run.adapter, "composite_days", 1))  # days per data time step
    span = step * composite_days  # days per output step
    chunk_days = -(-chunk_days // span) * span  # whole composites per block
    head = run.adapter.load(start, start, require_target=False, inputs_only=True)
    dom = _Domain(head, sites, layout, grid or head.attrs.get("ease2_grid", "M36"))
    if layout == "grid":
        sizing.check_grid_window(dom.grid, dom.ny, dom.nx)
    chunk_sites = min(chunk_sites, dom.sites.size)
    out = Path(out)
    mode = time_mode(run.members)
    recal = applied_recalibration(run, recalibration, noise_runs)  # fitted here, once, when not yet saved
    job = engine.Job(work=str(out.parent / f".{out.name}.work"), sites=dom.sites, noise_runs=noise_runs, noise=noise,
                     seed=run.cfg.uncertainty.seed, days=composite_days, mode=mode, layers=_site_chunk,
                     recalibration=recal, step=step)
    chains = engine.plan(run, dom.sites.size, t_start, t_end, chunk_days, chunk_sites, span)
    names = list(_probe_layers(run, job, chains[0][0]))
    times = pd.date_range(t_start, t_end, freq=f"{span}D").values
    task = sizing.task_bytes(run, chunk_sites, chunk_days, noise_runs, len(names))
    if client is None and scheduler is None:
        sizing.check_local(workers, threads_per_worker, task)
    sizing.check_disk(out, dom.sites.size, len(times), len(names))
    request = engine.request_of(run, dom.sites, start, end, composite_days, noise_runs, noise, chunk_days,
                                chunk_sites, mode, recal)
    done = engine.open_work(job, request, names, times, dom.sites.size, chunk_sites, chunk_days // span, restart)
    if done and progress:
        print(f"resuming {job.work}: {len(done)} finished region(s) skipped", file=sys.stderr)
    with dask_client(workers, threads_per_worker, scheduler, client=client, progress=progress) as c:
        if c is not None and client is None and scheduler is not None:
            sizing.check_cluster(c, task)
        engine.execute(run, job, chains, done, client=c, progress=progress)
        path = _finalise(run, job.store, out, dom, composite_days, noise_runs, noise, "m3 m-3", (start, end),
                         distributed=c is not None, overwrite=overwrite, recal=recal)
    engine.remove_work(job.work)
    return path


def _probe_layers(run: Run, job: engine.Job, blk: engine.Block) -> dict[str, np.ndarray]:
    """The layers of the first site over the first composite (names for the work store)."""
    end = (pd.Timestamp(blk.start) + pd.Timedelta(days=job.step * job.days - 1)).strftime("%Y-%m-%d")
    ids = job.sites[:1]
    ds = engine.load_sites(run, ids, blk.load_from, end)
    return job.layers(run, engine.block_distribution(run, job, ds, ids, blk.start, end, np.random.default_rng(0))[0],
                      ids, engine.step_times(blk.start, end, job.step), job.days)


class _Domain:
    """The product's sites and, for the grid layout, their cells in the output window."""

    def __init__(self, head: xr.Dataset, sites, layout: str, grid: str):
        self.sites = head["site"].values if sites is None else np.asarray(sites)
        self.lat = head["lat"].sel(site=self.sites).values
        self.lon = head["lon"].sel(site=self.sites).values
        self.layout, self.grid = layout, grid
        if layout == "grid":
            self.rows, self.cols, self.ys, self.xs = _grid_index(self.lat, self.lon, get_grid(grid))
            self.ny, self.nx = self.ys.stop - self.ys.start, self.xs.stop - self.xs.start

    def gridded(self, lazy: xr.Dataset) -> tuple[xr.Dataset, int]:
        """(site, time) layers -> (time, y, x) on the grid window, lazily (a few days of the window per task);
        returns the Dataset and its time chunk."""
        import dask.array as da

        r, c, ny, nx = self.rows - self.ys.start, self.cols - self.xs.start, self.ny, self.nx
        ct = int(max(1, min(lazy.sizes["time"], (32 << 20) // (4 * ny * nx))))
        out = {}
        for name, var in lazy.data_vars.items():
            arr = var.data.rechunk({0: -1, 1: ct})
            out[name] = (("time", "y", "x"), da.map_blocks(_to_grid, arr, r, c, ny, nx, dtype=np.float32,
                                                           drop_axis=0, new_axis=[1, 2],
                                                           chunks=(arr.chunks[1], (ny,), (nx,))), var.attrs)
        return xr.Dataset(out, coords={"time": lazy["time"]}, attrs=lazy.attrs), ct


def _finalise(run, store, out, dom: _Domain, days, noise_runs, noise, units, period, distributed=False,
              overwrite=False, recal: str = "none") -> Path:
    """The CF product from the work store: Zarr written by the cluster's workers (when ``distributed``),
    NetCDF in this process, chunk by chunk."""
    import dask

    cfg = run.cfg
    layout, grid = dom.layout, dom.grid
    lazy = xr.open_zarr(store, consolidated=False)
    lazy = lazy.drop_vars([v for v in ("site",) if v in lazy.variables])
    chunks = None
    if layout == "site":
        lazy = lazy.assign_coords(site=("site", np.asarray(dom.sites, dtype=np.int32)), lat=("site", dom.lat),
                                  lon=("site", dom.lon))
    else:
        g = get_grid(grid)
        lazy, ct = dom.gridded(lazy)
        chunks = {"time": ct}
        ys, xs = dom.ys, dom.xs
        rr, cc = np.meshgrid(np.arange(ys.start, ys.stop), np.arange(xs.start, xs.stop), indexing="ij")
        glat, glon = rowcol_to_latlon(g, rr, cc)
        x, _ = rowcol_to_xy(g, np.zeros(xs.stop - xs.start, dtype=int), np.arange(xs.start, xs.stop))
        _, y = rowcol_to_xy(g, np.arange(ys.start, ys.stop), np.zeros(ys.stop - ys.start, dtype=int))
        lazy = lazy.assign_coords(x=("x", x), y=("y", y), lat=(("y", "x"), glat), lon=(("y", "x"), glon))
        lazy.attrs["ease2_grid"] = g.name
    target = cfg.data.target
    names = layer_names(target)
    for name in lazy.data_vars:
        var = next(v for v, p in names.items() if str(name) == p or str(name).startswith(p + "_"))
        lazy[name].attrs = _attrs(str(name), var, names[var], units, days, recal)
        lazy[name].encoding = {}
    for var, prefix in names.items():
        ancillary = ancillary_of(prefix, var, lazy.data_vars, units)
        if ancillary:
            lazy[prefix].attrs["ancillary_variables"] = ancillary
    lazy.attrs.update(
        product=method_label(cfg),
        period=f"{period[0]} .. {period[1]}",
        composite_days=int(days),
        model=cfg.model.name,
        ensemble_members=len(run.members),
        noise_runs=int(noise_runs),
        input_noise=float(cfg.uncertainty.noise if noise is None else noise),
        target_mode=cfg.seasonal.target_mode,
        input_mode=cfg.seasonal.input_mode,
        training_period=f"{cfg.periods.train.start} .. {cfg.periods.train.end}",
        run_dir=str(run.run_dir),
        recalibration=recal,
    )
    kw = dict(title=f"smfusion {cfg.name} product {period[0]} .. {period[1]}", config=cfg.to_dict(),
              inputs=[str(run.run_dir)], grid=grid if layout == "grid" else None, chunks=chunks, overwrite=overwrite,
              protect=[run.run_dir])
    # a Zarr store is written by the cluster's workers (chunk by chunk); NetCDF-4 by this process
    parallel = distributed and output_kind(out) == "dir"
    with dask.config.set(scheduler="synchronous") if not parallel else contextlib.nullcontext():
        write_product(lazy, out, **kw)
    lazy.close()
    return out
