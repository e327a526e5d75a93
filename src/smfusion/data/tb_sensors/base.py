"""The TB sensor description (:class:`TBSensor`), its registry, and what the sensor modules share: the
output cells, file lists by pattern and date, cubes to cells, the default input check."""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.data.problems import Problem, granule_problems
from smfusion.errors import DataError, SmfusionError
from smfusion.grids.ease2 import EASE2Grid, rowcol_to_latlon
from smfusion.grids.regrid import regrid

__all__ = ["Cells", "TBSensor", "TB_SENSORS", "register_tb_sensor", "check_paths", "expand_paths", "dated",
           "around", "to_cells"]


@dataclass(frozen=True)
class Cells:
    """The output cells: ``rows``/``cols`` of the EASE-2 ``grid`` (one site each, in this order)."""

    grid: EASE2Grid
    rows: np.ndarray
    cols: np.ndarray


#: ``read(name, section, cells, start, end)``: the sensor's variables at ``cells`` over the period, dims
#: (site, time) (None: no file in the period)
Read = Callable[[str, Any, Cells, Optional[str], Optional[str]], Optional[xr.Dataset]]


@dataclass(frozen=True)
class TBSensor:
    name: str
    read: Read
    variables: Callable[[str, Any], list[str]]  # (name, section) -> the variables read gives
    check: Callable[[str, Any], list[Problem]]  # (name, section) -> problems found before any work


TB_SENSORS: dict[str, TBSensor] = {}


def register_tb_sensor(name: str, variables: Callable[[str, Any], list[str]],
                       check: Optional[Callable[[str, Any], list[Problem]]] = None) -> Callable[[Read], Read]:
    """Decorator on the sensor's ``read``: registers it as the ``tb_files`` sensor ``name`` with the names of
    its ``variables`` and its input ``check`` (default :func:`check_paths`)."""

    def deco(fn: Read) -> Read:
        if name in TB_SENSORS and TB_SENSORS[name].read is not fn:
            raise ValueError(f"TB sensor '{name}' already registered by {TB_SENSORS[name].read.__qualname__}")
        TB_SENSORS[name] = TBSensor(name, fn, variables, check or check_paths)
        return fn

    return deco


def expand_paths(patterns: list[str], field: str) -> list[Path]:
    """Files named by ``patterns`` (paths or globs), sorted; DataError when none exists."""
    out = []
    for p in patterns:
        hits = sorted(glob.glob(str(Path(p).expanduser())))
        out += [Path(h) for h in hits if Path(h).is_file()]
    if not out:
        raise DataError(f"no file matches {patterns}", field=field)
    return sorted(set(out))


def check_paths(name: str, section) -> list[Problem]:
    """The default check: ``section.paths`` name at least one file, each the HDF5/NetCDF file its name says."""
    key = f"data.tb_files.{name}.paths"
    try:
        files = expand_paths(section.paths, key)
    except SmfusionError as exc:
        return [Problem.from_error(exc)]
    return granule_problems(files, key)


def dated(paths: list[Path], pattern: str, start, end, field: str) -> list[Path]:
    """Files whose name holds a date (``pattern``'s group) inside ``start..end`` (a day's margin each side)."""
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


def around(cells: Cells, margin: float = 1.0) -> tuple[float, float, float, float]:
    """(lon_min, lat_min, lon_max, lat_max) around the cells, with a margin in degrees."""
    lat, lon = rowcol_to_latlon(cells.grid, cells.rows, cells.cols)
    return (float(lon.min()) - margin, float(lat.min()) - margin, float(lon.max()) + margin,
            float(lat.max()) + margin)


def to_cells(cube: xr.Dataset, names: dict[str, str], cells: Cells, mvf: float) -> xr.Dataset:
    """(time, y, x) EASE-2 cube -> (site, time) at the cells; ``names``: cube variable -> output name. A cube on
    another EASE-2 grid is regridded area-weighted first (``mvf``: the least valid area fraction)."""
    from smfusion.io.ease_cube import cells_to_sites

    grid, src = cells.grid, cube.attrs["ease2_grid"]
    if src != grid.name:
        fields = {names[v]: regrid(cube[v].astype(np.float64), src, grid, min_valid_fraction=mvf).astype(np.float32)
                  for v in names}
        cube = xr.Dataset(fields, attrs={"ease2_grid": grid.name})
        names = {v: v for v in names.values()}
    out = cells_to_sites(cube[list(names)], cells.rows, cells.cols).rename(names)
    return out[[*names.values()]].drop_vars([c for c in ("x", "y") if c in out.coords])
