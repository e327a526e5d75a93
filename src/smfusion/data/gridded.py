"""Multiscale training data: the twin, or real-format files (gridded forcing + SMAP L3 + ISMN).

Both give the canonical ``(site, time)`` Dataset of fine cells used by
:mod:`smfusion.training.multiscale`: inputs, the satellite variable (the parent
coarse cell's retrieval repeated on its fine cells), the station variable (NaN
off station cells), coords ``row``/``col`` (fine grid), ``coarse`` (parent flat
index), ``station_id``/``network``, attrs ``fine_grid``/``coarse_grid``.
:func:`to_grid` turns fine-cell predictions back into a (time, y, x) cube for
:func:`smfusion.io.cf.write_netcdf`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.config import DataConfig, GriddedConfig
from smfusion.data.readers import register_reader
from smfusion.errors import DataError
from smfusion.grids.ease2 import (get_grid, latlon_to_rowcol, nest_factor, rowcol_to_latlon, rowcol_to_xy,
                                  xy_to_latlon, xy_to_rowcol)

log = logging.getLogger(__name__)

__all__ = ["read_gridded", "build_gridded_dataset", "to_grid", "SATELLITE", "STATION"]

SATELLITE = "sm_satellite"
STATION = "sm_station"


def _open_forcing(path: Path) -> xr.Dataset:
    from smfusion.io.cf import read_product

    ds = read_product(path, load=True)
    if "ease2_grid" not in ds.attrs:
        raise DataError("forcing file has no ease2_grid attribute (the fine EASE-2 grid)", path=path, field="ease2_grid")
    for dim in ("time", "y", "x"):
        if dim not in ds.dims:
            raise DataError(f"forcing file lacks dimension '{dim}'", path=path, field=dim)
    return ds


@register_reader("gridded")
def read_gridded(cfg: DataConfig, start: Optional[str], end: Optional[str]) -> xr.Dataset:
    """Reader ``gridded``: the real-format multiscale inputs of ``cfg.gridded`` (:func:`build_gridded_dataset`)."""
    return build_gridded_dataset(cfg.section_of("gridded"), start, end)


@dataclass
class _FineCells:
    """The fine cells kept from the forcing window: grid rows/cols, window indices, parents."""

    fine: object
    coarse: object
    iy: np.ndarray
    ix: np.ndarray
    row: np.ndarray
    col: np.ndarray
    crow: np.ndarray
    ccol: np.ndarray


def _fine_cells(forcing: xr.Dataset, coarse_grid: str, path: Path) -> _FineCells:
    """Cells of the forcing window where every dynamic and static input is finite."""
    fine = get_grid(forcing.attrs["ease2_grid"])
    coarse = get_grid(coarse_grid)
    k = nest_factor(fine, coarse)
    r0, c0 = xy_to_rowcol(fine, forcing["x"].values[:1], forcing["y"].values[:1])
    rows = int(r0[0]) + np.arange(forcing.sizes["y"])
    cols = int(c0[0]) + np.arange(forcing.sizes["x"])
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    ok = np.ones(rr.shape, dtype=bool)
    for v, da in forcing.data_vars.items():
        if da.dims == ("time", "y", "x"):
            ok &= np.isfinite(da.values).all(axis=0)
        elif da.dims == ("y", "x"):
            ok &= np.isfinite(da.values)
    iy, ix = np.nonzero(ok)
    if iy.size == 0:
        raise DataError("no fine cell with complete forcing", path=path)
    row, col = rr[iy, ix], cc[iy, ix]
    return _FineCells(fine, coarse, iy, ix, row, col, row // k, col // k)


def _satellite(g: GriddedConfig, cells: _FineCells, time: pd.DatetimeIndex) -> np.ndarray:
    """SMAP L3 ``g.overpass`` soil moisture of each fine cell's parent coarse cell, (site, time)."""
    from smfusion.io.smap_l3 import find_granules, open_granules

    granules = find_granules(Path(g.smap_dir).expanduser())
    cube = open_granules(granules, passes=(g.overpass,), variables=("soil_moisture",), lazy=False)
    if cube.attrs.get("ease2_grid") != cells.coarse.name:
        raise DataError(f"SMAP granules are on {cube.attrs.get('ease2_grid')}, config coarse_grid is "
                        f"{cells.coarse.name}", path=Path(g.smap_dir), field="coarse_grid")
    sm = cube[f"soil_moisture_{g.overpass.lower()}"]
    cube_times = pd.DatetimeIndex(sm["time"].values).normalize()
    cr0, cc0 = xy_to_rowcol(cells.coarse, cube["x"].values[:1], cube["y"].values[:1])
    li, lj = cells.crow - int(cr0[0]), cells.ccol - int(cc0[0])
    inside = (li >= 0) & (li < sm.sizes["y"]) & (lj >= 0) & (lj < sm.sizes["x"])
    sat = np.full((cells.iy.size, time.size), np.nan, dtype=np.float32)
    t_pos = cube_times.get_indexer(time)
    have = t_pos >= 0
    sat[np.ix_(inside, have)] = sm.values[t_pos[have]][:, li[inside], lj[inside]].T
    return sat


def _stations(g: GriddedConfig, cells: _FineCells, time: pd.DatetimeIndex, period) -> tuple:
    """Daily ISMN means at their fine cells (several stations in one cell averaged): (values, ids, networks)."""
    from smfusion.io.ismn import read_ismn

    st = read_ismn(Path(g.ismn_dir).expanduser(), depth=tuple(g.ismn_depth), good_flags=tuple(g.ismn_good_flags),
                   networks=g.ismn_networks)
    n = cells.iy.size
    total = np.zeros((n, time.size), dtype=np.float64)
    count = np.zeros_like(total)
    station_id = np.full(n, "", dtype=object)
    network = np.full(n, "", dtype=object)
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(cells.row, cells.col))}
    srow, scol = latlon_to_rowcol(cells.fine, st["lat"].values, st["lon"].values)
    s_pos = pd.DatetimeIndex(st["time"].values).normalize().get_indexer(time)
    placed = 0
    for j in range(st.sizes["site"]):
        i = index.get((int(srow[j]), int(scol[j])))
        if i is None:
            log.info("ISMN station %s lies outside the forcing cells: not used", str(st["site"].values[j]))
            continue
        v = np.full(time.size, np.nan)
        v[s_pos >= 0] = st["soil_moisture"].values[j, s_pos[s_pos >= 0]]
        good = np.isfinite(v)
        if not good.any():
            continue
        total[i, good] += v[good]
        count[i, good] += 1
        name = f"{st['network'].values[j]}:{st['station'].values[j]}"
        station_id[i] = name if not station_id[i] else f"{station_id[i]}+{name}"
        network[i] = network[i] or str(st["network"].values[j])
        placed += 1
    if placed == 0:
        raise DataError(f"no ISMN station with data between {period[0]} and {period[1]} inside the forcing grid",
                        path=Path(g.ismn_dir), field="ismn_dir")
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
    return values, station_id.astype(str), network.astype(str)


SM_ATTRS = {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil"}


def build_gridded_dataset(g: GriddedConfig, start: str, end: str) -> xr.Dataset:
    """Fine cells = cells of the forcing grid with finite inputs; satellite = SMAP L3 ``g.overpass``
    soil moisture of the parent coarse cell on the same day; station = daily ISMN mean of the
    stations inside each fine cell (several stations in one cell are averaged)."""
    fpath = Path(g.forcing).expanduser()
    forcing = _open_forcing(fpath).sel(time=slice(start, end))
    if forcing.sizes["time"] == 0:
        raise DataError(f"forcing has no day between {start} and {end}", path=fpath, field="time")
    cells = _fine_cells(forcing, g.coarse_grid, fpath)
    time = pd.DatetimeIndex(forcing["time"].values).normalize()
    data = {}
    for v, da in forcing.data_vars.items():
        if da.dims == ("time", "y", "x"):
            data[v] = (("site", "time"), da.values[:, cells.iy, cells.ix].T.astype(np.float32), dict(da.attrs))
        elif da.dims == ("y", "x"):
            data[v] = (("site",), da.values[cells.iy, cells.ix].astype(np.float32), dict(da.attrs))
    data[SATELLITE] = (("site", "time"), _satellite(g, cells, time),
                       {**SM_ATTRS, "long_name": "SMAP L3 soil moisture of the parent cell"})
    station, station_id, network = _stations(g, cells, time, (start, end))
    data[STATION] = (("site", "time"), station, {**SM_ATTRS, "long_name": "ISMN in-situ soil moisture (daily)"})
    fine, coarse = cells.fine, cells.coarse
    flat, flon = rowcol_to_latlon(fine, cells.row, cells.col)
    return xr.Dataset(
        data,
        coords={
            "site": ("site", (cells.row * fine.ncols + cells.col).astype(np.int64),
                     {"long_name": f"flat {fine.name} cell index"}),
            "time": ("time", time.values),
            "lat": ("site", flat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("site", flon, {"units": "degrees_east", "standard_name": "longitude"}),
            "row": ("site", cells.row.astype(np.int64)),
            "col": ("site", cells.col.astype(np.int64)),
            "coarse": ("site", (cells.crow * coarse.ncols + cells.ccol).astype(np.int64)),
            "station_id": ("site", station_id),
            "network": ("site", network),
        },
        attrs={"fine_grid": fine.name, "coarse_grid": coarse.name, "ease2_grid": fine.name,
               "source": f"forcing {fpath}; SMAP L3 {g.smap_dir}; ISMN {g.ismn_dir}"},
    )


def to_grid(pred: xr.Dataset, row, col, grid: str) -> xr.Dataset:
    """Fine-cell predictions (site, time) -> (time, y, x) cube over the bounding window of ``row``/``col``
    (cells without a prediction are NaN), with x/y and lat/lon coords."""
    g = get_grid(grid)
    row, col = np.asarray(row, dtype=np.int64), np.asarray(col, dtype=np.int64)
    r0, c0 = row.min(), col.min()
    ny, nx = row.max() - r0 + 1, col.max() - c0 + 1
    x, _ = rowcol_to_xy(g, np.zeros(nx, dtype=int), c0 + np.arange(nx))
    _, y = rowcol_to_xy(g, r0 + np.arange(ny), np.zeros(ny, dtype=int))
    lat, _ = xy_to_latlon(g, np.zeros_like(y), y)
    _, lon = xy_to_latlon(g, x, np.zeros_like(x))
    out = xr.Dataset(coords={"time": pred["time"].values, "y": ("y", y), "x": ("x", x),
                             "lat": ("y", lat), "lon": ("x", lon)}, attrs=dict(pred.attrs, ease2_grid=g.name))
    for name, da in pred.data_vars.items():
        if da.dims != ("site", "time"):
            continue
        cube = np.full((pred.sizes["time"], ny, nx), np.nan, dtype=np.float32)
        cube[:, row - r0, col - c0] = da.values.T
        out[name] = (("time", "y", "x"), cube, dict(da.attrs))
    return out
