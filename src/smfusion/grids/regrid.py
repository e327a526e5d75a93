"""Area-weighted regridding between any two EASE-Grid 2.0 grids, conserving the area mean.

Every EASE-Grid 2.0 grid is equal-area, so the true area of any piece of a cell
is its area in projected metres. In one projection (all global grids, e.g.
M36 -> M25, which do not nest) the overlap of source cell j and target cell i
is a rectangle:

    a_ij = |[x0_i, x1_i] ∩ [x0_j, x1_j]| * |[y0_i, y1_i] ∩ [y0_j, y1_j]|      (m2)

and the target value is the overlap-weighted mean of the valid source values

    v_i = sum_j a_ij v_j / sum_j a_ij [v_j valid],

NaN where the valid overlap covers less than ``min_valid_fraction`` of the
target cell (coverage c_i = sum_j a_ij [v_j valid] / A_i, A_i = cell area).
With every source value valid and every target cell inside the source window,
sum_i A_i v_i = sum_j v_j |cell_j ∩ (union of target cells)|: the area
integral, hence the area mean, is conserved. A grid onto itself is the
identity; a fine grid onto a coarse one it nests in gives the block mean.

Across projections (global M <-> polar N/S) overlaps are not rectangles: each
source cell is split into ``oversample`` x ``oversample`` equal-area sub-cells
whose centres are located in the target grid (weights exact to O(1/oversample)).

:class:`Regridder` works on 2-D windows (numpy arrays or DataArrays with
``y``/``x`` coords); :func:`regrid_sites` on the canonical ``(site, time)``
model, where sites are cells listed by ``row``/``col``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import xarray as xr

from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import (EASE2Grid, as_grid, latlon_to_xy, rowcol_to_latlon, rowcol_to_xy, xy_to_latlon,
                                   xy_to_rowcol)

__all__ = ["Regridder", "regrid", "site_weights", "regrid_sites"]

Window = tuple[int, int, int, int]  # row0, row1, col0, col1 (end exclusive)


def _edges(grid: EASE2Grid, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cell edges of a window: y top/bottom per row, x left/right per column (m)."""
    r0, r1, c0, c1 = window
    rows, cols = np.arange(r0, r1), np.arange(c0, c1)
    top = grid.y_max - rows * grid.cell_size
    left = grid.x_min + cols * grid.cell_size
    return top, top - grid.cell_size, left, left + grid.cell_size


def _overlap(a0, a1, b0, b1) -> np.ndarray:
    """(len(a), len(b)) lengths of the intersections of intervals [a0, a1] and [b0, b1]."""
    return np.clip(np.minimum(a1[:, None], b1[None, :]) - np.maximum(a0[:, None], b0[None, :]), 0.0, None)


def _check_window(grid: EASE2Grid, window: Window | None, what: str) -> Window:
    if window is None:
        return 0, grid.nrows, 0, grid.ncols
    r0, r1, c0, c1 = (int(v) for v in window)
    if not (0 <= r0 < r1 <= grid.nrows and 0 <= c0 < c1 <= grid.ncols):
        raise ConfigError(f"{what} window {window} is not inside the {grid.name} grid ({grid.nrows} x {grid.ncols})")
    return r0, r1, c0, c1


def _subcells(grid: EASE2Grid, rows, cols, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Projected centres (x, y), shape (n, k*k), of k x k equal sub-cells of each listed cell."""
    off = (np.arange(k) + 0.5) / k
    x0 = grid.x_min + np.asarray(cols, dtype=float) * grid.cell_size
    y1 = grid.y_max - np.asarray(rows, dtype=float) * grid.cell_size
    xs = x0[:, None, None] + off[None, None, :] * grid.cell_size
    ys = y1[:, None, None] - off[None, :, None] * grid.cell_size
    xs, ys = np.broadcast_arrays(xs, ys)
    return xs.reshape(len(x0), k * k), ys.reshape(len(x0), k * k)


def _locate(src: EASE2Grid, dst: EASE2Grid, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Row and column in ``dst`` of points given in ``src`` projected metres (-1 outside)."""
    lat, lon = xy_to_latlon(src, x, y)
    dx, dy = latlon_to_xy(dst, lat, lon)
    return xy_to_rowcol(dst, dx, dy)


@dataclass(frozen=True)
class Regridder:
    """Overlap weights from a window of ``src`` to a window of ``dst``; call it on fields.

    Build with :meth:`Regridder.create`. ``wy`` (dst rows x src rows) and ``wx``
    (dst cols x src cols) are the separable overlap lengths of one projection;
    ``w`` (dst cells x src cells, row-major in the windows) the sub-cell areas
    across projections. ``dst_area`` is the target cell area (m2).
    """

    src: EASE2Grid
    dst: EASE2Grid
    src_window: Window
    dst_window: Window
    wy: sp.csr_matrix | None
    wx: sp.csr_matrix | None
    w: sp.csr_matrix | None
    dst_area: float

    @classmethod
    def create(cls, src: EASE2Grid | str, dst: EASE2Grid | str, src_window: Window | None = None,
               dst_window: Window | None = None, oversample: int = 8) -> "Regridder":
        """Weights from ``src_window`` (default: the whole grid) to ``dst_window``.

        The default target window is the bounding box of the target cells the
        source window overlaps.
        """
        s, d = as_grid(src), as_grid(dst)
        sw = _check_window(s, src_window, "source")
        if s.epsg == d.epsg:
            stop, sbot, sleft, sright = _edges(s, sw)
            if dst_window is None:
                r0 = int(np.floor((d.y_max - stop[0]) / d.cell_size + 1e-9))
                r1 = int(np.ceil((d.y_max - sbot[-1]) / d.cell_size - 1e-9))
                c0 = int(np.floor((sleft[0] - d.x_min) / d.cell_size + 1e-9))
                c1 = int(np.ceil((sright[-1] - d.x_min) / d.cell_size - 1e-9))
                dst_window = (max(r0, 0), min(r1, d.nrows), max(c0, 0), min(c1, d.ncols))
            dw = _check_window(d, dst_window, "target")
            dtop, dbot, dleft, dright = _edges(d, dw)
            wy = sp.csr_matrix(_overlap(dbot, dtop, sbot, stop))
            wx = sp.csr_matrix(_overlap(dleft, dright, sleft, sright))
            return cls(s, d, sw, dw, wy, wx, None, d.cell_size**2)
        if oversample < 1:
            raise ConfigError(f"oversample must be >= 1, got {oversample}")
        r0, r1, c0, c1 = sw
        rr, cc = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
        xs, ys = _subcells(s, rr.ravel(), cc.ravel(), oversample)
        drow, dcol = _locate(s, d, xs, ys)
        inside = drow >= 0
        if dst_window is None:
            if not inside.any():
                raise ConfigError(f"the {s.name} window {sw} does not overlap the {d.name} grid")
            dst_window = (int(drow[inside].min()), int(drow[inside].max()) + 1,
                          int(dcol[inside].min()), int(dcol[inside].max()) + 1)
        dw = _check_window(d, dst_window, "target")
        inside &= (drow >= dw[0]) & (drow < dw[1]) & (dcol >= dw[2]) & (dcol < dw[3])
        src_idx = np.broadcast_to(np.arange(xs.shape[0])[:, None], xs.shape)[inside]
        dst_idx = (drow[inside] - dw[0]) * (dw[3] - dw[2]) + (dcol[inside] - dw[2])
        sub_area = (s.cell_size / oversample) ** 2
        shape = ((dw[1] - dw[0]) * (dw[3] - dw[2]), xs.shape[0])
        w = sp.csr_matrix((np.full(src_idx.size, sub_area), (dst_idx, src_idx)), shape=shape)
        w.sum_duplicates()
        return cls(s, d, sw, dw, None, None, w, d.cell_size**2)

    def _apply(self, a: np.ndarray) -> np.ndarray:
        """sum_j a_ij x_j for x of shape (L, nr_src, nc_src) -> (L, nr_dst, nc_dst)."""
        n_lead, nr, nc = a.shape
        dr, dc = self.dst_window[1] - self.dst_window[0], self.dst_window[3] - self.dst_window[2]
        if self.w is not None:
            return (self.w @ a.reshape(n_lead, nr * nc).T).T.reshape(n_lead, dr, dc)
        t = self.wy @ a.transpose(1, 0, 2).reshape(nr, n_lead * nc)  # (dr, L*nc)
        t = t.reshape(dr, n_lead, nc).transpose(1, 0, 2).reshape(n_lead * dr, nc)
        return (self.wx @ t.T).T.reshape(n_lead, dr, dc)

    def __call__(self, data, min_valid_fraction: float = 0.5) -> np.ndarray:
        """Regrid ``data`` (..., rows, cols) on the source window; NaN is missing."""
        if not 0.0 <= min_valid_fraction <= 1.0:
            raise ConfigError(f"min_valid_fraction must be in [0, 1], got {min_valid_fraction}")
        a = np.asarray(data, dtype=float)
        shape = (self.src_window[1] - self.src_window[0], self.src_window[3] - self.src_window[2])
        if a.ndim < 2 or a.shape[-2:] != shape:
            raise DataError(f"field of shape {a.shape} does not match the source window {self.src_window} "
                            f"of {self.src.name} ({shape[0]} x {shape[1]})")
        lead = a.shape[:-2]
        a = a.reshape(-1, *shape)
        valid = np.isfinite(a)
        num = self._apply(np.where(valid, a, 0.0))
        den = self._apply(valid.astype(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / den
        out = np.where(den >= _need(min_valid_fraction, self.dst_area), out, np.nan)
        return out.reshape(*lead, *out.shape[-2:])


def _need(min_valid_fraction: float, area: float) -> float:
    """Smallest valid overlap (m2) a target cell needs: the fraction of its area, and more than nothing."""
    return max(min_valid_fraction * area * (1 - 1e-9), 1e-9 * area)


def _window_of(da: xr.DataArray, grid: EASE2Grid) -> Window:
    """Window of ``grid`` whose cell centres are the DataArray's x/y coords (checked)."""
    if da.dims[-2:] != ("y", "x"):
        raise DataError(f"expected trailing dims ('y', 'x'), got {da.dims}", field=str(da.name))
    xs = np.asarray(da["x"].values, dtype=float)
    ys = np.asarray(da["y"].values, dtype=float)
    rows, cols = xy_to_rowcol(grid, xs[:1], ys[:1])
    r0, c0 = int(rows[0]), int(cols[0])
    ex, ey = rowcol_to_xy(grid, r0 + np.arange(ys.size), c0 + np.arange(xs.size))
    if r0 < 0 or c0 < 0 or r0 + ys.size > grid.nrows or c0 + xs.size > grid.ncols or not (
            np.allclose(xs, ex, atol=1e-3 * grid.cell_size) and np.allclose(ys, ey, atol=1e-3 * grid.cell_size)):
        raise DataError(f"x/y coords are not contiguous {grid.name} cell centres", field=str(da.name))
    return r0, r0 + ys.size, c0, c0 + xs.size


def regrid(data, src: EASE2Grid | str, dst: EASE2Grid | str, *, min_valid_fraction: float = 0.5,
           src_window: Window | None = None, dst_window: Window | None = None, oversample: int = 8):
    """Area-weighted mean of ``data`` on ``src`` over each cell of ``dst`` (see the module doc).

    ``data``: numpy array (..., rows, cols) on ``src_window`` (default the whole
    grid), or a DataArray with dims (..., y, x) whose coords are ``src`` cell
    centres (its window is read from them). Returns the same kind of object on
    ``dst_window`` (default: the target cells the source window touches).
    """
    s, d = as_grid(src), as_grid(dst)
    if isinstance(data, xr.DataArray):
        rg = Regridder.create(s, d, _window_of(data, s), dst_window, oversample)
        out = rg(data.values, min_valid_fraction)
        r0, r1, c0, c1 = rg.dst_window
        x, y = rowcol_to_xy(d, np.arange(r0, r1), np.arange(c0, c1))
        coords = {k: v for k, v in data.coords.items() if not {"x", "y"} & set(v.dims)}
        coords.update(y=("y", y, dict(data["y"].attrs)), x=("x", x, dict(data["x"].attrs)))
        if d.is_global:
            coords["lat"] = ("y", rowcol_to_latlon(d, np.arange(r0, r1), np.full(r1 - r0, c0))[0],
                             {"standard_name": "latitude", "units": "degrees_north"})
            coords["lon"] = ("x", rowcol_to_latlon(d, np.full(c1 - c0, r0), np.arange(c0, c1))[1],
                             {"standard_name": "longitude", "units": "degrees_east"})
        attrs = dict(data.attrs, ease2_grid=d.name, regridded_from=s.name)
        return xr.DataArray(out, dims=data.dims, coords=coords, name=data.name, attrs=attrs)
    return Regridder.create(s, d, src_window, dst_window, oversample)(data, min_valid_fraction)


def site_weights(src: EASE2Grid | str, dst: EASE2Grid | str, src_rows, src_cols, dst_rows, dst_cols,
                 oversample: int = 8) -> sp.csr_matrix:
    """Overlap areas (m2) of listed target cells (rows) with listed source cells (columns)."""
    s, d = as_grid(src), as_grid(dst)
    src_rows, src_cols = np.asarray(src_rows, dtype=np.int64), np.asarray(src_cols, dtype=np.int64)
    dst_rows, dst_cols = np.asarray(dst_rows, dtype=np.int64), np.asarray(dst_cols, dtype=np.int64)
    flat = src_rows * s.ncols + src_cols
    order = np.argsort(flat)
    if np.unique(flat).size != flat.size:
        raise DataError(f"source cells are listed more than once on {s.name}", field="row/col")

    def lookup(r, c):  # position of source cell (r, c) in the list, -1 if absent
        key = r * s.ncols + c
        pos = np.clip(np.searchsorted(flat[order], key), 0, flat.size - 1)
        hit = (flat[order][pos] == key) & (r >= 0) & (c >= 0) & (r < s.nrows) & (c < s.ncols)
        return np.where(hit, order[pos], -1)

    if s.epsg == d.epsg:
        span = int(np.ceil(d.cell_size / s.cell_size)) + 1
        top = d.y_max - dst_rows * d.cell_size
        left = d.x_min + dst_cols * d.cell_size
        r_first = np.floor((s.y_max - top) / s.cell_size + 1e-9).astype(np.int64)
        c_first = np.floor((left - s.x_min) / s.cell_size + 1e-9).astype(np.int64)
        rr = r_first[:, None, None] + np.arange(span)[None, :, None]
        cc = c_first[:, None, None] + np.arange(span)[None, None, :]
        rr, cc = np.broadcast_arrays(rr, cc)
        s_top = s.y_max - rr * s.cell_size
        s_left = s.x_min + cc * s.cell_size
        oy = np.clip(np.minimum(top[:, None, None], s_top) - np.maximum(top[:, None, None] - d.cell_size,
                                                                         s_top - s.cell_size), 0, None)
        ox = np.clip(np.minimum(left[:, None, None] + d.cell_size, s_left + s.cell_size)
                     - np.maximum(left[:, None, None], s_left), 0, None)
        area = (oy * ox).reshape(len(dst_rows), -1)
        j = lookup(rr.reshape(len(dst_rows), -1), cc.reshape(len(dst_rows), -1))
        i = np.broadcast_to(np.arange(len(dst_rows))[:, None], j.shape)
        keep = (j >= 0) & (area > 0)
        w = sp.csr_matrix((area[keep], (i[keep], j[keep])), shape=(len(dst_rows), flat.size))
    else:
        xs, ys = _subcells(s, src_rows, src_cols, oversample)
        drow, dcol = _locate(s, d, xs, ys)
        dflat = np.asarray(dst_rows) * d.ncols + np.asarray(dst_cols)
        dorder = np.argsort(dflat)
        key = drow * d.ncols + dcol
        pos = np.clip(np.searchsorted(dflat[dorder], key), 0, dflat.size - 1)
        hit = (dflat[dorder][pos] == key) & (drow >= 0)
        i = dorder[pos][hit]
        j = np.broadcast_to(np.arange(xs.shape[0])[:, None], xs.shape)[hit]
        w = sp.csr_matrix((np.full(i.size, (s.cell_size / oversample) ** 2), (i, j)),
                          shape=(len(dst_rows), flat.size))
    w.sum_duplicates()
    return w


def _touched(s: EASE2Grid, d: EASE2Grid, rows, cols, oversample: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the ``d`` cells that overlap any listed ``s`` cell (sorted, unique)."""
    if s.epsg == d.epsg:
        span = int(np.ceil(s.cell_size / d.cell_size)) + 1
        top = s.y_max - rows * s.cell_size
        left = s.x_min + cols * s.cell_size
        r = np.floor((d.y_max - top) / d.cell_size + 1e-9).astype(np.int64)[:, None, None] + np.arange(span)[:, None]
        c = np.floor((left - d.x_min) / d.cell_size + 1e-9).astype(np.int64)[:, None, None] + np.arange(span)
    else:
        xs, ys = _subcells(s, rows, cols, oversample)
        r, c = _locate(s, d, xs, ys)
    r, c = np.broadcast_arrays(r, c)
    ok = (r >= 0) & (c >= 0) & (r < d.nrows) & (c < d.ncols)
    return np.divmod(np.unique(r[ok] * d.ncols + c[ok]), d.ncols)


def regrid_sites(ds: xr.Dataset, dst: EASE2Grid | str, dst_rows=None, dst_cols=None, *,
                 min_valid_fraction: float = 0.5, oversample: int = 8) -> xr.Dataset:
    """Canonical ``(site, time)`` data on one grid's cells -> the same on another grid's cells.

    ``ds`` needs coords ``row``/``col`` (cells of ``ds.attrs['ease2_grid']``).
    The result has one site per target cell (default: every target cell that
    overlaps a source cell), coords ``row``, ``col``, ``lat``, ``lon``, and each
    (site, ...) float variable as the area-weighted mean of the valid source
    values (NaN below ``min_valid_fraction`` coverage). Variables without a
    ``site`` dim are kept as they are; non-float per-site variables are dropped.
    """
    if "ease2_grid" not in ds.attrs or "row" not in ds.coords or "col" not in ds.coords:
        raise DataError("dataset needs the 'ease2_grid' attribute and 'row'/'col' coords", field="ease2_grid")
    s, d = as_grid(ds.attrs["ease2_grid"]), as_grid(dst)
    srow, scol = np.asarray(ds["row"].values, dtype=np.int64), np.asarray(ds["col"].values, dtype=np.int64)
    area = d.cell_size**2
    default = dst_rows is None
    if default:
        dst_rows, dst_cols = _touched(s, d, srow, scol, oversample)
    dst_rows, dst_cols = np.asarray(dst_rows, dtype=np.int64), np.asarray(dst_cols, dtype=np.int64)
    w = site_weights(s, d, srow, scol, dst_rows, dst_cols, oversample)
    if default:  # keep the target cells the source cells can cover enough
        keep = np.asarray(w.sum(axis=1)).ravel() >= _need(min_valid_fraction, area)
        dst_rows, dst_cols, w = dst_rows[keep], dst_cols[keep], w[keep]
    lat, lon = rowcol_to_latlon(d, dst_rows, dst_cols)
    out = xr.Dataset(attrs=dict(ds.attrs, ease2_grid=d.name, regridded_from=s.name))
    for name, da in ds.data_vars.items():
        if "site" not in da.dims:
            out[name] = da
            continue
        if not np.issubdtype(da.dtype, np.floating):
            continue
        da = da.transpose("site", ...)
        a = da.values.reshape(da.sizes["site"], -1).astype(float)
        valid = np.isfinite(a)
        num = w @ np.where(valid, a, 0.0)
        den = w @ valid.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(den >= _need(min_valid_fraction, area), num / den, np.nan)
        out[name] = (da.dims, v.reshape(len(dst_rows), *da.shape[1:]).astype(da.dtype), dict(da.attrs))
    other = {k: v for k, v in ds.coords.items() if "site" not in v.dims}
    return out.assign_coords(
        site=("site", np.arange(len(dst_rows))), **other,
        row=("site", dst_rows, {"long_name": f"EASE-Grid 2.0 {d.name} row"}),
        col=("site", dst_cols, {"long_name": f"EASE-Grid 2.0 {d.name} column"}),
        lat=("site", lat, {"standard_name": "latitude", "units": "degrees_north"}),
        lon=("site", lon, {"standard_name": "longitude", "units": "degrees_east"}),
    )
