"""Reader for International Soil Moisture Network (ISMN) station files.

Files are parsed by TU Wien's ``ismn`` package (``ismn.filehandlers``): the
"header+values" layout (first line: network, station, lat, lon, elevation,
depths, sensor; then ``date time value flag orig_flag`` lines) and the "CEOP
separate files" layout (every line repeats the station columns). Station
``*_static_variables.csv`` files are read with ``ismn.filehandlers.StaticMetaFile``
and merged as ISMN does (best match to the sensor depth). The old combined CEOP
layout (one file per station with all depths, soil temperature and moisture;
no longer supported by ``ismn`` >= 1.0) is read by a small fallback here.

:func:`read_ismn` keeps soil-moisture sensors within a depth range, keeps
values whose ISMN quality flag is in ``good_flags`` (default ``G``), averages
to hourly values and then to daily means of at least ``min_hours`` hours, and
returns an ``xarray.Dataset`` (site, time) with station metadata as site
coordinates. Times are UTC, as ISMN serves them.

Reading one file is :mod:`smfusion.io.ismn_files`. A file that cannot be read raises
:class:`smfusion.errors.DataError` naming it;
when reading a folder, such files are skipped with a logged warning instead
(``on_error='skip'``, the default) and listed in ``attrs['skipped_files']``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.io.ismn_files import STATIC_FIELDS, SensorRecord, find_ismn_files, read_ismn_file

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_DEPTH",
    "STATIC_FIELDS",
    "SensorRecord",
    "find_ismn_files",
    "read_ismn_file",
    "read_ismn",
]

DEFAULT_DEPTH = (0.0, 0.05)


# --------------------------------------------------------------------------
# many files -> (site, time)
# --------------------------------------------------------------------------

def _in_depth(meta: dict, depth: tuple[float, float], from_only: bool) -> bool:
    lo, hi = depth
    d0, d1 = meta["depth_from"], meta["depth_to"]
    if from_only:
        return lo <= d0 <= hi
    return lo <= d0 and d1 <= hi


def _aggregate(frame: pd.DataFrame, good_flags: Sequence[str], daily: bool,
               min_hours: int) -> tuple[pd.Series, pd.Series]:
    """Flag-filtered hourly means, then (if daily) daily means of >= min_hours hours; and counts."""
    keep = frame["flag"].isin(list(good_flags)).to_numpy() & np.isfinite(frame["value"].to_numpy())
    vals = frame.loc[keep, "value"]
    hourly = vals.groupby(vals.index.floor("h")).mean()
    if not daily:
        return hourly, pd.Series(np.ones(hourly.size, dtype=np.int64), index=hourly.index)
    days = hourly.index.floor("D")
    grouped = hourly.groupby(days)
    mean, count = grouped.mean(), grouped.count()
    ok = count >= min_hours
    return mean[ok], count[ok].astype(np.int64)


def read_ismn(
    path: str | Path,
    *,
    depth: tuple[float, float] = DEFAULT_DEPTH,
    depth_from_only: bool = False,
    good_flags: Sequence[str] = ("G",),
    daily: bool = True,
    min_hours: int = 12,
    variable: str = "soil_moisture",
    networks: Sequence[str] | None = None,
    keep_empty: bool = False,
    on_error: str = "skip",
) -> xr.Dataset:
    """Read ISMN files under ``path`` into a (site, time) dataset of one variable.

    One site per sensor whose depth lies within ``depth`` (m; with
    ``depth_from_only`` only the top of the sensor must, e.g. for cosmic-ray
    probes). Values whose ISMN flag is not in ``good_flags`` are dropped;
    ``daily=True`` averages hourly means to days with at least ``min_hours``
    hours (``n_hours`` gives the count), ``daily=False`` returns hourly means.
    Sensors left without data are dropped unless ``keep_empty``. Unreadable
    files raise DataError when ``path`` is a file or ``on_error='raise'``, else
    are skipped with a logged warning.
    """
    if on_error not in ("skip", "raise"):
        raise ValueError("on_error must be 'skip' or 'raise'")
    lo, hi = (float(v) for v in depth)
    if not lo <= hi:
        raise ValueError(f"depth range must be (top, bottom) with top <= bottom, got {depth}")
    if min_hours < 1 or min_hours > 24:
        raise ValueError(f"min_hours must be 1..24, got {min_hours}")
    path = Path(path)
    single = path.is_file()
    files = find_ismn_files(path)
    skipped: list[str] = []
    series, counts, metas = [], [], []
    for f in files:
        try:
            records = read_ismn_file(f, variable)
        except DataError as exc:
            if single or on_error == "raise":
                raise
            log.warning("skipping ISMN file: %s", exc)
            skipped.append(str(f))
            continue
        for rec in records:
            meta = rec.meta
            if meta["variable"] != variable or not _in_depth(meta, (lo, hi), depth_from_only):
                continue
            if networks is not None and meta["network"] not in networks:
                continue
            s, n = _aggregate(rec.data, good_flags, daily, min_hours)
            if s.empty and not keep_empty:
                log.info("ISMN sensor without %s data after filtering: %s", "daily" if daily else "hourly", f)
                continue
            meta = dict(meta, file=str(f.relative_to(path)) if not single else f.name)
            series.append(s)
            counts.append(n)
            metas.append(meta)
    return _to_dataset(series, counts, metas, daily=daily, depth=(lo, hi), good_flags=good_flags,
                       min_hours=min_hours, variable=variable, skipped=skipped)


def _site_id(meta: dict) -> str:
    return (f"{meta['network']}:{meta['station']}:{meta['sensor']}:"
            f"{meta['depth_from']:.4f}-{meta['depth_to']:.4f}")


def _to_dataset(series, counts, metas, *, daily, depth, good_flags, min_hours, variable, skipped) -> xr.Dataset:
    ids = [_site_id(m) for m in metas]
    seen: dict[str, int] = {}
    for i, sid in enumerate(ids):  # two files of one sensor (e.g. both layouts) keep distinct ids
        if sid in seen:
            seen[sid] += 1
            ids[i] = f"{sid}#{seen[sid]}"
        else:
            seen[sid] = 0
    times = pd.DatetimeIndex(sorted(set().union(*[set(s.index) for s in series]))) if series else pd.DatetimeIndex([])
    times = times.astype("datetime64[ns]")
    values = np.full((len(series), times.size), np.nan, dtype=np.float32)
    n = np.zeros((len(series), times.size), dtype=np.int16)
    for i, (s, c) in enumerate(zip(series, counts)):
        pos = times.get_indexer(s.index)
        values[i, pos] = s.to_numpy(dtype=np.float32)
        n[i, pos] = c.to_numpy()
    what = "daily mean of hourly means" if daily else "hourly mean"
    sm_attrs = {"long_name": f"in-situ {variable.replace('_', ' ')} (ISMN), {what}",
                "units": "m3 m-3"}
    if variable == "soil_moisture":
        sm_attrs["standard_name"] = "volume_fraction_of_condensed_water_in_soil"
    data_vars = {variable: (("site", "time"), values, sm_attrs)}
    if daily:
        data_vars["n_hours"] = (("site", "time"), n, {"long_name": "number of hourly values in the daily mean",
                                                      "units": "1"})

    def col(key, dtype=None):
        vals = [m[key] for m in metas]
        return np.asarray(vals, dtype=dtype) if dtype else np.asarray(vals, dtype=object).astype(str)

    coords = {
        "site": ("site", np.asarray(ids, dtype=object).astype(str),
                 {"long_name": "sensor id network:station:sensor:depths", "cf_role": "timeseries_id"}),
        "time": ("time", times.values, {"standard_name": "time", "long_name": "time (UTC)", "axis": "T"}),
        "lat": ("site", col("latitude", float), {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("site", col("longitude", float), {"standard_name": "longitude", "units": "degrees_east"}),
        "elevation": ("site", col("elevation", float), {"long_name": "station elevation", "units": "m"}),
        "network": ("site", col("network"), {"long_name": "ISMN network"}),
        "station": ("site", col("station"), {"long_name": "ISMN station"}),
        "sensor": ("site", col("sensor"), {"long_name": "sensor type"}),
        "depth_from": ("site", col("depth_from", float), {"long_name": "sensor top depth", "units": "m",
                                                          "positive": "down"}),
        "depth_to": ("site", col("depth_to", float), {"long_name": "sensor bottom depth", "units": "m",
                                                      "positive": "down"}),
        "file_format": ("site", col("file_format"), {"long_name": "ISMN file layout"}),
        "source_file": ("site", col("file"), {"long_name": "ISMN data file"}),
    }
    for name, kind in STATIC_FIELDS:
        coords[name] = ("site", col(name, float) if kind == "num" else col(name), {"long_name": f"ISMN {name}"})
    if not metas:
        for name in list(coords):
            if name not in ("site", "time"):
                dtype = float if name in ("lat", "lon", "elevation", "depth_from", "depth_to") else str
                coords[name] = ("site", np.asarray([], dtype=dtype), coords[name][2])
    attrs = {
        "source": "International Soil Moisture Network (ISMN), read with the ismn package",
        "featureType": "timeSeries",
        "ismn_good_flags": " ".join(good_flags),
        "depth_range_m": f"{depth[0]}-{depth[1]}",
        "temporal_aggregation": f"daily, >= {min_hours} hourly values" if daily else "hourly",
        "skipped_files": " ".join(skipped),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
