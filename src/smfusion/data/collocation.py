"""Collocation of in-situ stations with EASE-Grid 2.0 cells and of satellite overpasses with station times.

Spatial: each station goes to the grid cell that contains it (any EASE-2
grid); optionally to the nearest *valid* cell (e.g. a land cell, or a cell
with retrievals) within a search window and distance; stations sharing a cell
are kept apart or averaged. Temporal: for each satellite overpass time, the
station value nearest in time within a window, or the mean within the window.
All functions are vectorised over sites and times.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import EASE2Grid, get_grid, latlon_to_rowcol, rowcol_to_index, rowcol_to_latlon

log = logging.getLogger(__name__)

__all__ = [
    "EARTH_RADIUS_KM",
    "haversine_km",
    "station_cells",
    "nearest_valid_cells",
    "collocate_sites",
    "match_times",
    "match_overpasses",
]

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius


def _grid(grid) -> EASE2Grid:
    return grid if isinstance(grid, EASE2Grid) else get_grid(grid)


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance (km, mean Earth radius) between points in degrees; broadcasts."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def station_cells(grid: EASE2Grid | str, lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the cell containing each station (-1 outside the grid or for NaN)."""
    return latlon_to_rowcol(_grid(grid), lat, lon)


def _valid_lookup(grid: EASE2Grid, valid):
    """A function (rows, cols) -> bool on the full grid from a full-grid mask or a (y, x) DataArray window."""
    if isinstance(valid, xr.DataArray):
        if valid.dims != ("y", "x"):
            raise DataError(f"valid mask must have dims ('y', 'x'), got {valid.dims}", field=str(valid.name))
        mask = np.asarray(valid.values, dtype=bool)
        r_off = int(np.rint((grid.y_max - float(valid["y"].values[0])) / grid.cell_size - 0.5))
        c_off = int(np.rint((float(valid["x"].values[0]) - grid.x_min) / grid.cell_size - 0.5))
    else:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != grid.shape:
            raise DataError(f"valid mask shape {mask.shape} is not the {grid.name} grid {grid.shape}", field="valid")
        r_off = c_off = 0

    def lookup(rows, cols):
        li, lj = rows - r_off, cols - c_off
        inside = (rows >= 0) & (cols >= 0) & (li >= 0) & (li < mask.shape[0]) & (lj >= 0) & (lj < mask.shape[1])
        out = np.zeros(np.shape(rows), dtype=bool)
        out[inside] = mask[li[inside], lj[inside]]
        return out

    return lookup


def nearest_valid_cells(
    grid: EASE2Grid | str,
    lat,
    lon,
    valid,
    *,
    search_radius: int = 2,
    max_distance_km: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest valid cell to each station: rows, cols and distance (km) to the cell centre.

    ``valid`` is a boolean mask on the full grid (nrows, ncols) or a (y, x)
    DataArray over a window. The containing cell is used when valid; else the
    valid cell of nearest centre among the (2r+1)^2 cells around it
    (r = ``search_radius``). No candidate, or one beyond ``max_distance_km``,
    gives row = col = -1 and distance NaN.
    """
    g = _grid(grid)
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    is_valid = _valid_lookup(g, valid)
    row0, col0 = latlon_to_rowcol(g, lat, lon)
    off = np.arange(-search_radius, search_radius + 1)
    dr, dc = np.meshgrid(off, off, indexing="ij")
    rows = row0[:, None] + dr.ravel()[None, :]
    cols = col0[:, None] + dc.ravel()[None, :]
    if g.is_global:  # the global grid wraps around in longitude
        cols = np.mod(cols, g.ncols)
    ok = (row0[:, None] >= 0) & (rows >= 0) & (rows < g.nrows) & (cols >= 0) & (cols < g.ncols)
    ok &= is_valid(np.where(ok, rows, -1), np.where(ok, cols, -1))
    clat, clon = rowcol_to_latlon(g, np.where(ok, rows, 0), np.where(ok, cols, 0))
    dist = np.where(ok, haversine_km(lat[:, None], lon[:, None], clat, clon), np.inf)
    centre = dist.shape[1] // 2
    dist[:, centre] = np.where(ok[:, centre], -1.0, dist[:, centre])  # containing valid cell wins
    best = np.argmin(dist, axis=1)
    pick = np.arange(lat.size)
    found = np.isfinite(dist[pick, best])
    d = np.where(found, haversine_km(lat, lon, clat[pick, best], clon[pick, best]), np.nan)
    if max_distance_km is not None:
        found &= d <= max_distance_km
    r = np.where(found, rows[pick, best], -1)
    c = np.where(found, cols[pick, best], -1)
    return r.astype(np.int64), c.astype(np.int64), np.where(found, d, np.nan)


def collocate_sites(
    sites: xr.Dataset,
    grid: EASE2Grid | str,
    *,
    valid=None,
    search_radius: int = 2,
    max_distance_km: float | None = None,
    combine: str = "keep",
) -> xr.Dataset:
    """Attach grid cells to a (site, time) dataset; with ``combine='mean'`` average sites per cell.

    Adds site coords ``cell_row``, ``cell_col``, ``cell_index`` (row * ncols +
    col), ``cell_lat``, ``cell_lon`` and ``cell_distance_km``. With ``valid``
    (see :func:`nearest_valid_cells`) stations in invalid cells move to the
    nearest valid one. Sites with no cell are dropped (logged). ``combine='mean'``
    returns one site per cell (id ``GRID:row:col``), numeric (site, ...) variables
    averaged over its stations ignoring NaN, ``<var>_n`` counting contributing
    stations, and ``stations`` listing them.
    """
    if combine not in ("keep", "mean"):
        raise ValueError("combine must be 'keep' or 'mean'")
    if "site" not in sites.dims or "lat" not in sites.variables or "lon" not in sites.variables:
        raise DataError("site data need a 'site' dim and lat/lon coordinates", field="site")
    g = _grid(grid)
    lat = np.asarray(sites["lat"].values, dtype=float)
    lon = np.asarray(sites["lon"].values, dtype=float)
    if valid is None:
        rows, cols = latlon_to_rowcol(g, lat, lon)
    else:
        rows, cols, _ = nearest_valid_cells(g, lat, lon, valid, search_radius=search_radius,
                                            max_distance_km=max_distance_km)
    found = rows >= 0
    clat, clon = rowcol_to_latlon(g, np.where(found, rows, 0), np.where(found, cols, 0))
    dist = np.where(found, haversine_km(lat, lon, clat, clon), np.nan)
    if max_distance_km is not None and valid is None:
        found &= dist <= max_distance_km
    if not found.all():
        log.info("%d of %d sites have no %s cell and are dropped: %s", int((~found).sum()), found.size, g.name,
                 list(np.asarray(sites["site"].values)[~found][:10]))
    out = sites.isel(site=np.nonzero(found)[0])
    rows, cols, clat, clon, dist = (a[found] for a in (rows, cols, clat, clon, dist))
    out = out.assign_coords(
        cell_row=("site", rows, {"long_name": f"{g.long_name} row"}),
        cell_col=("site", cols, {"long_name": f"{g.long_name} column"}),
        cell_index=("site", rowcol_to_index(g, rows, cols), {"long_name": f"{g.long_name} flat index row*ncols+col"}),
        cell_lat=("site", clat, {"long_name": "cell-centre latitude", "units": "degrees_north"}),
        cell_lon=("site", clon, {"long_name": "cell-centre longitude", "units": "degrees_east"}),
        cell_distance_km=("site", dist, {"long_name": "station to cell-centre distance", "units": "km"}),
    )
    out.attrs["ease2_grid"] = g.name
    if combine == "keep":
        return out
    return _mean_per_cell(out, g)


def _mean_per_cell(ds: xr.Dataset, g: EASE2Grid) -> xr.Dataset:
    index = ds["cell_index"].values
    cells, inverse = np.unique(index, return_inverse=True)
    onehot = np.zeros((cells.size, index.size))
    onehot[inverse, np.arange(index.size)] = 1.0
    rows, cols = cells // g.ncols, cells % g.ncols
    clat, clon = rowcol_to_latlon(g, rows, cols)
    ids = np.asarray(ds["site"].values).astype(str)
    members = ["|".join(ids[inverse == k]) for k in range(cells.size)]
    data_vars = {}
    for name, var in ds.data_vars.items():
        if "site" not in var.dims or var.dtype.kind not in "fiu":
            continue
        var = var.transpose("site", ...)
        flat = np.asarray(var.values, dtype=float).reshape(var.shape[0], -1)
        ok = np.isfinite(flat)
        total = onehot @ np.where(ok, flat, 0.0)
        count = onehot @ ok.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, np.nan)
        shape = (cells.size,) + var.shape[1:]
        attrs = dict(var.attrs)
        attrs["cell_methods"] = "site: mean (stations in the same grid cell)"
        dtype = np.float32 if var.dtype == np.float32 else np.float64
        data_vars[name] = (var.dims, mean.reshape(shape).astype(dtype), attrs)
        data_vars[f"{name}_n"] = (var.dims, count.reshape(shape).astype(np.int16),
                                  {"long_name": f"number of stations averaged into {name}", "units": "1"})
    coords = {d: ds[d] for d in ds.dims if d != "site" and d in ds.coords}
    coords.update(
        site=("site", np.asarray([f"{g.name}:{r}:{c}" for r, c in zip(rows, cols)]),
              {"long_name": "grid cell id GRID:row:col", "cf_role": "timeseries_id"}),
        lat=("site", clat, {"standard_name": "latitude", "units": "degrees_north",
                            "long_name": "cell-centre latitude"}),
        lon=("site", clon, {"standard_name": "longitude", "units": "degrees_east",
                            "long_name": "cell-centre longitude"}),
        cell_row=("site", rows), cell_col=("site", cols), cell_index=("site", cells),
        n_stations=("site", np.bincount(inverse, minlength=cells.size).astype(np.int16),
                    {"long_name": "stations in the cell", "units": "1"}),
        stations=("site", np.asarray(members), {"long_name": "ids of the stations in the cell, '|'-separated"}),
    )
    return xr.Dataset(data_vars, coords=coords, attrs=dict(ds.attrs))


def match_times(sat_times: xr.DataArray, station: xr.DataArray, window="1h", how: str = "nearest") -> xr.Dataset:
    """Station values at satellite overpass times: the nearest valid one within ``window``, or the window mean.

    ``sat_times``: datetime64 DataArray (site, ...) of overpass times (NaT = no
    overpass); ``station``: DataArray (site, time) of station values on a sorted
    time axis, with the same ``site`` labels. Returns ``value`` (shaped like
    ``sat_times``; NaN where nothing lies within ``window``) and ``time_offset``
    (station time minus overpass time for ``how='nearest'``; ``count`` of values
    for ``how='mean'``).
    """
    if how not in ("nearest", "mean"):
        raise ValueError("how must be 'nearest' or 'mean'")
    if "site" not in sat_times.dims or station.dims != ("site", "time"):
        raise DataError("sat_times needs a 'site' dim and station dims ('site', 'time')", field="site")
    if not np.array_equal(np.asarray(sat_times["site"].values), np.asarray(station["site"].values)):
        raise DataError("sat_times and station have different site labels or order", field="site")
    w = pd.Timedelta(window).to_timedelta64().astype("timedelta64[ns]").astype(np.int64)
    t = np.asarray(station["time"].values).astype("datetime64[ns]").astype(np.int64)
    if t.size and np.any(np.diff(t) <= 0):
        raise DataError("station time axis must be strictly increasing", field="time")
    sat = sat_times.transpose("site", ...)
    q_raw = np.asarray(sat.values).astype("datetime64[ns]")
    shape = q_raw.shape
    q = q_raw.reshape(shape[0], -1)
    nat = np.isnat(q)
    qi = np.where(nat, 0, q.astype(np.int64))
    v = np.asarray(station.values, dtype=float)
    valid = np.isfinite(v)
    n_s, n_t = v.shape
    srow = np.arange(n_s)[:, None]
    if n_t == 0:
        value = np.full(q.shape, np.nan)
        extra = np.full(q.shape, np.timedelta64("NaT"), dtype="timedelta64[ns]") if how == "nearest" else \
            np.zeros(q.shape, dtype=np.int64)
    elif how == "nearest":
        idx = np.arange(n_t)
        prev_valid = np.maximum.accumulate(np.where(valid, idx, -1), axis=1)
        next_valid = np.minimum.accumulate(np.where(valid, idx, n_t)[:, ::-1], axis=1)[:, ::-1]
        pos = np.searchsorted(t, qi, side="right")
        before = np.where(pos > 0, prev_valid[srow, np.clip(pos - 1, 0, n_t - 1)], -1)
        after = np.where(pos < n_t, next_valid[srow, np.clip(pos, 0, n_t - 1)], n_t)
        big = np.iinfo(np.int64).max
        db = np.where(before >= 0, qi - t[np.clip(before, 0, n_t - 1)], big)
        da = np.where(after < n_t, t[np.clip(after, 0, n_t - 1)] - qi, big)
        choose = np.where(db <= da, before, after)
        dist = np.minimum(db, da)
        ok = ~nat & (dist <= w)
        safe = np.clip(choose, 0, n_t - 1)
        value = np.where(ok, v[srow, safe], np.nan)
        extra = np.where(ok, (t[safe] - qi), np.iinfo(np.int64).min).astype("timedelta64[ns]")
    else:
        csum = np.concatenate([np.zeros((n_s, 1)), np.cumsum(np.where(valid, v, 0.0), axis=1)], axis=1)
        ccnt = np.concatenate([np.zeros((n_s, 1), dtype=np.int64), np.cumsum(valid, axis=1)], axis=1)
        lo = np.searchsorted(t, qi - w, side="left")
        hi = np.searchsorted(t, qi + w, side="right")
        total = csum[srow, hi] - csum[srow, lo]
        count = np.where(nat, 0, ccnt[srow, hi] - ccnt[srow, lo])
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        extra = count
    dims = sat.dims
    coords = {k: c for k, c in sat.coords.items()}
    out = xr.Dataset(coords=coords)
    out["value"] = (dims, value.reshape(shape), {**station.attrs,
                                                 "comment": f"station value matched to overpass time ({how}, "
                                                            f"window {pd.Timedelta(window)})"})
    if how == "nearest":
        out["time_offset"] = (dims, extra.reshape(shape), {"long_name": "station time minus overpass time"})
    else:
        out["count"] = (dims, extra.reshape(shape).astype(np.int32),
                        {"long_name": "station values averaged in the window", "units": "1"})
    return out


def match_overpasses(smap_sites: xr.Dataset, station: xr.Dataset, variable: str = "soil_moisture",
                     window="1h", how: str = "nearest", passes=("am", "pm")) -> xr.Dataset:
    """In-situ ``variable`` at each SMAP overpass: ``insitu_am``/``insitu_pm`` (site, time).

    ``smap_sites`` comes from :func:`smfusion.io.smap_l3.extract_sites` (with
    ``overpass_time_am/pm``); ``station`` is an hourly (site, time) dataset
    (e.g. :func:`smfusion.io.ismn.read_ismn` with ``daily=False``) with the same
    site labels.
    """
    out = xr.Dataset(coords={k: c for k, c in smap_sites.coords.items()})
    for p in passes:
        name = f"overpass_time_{p}"
        if name not in smap_sites:
            raise DataError("SMAP site data lack the overpass time", field=name)
        matched = match_times(smap_sites[name], station[variable], window=window, how=how)
        out[f"insitu_{p}"] = matched["value"]
        for extra in ("time_offset", "count"):
            if extra in matched:
                out[f"insitu_{p}_{extra}"] = matched[extra]
    return out
