"""EASE-Grid 2.0 (NSIDC): global cylindrical and polar azimuthal equal-area grids.

Grid definitions follow NSIDC's EASE-Grid 2.0 (Brodzik et al. 2012, 2014;
https://nsidc.org/data/user-resources/help-center/guide-ease-grids):

* global ``M01 M03 M09 M25 M36``: EPSG:6933 (Lambert cylindrical equal area,
  standard parallel 30 deg, WGS 84). The x extent is the full circle, so the cell
  size is ``2 * x(180 deg) / ncols`` (36032.22 m for M36, 9008.06 m for M09); the
  grid is centred on (0, 0).
* north ``N01 .. N36`` (EPSG:6931) and south ``S01 .. S36`` (EPSG:6932):
  Lambert azimuthal equal area, square grids spanning +-9000 km with round cell
  sizes (1, 3, 9, 25, 36 km).

All projection maths is done by pyproj; this module only does grid arithmetic.
Rows count from the top (north) edge, columns from the left (west) edge, as in
SMAP L3 arrays. The flat cell index is ``row * ncols + col``. Functions are
vectorised over numpy arrays; cells outside a grid get row = col = -1.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import xarray as xr
from pyproj import CRS, Transformer

from smfusion.errors import ConfigError, DataError

__all__ = [
    "EASE2Grid",
    "GRID_NAMES",
    "get_grid",
    "latlon_to_xy",
    "xy_to_latlon",
    "xy_to_rowcol",
    "rowcol_to_xy",
    "latlon_to_rowcol",
    "rowcol_to_latlon",
    "rowcol_to_index",
    "index_to_rowcol",
    "rowcol_to_gpi",
    "gpi_to_rowcol",
    "cell_centres",
    "cell_bounds_xy",
    "cell_bounds",
    "nest_factor",
    "parent_rowcol",
    "children_rowcol",
    "nesting_index",
    "aggregate",
    "LandCells",
    "read_land_cells",
    "land_mask",
    "land_cells",
]

_EPSG = {"M": 6933, "N": 6931, "S": 6932}
_RESOLUTIONS_KM = (1, 3, 9, 25, 36)
# NSIDC global grid dimensions (columns, rows) per nominal resolution.
_GLOBAL_DIMS = {1: (34704, 14616), 3: (11568, 4872), 9: (3856, 1624), 25: (1388, 584), 36: (964, 406)}
_POLAR_HALF_EXTENT_M = 9_000_000.0

GRID_NAMES = tuple(f"{h}{r:02d}" for h in "MNS" for r in _RESOLUTIONS_KM)


@functools.lru_cache(maxsize=None)
def _crs(epsg: int) -> CRS:
    return CRS.from_epsg(epsg)


@functools.lru_cache(maxsize=None)
def _to_xy(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


@functools.lru_cache(maxsize=None)
def _to_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(epsg, 4326, always_xy=True)


@dataclass(frozen=True)
class EASE2Grid:
    """One EASE-Grid 2.0 grid: projection, shape, cell size and upper-left corner."""

    name: str
    epsg: int
    ncols: int
    nrows: int
    cell_size: float
    x_min: float
    y_max: float

    @property
    def shape(self) -> tuple[int, int]:
        """(nrows, ncols)."""
        return (self.nrows, self.ncols)

    @property
    def x_max(self) -> float:
        return self.x_min + self.ncols * self.cell_size

    @property
    def y_min(self) -> float:
        return self.y_max - self.nrows * self.cell_size

    @property
    def is_global(self) -> bool:
        return self.name.startswith("M")

    @property
    def crs(self) -> CRS:
        return _crs(self.epsg)

    @property
    def long_name(self) -> str:
        """NSIDC's name, e.g. ``EASE2_M36km``."""
        return f"EASE2_{self.name[0]}{int(self.name[1:]):02d}km"

    def x_centres(self) -> np.ndarray:
        """Projected x (m) of the column centres, west to east."""
        return self.x_min + (np.arange(self.ncols) + 0.5) * self.cell_size

    def y_centres(self) -> np.ndarray:
        """Projected y (m) of the row centres, north to south."""
        return self.y_max - (np.arange(self.nrows) + 0.5) * self.cell_size


@functools.lru_cache(maxsize=None)
def get_grid(name: str) -> EASE2Grid:
    """The grid called ``name``: 'M36', 'N09', 'S25', or NSIDC's 'EASE2_M36km'."""
    key = str(name).strip().upper()
    if key.startswith("EASE2_"):
        key = key[len("EASE2_"):]
    if key.endswith("KM"):
        key = key[:-2]
    hemi, res = key[:1], key[1:]
    if hemi not in _EPSG or not res.isdigit() or int(res) not in _RESOLUTIONS_KM:
        raise ConfigError(f"unknown EASE-Grid 2.0 grid {name!r}; known: {', '.join(GRID_NAMES)}")
    km = int(res)
    epsg = _EPSG[hemi]
    if hemi == "M":
        ncols, nrows = _GLOBAL_DIMS[km]
        half_width = float(_to_xy(epsg).transform(180.0, 0.0)[0])
        cell = 2.0 * half_width / ncols
        return EASE2Grid(f"M{km:02d}", epsg, ncols, nrows, cell, -half_width, nrows * cell / 2.0)
    cell = km * 1000.0
    n = int(round(2 * _POLAR_HALF_EXTENT_M / cell))
    return EASE2Grid(f"{hemi}{km:02d}", epsg, n, n, cell, -_POLAR_HALF_EXTENT_M, _POLAR_HALF_EXTENT_M)


def _as_grid(grid: EASE2Grid | str) -> EASE2Grid:
    return grid if isinstance(grid, EASE2Grid) else get_grid(grid)


# --------------------------------------------------------------------------
# coordinates
# --------------------------------------------------------------------------

def _transform(tr: Transformer, a, b) -> tuple[np.ndarray, np.ndarray]:
    """Apply a pyproj transformer to broadcast arrays, keeping their shape."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    u, v = tr.transform(a.ravel(), b.ravel())
    return np.asarray(u, dtype=float).reshape(a.shape), np.asarray(v, dtype=float).reshape(a.shape)


def latlon_to_xy(grid: EASE2Grid | str, lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Projected (x, y) in metres of lat/lon degrees (longitudes wrapped to [-180, 180))."""
    g = _as_grid(grid)
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    lon = np.mod(lon + 180.0, 360.0) - 180.0
    return _transform(_to_xy(g.epsg), lon, lat)


def xy_to_latlon(grid: EASE2Grid | str, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Latitude, longitude (degrees) of projected (x, y) metres."""
    g = _as_grid(grid)
    lon, lat = _transform(_to_lonlat(g.epsg), x, y)
    return lat, lon


def xy_to_rowcol(grid: EASE2Grid | str, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the cell containing (x, y); -1 for both when outside the grid."""
    g = _as_grid(grid)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        colf = np.floor((x - g.x_min) / g.cell_size)
        rowf = np.floor((g.y_max - y) / g.cell_size)
        inside = (colf >= 0) & (colf < g.ncols) & (rowf >= 0) & (rowf < g.nrows)
    row = np.where(inside, rowf, -1).astype(np.int64)
    col = np.where(inside, colf, -1).astype(np.int64)
    return row, col


def rowcol_to_xy(grid: EASE2Grid | str, row, col) -> tuple[np.ndarray, np.ndarray]:
    """Projected (x, y) of cell centres."""
    g = _as_grid(grid)
    row = np.asarray(row)
    col = np.asarray(col)
    return g.x_min + (col + 0.5) * g.cell_size, g.y_max - (row + 0.5) * g.cell_size


def latlon_to_rowcol(grid: EASE2Grid | str, lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the cell containing each lat/lon; -1 when outside the grid."""
    g = _as_grid(grid)
    x, y = latlon_to_xy(g, lat, lon)
    return xy_to_rowcol(g, x, y)


def rowcol_to_latlon(grid: EASE2Grid | str, row, col) -> tuple[np.ndarray, np.ndarray]:
    """Latitude, longitude of cell centres."""
    g = _as_grid(grid)
    x, y = rowcol_to_xy(g, row, col)
    return xy_to_latlon(g, x, y)


def rowcol_to_index(grid: EASE2Grid | str, row, col) -> np.ndarray:
    """Flat cell index ``row * ncols + col`` (-1 where row or col is -1)."""
    g = _as_grid(grid)
    row = np.asarray(row, dtype=np.int64)
    col = np.asarray(col, dtype=np.int64)
    return np.where((row < 0) | (col < 0), -1, row * g.ncols + col)


def index_to_rowcol(grid: EASE2Grid | str, index) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of flat cell indices."""
    g = _as_grid(grid)
    row, col = np.divmod(np.asarray(index, dtype=np.int64), g.ncols)
    return row, col


def rowcol_to_gpi(grid: EASE2Grid | str, row, col) -> np.ndarray:
    """Grid-point index counted from the bottom-left cell (smap_io / pygeogrids convention)."""
    g = _as_grid(grid)
    return (g.nrows - 1 - np.asarray(row, dtype=np.int64)) * g.ncols + np.asarray(col, dtype=np.int64)


def gpi_to_rowcol(grid: EASE2Grid | str, gpi) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of bottom-left-origin grid-point indices (inverse of rowcol_to_gpi)."""
    g = _as_grid(grid)
    r_from_south, col = np.divmod(np.asarray(gpi, dtype=np.int64), g.ncols)
    return g.nrows - 1 - r_from_south, col


def cell_centres(grid: EASE2Grid | str, rows=None, cols=None) -> tuple[np.ndarray, np.ndarray]:
    """2-D latitude, longitude of the centres of ``rows`` x ``cols`` (default: the whole grid).

    Memory grows with rows x cols: the whole M01 grid is 507 million cells.
    """
    g = _as_grid(grid)
    rows = np.arange(g.nrows) if rows is None else np.asarray(rows)
    cols = np.arange(g.ncols) if cols is None else np.asarray(cols)
    r2, c2 = np.meshgrid(rows, cols, indexing="ij")
    return rowcol_to_latlon(g, r2, c2)


def cell_bounds_xy(grid: EASE2Grid | str, row, col) -> tuple[np.ndarray, np.ndarray]:
    """Projected bounds of cells: x_bnds (..., 2) west/east, y_bnds (..., 2) south/north."""
    g = _as_grid(grid)
    row = np.asarray(row)
    col = np.asarray(col)
    x0 = g.x_min + col * g.cell_size
    y1 = g.y_max - row * g.cell_size
    return np.stack([x0, x0 + g.cell_size], axis=-1), np.stack([y1 - g.cell_size, y1], axis=-1)


def cell_bounds(grid: EASE2Grid | str, row, col) -> tuple[np.ndarray, np.ndarray]:
    """Lat/lon of the four cell corners, shape (..., 4), counter-clockwise from south-west.

    The order (SW, SE, NE, NW) is the CF convention for 2-D cell bounds.
    """
    g = _as_grid(grid)
    xb, yb = cell_bounds_xy(g, row, col)
    xs = np.stack([xb[..., 0], xb[..., 1], xb[..., 1], xb[..., 0]], axis=-1)
    ys = np.stack([yb[..., 0], yb[..., 0], yb[..., 1], yb[..., 1]], axis=-1)
    lat, lon = xy_to_latlon(g, xs, ys)
    if g.is_global:
        # the east edge of the last column is +180, not -180
        lon = np.where((xs >= g.x_max) & (lon <= -180.0 + 1e-9), 180.0, lon)
    return lat, lon


# --------------------------------------------------------------------------
# nesting and aggregation
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# land cells
# --------------------------------------------------------------------------

class LandCells(NamedTuple):
    """Land cells of a grid: row, col, centre lat/lon, and the file's own index (gpi)."""

    row: np.ndarray
    col: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    gpi: np.ndarray


def _default_land_file() -> Path:
    from smfusion.settings import data_dir

    root = data_dir()
    if root is None:
        raise DataError("no data folder: set SMFUSION_DATA_DIR or pass the land file path", field="ease2/ease36land.nc")
    return root / "ease2" / "ease36land.nc"


def read_land_cells(path: str | Path | None = None) -> LandCells:
    """Read the EASE2 M36 land-cell list (smap_io's ``ease36land.nc``: gpi, lat, lon).

    Its ``gpi`` counts from the bottom-left cell (see :func:`gpi_to_rowcol`).
    Raises DataError when the file or a variable is missing or malformed.
    """
    path = Path(path) if path is not None else _default_land_file()
    if not path.is_file():
        raise DataError("land-cell file not found", path=path)
    try:
        with xr.open_dataset(path, decode_times=False) as ds:
            arrays = {}
            for name in ("gpi", "lat", "lon"):
                if name not in ds.variables:
                    raise DataError("variable missing from land-cell file", path=path, field=name)
                arrays[name] = np.asarray(ds[name].values).ravel()
    except DataError:
        raise
    except Exception as exc:  # netCDF/HDF5 library errors of every kind
        raise DataError(f"cannot read land-cell file: {exc}", path=path) from exc
    if not (arrays["gpi"].size == arrays["lat"].size == arrays["lon"].size):
        raise DataError("gpi, lat and lon differ in length", path=path, field="gpi")
    g = get_grid("M36")
    gpi = arrays["gpi"].astype(np.int64)
    if gpi.size and (gpi.min() < 0 or gpi.max() >= g.nrows * g.ncols):
        raise DataError("grid point index outside the M36 grid", path=path, field="gpi")
    row, col = gpi_to_rowcol(g, gpi)
    return LandCells(row, col, arrays["lat"].astype(float), arrays["lon"].astype(float), gpi)


def land_mask(grid: EASE2Grid | str, path: str | Path | None = None) -> np.ndarray:
    """Boolean (nrows, ncols) land mask of any EASE2 grid from the M36 land-cell file.

    A cell is land when its centre lies in an M36 land cell: for grids nested in
    M36 (M01, M03, M09) that is exactly the set of children of land cells.
    Polar cells beyond the M36 latitude range (+-85.04 deg) are never land.
    """
    g = _as_grid(grid)
    m36 = get_grid("M36")
    cells = read_land_cells(path)
    coarse = np.zeros(m36.shape, dtype=bool)
    coarse[cells.row, cells.col] = True
    if g.name == "M36":
        return coarse
    if g.is_global:
        y = g.y_centres()
        x = g.x_centres()
        r, _ = xy_to_rowcol(m36, np.zeros_like(y), y)
        _, cc = xy_to_rowcol(m36, x, np.zeros_like(x))
        inside_r = r >= 0
        out = np.zeros(g.shape, dtype=bool)
        out[inside_r] = coarse[r[inside_r]][:, cc]
        return out
    out = np.zeros(g.shape, dtype=bool)
    for start in range(0, g.nrows, 256):  # row blocks bound the memory of polar grids
        rows = np.arange(start, min(start + 256, g.nrows))
        lat, lon = cell_centres(g, rows=rows)
        r, cc = latlon_to_rowcol(m36, lat, lon)
        ok = r >= 0
        block = np.zeros(lat.shape, dtype=bool)
        block[ok] = coarse[r[ok], cc[ok]]
        out[rows] = block
    return out


def land_cells(grid: EASE2Grid | str, path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (row-major order) of the land cells of ``grid`` (see :func:`land_mask`)."""
    rows, cols = np.nonzero(land_mask(grid, path))
    return rows.astype(np.int64), cols.astype(np.int64)
