"""Nesting of EASE-Grid 2.0 grids (M09 in M36, M03 in M09, ...) and block-mean aggregation.

Two grids nest when they share projection and extent and one cell size is an
integer multiple of the other. Grids that do not nest (M25 and M36) are
regridded by :mod:`smfusion.grids.regrid` instead.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import EASE2Grid, as_grid as _as_grid, rowcol_to_xy, xy_to_rowcol

__all__ = ["nest_factor", "parent_rowcol", "children_rowcol", "nesting_index", "aggregate"]


def nest_factor(fine: EASE2Grid | str, coarse: EASE2Grid | str) -> int:
    """How many fine cells fit along one side of a coarse cell (4 for M09 in M36).

    Raises ConfigError when the grids do not nest (other projection, a non-integer
    ratio, or a different extent, e.g. M25 in M36).
    """
    f, c = _as_grid(fine), _as_grid(coarse)
    ratio = c.cell_size / f.cell_size
    k = int(round(ratio))
    if (
        f.epsg != c.epsg
        or k < 1
        or not math.isclose(ratio, k, rel_tol=1e-9)
        or f.ncols != c.ncols * k
        or f.nrows != c.nrows * k
        or not math.isclose(f.x_min, c.x_min, abs_tol=1e-6)
        or not math.isclose(f.y_max, c.y_max, abs_tol=1e-6)
    ):
        raise ConfigError(f"EASE-Grid 2.0 {f.name} does not nest in {c.name}")
    return k


def parent_rowcol(fine: EASE2Grid | str, coarse: EASE2Grid | str, row, col) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the coarse cell that contains each fine cell."""
    k = nest_factor(fine, coarse)
    return np.asarray(row) // k, np.asarray(col) // k


def children_rowcol(fine: EASE2Grid | str, coarse: EASE2Grid | str, row, col) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the k x k fine cells inside each coarse cell, shape (..., k, k)."""
    k = nest_factor(fine, coarse)
    off = np.arange(k)
    rr = np.asarray(row)[..., None, None] * k + off[:, None]
    cc = np.asarray(col)[..., None, None] * k + off[None, :]
    rr, cc = np.broadcast_arrays(rr, cc)
    return rr.copy(), cc.copy()


def nesting_index(fine: EASE2Grid | str, coarse: EASE2Grid | str) -> np.ndarray:
    """Flat fine-cell indices inside every coarse cell: shape (coarse.nrows, coarse.ncols, k*k).

    Row-major within a coarse cell. Memory is coarse cells x k^2 int64
    (6.3 million entries for M09 in M36).
    """
    f, c = _as_grid(fine), _as_grid(coarse)
    k = nest_factor(f, c)
    rows, cols = np.meshgrid(np.arange(c.nrows), np.arange(c.ncols), indexing="ij")
    fr, fc = children_rowcol(f, c, rows, cols)
    return (fr * f.ncols + fc).reshape(c.nrows, c.ncols, k * k)


def _block_mean(a: np.ndarray, k: int, min_valid_fraction: float) -> np.ndarray:
    *lead, nr, nc = a.shape
    blocks = a.reshape(*lead, nr // k, k, nc // k, k)
    valid = np.isfinite(blocks)
    count = valid.sum(axis=(-3, -1))
    total = np.where(valid, blocks, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    need = max(1, math.ceil(min_valid_fraction * k * k - 1e-9))
    return np.where(count >= need, mean, np.nan)


def aggregate(data, fine: EASE2Grid | str, coarse: EASE2Grid | str, min_valid_fraction: float = 0.5,
              offset: tuple[int, int] = (0, 0)):
    """Mean of a fine field over each coarse cell; NaN where too few fine cells are valid.

    ``data``: numpy array (..., rows, cols) on the fine grid, or an xarray
    DataArray with dims (..., y, x) whose ``x``/``y`` coords are fine-grid
    centres. A coarse value needs at least ``min_valid_fraction`` of its k x k
    fine cells finite. Numpy input starts at fine cell ``offset`` (row, col);
    the window must cover whole coarse cells. Returns the same kind of object.
    """
    f, c = _as_grid(fine), _as_grid(coarse)
    k = nest_factor(f, c)
    if not 0.0 <= min_valid_fraction <= 1.0:
        raise ConfigError(f"min_valid_fraction must be in [0, 1], got {min_valid_fraction}")
    if isinstance(data, xr.DataArray):
        if data.dims[-2:] != ("y", "x"):
            raise DataError(f"expected trailing dims ('y', 'x'), got {data.dims}", field=str(data.name))
        xs = np.asarray(data["x"].values, dtype=float)
        ys = np.asarray(data["y"].values, dtype=float)
        rows, cols = xy_to_rowcol(f, xs[:1], ys[:1])
        row0, col0 = int(rows[0]), int(cols[0])
        ex, ey = rowcol_to_xy(f, row0 + np.arange(ys.size), col0 + np.arange(xs.size))
        if row0 < 0 or col0 < 0 or not (np.allclose(xs, ex, atol=1e-3 * f.cell_size)
                                        and np.allclose(ys, ey, atol=1e-3 * f.cell_size)):
            raise DataError(f"x/y coords are not contiguous {f.name} cell centres", field=str(data.name))
        out = aggregate(data.values.astype(float), f, c, min_valid_fraction, offset=(row0, col0))
        cy, cx = rowcol_to_xy(c, row0 // k + np.arange(out.shape[-2]), col0 // k + np.arange(out.shape[-1]))[::-1]
        coords = {name: coord for name, coord in data.coords.items() if not {"x", "y"} & set(coord.dims)}
        coords.update(y=("y", cy, dict(data["y"].attrs)), x=("x", cx, dict(data["x"].attrs)))
        return xr.DataArray(out, dims=data.dims, coords=coords, name=data.name, attrs=dict(data.attrs))
    a = np.asarray(data, dtype=float)
    if a.ndim < 2:
        raise DataError(f"field to aggregate needs at least 2 dims (rows, cols), got shape {a.shape}")
    row0, col0 = offset
    nr, nc = a.shape[-2:]
    if row0 % k or col0 % k or nr % k or nc % k or row0 < 0 or col0 < 0 or row0 + nr > f.nrows or col0 + nc > f.ncols:
        raise DataError(
            f"window rows {row0}..{row0 + nr}, cols {col0}..{col0 + nc} of {f.name} does not cover whole "
            f"{c.name} cells (factor {k})"
        )
    return _block_mean(a, k, min_valid_fraction)
