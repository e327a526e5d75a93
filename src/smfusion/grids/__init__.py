"""Spatial grids: NSIDC EASE-Grid 2.0 (global M01-M36, north N01-N36, south S01-S36).

See :mod:`smfusion.grids.ease2`.
"""

from smfusion.grids.ease2 import (  # noqa: F401
    GRID_NAMES,
    EASE2Grid,
    LandCells,
    aggregate,
    cell_bounds,
    cell_bounds_xy,
    cell_centres,
    children_rowcol,
    get_grid,
    gpi_to_rowcol,
    index_to_rowcol,
    land_cells,
    land_mask,
    latlon_to_rowcol,
    latlon_to_xy,
    nest_factor,
    nesting_index,
    parent_rowcol,
    read_land_cells,
    rowcol_to_gpi,
    rowcol_to_index,
    rowcol_to_latlon,
    rowcol_to_xy,
    xy_to_latlon,
    xy_to_rowcol,
)

__all__ = [
    "GRID_NAMES", "EASE2Grid", "LandCells", "aggregate", "cell_bounds", "cell_bounds_xy", "cell_centres",
    "children_rowcol", "get_grid", "gpi_to_rowcol", "index_to_rowcol", "land_cells", "land_mask",
    "latlon_to_rowcol", "latlon_to_xy", "nest_factor", "nesting_index", "parent_rowcol", "read_land_cells",
    "rowcol_to_gpi", "rowcol_to_index", "rowcol_to_latlon", "rowcol_to_xy", "xy_to_latlon", "xy_to_rowcol",
]
