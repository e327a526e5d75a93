"""Land cells of EASE-Grid 2.0 grids from smap_io's M36 land-cell list (``ease36land.nc``)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import (EASE2Grid, as_grid as _as_grid, cell_centres, get_grid, gpi_to_rowcol,
                                  latlon_to_rowcol, xy_to_rowcol)

__all__ = ["LandCells", "read_land_cells", "land_mask", "land_cells"]


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
