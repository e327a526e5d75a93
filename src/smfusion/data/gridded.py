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
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.config import DataConfig, GriddedConfig, TwinConfig
from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import (get_grid, latlon_to_rowcol, nest_factor, rowcol_to_latlon, rowcol_to_xy,
                                  xy_to_latlon, xy_to_rowcol)

log = logging.getLogger(__name__)

__all__ = ["load_multiscale_dataset", "build_gridded_dataset", "to_grid", "SATELLITE", "STATION"]

SATELLITE = "sm_satellite"
STATION = "sm_station"


def load_multiscale_dataset(cfg: DataConfig, start: str, end: str) -> xr.Dataset:
    """The multiscale Dataset of ``cfg.reader`` ('twin' or 'gridded') over ``start..end``."""
    if cfg.reader == "twin":
        from smfusion.synthetic.twin import make_twin

        tw = cfg.twin or TwinConfig()
        ds = make_twin(cfg.root, start=start, end=end, **tw.model_dump())
    elif cfg.reader == "gridded":
        if cfg.gridded is None:
            raise ConfigError("data.reader 'gridded' needs a data.gridded section")
        ds = build_gridded_dataset(cfg.gridded, start, end)
    else:
        raise ConfigError(f"data.reader '{cfg.reader}' has no multiscale loader; use twin or gridded")
    missing = [v for v in (*cfg.dynamic, *cfg.static) if v not in ds]
    if missing:
        raise DataError(f"input variables not in the {cfg.reader} data: {missing}", field=missing[0])
    return ds


def _open_forcing(path: Path) -> xr.Dataset:
    from smfusion.io.cf import read_product

    ds = read_product(path, load=True)
    if "ease2_grid" not in ds.attrs:
        raise DataError("forcing file has no ease2_grid attribute (the fine EASE-2 grid)", path=path, field="ease2_grid")
    for dim in ("time", "y", "x"):
        if dim not in ds.dims:
            raise DataError(f"forcing file lacks dimension '{dim}'", path=path, field=dim)
    return ds


def build_gridded_dataset(g: GriddedConfig, start: str, end: str) -> xr.Dataset:
    """Fine cells = cells of the forcing grid with finite inputs; satellite = SMAP L3 ``g.overpass``
    soil moisture of the parent coarse cell on the same day; station = daily ISMN mean of the
    stations inside each fine cell (several stations in one cell are averaged)."""
    from smfusion.io.ismn import read_ismn
    from smfusion.io.smap_l3 import find_granules, open_granules

    fpath = Path(g.forcing).expanduser()
    forcing = _open_forcing(fpath).sel(time=slice(start, end))
    fine = get_grid(forcing.attrs["ease2_grid"])
    coarse = get_grid(g.coarse_grid)
    nest_factor(fine, coarse)
    if forcing.sizes["time"] == 0:
        raise DataError(f"forcing has no day between {start} and {end}", path=fpath, field="time")
    # fine cells: rows/cols of the window, kept where every dynamic and static input is finite
    r0, c0 = xy_to_rowcol(fine, forcing["x"].values[:1], forcing["y"].values[:1])
    rows = int(r0[0]) + np.arange(forcing.sizes["y"])
    cols = int(c0[0]) + np.arange(forcing.sizes["x"])
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    dyn = [v for v in forcing.data_vars if forcing[v].dims == ("time", "y", "x")]
    sta = [v for v in forcing.data_vars if forcing[v].dims == ("y", "x")]
    ok = np.ones(rr.shape, dtype=bool)
    for v in dyn:
        ok &= np.isfinite(forcing[v].values).all(axis=0)
    for v in sta:
        ok &= np.isfinite(forcing[v].values)
    iy, ix = np.nonzero(ok)
    if iy.size == 0:
        raise DataError("no fine cell with complete forcing", path=fpath)
    frow, fcol = rr[iy, ix], cc[iy, ix]
    k = nest_factor(fine, coarse)
    crow, ccol = frow // k, fcol // k
    time = pd.DatetimeIndex(forcing["time"].values).normalize()
    data = {}
    for v in dyn:
        data[v] = (("site", "time"), forcing[v].values[:, iy, ix].T.astype(np.float32), dict(forcing[v].attrs))
    for v in sta:
        data[v] = (("site",), forcing[v].values[iy, ix].astype(np.float32), dict(forcing[v].attrs))

    # satellite: SMAP L3 cube on the coarse grid, parent cell value per fine cell and day
    granules = find_granules(Path(g.smap_dir).expanduser())
    cube = open_granules(granules, passes=(g.overpass,), variables=("soil_moisture",), lazy=False)
    if cube.attrs.get("ease2_grid") != coarse.name:
        raise DataError(f"SMAP granules are on {cube.attrs.get('ease2_grid')}, config coarse_grid is {coarse.name}",
                        path=Path(g.smap_dir), field="coarse_grid")
    sm = cube[f"soil_moisture_{g.overpass.lower()}"]
    cube_times = pd.DatetimeIndex(sm["time"].values).normalize()
    cr0, cc0 = xy_to_rowcol(coarse, cube["x"].values[:1], cube["y"].values[:1])
    li, lj = crow - int(cr0[0]), ccol - int(cc0[0])
    inside = (li >= 0) & (li < sm.sizes["y"]) & (lj >= 0) & (lj < sm.sizes["x"])
    sat = np.full((iy.size, time.size), np.nan, dtype=np.float32)
    t_pos = cube_times.get_indexer(time)
    have = t_pos >= 0
    vals = sm.values  # (time, y, x)
    sat[np.ix_(inside, have)] = vals[t_pos[have]][:, li[inside], lj[inside]].T
    data[SATELLITE] = (("site", "time"), sat, {"units": "m3 m-3", "long_name": "SMAP L3 soil moisture of the parent cell",
                                               "standard_name": "volume_fraction_of_condensed_water_in_soil"})

    # stations: ISMN daily means, each at its fine cell
    st = read_ismn(Path(g.ismn_dir).expanduser(), depth=tuple(g.ismn_depth), good_flags=tuple(g.ismn_good_flags),
                   networks=g.ismn_networks)
    station = np.zeros((iy.size, time.size), dtype=np.float64)
    count = np.zeros_like(station)
    station_id = np.full(iy.size, "", dtype=object)
    network = np.full(iy.size, "", dtype=object)
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(frow, fcol))}
    srow, scol = latlon_to_rowcol(fine, st["lat"].values, st["lon"].values)
    st_times = pd.DatetimeIndex(st["time"].values).normalize()
    s_pos = st_times.get_indexer(time)
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
        station[i, good] += v[good]
        count[i, good] += 1
        name = f"{st['network'].values[j]}:{st['station'].values[j]}"
        station_id[i] = name if not station_id[i] else f"{station_id[i]}+{name}"
        network[i] = network[i] or str(st["network"].values[j])
        placed += 1
    if placed == 0:
        raise DataError(f"no ISMN station with data between {start} and {end} inside the forcing grid",
                        path=Path(g.ismn_dir), field="ismn_dir")
    with np.errstate(invalid="ignore", divide="ignore"):
        station = np.where(count > 0, station / np.maximum(count, 1), np.nan).astype(np.float32)
    data[STATION] = (("site", "time"), station, {"units": "m3 m-3", "long_name": "ISMN in-situ soil moisture (daily)",
                                                 "standard_name": "volume_fraction_of_condensed_water_in_soil"})
    flat, flon = rowcol_to_latlon(fine, frow, fcol)
    return xr.Dataset(
        data,
        coords={
            "site": ("site", (frow * fine.ncols + fcol).astype(np.int64), {"long_name": f"flat {fine.name} cell index"}),
            "time": ("time", time.values),
            "lat": ("site", flat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("site", flon, {"units": "degrees_east", "standard_name": "longitude"}),
            "row": ("site", frow.astype(np.int64)),
            "col": ("site", fcol.astype(np.int64)),
            "coarse": ("site", (crow * coarse.ncols + ccol).astype(np.int64)),
            "station_id": ("site", station_id.astype(str)),
            "network": ("site", network.astype(str)),
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
