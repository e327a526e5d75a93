"""Spatial grids: NSIDC EASE-Grid 2.0 (global M01-M36, north N01-N36, south S01-S36).

Modules: :mod:`~smfusion.grids.ease2` (definitions, coordinates),
:mod:`~smfusion.grids.nesting` (nesting, block means), :mod:`~smfusion.grids.land`
(land cells), :mod:`~smfusion.grids.regrid` (area-weighted regridding between any two grids).
"""

from smfusion.grids.ease2 import (  # noqa: F401
    GRID_NAMES,
    EASE2Grid,
    cell_bounds,
    cell_bounds_xy,
    cell_centres,
    get_grid,
    gpi_to_rowcol,
    index_to_rowcol,
    latlon_to_rowcol,
    latlon_to_xy,
    rowcol_to_gpi,
    rowcol_to_index,
    rowcol_to_latlon,
    rowcol_to_xy,
    xy_to_latlon,
    xy_to_rowcol,
)
from smfusion.grids.land import LandCells, land_cells, land_mask, read_land_cells  # noqa: F401
from smfusion.grids.nesting import aggregate, children_rowcol, nest_factor, nesting_index, parent_rowcol  # noqa: F401

__all__ = [
    "GRID_NAMES", "EASE2Grid", "LandCells", "aggregate", "cell_bounds", "cell_bounds_xy", "cell_centres",
    "children_rowcol", "get_grid", "gpi_to_rowcol", "index_to_rowcol", "land_cells", "land_mask",
    "latlon_to_rowcol", "latlon_to_xy", "nest_factor", "nesting_index", "parent_rowcol", "read_land_cells",
    "rowcol_to_gpi", "rowcol_to_index", "rowcol_to_latlon", "rowcol_to_xy", "xy_to_latlon", "xy_to_rowcol",
]
