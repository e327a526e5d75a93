"""A product's series at station locations: the spatial half of station validation.

Products (a path or an open Dataset):

* **site layout** (site, time) with ``lat``/``lon`` on ``site`` (smfusion
  predictions and ``--product --layout site``): the nearest site with data;
* **EASE-2 grid layout** (time, y, x) with ``attrs['ease2_grid']`` (smfusion
  ``--layout grid``, SMAP L3 cubes): the nearest cell with data
  (:func:`smfusion.data.collocation.nearest_valid_cells`), or with
  ``spatial='cell'`` the cell that contains the station;
* **lat/lon grid** (time, lat, lon) (a generic gridded NetCDF): the nearest
  grid point with data within a small window of the containing one;
* **pynetcf cell files** (a folder with ``grid.nc`` + ``NNNN.nc``; QA4SM's SMAP
  L3 and ERA5-Land series, :mod:`smfusion.io.qa4sm_cells`): the nearest stored point.

"With data" means at least one finite value over the product's time axis.
A station with no point within ``max_distance_km`` gets an all-NaN row and
distance NaN. The result is a (site, time) Dataset with ``value`` (and
``obs_time``, the time of each value, where the product records it: SMAP's
``tb_time_seconds``), site = the station ids, and site coords ``cell_id``,
``cell_lat``, ``cell_lon``, ``distance_km`` (station to point, great circle).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import xarray as xr

from smfusion.data.collocation import haversine_km, nearest_valid_cells, station_cells
from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, rowcol_to_latlon
from smfusion.io import qa4sm_cells
from smfusion.io.cf import is_soil_moisture
from smfusion.io.layer_names import split_quantile

log = logging.getLogger(__name__)

__all__ = ["KNOWN_VARIABLES", "pick_variable", "open_product", "product_at_stations"]

#: Soil-moisture variable names tried, in order, when no --variable is given and no standard_name decides.
KNOWN_VARIABLES = ("soil_moisture", "sm", "swvl1", "SMAP_AM", "SMAP_PM")
_NOT_VALUE = ("std", "climatology", "error", "flag", "_n", "count", "time")


def pick_variable(ds: xr.Dataset, variable: str | None, where: str) -> str:
    """The soil-moisture variable of ``ds``: ``variable`` if given, else the only candidate; DataError otherwise."""
    names = [str(v) for v in ds.data_vars]
    if variable is not None:
        if variable not in ds.variables:
            raise DataError(f"variable {variable!r} not in product; variables {names}", path=where, field=variable)
        return variable
    cands = [v for v in names if is_soil_moisture(v, ds[v].attrs) and not any(k in v.lower() for k in _NOT_VALUE)
             and split_quantile(v) is None]
    if len(cands) == 1:
        return cands[0]
    known = [v for v in KNOWN_VARIABLES if v in names]
    if known:
        return known[0]
    raise DataError(f"cannot tell which variable is soil moisture among {names}: pass --variable", path=where,
                    field="variable")


def open_product(path: str | Path) -> xr.Dataset:
    """Open a product file (CF NetCDF/Zarr or any NetCDF); cell-file folders are read by point instead."""
    from smfusion.io.cf import read_product

    return read_product(path, require_cf=False)


def _layout(ds: xr.Dataset, var: str, where: str) -> str:
    dims = set(ds[var].dims)
    if {"site", "time"} == dims:
        return "site"
    if {"time", "y", "x"} == dims:
        if "ease2_grid" not in ds.attrs:
            raise DataError("(time, y, x) product without attrs['ease2_grid']", path=where, field="ease2_grid")
        return "ease2"
    if dims in ({"time", "lat", "lon"}, {"time", "latitude", "longitude"}):
        return "latlon"
    raise DataError(f"variable {var!r} has dims {tuple(ds[var].dims)}; expected (site, time), (time, y, x) or "
                    "(time, lat, lon)", path=where, field=var)


def product_at_stations(product, stations: xr.Dataset, *, variable: str | None = None,
                        max_distance_km: float | None = None, spatial: str = "nearest",
                        quality: str = "none", name: str | None = None) -> xr.Dataset:
    """Series of ``product`` at each station of ``stations`` (site dim with lat/lon); see the module doc.

    ``quality='recommended'`` keeps SMAP values whose ``retrieval_qual_flag``
    bit 0 is clear (products that carry that flag).
    """
    if spatial not in ("nearest", "cell"):
        raise ValueError("spatial must be 'nearest' or 'cell'")
    if quality not in ("none", "recommended"):
        raise ValueError("quality must be 'none' or 'recommended'")
    if max_distance_km is not None and not max_distance_km > 0:
        raise DataError(f"max distance must be > 0 km, got {max_distance_km}", field="max_distance")
    lat = np.asarray(stations["lat"].values, dtype=float)
    lon = np.asarray(stations["lon"].values, dtype=float)
    where = str(product) if not isinstance(product, xr.Dataset) else (name or "dataset")
    if not isinstance(product, xr.Dataset) and qa4sm_cells.is_cell_folder(product):
        out = _from_cells(Path(product), lat, lon, variable, max_distance_km, quality)
    else:
        ds = product if isinstance(product, xr.Dataset) else open_product(product)
        var = pick_variable(ds, variable, where)
        layout = _layout(ds, var, where)
        if spatial == "cell" and layout != "ease2":
            raise DataError("spatial matching 'cell' needs an EASE-2 grid product", path=where, field="spatial")
        da = ds[var]
        if quality == "recommended" and "retrieval_qual_flag" in ds:
            da = da.where(_recommended(ds["retrieval_qual_flag"].values))
        pick = {"site": _from_sites, "ease2": _from_ease2, "latlon": _from_latlon}[layout]
        out = pick(ds, da, lat, lon, max_distance_km, spatial)
        out.attrs.update(variable=var, layout=layout)
    out = out.assign_coords(site=("site", np.asarray(stations["site"].values)))
    out.attrs.update(product=name or Path(where).name, source=where, spatial=spatial,
                     max_distance_km=float(max_distance_km) if max_distance_km is not None else float("nan"),
                     quality=quality)
    missing = int(np.isnan(out["distance_km"].values).sum())
    if 0 < missing < lat.size:  # none within the distance: validate refuses the product in one line
        log.warning("%s: %d of %d stations have no point with data within %s km", out.attrs["product"], missing,
                    lat.size, max_distance_km)
    return out


def _recommended(flag) -> np.ndarray:
    from smfusion.io.smap_l3 import UINT_FILL, recommended_quality

    f = np.asarray(flag, dtype=float)
    return recommended_quality(np.where(np.isfinite(f), f, UINT_FILL).astype(np.uint32))


def _result(values, lat, lon, dist, ids, times, obs_time=None) -> xr.Dataset:
    found = np.isfinite(dist)
    values = np.where(found[:, None], np.asarray(values, dtype=float), np.nan)
    data = {"value": (("site", "time"), values)}
    if obs_time is not None:
        data["obs_time"] = (("site", "time"), np.where(found[:, None], obs_time, np.datetime64("NaT")))
    return xr.Dataset(data, coords={
        "time": ("time", np.asarray(times).astype("datetime64[ns]")),
        "cell_id": ("site", np.where(found, np.asarray(ids, dtype=str), "")),
        "cell_lat": ("site", np.where(found, lat, np.nan)),
        "cell_lon": ("site", np.where(found, lon, np.nan)),
        "distance_km": ("site", dist, {"units": "km", "long_name": "station to product point, great circle"}),
    })


def _nearest(lat, lon, plat, plon, max_km) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest of the points (plat, plon) to each station, and its distance (NaN beyond max_km)."""
    idx = np.zeros(lat.size, dtype=np.int64)
    dist = np.full(lat.size, np.nan)
    if plat.size == 0:
        return idx, dist
    for s in range(0, lat.size, 256):  # bounded memory: 256 stations x points at a time
        d = haversine_km(lat[s:s + 256, None], lon[s:s + 256, None], plat[None, :], plon[None, :])
        idx[s:s + 256] = np.argmin(d, axis=1)
        dist[s:s + 256] = d[np.arange(d.shape[0]), idx[s:s + 256]]
    if max_km is not None:
        dist = np.where(dist <= max_km, dist, np.nan)
    return idx, dist


def _from_sites(ds, da, lat, lon, max_km, spatial) -> xr.Dataset:
    da = da.transpose("site", "time")
    valid = np.asarray(np.isfinite(da).any("time").values)
    cand = np.nonzero(valid)[0]
    plat = np.asarray(ds["lat"].values, dtype=float)[cand]
    plon = np.asarray(ds["lon"].values, dtype=float)[cand]
    i, dist = _nearest(lat, lon, plat, plon, max_km)
    rows = cand[i] if cand.size else np.zeros(lat.size, dtype=np.int64)
    ids = [f"site {s}" for s in np.asarray(ds["site"].values)[rows]] if cand.size else [""] * lat.size
    vals = da.isel(site=xr.DataArray(rows, dims="pick")).values
    return _result(vals, plat[i] if cand.size else lat, plon[i] if cand.size else lon, dist, ids, da["time"].values)


def _from_ease2(ds, da, lat, lon, max_km, spatial) -> xr.Dataset:
    grid = get_grid(ds.attrs["ease2_grid"])
    valid = np.isfinite(da).any("time").transpose("y", "x")
    if spatial == "nearest":
        radius = 2 if max_km is None else max(1, math.ceil(max_km / (grid.cell_size / 1000.0)) + 1)
        rows, cols, dist = nearest_valid_cells(grid, lat, lon, valid, search_radius=radius, max_distance_km=max_km)
    else:
        rows, cols = station_cells(grid, lat, lon)
        rows, cols = np.asarray(rows), np.asarray(cols)
        clat, clon = rowcol_to_latlon(grid, np.maximum(rows, 0), np.maximum(cols, 0))
        dist = np.where(rows >= 0, haversine_km(lat, lon, clat, clon), np.nan)
        if max_km is not None:
            dist = np.where(dist <= max_km, dist, np.nan)
    r_off = int(np.rint((grid.y_max - float(ds["y"].values[0])) / grid.cell_size - 0.5))
    c_off = int(np.rint((float(ds["x"].values[0]) - grid.x_min) / grid.cell_size - 0.5))
    li, lj = rows - r_off, cols - c_off
    inside = (rows >= 0) & (li >= 0) & (li < ds.sizes["y"]) & (lj >= 0) & (lj < ds.sizes["x"])
    dist = np.where(inside, dist, np.nan)
    sel = da.isel(y=xr.DataArray(np.where(inside, li, 0), dims="pick"),
                  x=xr.DataArray(np.where(inside, lj, 0), dims="pick")).transpose("pick", "time")
    clat, clon = rowcol_to_latlon(grid, np.maximum(rows, 0), np.maximum(cols, 0))
    ids = [f"{grid.name}:{r}:{c}" for r, c in zip(rows, cols)]
    return _result(sel.values, clat, clon, dist, ids, da["time"].values)


def _from_latlon(ds, da, lat, lon, max_km, spatial, radius: int = 3) -> xr.Dataset:
    ydim, xdim = ("lat", "lon") if "lat" in da.dims else ("latitude", "longitude")
    da = da.transpose("time", ydim, xdim)
    glat = np.asarray(ds[ydim].values, dtype=float)
    glon = np.asarray(ds[xdim].values, dtype=float)
    valid = np.asarray(np.isfinite(da).any("time").values)
    ii = np.zeros(lat.size, dtype=np.int64)
    jj = np.zeros(lat.size, dtype=np.int64)
    dist = np.full(lat.size, np.nan)
    for s in range(lat.size):
        i0 = int(np.argmin(np.abs(glat - lat[s])))
        j0 = int(np.argmin(np.abs(((glon - lon[s]) + 180.0) % 360.0 - 180.0)))
        ri = np.arange(max(i0 - radius, 0), min(i0 + radius + 1, glat.size))
        rj = np.arange(max(j0 - radius, 0), min(j0 + radius + 1, glon.size))
        ok = valid[np.ix_(ri, rj)]
        if not ok.any():
            continue
        d = np.where(ok, haversine_km(lat[s], lon[s], glat[ri][:, None], glon[rj][None, :]), np.inf)
        k = np.unravel_index(np.argmin(d), d.shape)
        ii[s], jj[s], dist[s] = ri[k[0]], rj[k[1]], d[k]
    if max_km is not None:
        dist = np.where(dist <= max_km, dist, np.nan)
    sel = da.isel({ydim: xr.DataArray(ii, dims="pick"), xdim: xr.DataArray(jj, dims="pick")}).transpose("pick", "time")
    ids = [f"{glat[i]:.4f},{glon[j]:.4f}" for i, j in zip(ii, jj)]
    return _result(sel.values, glat[ii], glon[jj], dist, ids, da["time"].values)


def _from_cells(folder: Path, lat, lon, variable, max_km, quality) -> xr.Dataset:
    from smfusion.io.smap_l3 import J2000_EPOCH

    cells = None
    if max_km is not None:  # only the cell files with a grid point near a station
        grid = qa4sm_cells.read_grid(folder)
        near = np.zeros(len(grid), dtype=bool)
        glat, glon = grid["lat"].to_numpy(), grid["lon"].to_numpy()
        for a, b in zip(lat, lon):
            box = (np.abs(glat - a) < max_km / 100.0 + 1.0)  # cheap pre-filter, then the exact distance
            near[box] |= haversine_km(a, b, glat[box], glon[box]) <= max_km
        cells = np.unique(grid["cell"].to_numpy()[near]).tolist()
    stored = qa4sm_cells.stored_locations(folder, cells)
    i, dist = _nearest(lat, lon, stored["lat"].to_numpy(dtype=float), stored["lon"].to_numpy(dtype=float), max_km)
    found = np.isfinite(dist)
    gpi = np.where(found, stored["gpi"].to_numpy()[i] if len(stored) else -1, -1)
    files = [str(stored["file"].iloc[k]) if ok else "" for k, ok in zip(i, found)]
    names = _cell_variables(folder, files, variable)
    extra = [v for v in ("tb_time_seconds", "retrieval_qual_flag") if v in names["all"]]
    pts = qa4sm_cells.read_points(folder, gpi, files, [names["var"], *extra])
    vals = pts[names["var"]].values
    if quality == "recommended" and "retrieval_qual_flag" in pts:
        vals = np.where(_recommended(pts["retrieval_qual_flag"].values), vals, np.nan)
    obs_time = None
    if "tb_time_seconds" in pts:
        sec = pts["tb_time_seconds"].values
        ok = np.isfinite(sec)
        obs_time = np.where(ok, J2000_EPOCH + (np.where(ok, sec, 0) * 1e9).round().astype("timedelta64[ns]"),
                            np.datetime64("NaT"))
    plat = np.where(found, stored["lat"].to_numpy(dtype=float)[i] if len(stored) else np.nan, np.nan)
    plon = np.where(found, stored["lon"].to_numpy(dtype=float)[i] if len(stored) else np.nan, np.nan)
    out = _result(vals, plat, plon, dist, [f"gpi {g}" for g in gpi], pts["time"].values, obs_time)
    out.attrs.update(variable=names["var"], layout="cells")
    return out


def _cell_variables(folder: Path, files, variable) -> dict:
    """The value variable of the cell files (``variable`` or the soil-moisture one) and all variable names."""
    first = next((f for f in files if f), None) or next(iter(qa4sm_cells.cell_files(folder).values())).name
    with xr.open_dataset(folder / first, decode_times=False) as ds:
        keep = ds[[v for v in ds.data_vars if ds[v].dims == ("locations", "time")]]
        var = pick_variable(keep, variable, str(folder / first))
        return {"var": var, "all": set(keep.data_vars)}
