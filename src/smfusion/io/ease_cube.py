"""(time, y, x) cubes on an EASE-Grid 2.0 window: coordinates, and site series taken out of them.

The gridded readers (SMAP L2/L3, SMOS L3 TB, AMSR L3 TB after resampling) all
return such a cube: ``x``/``y`` are the projected cell centres (m) of a
contiguous window of the grid named by ``attrs['ease2_grid']``, with ``lat(y)``
and ``lon(x)`` on the global (cylindrical) grids. :func:`extract_sites` turns a
cube into the canonical ``(site, time)`` model for points; :func:`cells_to_sites`
for listed grid cells.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import EASE2Grid, get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy

log = logging.getLogger(__name__)

__all__ = ["cube_coords", "cube_offset", "extract_sites", "cells_to_sites"]

UINT_FILL = 65534


def cube_coords(grid: EASE2Grid, window, times, time_long_name: str = "granule date (UTC day)") -> dict:
    """Coordinates of a (time, y, x) cube over ``window`` = (row0, row1, col0, col1)."""
    r0, r1, c0, c1 = window
    rows = np.arange(r0, r1)
    cols = np.arange(c0, c1)
    x, y = rowcol_to_xy(grid, rows, cols)  # x depends on cols only, y on rows only
    coords = {
        "time": ("time", pd.DatetimeIndex(times).values.astype("datetime64[ns]"),
                 {"standard_name": "time", "long_name": time_long_name, "axis": "T"}),
        "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y",
                       "long_name": f"y of {grid.long_name} cell centre"}),
        "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X",
                       "long_name": f"x of {grid.long_name} cell centre"}),
    }
    if grid.is_global:
        coords["lat"] = ("y", rowcol_to_latlon(grid, rows, np.zeros_like(rows))[0],
                         {"standard_name": "latitude", "units": "degrees_north", "long_name": "cell-centre latitude"})
        coords["lon"] = ("x", rowcol_to_latlon(grid, np.zeros_like(cols), cols)[1],
                         {"standard_name": "longitude", "units": "degrees_east", "long_name": "cell-centre longitude"})
    return coords


def cube_offset(cube: xr.Dataset) -> tuple[EASE2Grid, int, int]:
    """The cube's grid and the grid row/column of its first y/x cell."""
    if "ease2_grid" not in cube.attrs:
        raise DataError("cube has no 'ease2_grid' attribute", field="ease2_grid")
    grid = get_grid(cube.attrs["ease2_grid"])
    r_off = int(np.rint((grid.y_max - float(cube["y"].values[0])) / grid.cell_size - 0.5))
    c_off = int(np.rint((float(cube["x"].values[0]) - grid.x_min) / grid.cell_size - 0.5))
    return grid, r_off, c_off


def _take(cube: xr.Dataset, li: np.ndarray, lj: np.ndarray, inside: np.ndarray) -> xr.Dataset:
    """Variables of the cube at local indices (li, lj) as (site, time); fill where not ``inside``."""
    sel = cube.isel(y=xr.DataArray(np.where(inside, li, 0), dims="site"),
                    x=xr.DataArray(np.where(inside, lj, 0), dims="site"))
    ok = xr.DataArray(inside, dims="site")
    out = xr.Dataset(attrs=dict(cube.attrs))
    for name, da in sel.data_vars.items():
        if np.issubdtype(da.dtype, np.unsignedinteger):
            fill = da.encoding.get("_FillValue", UINT_FILL)
            filled = da.where(ok, fill).astype(da.dtype)
        else:
            filled = da.where(ok)
        dims = ("site", "time") if "time" in da.dims else ("site",)
        out[name] = filled.transpose(*dims)
        out[name].attrs = dict(da.attrs)
        out[name].encoding = dict(da.encoding)
    return out


def extract_sites(cube: xr.Dataset, lat, lon, site=None) -> xr.Dataset:
    """Time series (site, time) of the cube's cells that contain each (lat, lon).

    Sites outside the cube's window get NaN (NaT, fill flags) and a log message.
    Adds ``cell_row``/``cell_col`` (EASE-2 grid indices, -1 outside) and
    ``cell_lat``/``cell_lon`` (cell centres); ``lat``/``lon`` are the sites' own.
    """
    grid, r_off, c_off = cube_offset(cube)
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError("lat and lon must be 1-D arrays of one length")
    site = np.arange(lat.size) if site is None else np.asarray(site)
    rows, cols = latlon_to_rowcol(grid, lat, lon)
    li, lj = rows - r_off, cols - c_off
    inside = (rows >= 0) & (li >= 0) & (li < cube.sizes["y"]) & (lj >= 0) & (lj < cube.sizes["x"])
    if not inside.all():
        log.info("%d of %d sites lie outside the %s cube window", int((~inside).sum()), inside.size, grid.name)
    out = _take(cube.drop_vars([v for v in ("lat", "lon") if v in cube.coords]), li, lj, inside)
    clat, clon = rowcol_to_latlon(grid, np.where(inside, rows, 0), np.where(inside, cols, 0))
    return out.assign_coords(
        site=("site", site),
        lat=("site", lat, {"standard_name": "latitude", "units": "degrees_north"}),
        lon=("site", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        cell_row=("site", np.where(inside, rows, -1)),
        cell_col=("site", np.where(inside, cols, -1)),
        cell_lat=("site", np.where(inside, clat, np.nan)),
        cell_lon=("site", np.where(inside, clon, np.nan)),
    )


def cells_to_sites(cube: xr.Dataset, rows, cols, site=None) -> xr.Dataset:
    """The canonical (site, time) Dataset of listed grid cells (one site per cell).

    Coords ``row``, ``col`` (grid indices), ``lat``, ``lon`` (cell centres);
    cells outside the cube's window are all-missing.
    """
    grid, r_off, c_off = cube_offset(cube)
    rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
    cols = np.atleast_1d(np.asarray(cols, dtype=np.int64))
    if rows.shape != cols.shape or rows.ndim != 1:
        raise ValueError("rows and cols must be 1-D arrays of one length")
    li, lj = rows - r_off, cols - c_off
    inside = (li >= 0) & (li < cube.sizes["y"]) & (lj >= 0) & (lj < cube.sizes["x"])
    out = _take(cube.drop_vars([v for v in ("lat", "lon") if v in cube.coords]), li, lj, inside)
    lat, lon = rowcol_to_latlon(grid, rows, cols)
    return out.assign_coords(
        site=("site", np.arange(rows.size) if site is None else np.asarray(site)),
        row=("site", rows, {"long_name": f"EASE-Grid 2.0 {grid.name} row"}),
        col=("site", cols, {"long_name": f"EASE-Grid 2.0 {grid.name} column"}),
        lat=("site", lat, {"standard_name": "latitude", "units": "degrees_north"}),
        lon=("site", lon, {"standard_name": "longitude", "units": "degrees_east"}),
    )
