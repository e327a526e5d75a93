"""Long-term product: every cell of the domain over any period, with uncertainty layers.

The period may run past the target's availability (forcing is all it needs).
Work is streamed: an explicit loop over time chunks (``chunk_days``) and site
chunks (``chunk_sites``). Each time chunk reads only its own forcing, preceded
by the run's ``warmup_days`` (the LSTM state is rebuilt by this warm-up at the
start of every chunk rather than carried, so any registered model works), and
is appended to a scratch Zarr store; the final CF NetCDF/Zarr file is then
written from that store lazily with Dask, chunk by chunk. Peak memory is set by
one chunk, not by the length of the period.

Layers (target ``v``; named ``sm*`` for a single target, ``sm_<v>*`` otherwise):

* ``sm``: ensemble mean;
* ``sm_epistemic_std``: std over members (ensembles of N > 1);
* ``sm_aleatoric_std``: input-noise std (``noise_runs`` > 0; see
  :meth:`smfusion.runs.Run.predict_members`);
* ``sm_climatology``: the run's target climatology (training period) on each date.

``composite_days`` > 1 averages consecutive blocks of that many days from
``start`` (the member and noisy predictions are averaged before their spread is
taken); ``time`` is the first day of each block. ``layout="grid"`` writes
(time, y, x) on an EASE-Grid 2.0 grid (default: the data's own ``ease2_grid``,
e.g. M09 for multiscale fine cells, else M36) over the bounding box of the
domain's cells, cells without a site being NaN; ``layout="site"`` writes (site, time).
Any series run works (sequence, multiscale); point runs predict examples, not a
domain (``smfusion predict-points``). The twin reader draws its synthetic data
for the window it is asked for, so twin runs are predicted in one time chunk.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy
from smfusion.io import cf
from smfusion.runs import Run
from smfusion.training.ensembles import aleatoric_std, epistemic_std

__all__ = ["predict_product", "layer_names", "composite"]


def layer_names(targets: list[str]) -> dict[str, str]:
    """Target variable -> product layer prefix (``sm`` for a single target)."""
    return {v: "sm" if len(targets) == 1 else f"sm_{v}" for v in targets}


def composite(x: np.ndarray, days: int, axis: int = -1) -> np.ndarray:
    """Mean over consecutive blocks of ``days`` along ``axis`` (the last block may be shorter)."""
    if days == 1:
        return x
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    nb = -(-n // days)
    pad = nb * days - n
    if pad:
        x = np.concatenate([x, np.full(x.shape[:-1] + (pad,), np.nan, dtype=x.dtype)], axis=-1)
    xb = x.reshape(x.shape[:-1] + (nb, days))
    with np.errstate(invalid="ignore"):
        cnt = np.isfinite(xb).sum(-1)
        s = np.where(np.isfinite(xb), xb, 0.0).sum(-1)
        out = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan).astype(np.float32)
    return np.moveaxis(out, -1, axis)


def _site_chunk(run: Run, ds: xr.Dataset, sites: np.ndarray, period, noise_runs: int,
                noise: Optional[float], seed: int, days: int) -> dict[str, np.ndarray]:
    """Layers (name -> (site, time')) of one site chunk over ``period``."""
    res = run.predict_members(ds, sites, period, noise_runs=noise_runs, noise=noise, seed=seed)
    members, noisy = res if noise_runs else (res, None)
    times = ds["time"].sel(time=slice(*period)).values  # the data's steps (daily, or an adapter's N-day windows)
    out = {}
    for i, (var, name) in enumerate(layer_names(run.cfg.data.target).items()):
        m = composite(members[..., i], days)
        out[name] = m.mean(0).astype(np.float32)
        if m.shape[0] > 1:
            out[f"{name}_epistemic_std"] = epistemic_std(m)
        if noisy is not None:
            out[f"{name}_aleatoric_std"] = aleatoric_std(composite(noisy[..., i], days))
        seasonal = getattr(run.adapter, "seasonal", None)
        clim = seasonal.clims.get(var) if seasonal is not None else None
        if clim is not None:
            c = np.full((len(sites), len(times)), np.nan, dtype=np.float32)
            known = np.isin(sites, clim.site_coords["site"])
            if known.any():
                c[known] = clim.climatology_for(times, site=sites[known]).values
            out[f"{name}_climatology"] = composite(c, days)
    return out


def _attrs(name: str, var: str, units: str, days: int) -> dict:
    kind = {"": f"predicted {var} (ensemble mean)", "_epistemic_std": f"epistemic (ensemble) std of {var}",
            "_aleatoric_std": f"aleatoric (input-noise) std of {var}",
            "_climatology": f"day-of-year climatology of {var} (training period)"}
    base = next(k for k in ("_epistemic_std", "_aleatoric_std", "_climatology", "") if name.endswith(k))
    attrs = {"long_name": kind[base], "units": units}
    if days > 1:
        attrs["cell_methods"] = f"time: mean (interval: {days} days)"
    return attrs


def _fixed_mmap_threshold(nbytes: int = 8 << 20) -> None:
    """glibc only: serve allocations >= ``nbytes`` by mmap and stop glibc from raising that threshold.

    Every chunk allocates and frees arrays of tens of MB; with glibc's dynamic
    threshold these move onto the heap after the first free and fragment it, so
    peak memory crept up from chunk to chunk (measured: +18% for 3 years vs 1).
    With a fixed threshold they go back to the system when freed.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, int(nbytes))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _grid_index(lat, lon, grid) -> tuple[np.ndarray, np.ndarray, slice, slice]:
    rows, cols = latlon_to_rowcol(grid, lat, lon)
    if np.any(rows < 0):
        raise DataError(f"{int((rows < 0).sum())} sites lie outside grid {grid}", field="lat/lon")
    return rows, cols, slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1)


def _to_grid(values: np.ndarray, r: np.ndarray, c: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """(site, time) -> (time, y, x); sites sharing a cell are averaged."""
    nt = values.shape[1]
    flat = r * nx + c
    s = np.zeros((ny * nx, nt))
    n = np.zeros((ny * nx, 1))
    ok = np.isfinite(values)
    np.add.at(s, flat, np.where(ok, values, 0.0))
    np.add.at(n, flat, 1.0)
    cnt = np.zeros((ny * nx, nt))
    np.add.at(cnt, flat, ok.astype(float))
    out = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan).astype(np.float32)
    return out.T.reshape(nt, ny, nx)


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
    chunk_sites: int = 512,
    sites: Optional[np.ndarray] = None,
    progress: bool = True,
) -> Path:
    """Write the long-term product of a trained run (see the module docstring); returns ``out``.

    ``noise_runs``/``noise`` default to the run's ``uncertainty`` section.
    ``out`` ending in ``.zarr`` gives Zarr, else NetCDF-4. ``run_dir`` may be a loaded
    :class:`~smfusion.runs.Run` (products/chain.py sets its adapter's input compositing).
    """
    if layout not in ("site", "grid"):
        raise ConfigError(f"layout must be 'site' or 'grid', got {layout!r}")
    if composite_days < 1 or chunk_days < 1 or chunk_sites < 1:
        raise ConfigError("composite_days, chunk_days and chunk_sites must be >= 1")
    t_start, t_end = pd.Timestamp(start), pd.Timestamp(end)
    if t_end < t_start:
        raise ConfigError(f"period ends before it starts: {start} .. {end}")
    _fixed_mmap_threshold()
    run = run_dir if isinstance(run_dir, Run) else Run.load(run_dir)
    if run.layout != "site":
        raise ConfigError(f"predict --product: '{run.adapter.name}' runs predict examples, not a domain;"
                          " use smfusion predict-points")
    noise_runs = run.cfg.uncertainty.noise_runs if noise_runs is None else int(noise_runs)
    if run.cfg.data.reader == "twin":
        chunk_days = (t_end - t_start).days + 1
    chunk_days = -(-chunk_days // composite_days) * composite_days  # whole composites per chunk
    head = run.adapter.load(start, start, require_target=False, inputs_only=True)
    dom = _Domain(head, sites, layout, grid or head.attrs.get("ease2_grid", "M36"))
    out = Path(out)
    scratch = out.parent / f".{out.name}.scratch.zarr"
    if scratch.exists():
        shutil.rmtree(scratch)
    try:
        _write_chunks(run, dom, scratch, t_start, t_end, chunk_days, chunk_sites, composite_days, noise_runs,
                      noise, progress)
        return _finalise(run, scratch, out, dom, composite_days, noise_runs, noise, "m3 m-3", (start, end))
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)


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

    def piece(self, layers: dict[str, np.ndarray], times) -> xr.Dataset:
        if self.layout == "site":
            return xr.Dataset({k: (("site", "time"), v) for k, v in layers.items()}, coords={"time": times})
        r, c = self.rows - self.ys.start, self.cols - self.xs.start
        return xr.Dataset({k: (("time", "y", "x"), _to_grid(v, r, c, self.ny, self.nx)) for k, v in layers.items()},
                          coords={"time": times})


def _write_chunks(run: Run, dom: _Domain, scratch: Path, t_start, t_end, chunk_days: int, chunk_sites: int,
                  days: int, noise_runs: int, noise, progress: bool) -> None:
    """Predict time chunk by time chunk (each with its own warm-up) and append each to the scratch store."""
    cfg = run.cfg
    starts = pd.date_range(t_start, t_end, freq=f"{chunk_days}D")
    site_chunks = [dom.sites[i : i + chunk_sites] for i in range(0, len(dom.sites), chunk_sites)]
    bar = tqdm(total=len(starts) * len(site_chunks), desc="product", unit="chunk", disable=not progress)
    try:
        for ci, a in enumerate(starts):
            b = min(a + pd.Timedelta(days=chunk_days - 1), t_end)
            period = (a.strftime("%Y-%m-%d"), b.strftime("%Y-%m-%d"))
            w0 = (a - pd.Timedelta(days=cfg.periods.warmup_days)).strftime("%Y-%m-%d")
            ds = run.adapter.load(w0, period[1], require_target=False, inputs_only=True)
            parts = []
            for si, chunk in enumerate(site_chunks):
                parts.append(_site_chunk(run, ds, chunk, period, noise_runs, noise,
                                         cfg.uncertainty.seed + 1000 * ci + si, days))
                bar.update(1)
            layers = {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}
            piece = dom.piece(layers, ds["time"].sel(time=slice(a, b)).values[::days])
            piece.to_zarr(scratch, mode="w" if ci == 0 else "a", zarr_format=2, consolidated=False,
                          **({} if ci == 0 else {"append_dim": "time"}))
            del ds, parts, layers, piece
    finally:
        bar.close()


def _finalise(run, scratch, out, dom: _Domain, days, noise_runs, noise, units, period) -> Path:
    import dask

    cfg = run.cfg
    layout, grid = dom.layout, dom.grid
    lazy = xr.open_zarr(scratch, consolidated=False)
    if layout == "site":
        lazy = lazy.assign_coords(site=("site", np.asarray(dom.sites, dtype=np.int64)), lat=("site", dom.lat),
                                  lon=("site", dom.lon))
    else:
        g = get_grid(grid)
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
        lazy[name].attrs = _attrs(str(name), var, units, days)
    lazy.attrs.update(
        product="smfusion long-term soil-moisture product (CASM-style)",
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
    )
    kw = dict(title=f"smfusion {cfg.name} product {period[0]} .. {period[1]}", config=cfg.to_dict(),
              inputs=[str(run.run_dir)], grid=grid if layout == "grid" else None)
    with dask.config.set(scheduler="synchronous"):
        if out.suffix == ".zarr":
            cf.write_zarr(lazy, out, **kw)
        else:
            cf.write_netcdf(lazy, out, **kw)
    lazy.close()
    return out
