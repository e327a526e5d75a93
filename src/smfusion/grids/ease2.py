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

Nesting and block means live in :mod:`smfusion.grids.nesting`, land cells in
:mod:`smfusion.grids.land`, area-weighted regridding between any two grids in
:mod:`smfusion.grids.regrid`; the nesting and land names are still importable
from here (loaded on first use).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass

import numpy as np
from pyproj import CRS, Transformer

from smfusion.errors import ConfigError

__all__ = [
    "EASE2Grid",
    "GRID_NAMES",
    "get_grid",
    "as_grid",
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


def as_grid(grid: EASE2Grid | str) -> EASE2Grid:
    """``grid`` itself, or the grid of that name."""
    return grid if isinstance(grid, EASE2Grid) else get_grid(grid)


_as_grid = as_grid


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


# Names moved to their own modules, still importable from here (PEP 562 lazy
# attributes, so that those modules can import this one without a cycle).
_MOVED = {
    **dict.fromkeys(("nest_factor", "parent_rowcol", "children_rowcol", "nesting_index", "aggregate"),
                    "smfusion.grids.nesting"),
    **dict.fromkeys(("LandCells", "read_land_cells", "land_mask", "land_cells"), "smfusion.grids.land"),
}


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
