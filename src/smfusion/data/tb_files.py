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

Gridded sources on another EASE-2 grid than ``grid`` (SMAP's M36, SMOS's M25
for an M36 output) are regridded area-weighted (:func:`smfusion.grids.regrid.regrid`,
``min_valid_fraction``), then taken at the cells. The result is the canonical
``(site, time)`` Dataset, daily over the requested period (NaN where a sensor
has no value), with coords ``row``, ``col``, ``lat``, ``lon`` and attribute
``ease2_grid``: the variable names are those of the CASM twin, so one run
config serves both readers.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.config import DataConfig
from smfusion.data.readers import register_reader
from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon
from smfusion.grids.regrid import regrid

__all__ = ["read_tb_files", "tb_cells", "tb_variables", "expand_paths"]

_SMAP_DATE = {"l3": r"_(\d{8})_", "l2": r"_[AD]_(\d{8})T"}


def expand_paths(patterns: list[str], field: str) -> list[Path]:
    """Files named by ``patterns`` (paths or globs), sorted; DataError when none exists."""
    out = []
    for p in patterns:
        hits = sorted(glob.glob(str(Path(p).expanduser())))
        out += [Path(h) for h in hits if Path(h).is_file()]
    if not out:
        raise DataError(f"no file matches {patterns}", field=field)
    return sorted(set(out))


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


def _bbox(grid, rows, cols, margin: float = 1.0) -> tuple[float, float, float, float]:
    """(lon_min, lat_min, lon_max, lat_max) around the cells, with a margin in degrees."""
    lat, lon = rowcol_to_latlon(grid, rows, cols)
    return (float(lon.min()) - margin, float(lat.min()) - margin, float(lon.max()) + margin,
            float(lat.max()) + margin)


def _dated(paths: list[Path], pattern: str, start, end, field: str) -> list[Path]:
    """Files whose name holds a date (``pattern``'s group) inside ``start..end`` (a day's margin each side)."""
    import re

    lo = pd.Timestamp(start) - pd.Timedelta(days=1) if start else pd.Timestamp.min
    hi = pd.Timestamp(end) + pd.Timedelta(days=1) if end else pd.Timestamp.max
    keep = []
    for p in paths:
        m = re.search(pattern, p.name)
        if m is None:
            raise DataError(f"no date in the file name (pattern {pattern})", path=p, field=field)
        if lo <= pd.Timestamp(m.group(1)) <= hi:
            keep.append(p)
    return keep


def _to_cells(cube: xr.Dataset, names: dict[str, str], grid, rows, cols, mvf: float) -> xr.Dataset:
    """(time, y, x) EASE-2 cube -> (site, time) at the cells; ``names``: cube variable -> output name."""
    from smfusion.io.ease_cube import cells_to_sites

    src = cube.attrs["ease2_grid"]
    if src != grid.name:
        fields = {names[v]: regrid(cube[v].astype(np.float64), src, grid, min_valid_fraction=mvf).astype(np.float32)
                  for v in names}
        cube = xr.Dataset(fields, attrs={"ease2_grid": grid.name})
        names = {v: v for v in names.values()}
    out = cells_to_sites(cube[list(names)], rows, cols).rename(names)
    return out[[*names.values()]].drop_vars([c for c in ("x", "y") if c in out.coords])


def _smos(cfg, grid, rows, cols, start, end) -> Optional[xr.Dataset]:
    from smfusion.io.smos_l3tb import open_smos_l3tb, parse_smos_l3tb_name

    s = cfg.smos
    paths = [p for p in expand_paths(s.paths, "tb_files.smos.paths")
             if parse_smos_l3tb_name(p)[0] == ("A" if s.orbit == "asc" else "D")]
    paths = _dated(paths, r"_CDF3T[AD]_(\d{8})T", start, end, "tb_files.smos.paths")
    if not paths:
        return None
    cube = open_smos_l3tb(paths, angle=s.angle, mode=s.mode, max_accuracy=s.max_accuracy,
                          max_rfi_fraction=s.max_rfi_fraction, min_views=s.min_views)
    o = s.orbit
    return _to_cells(cube, {f"tb_h_{o}": "tb_h_smos", f"tb_v_{o}": "tb_v_smos"}, grid, rows, cols, 0.5)


def _amsr(sensor: str, s, grid, rows, cols, start, end) -> Optional[xr.Dataset]:
    from smfusion.grids.latlon import latlon_to_cells
    from smfusion.io.amsr_l3tb import open_amsr_l3tb, parse_amsr_l3tb_name

    orbit = "A" if s.orbit == "asc" else "D"
    lo, hi = pd.Timestamp(start or "1900-01-01"), pd.Timestamp(end or "2200-01-01")
    paths = []
    for p in expand_paths(s.paths, f"tb_files.{sensor}.paths"):
        info = parse_amsr_l3tb_name(p)
        if info["orbit"] == orbit and info["freq"] in s.frequencies and lo <= info["date"] <= hi:
            paths.append(p)
    if not paths:
        return None
    cube = open_amsr_l3tb(paths, bbox=_bbox(grid, rows, cols), sensor={"amsr2": "AMSR2", "amsre": "AMSR-E"}[sensor])
    sites = latlon_to_cells(cube, grid, rows, cols, min_valid_fraction=s.min_valid_fraction)
    names = {f"tb_{p}_{f}_{s.orbit}": f"tb_{p}_{sensor}_{f}" for f in s.frequencies for p in ("h", "v")}
    missing = [v for v in names if v not in sites]
    if missing:
        raise DataError(f"{sensor} files give no {missing}", field=f"tb_files.{sensor}.frequencies")
    return sites[list(names)].rename(names)


def _smap(s, grid, rows, cols, start, end) -> Optional[xr.Dataset]:
    paths = _dated(expand_paths(s.paths, "tb_files.smap.paths"), _SMAP_DATE[s.level], start, end,
                   "tb_files.smap.paths")
    if not paths:
        return None
    variables = ("soil_moisture", "tb_h_corrected", "tb_v_corrected")
    bbox = _bbox(grid, rows, cols)
    if s.level == "l3":
        from smfusion.io.smap_l3 import open_granules

        cube = open_granules(paths, passes=(s.overpass.upper(),), variables=variables, tb_quality="good", bbox=bbox,
                             lazy=False)
    else:
        from smfusion.io.smap_l2 import L2_DEFAULT_VARIABLES, grid_l2_granules

        cube = grid_l2_granules(paths, L2_DEFAULT_VARIABLES, tb_quality="good", bbox=bbox)
    o = s.overpass
    names = {f"soil_moisture_{o}": "sm_smap", f"tb_h_corrected_{o}": "tb_h_smap", f"tb_v_corrected_{o}": "tb_v_smap"}
    missing = [v for v in names if v not in cube]
    if missing:
        raise DataError(f"SMAP files give no {missing} (overpass {o})", field="tb_files.smap.overpass")
    return _to_cells(cube, names, grid, rows, cols, s.min_valid_fraction)


def tb_variables(tf) -> list[str]:
    """Every variable the configured sensors give."""
    out = ["tb_h_smos", "tb_v_smos"] if tf.smos else []
    for sensor in ("amsr2", "amsre"):
        s = getattr(tf, sensor)
        out += [f"tb_{p}_{sensor}_{f}" for f in s.frequencies for p in ("h", "v")] if s else []
    return out + (["tb_h_smap", "tb_v_smap", "sm_smap"] if tf.smap else [])


@register_reader("tb_files")
def read_tb_files(cfg: DataConfig, start: Optional[str], end: Optional[str]) -> xr.Dataset:
    """The sensors of ``cfg.tb_files`` at its cells, daily over ``start..end`` (module doc)."""
    tf = cfg.tb_files
    if tf is None:
        raise DataError("data.reader tb_files needs a data.tb_files section", field="data.tb_files")
    grid = get_grid(tf.grid)
    rows, cols = tb_cells(tf)
    parts = [_smos(tf, grid, rows, cols, start, end) if tf.smos else None,
             _amsr("amsr2", tf.amsr2, grid, rows, cols, start, end) if tf.amsr2 else None,
             _amsr("amsre", tf.amsre, grid, rows, cols, start, end) if tf.amsre else None,
             _smap(tf.smap, grid, rows, cols, start, end) if tf.smap else None]
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
                "sensors": " ".join(n for n in ("smos", "amsr2", "amsre", "smap") if getattr(tf, n) is not None)}
    if cfg.sites is not None:
        ds = ds.sel(site=cfg.sites)
    return ds.transpose("site", "time", ...)
