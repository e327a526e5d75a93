"""Time series of TU Wien "cell files" in any of their three layouts (pynetcf / pygeogrids, QA4SM, pytesmo).

A product folder holds one ``NNNN.nc`` per 5-degree cell (``NNNN`` the cell
number) whose points are listed on the ``locations`` dimension
(``location_id`` = the product's grid point index, ``lat``, ``lon``). The
series are stored in one of three layouts (CF discrete sampling geometries):

* **orthogonal** (``OrthoMultiTs``): every variable is ``(locations, time)``
  on one shared ``time`` axis (SMOS L3, SMOS-IC, ESA CCI);
* **indexed ragged** (``IndexedRaggedTs``): variables are 1-D on ``time``
  (one entry per observation) and ``locationIndex`` (on ``time``) names the
  row of ``locations`` each observation belongs to (SMAP L3 v9 AM+PM);
* **contiguous ragged** (``ContiguousRaggedTs``): variables are 1-D on
  ``obs``; ``row_size`` (on ``locations``) counts the observations of each
  point, stored one block after the other in ``locations`` order (ASCAT H119).

Times are decoded from the ``units`` attribute of ``time`` (``<unit> since
<date>``: days since 1858-11-17, days since 1900-01-01, seconds since
2000-01-01 12:00:00 all occur). Values: ``_FillValue`` / ``missing_value``
masked and ``scale_factor`` applied by xarray; ``valid_min``/``valid_max``
(physical units) applied here; flags keep their integer values (as float,
NaN where missing).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError

__all__ = ["cell_layout", "decode_time", "cell_locations", "read_cell_series", "open_cell", "valid_values"]

_UNITS = {"days": 86400.0, "day": 86400.0, "hours": 3600.0, "hour": 3600.0, "minutes": 60.0, "seconds": 1.0,
          "second": 1.0}
_SINCE = re.compile(r"^\s*(\w+)\s+since\s+(.+?)\s*$")


def open_cell(path: str | Path) -> xr.Dataset:
    """The cell file, undecoded times, fill values masked; DataError naming the file when it cannot be opened."""
    try:
        return xr.open_dataset(path, decode_times=False, mask_and_scale=True)
    except Exception as exc:
        raise DataError(f"cannot open cell file: {exc.__class__.__name__}: {exc}", path=path) from None


def cell_layout(ds: xr.Dataset) -> str:
    """``orthogonal``, ``indexed`` or ``contiguous`` (module doc); DataError for anything else."""
    if "row_size" in ds.variables:
        return "contiguous"
    if "locationIndex" in ds.variables:
        return "indexed"
    if "time" in ds.dims and "locations" in ds.dims:
        return "orthogonal"
    raise DataError("not a cell file: no row_size, locationIndex or (locations, time) variables", field="time")


def decode_time(values, units: str, path=None) -> np.ndarray:
    """Numbers of ``units`` (``<unit> since <date>``) as datetime64[ns] (NaN -> NaT)."""
    m = _SINCE.match(str(units or ""))
    if m is None or m.group(1).lower() not in _UNITS:
        raise DataError(f"time units {units!r} are not '<days|hours|minutes|seconds> since <date>'", path=path,
                        field="time")
    scale = _UNITS[m.group(1).lower()] * 1e9
    epoch = np.datetime64(pd.Timestamp(m.group(2)).tz_localize(None), "ns")
    v = np.asarray(values, dtype=float)
    out = np.full(v.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = np.isfinite(v)
    out[ok] = epoch + (v[ok] * scale).round().astype("timedelta64[ns]")
    return out


def cell_locations(path: str | Path) -> pd.DataFrame:
    """Points of one cell file: columns gpi, lat, lon, row (their row on ``locations``)."""
    with open_cell(path) as ds:
        for v in ("location_id", "lat", "lon"):
            if v not in ds.variables:
                raise DataError(f"cell file lacks {v}", path=path, field=v)
        n = ds.sizes["locations"]
        return pd.DataFrame({"gpi": np.asarray(ds["location_id"].values, dtype=np.int64),
                             "lat": np.asarray(ds["lat"].values, dtype=float),
                             "lon": np.asarray(ds["lon"].values, dtype=float), "row": np.arange(n)})


def valid_values(var: xr.DataArray) -> np.ndarray:
    """``var`` as float, NaN outside its ``valid_min``/``valid_max`` (physical units)."""
    data = np.asarray(var.values, dtype=float)
    lo, hi = var.attrs.get("valid_min"), var.attrs.get("valid_max")
    with np.errstate(invalid="ignore"):
        if lo is not None:
            data = np.where(data >= float(lo), data, np.nan)
        if hi is not None:
            data = np.where(data <= float(hi), data, np.nan)
    return data


def _obs_of_rows(ds: xr.Dataset, kind: str, rows: np.ndarray) -> list[np.ndarray]:
    """Per requested row of ``locations``: the indices of its observations (ragged layouts)."""
    if kind == "indexed":
        idx = np.asarray(ds["locationIndex"].values, dtype=np.int64)
        return [np.nonzero(idx == r)[0] for r in rows]
    sizes = np.asarray(ds["row_size"].values, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return [np.arange(start[r], start[r] + sizes[r]) for r in rows]


def read_cell_series(path: str | Path, gpis: Sequence[int], variables: Sequence[str]) -> dict[int, pd.DataFrame]:
    """gpi -> DataFrame (index: UTC observation times, sorted; one column per variable) from one cell file.

    Orthogonal files give every shared time step (rows all-NaN in ``variables`` are dropped);
    ragged files give the point's observations. A gpi the file does not hold raises DataError.
    """
    path = Path(path)
    with open_cell(path) as ds:
        kind = cell_layout(ds)
        missing = [v for v in variables if v not in ds.variables]
        if missing:
            raise DataError(f"cell file lacks variable {missing[0]!r}; has {sorted(ds.data_vars)}", path=path,
                            field=missing[0])
        ids = np.asarray(ds["location_id"].values, dtype=np.int64)
        rows = []
        for g in gpis:
            hit = np.nonzero(ids == int(g))[0]
            if hit.size == 0:
                raise DataError(f"gpi {g} not stored in this cell file", path=path, field="location_id")
            rows.append(int(hit[0]))
        rows = np.asarray(rows, dtype=np.int64)
        times = decode_time(ds["time"].values, ds["time"].attrs.get("units"), path)
        out: dict[int, pd.DataFrame] = {}
        if kind == "orthogonal":
            block = {v: valid_values(ds[v].transpose("locations", "time").isel(locations=rows)) for v in variables}
            for i, g in enumerate(gpis):
                df = pd.DataFrame({v: block[v][i] for v in variables}, index=pd.DatetimeIndex(times, name="time"))
                out[int(g)] = df.dropna(how="all")
        else:
            vals = {v: valid_values(ds[v]) for v in variables}
            for g, obs in zip(gpis, _obs_of_rows(ds, kind, rows)):
                df = pd.DataFrame({v: vals[v][obs] for v in variables}, index=pd.DatetimeIndex(times[obs], name="time"))
                out[int(g)] = df[df.index.notna()].sort_index()
    return out
