"""Reader for gridded time series in pynetcf "cell" files, the layout QA4SM and TU Wien products use.

A product folder holds ``grid.nc`` (every grid point: ``gpi``, ``lat``, ``lon``
and the 5-degree ``cell`` it belongs to, dim ``gp``) and one ``NNNN.nc`` file
per cell (``NNNN`` = the cell number, zero-padded to four digits) with the
series of the points stored there as (locations, time) arrays: ``location_id``
(the gpi), ``lat``, ``lon`` on ``locations``, ``time`` in days since
1858-11-17 (modified Julian date), one variable per field. Fill values
(``_FillValue``) and values outside ``valid_min``/``valid_max`` become NaN.

:func:`stored_locations` lists the points the cell files hold (the
nearest-point search is :mod:`smfusion.data.extract`'s); :func:`read_points`
reads the series of given gpis into a (site, time) Dataset. SMAP L3 (SPL3SMP) series also carry ``tb_time_seconds`` (the
overpass time, seconds since the J2000 epoch) and ``retrieval_qual_flag``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.io.ts_cells import valid_values

log = logging.getLogger(__name__)

__all__ = ["is_cell_folder", "read_grid", "cell_files", "stored_locations", "read_points", "MJD_EPOCH"]

MJD_EPOCH = np.datetime64("1858-11-17T00:00:00", "ns")
_CELL_RE = re.compile(r"^(\d{4})\.nc$")


def is_cell_folder(path: str | Path) -> bool:
    """True for a folder holding ``grid.nc`` and at least one ``NNNN.nc`` cell file."""
    path = Path(path)
    return path.is_dir() and (path / "grid.nc").is_file() and bool(cell_files(path))


def cell_files(folder: str | Path) -> dict[int, Path]:
    """Cell number -> cell file path."""
    return {int(m.group(1)): p for p in sorted(Path(folder).iterdir()) if (m := _CELL_RE.match(p.name))}


def _open(path: Path) -> xr.Dataset:
    try:
        return xr.open_dataset(path, decode_times=False, mask_and_scale=True)
    except Exception as exc:
        raise DataError(f"cannot open cell file: {exc.__class__.__name__}: {exc}", path=path) from None


def read_grid(folder: str | Path) -> pd.DataFrame:
    """``grid.nc`` as a frame with columns gpi, lat, lon, cell."""
    path = Path(folder) / "grid.nc"
    if not path.is_file():
        raise DataError("cell-file product has no grid.nc", path=path)
    with _open(path) as ds:
        missing = [v for v in ("gpi", "lat", "lon", "cell") if v not in ds.variables]
        if missing:
            raise DataError(f"grid.nc lacks {missing}", path=path, field=missing[0])
        return pd.DataFrame({k: np.asarray(ds[k].values) for k in ("gpi", "lat", "lon", "cell")})


def _locations(path: Path) -> pd.DataFrame:
    with _open(path) as ds:
        for v in ("location_id", "lat", "lon"):
            if v not in ds.variables:
                raise DataError(f"cell file lacks {v}", path=path, field=v)
        return pd.DataFrame({"gpi": np.asarray(ds["location_id"].values, dtype=np.int64),
                             "lat": np.asarray(ds["lat"].values, dtype=float),
                             "lon": np.asarray(ds["lon"].values, dtype=float), "file": path.name})


def stored_locations(folder: str | Path, cells: Sequence[int] | None = None) -> pd.DataFrame:
    """Points stored in the cell files (all, or those of ``cells``): columns gpi, lat, lon, file."""
    folder = Path(folder)
    files = cell_files(folder)
    if not files:
        raise DataError("no NNNN.nc cell files in folder", path=folder)
    wanted = sorted(files) if cells is None else sorted(set(cells) & set(files))
    parts = [_locations(files[c]) for c in wanted]
    if not parts:
        return pd.DataFrame({"gpi": np.array([], dtype=np.int64), "lat": [], "lon": [], "file": []})
    return pd.concat(parts, ignore_index=True)


def read_points(folder: str | Path, gpis: Sequence[int], files: Sequence[str], variables: Sequence[str],
                start=None, end=None) -> xr.Dataset:
    """Series (site, time) of ``variables`` at the given gpis (``files``: their cell file names).

    One site per requested gpi, in order (gpi -1: all NaN). Times are decoded
    from days since 1858-11-17; ``start``/``end`` (inclusive dates) cut them.
    Values are float: fill values and values outside ``valid_min``/``valid_max``
    (where a variable has them) are NaN; flags keep their integer values.
    """
    folder = Path(folder)
    gpis = np.asarray(gpis, dtype=np.int64)
    parts: dict[str, xr.Dataset] = {}
    for name in sorted({f for f in files if f}):
        path = folder / name
        ds = _open(path)
        for v in variables:
            if v not in ds.variables:
                ds.close()
                raise DataError(f"cell file lacks variable {v!r}; has {sorted(ds.data_vars)}", path=path, field=v)
        parts[name] = ds
    times = sorted(set().union(*[set(np.asarray(d["time"].values).tolist()) for d in parts.values()])) if parts else []
    t = MJD_EPOCH + (np.asarray(times, dtype=float) * 86400e9).round().astype("timedelta64[ns]")
    keep = np.ones(t.size, dtype=bool)
    if start is not None:
        keep &= t >= np.datetime64(pd.Timestamp(start), "ns")
    if end is not None:
        keep &= t < np.datetime64(pd.Timestamp(end) + pd.Timedelta(days=1), "ns")
    out = {v: np.full((gpis.size, int(keep.sum())), np.nan) for v in variables}
    tindex = pd.Index(np.asarray(times, dtype=float))
    try:
        for i, (gpi, name) in enumerate(zip(gpis, files)):
            if gpi < 0 or not name:
                continue
            ds = parts[name]
            loc = np.nonzero(np.asarray(ds["location_id"].values) == gpi)[0]
            if loc.size == 0:
                raise DataError(f"gpi {gpi} not stored in this cell file", path=folder / name, field="location_id")
            cols = tindex.get_indexer(np.asarray(ds["time"].values, dtype=float))
            for v in variables:
                row = np.full(t.size, np.nan)
                row[cols] = valid_values(ds[v].isel(locations=int(loc[0])))
                out[v][i] = row[keep]
    finally:
        for ds in parts.values():
            ds.close()
    data = {v: (("site", "time"), out[v]) for v in variables}
    return xr.Dataset(data, coords={"site": np.arange(gpis.size), "time": t[keep], "gpi": ("site", gpis)},
                      attrs={"source": str(folder), "layout": "pynetcf cell files"})
