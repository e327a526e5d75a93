"""One product from several runs, each valid over its own era (CASM's chain of sensor eras), on any EASE-2 grid.

Eras are ``(run, start, end)``, contiguous: each starts the day after the
previous one ends (no gap, no overlap; checked). With ``composite_days`` N the
product's steps are the N-day windows from the first era's start, and a window
belongs to the era holding its first day. Each era is predicted through the
product API (:func:`smfusion.products.longterm.predict_product`, site layout):
a run whose adapter composites its inputs (the ``tb`` adapter) gets the
brightness temperatures of the passes in each window averaged and then
predicted (CASM's 3-day compositing); other runs average their daily output.

The eras are concatenated along time. Layers: those of the runs (``sm``,
``sm_std``, ``sm_epistemic_std``, ``sm_aleatoric_std``, quantiles, ``sm_climatology``; a layer a run
lacks is NaN in its era) and ``source``: the index of the era that gave each
value (``flag_values``/``flag_meanings`` name the eras; -1 where ``sm`` is
missing). ``layout="grid"`` writes (time, y, x) on ``grid`` (default: the
runs' data grid), area-weighted (:mod:`smfusion.products.regrid_product`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import get_grid
from smfusion.io.formats import output_kind, write_product
from smfusion.io.atomic import clean_stale, temp_name
from smfusion.io.ownership import check_output
from smfusion.products.longterm import method_label, predict_product
from smfusion.products.sizing import check_sites_window
from smfusion.products.regrid_product import SOURCE_FILL, regrid_site_product
from smfusion.runs import Run
from smfusion.io.lock import locked

__all__ = ["Era", "check_eras", "era_periods", "predict_chain"]


@dataclass(frozen=True)
class Era:
    """A run and the inclusive period it is valid for; ``name`` labels it in the ``source`` layer."""

    run_dir: Path
    start: pd.Timestamp
    end: pd.Timestamp
    name: str = ""


def check_eras(eras: Sequence) -> list[Era]:
    """Eras as :class:`Era` (tuples ``(run, start, end[, name])`` accepted), refused unless contiguous."""
    out = []
    for e in eras:
        if not isinstance(e, Era):
            run, start, end, *name = e
            try:
                e = Era(Path(run), pd.Timestamp(start), pd.Timestamp(end), name[0] if name else "")
            except ValueError:
                raise ConfigError(f"era of {run}: START and END must be dates YYYY-MM-DD, got {start!r} {end!r}") \
                    from None
        if e.end < e.start:
            raise ConfigError(f"era of {e.run_dir}: ends before it starts ({e.start.date()} .. {e.end.date()})")
        out.append(e)
    if not out:
        raise ConfigError("no era given")
    for a, b in zip(out, out[1:]):
        if b.start != a.end + pd.Timedelta(days=1):
            what = "overlaps" if b.start <= a.end else "leaves a gap after"
            raise ConfigError(f"era of {b.run_dir} starting {b.start.date()} {what} the era of {a.run_dir} "
                              f"ending {a.end.date()}: eras must be contiguous (next start = previous end + 1 day)")
    return out


def era_periods(eras: list[Era], days: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Per era, (first window start, last window's last day) of the N-day windows from the chain's start whose
    first day lies in the era (the last window cut at the chain's end)."""
    t0, t_end = eras[0].start, eras[-1].end
    out = []
    for e in eras:
        k0 = -(-(e.start - t0).days // days)
        k1 = (e.end - t0).days // days
        if k1 < k0:
            raise ConfigError(f"era of {e.run_dir} ({e.start.date()} .. {e.end.date()}) holds no {days}-day "
                              "window start")
        a = t0 + pd.Timedelta(days=k0 * days)
        b = min(t0 + pd.Timedelta(days=(k1 + 1) * days - 1), t_end)
        out.append((a, b))
    return out


@locked("out", "predict --product (chain)")
def predict_chain(eras: Sequence, out: str | Path, *, layout: str = "site", grid: Optional[str] = None,
                  composite_days: int = 1, noise_runs: Optional[int] = None, noise: Optional[float] = None,
                  chunk_days: int = 366, chunk_sites: int = 512, min_valid_fraction: float = 0.5,
                  progress: bool = True, overwrite: bool = False) -> Path:
    """Write the chained product of ``eras`` to ``out`` (module doc); returns ``out``.

    ``noise_runs``/``noise`` default to each run's ``uncertainty`` section; ``.zarr`` gives Zarr, else NetCDF-4.
    An existing ``out`` is refused unless ``overwrite`` (rules of :mod:`smfusion.io.ownership`), checked first.
    The eras' products are written to a fresh scratch folder beside ``out`` (this call's own), removed at the end.
    """
    if layout not in ("site", "grid"):
        raise ConfigError(f"layout must be 'site' or 'grid', got {layout!r}")
    if composite_days < 1:
        raise ConfigError("composite_days must be >= 1")
    if grid is not None:
        get_grid(grid)  # an unknown name is refused before any era is predicted
    eras = check_eras(eras)
    periods = era_periods(eras, composite_days)
    out = Path(out)
    protect = [e.run_dir for e in eras]
    check_output(out, overwrite=overwrite, protect=protect, kind=output_kind(out))
    clean_stale(out)  # scratch folders left by killed chains
    scratch = temp_name(out, "tmp", ".chain")
    scratch.mkdir()
    try:
        names, methods, data_grid = [], [], None
        for i, (e, (a, b)) in enumerate(zip(eras, periods)):
            run = Run.load(e.run_dir)
            names.append(e.name or run.cfg.name)
            methods.append(method_label(run.cfg))
            days = composite_days
            if hasattr(run.adapter, "set_composite"):  # composite the inputs of the passes, then predict
                run.adapter.set_composite(composite_days, eras[0].start)
                days = 1
            if data_grid is None:
                head = run.adapter.load(a.strftime("%Y-%m-%d"), a.strftime("%Y-%m-%d"), require_target=False,
                                        inputs_only=True)
                data_grid = head.attrs.get("ease2_grid", "M36")
                if layout == "grid":  # the output window fits in memory: checked before any block is computed
                    check_sites_window(grid or data_grid, head["lat"].values, head["lon"].values)
            predict_product(run, a.strftime("%Y-%m-%d"), b.strftime("%Y-%m-%d"), scratch / f"era_{i}.nc",
                            layout="site", composite_days=days, noise_runs=noise_runs, noise=noise,
                            chunk_days=chunk_days, chunk_sites=chunk_sites, progress=progress)
        ds = _concat([scratch / f"era_{i}.nc" for i in range(len(eras))], eras, periods, names, composite_days)
        if layout == "grid":
            ds = regrid_site_product(ds, data_grid, grid or data_grid, scratch / "grid.zarr",
                                     min_valid_fraction=min_valid_fraction)
        else:
            ds = _site_source(ds)
        ds.attrs["era_methods"] = "; ".join(f"{n}: {m}" for n, m in zip(names, methods))
        return _write(ds, out, eras, names, composite_days, layout, grid or data_grid, overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _concat(paths, eras, periods, names, days) -> xr.Dataset:
    """Era products -> one (site, time) Dataset on the chain's steps, with ``source_era`` (time,)."""
    parts = [xr.open_dataset(p, chunks={}) for p in paths]
    first = parts[0]
    for e, p in zip(eras[1:], parts[1:]):
        if not (np.array_equal(p["site"].values, first["site"].values)
                and np.allclose(p["lat"].values, first["lat"].values)):
            raise DataError(f"the run of {e.run_dir} predicts other sites than the first era's", field="site")
    for e, p in zip(eras, parts):
        if "sm" not in p:
            raise DataError(f"the run of {e.run_dir} has several targets: a chain needs single-target runs", field="sm")
    layers = sorted({str(v) for p in parts for v in p.data_vars if p[v].dims == ("site", "time")})
    pieces, era_of = [], []
    for i, (p, (a, b)) in enumerate(zip(parts, periods)):
        p = p.sel(time=slice(a, b))
        for v in layers:
            if v not in p:
                p[v] = xr.full_like(p["sm"], np.nan)
        pieces.append(p[layers])
        era_of.append(np.full(p.sizes["time"], i, dtype=np.int8))
    ds = xr.concat(pieces, dim="time", data_vars="all", coords="minimal", compat="override", join="override")
    t = pd.DatetimeIndex(ds["time"].values)
    expected = pd.date_range(eras[0].start, eras[-1].end, freq=f"{days}D")
    if len(t) != len(expected) or not (t == expected).all():
        raise DataError(f"the eras' time steps are not the {days}-day steps from {eras[0].start.date()} "
                        f"to {eras[-1].end.date()} (gap or overlap)", field="time")
    ds = ds.assign(source_era=("time", np.concatenate(era_of)))
    ds.attrs = {}  # per-run attributes (model, members, training period) are in the eras' run directories
    for v in layers:
        ds[v].attrs = dict(next(p[v].attrs for p in parts if v in p.data_vars))
    return ds


def _site_source(ds: xr.Dataset) -> xr.Dataset:
    """Site layout: ``source`` (site, time) from the per-time era index, -1 where ``sm`` is missing."""
    era = xr.DataArray(ds["source_era"].values, dims="time")
    src = xr.where(ds["sm"].notnull(), era, SOURCE_FILL).astype(np.int8).transpose("site", "time")
    return ds.drop_vars("source_era").assign(source=src)


def _write(ds: xr.Dataset, out: Path, eras, names, days, layout, grid, overwrite: bool = False) -> Path:
    import dask

    if "source_era" in ds:
        ds = ds.drop_vars("source_era")
    ds["source"].attrs = {"long_name": "era (source run) of the value", "flag_values": np.arange(len(eras),
                          dtype=np.int8), "flag_meanings": " ".join(n.replace(" ", "_") for n in names)}
    ds["source"].encoding["_FillValue"] = np.int8(SOURCE_FILL)
    ds.attrs.update(
        product="smfusion chained product (eras of several runs; CASM's chaining; what each era's run maps: "
                "era_methods)",
        eras="; ".join(f"{n}: {e.run_dir} {e.start.date()} .. {e.end.date()}" for n, e in zip(names, eras)),
        period=f"{eras[0].start.date()} .. {eras[-1].end.date()}",
        composite_days=int(days),
        compositing="inputs of the passes in each window, then predicted (tb runs); mean of daily output (others)"
        if days > 1 else "none (daily)",
    )
    kw = dict(title=f"smfusion chained product {eras[0].start.date()} .. {eras[-1].end.date()}",
              config={"eras": ds.attrs["eras"], "composite_days": int(days), "layout": layout, "grid": grid},
              inputs=[str(e.run_dir) for e in eras], grid=grid if layout == "grid" else None, overwrite=overwrite,
              protect=[e.run_dir for e in eras])
    with dask.config.set(scheduler="synchronous"):
        write_product(ds, out, **kw)
    return out
