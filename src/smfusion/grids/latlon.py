"""Regular latitude/longitude grids (e.g. JAXA's 0.1 and 0.25 deg L3 maps) onto EASE-Grid 2.0 cells.

Drop-in-the-bucket: an EASE-2 cell's value is the area-weighted mean of the
lat/lon pixels whose centres fall in the cell,

    v_cell = sum_p cos(lat_p) v_p / sum_p cos(lat_p)      (p: valid pixels with centre in the cell),

(a lat/lon pixel's area is proportional to cos(lat)); a cell that holds no
pixel centre (0.25 deg pixels are coarser than 25 km cells at low latitudes)
takes the pixel that contains its centre. The value is NaN where the valid
pixels carry less than ``min_valid_fraction`` of the cell's pixel weight.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import EASE2Grid, as_grid, latlon_to_rowcol, rowcol_to_latlon

__all__ = ["bucket_weights", "latlon_to_cells"]


def _spacing(c: np.ndarray, what: str) -> float:
    d = np.diff(c)
    if c.size < 2 or not (np.allclose(d, d[0], rtol=1e-4, atol=1e-6)):
        raise DataError(f"{what} centres are not evenly spaced", field=what)
    return float(d[0])


def bucket_weights(lat: np.ndarray, lon: np.ndarray, grid: EASE2Grid | str, rows, cols) -> sp.csr_matrix:
    """(cells, nlat * nlon) weights of the pixels of a regular lat/lon grid for listed EASE-2 cells.

    ``lat``/``lon``: 1-D pixel centres (degrees; lon may run 0..360 or -180..180,
    any order). Row-normalised: each cell's weights sum to 1 (0 for a cell
    outside the lat/lon grid).
    """
    g = as_grid(grid)
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    dlat, dlon = abs(_spacing(lat, "lat")), abs(_spacing(lon, "lon"))
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    clat, clon = rowcol_to_latlon(g, rows, cols)
    # candidate pixels: the latitude band of the cells (+ one cell of margin), all longitudes in it
    margin = g.cell_size / 111_000.0 * 2 + max(dlat, dlon)
    band = (lat >= clat.min() - margin) & (lat <= clat.max() + margin)
    bi = np.flatnonzero(band)
    plat, plon = np.meshgrid(lat[bi], lon, indexing="ij")
    prow, pcol = latlon_to_rowcol(g, plat, plon)
    pidx = bi[:, None] * lon.size + np.arange(lon.size)[None, :]
    cell_key = rows * g.ncols + cols
    order = np.argsort(cell_key)
    key = np.where(prow >= 0, prow * g.ncols + pcol, -1).ravel()
    pos = np.clip(np.searchsorted(cell_key[order], key), 0, max(cell_key.size - 1, 0))
    hit = (cell_key.size > 0) & (key >= 0) & (cell_key[order][pos] == key)
    i = order[pos[hit]]
    j = pidx.ravel()[hit]
    w = np.cos(np.radians(plat.ravel()[hit]))
    # cells without a pixel centre: the pixel containing the cell centre
    empty = np.setdiff1d(np.arange(rows.size), i)
    if empty.size:
        li = np.rint((clat[empty] - lat[0]) / (lat[1] - lat[0])).astype(np.int64)
        lon_c = np.mod(clon[empty] - lon[0], 360.0) + lon[0]
        lj = np.rint((lon_c - lon[0]) / (lon[1] - lon[0])).astype(np.int64) % lon.size
        ok = (li >= 0) & (li < lat.size) & (np.abs(lat[np.clip(li, 0, lat.size - 1)] - clat[empty]) <= dlat)
        i = np.concatenate([i, empty[ok]])
        j = np.concatenate([j, li[ok] * lon.size + lj[ok]])
        w = np.concatenate([w, np.ones(int(ok.sum()))])
    m = sp.csr_matrix((w, (i, j)), shape=(rows.size, lat.size * lon.size))
    total = np.asarray(m.sum(axis=1)).ravel()
    return sp.diags(np.where(total > 0, 1.0 / np.where(total > 0, total, 1.0), 0.0)) @ m


def latlon_to_cells(cube: xr.Dataset, grid: EASE2Grid | str, rows, cols, *, min_valid_fraction: float = 0.5,
                    lat_name: str = "lat", lon_name: str = "lon") -> xr.Dataset:
    """A (time, lat, lon) Dataset -> the canonical (site, time) Dataset of listed EASE-2 cells (module doc).

    Float variables with dims (time, lat, lon) or (lat, lon) are resampled;
    others are dropped. Coords ``row``, ``col``, ``lat``, ``lon`` (cell centres).
    """
    g = as_grid(grid)
    rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
    cols = np.atleast_1d(np.asarray(cols, dtype=np.int64))
    w = bucket_weights(cube[lat_name].values, cube[lon_name].values, g, rows, cols).tocsr()
    data_vars = {}
    for name, da in cube.data_vars.items():
        if not np.issubdtype(da.dtype, np.floating) or set(da.dims) - {"time", lat_name, lon_name} \
                or {lat_name, lon_name} - set(da.dims):
            continue
        da = da.transpose(..., lat_name, lon_name)
        a = da.values.reshape(-1, da.shape[-2] * da.shape[-1]).T  # (pixels, time)
        valid = np.isfinite(a)
        num = w @ np.where(valid, a, 0.0)
        den = w @ valid.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(den >= max(min_valid_fraction, 1e-9) * (1 - 1e-9), num / den, np.nan)
        dims = ("site", "time") if "time" in da.dims else ("site",)
        data_vars[name] = (dims, v.astype(da.dtype) if "time" in da.dims else v[:, 0].astype(da.dtype),
                           dict(da.attrs))
    clat, clon = rowcol_to_latlon(g, rows, cols)
    coords = {"site": ("site", np.arange(rows.size)),
              "row": ("site", rows, {"long_name": f"EASE-Grid 2.0 {g.name} row"}),
              "col": ("site", cols, {"long_name": f"EASE-Grid 2.0 {g.name} column"}),
              "lat": ("site", clat, {"standard_name": "latitude", "units": "degrees_north"}),
              "lon": ("site", clon, {"standard_name": "longitude", "units": "degrees_east"})}
    if "time" in cube.coords:
        coords["time"] = ("time", pd.DatetimeIndex(cube["time"].values).values)
    attrs = dict(cube.attrs, ease2_grid=g.name, resampling="cos(lat)-weighted mean of the lat/lon pixels whose "
                 "centres fall in the cell (containing pixel when none)")
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
