"""Reader ``tb_files``: real brightness-temperature files of several sensors on listed EASE-2 cells.

``data.tb_files`` (:class:`smfusion.config.TBFilesConfig`) names the output
grid, the cells (``rows``/``cols`` or a ``bbox``, one site per cell) and, per
sensor, its files (paths or glob patterns; only the files whose date in the
name lies in the requested period are opened):

==========  ======================================================  ==========================================
section     reader                                                  variables (K; m3/m3)
==========  ======================================================  ==========================================
``smos``    :func:`smfusion.io.smos_l3tb.open_smos_l3tb` (M25,      ``tb_h_smos``, ``tb_v_smos``
            angle class or quadratic fit at ``angle``)
``amsr2``,  :func:`smfusion.io.amsr_l3tb.open_amsr_l3tb` (lat/lon,  ``tb_h_<sensor>_<ff>``, ``tb_v_<sensor>_<ff>``
``amsre``   :func:`smfusion.grids.latlon.latlon_to_cells`)
``smap``    :func:`smfusion.io.smap_l3.open_granules` (L3) or       ``tb_h_smap``, ``tb_v_smap`` (good TB),
            :func:`smfusion.io.smap_l2.grid_l2_granules` (L2), M36  ``sm_smap`` (recommended-quality retrieval)
==========  ======================================================  ==========================================

Each section is a sensor of :mod:`smfusion.data.tb_sensors` (one module each, registered under the section's
name; its config class under the same name in :mod:`smfusion.config.tb`): the table above is the built-in ones,
and a new sensor is one more module, not an edit here.

Gridded sources on another EASE-2 grid than ``grid`` (SMAP's M36, SMOS's M25
for an M36 output) are regridded area-weighted (:func:`smfusion.grids.regrid.regrid`,
``min_valid_fraction``), then taken at the cells. The result is the canonical
``(site, time)`` Dataset, daily over the requested period (NaN where a sensor
has no value), with coords ``row``, ``col``, ``lat``, ``lon`` and attribute
``ease2_grid``: the variable names are those of the CASM twin, so one run
config serves both readers.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.config import DataConfig, RunConfig
from smfusion.data.problems import Problem, register_check
from smfusion.data.readers import register_reader
from smfusion.data.tb_sensors import Cells, get_tb_sensor
from smfusion.data.tb_sensors.base import expand_paths
from smfusion.errors import DataError, SmfusionError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon

__all__ = ["read_tb_files", "tb_cells", "tb_variables", "expand_paths", "check_tb_files"]


def tb_cells(cfg) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the output cells (``rows``/``cols``, or every cell whose centre lies in ``bbox``)."""
    grid = get_grid(cfg.grid)
    if cfg.rows is not None:
        rows, cols = np.asarray(cfg.rows, dtype=np.int64), np.asarray(cfg.cols, dtype=np.int64)
        if rows.min() < 0 or cols.min() < 0 or rows.max() >= grid.nrows or cols.max() >= grid.ncols:
            raise DataError(f"rows/cols outside the {grid.name} grid", field="tb_files.rows")
        return rows, cols
    lon0, lat0, lon1, lat1 = cfg.bbox
    r0, c0 = latlon_to_rowcol(grid, min(lat1, 85.0), lon0)
    r1, c1 = latlon_to_rowcol(grid, max(lat0, -85.0), min(lon1, 179.999))
    rr, cc = np.meshgrid(np.arange(max(r0, 0), r1 + 1), np.arange(max(c0, 0), c1 + 1), indexing="ij")
    lat, lon = rowcol_to_latlon(grid, rr, cc)
    inside = (lat >= lat0) & (lat <= lat1) & (lon >= lon0) & (lon <= lon1)
    if not inside.any():
        raise DataError(f"no {grid.name} cell centre inside bbox {list(cfg.bbox)}", field="tb_files.bbox")
    return rr[inside].astype(np.int64), cc[inside].astype(np.int64)


def tb_variables(tf) -> list[str]:
    """Every variable the configured sensors give (in the order of their sections' registration)."""
    return [v for name, section in tf.sections.items() for v in get_tb_sensor(name).variables(name, section)]


@register_check("tb_files")
def check_tb_files(cfg: RunConfig) -> list[Problem]:
    """Real TB files: each sensor section's own check (by default, its ``paths`` name existing files of the
    kind their names say)."""
    tf = cfg.data.section_of("tb_files")
    out = []
    for name, section in tf.sections.items():
        try:
            out += get_tb_sensor(name).check(name, section)
        except SmfusionError as exc:
            out.append(Problem.from_error(exc))
    return out


@register_reader("tb_files")
def read_tb_files(cfg: DataConfig, start: Optional[str], end: Optional[str]) -> xr.Dataset:
    """The sensors of ``cfg.tb_files`` at its cells, daily over ``start..end`` (module doc)."""
    tf = cfg.section_of("tb_files")
    grid = get_grid(tf.grid)
    rows, cols = tb_cells(tf)
    cells = Cells(grid, rows, cols)
    parts = [get_tb_sensor(name).read(name, section, cells, start, end) for name, section in tf.sections.items()]
    parts = [p.drop_vars([c for c in ("row", "col", "lat", "lon") if c in p.coords]).assign_coords(
        site=np.arange(rows.size)) for p in parts if p is not None]
    times = pd.date_range(start, end, freq="D") if start and end else None
    ds = (xr.merge(parts, join="outer", compat="no_conflicts") if parts
          else xr.Dataset(coords={"site": np.arange(rows.size)}))
    if times is None:
        if "time" not in ds.dims:
            raise DataError("no file of any sensor in the period", field="data.tb_files")
        times = pd.date_range(pd.Timestamp(ds.time.values[0]).normalize(), pd.Timestamp(ds.time.values[-1]), freq="D")
    ds = ds.reindex(time=times.values.astype("datetime64[ns]")) if "time" in ds.dims else ds.expand_dims(time=times)
    for v in [v for v in tb_variables(tf) if v not in ds]:  # a sensor without file in the period: all missing
        ds[v] = (("site", "time"), np.full((rows.size, times.size), np.nan, np.float32))
    lat, lon = rowcol_to_latlon(grid, rows, cols)
    ds = ds.assign_coords(row=("site", rows), col=("site", cols), lat=("site", lat), lon=("site", lon))
    ds.attrs = {"ease2_grid": grid.name, "source": "real TB files (smfusion.data.tb_files)",
                "sensors": " ".join(tf.sections)}
    if cfg.sites is not None:
        ds = ds.sel(site=cfg.sites)
    return ds.transpose("site", "time", ...)
