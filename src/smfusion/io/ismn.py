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

A file that cannot be read raises :class:`smfusion.errors.DataError` naming it;
when reading a folder, such files are skipped with a logged warning instead
(``on_error='skip'``, the default) and listed in ``attrs['skipped_files']``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError

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
# Station metadata carried to the dataset: (name, kind) with kind "num" or "str".
STATIC_FIELDS = (
    ("lc_2000", "num"), ("lc_2005", "num"), ("lc_2010", "num"), ("lc_insitu", "str"),
    ("climate_KG", "str"), ("climate_insitu", "str"),
    ("saturation", "num"), ("clay_fraction", "num"), ("sand_fraction", "num"),
    ("silt_fraction", "num"), ("organic_carbon", "num"),
)
_CEOP_COLUMNS = 16


@dataclass
class SensorRecord:
    """One sensor's raw series (UTC index; columns ``value`` and ``flag``) and its metadata."""

    data: pd.DataFrame
    meta: dict = field(default_factory=dict)


def find_ismn_files(path: str | Path) -> list[Path]:
    """ISMN data files (``*.stm``) under a folder, sorted; a file path gives itself."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        raise DataError("zipped ISMN downloads are not read directly: extract the archive first", path=path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError("ISMN path not found", path=path)
    files = sorted(p for p in path.rglob("*.stm") if p.is_file())
    if not files:
        others = sorted(p.name for p in path.rglob("*") if p.is_file())[:5]
        raise DataError(f"no ISMN data files (*.stm) in folder; found {others or 'nothing'}", path=path)
    return files


# --------------------------------------------------------------------------
# one file
# --------------------------------------------------------------------------

def _first_line(path: Path) -> list[str]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from exc
    lines = head.splitlines()
    return lines[0].decode("ascii", "replace").split() if lines else []


def _is_date(token: str) -> bool:
    return len(token) == 10 and token[4] == "/" and token[7] == "/" and token.replace("/", "").isdigit()


def _looks_like_old_ceop(tokens: list[str]) -> bool:
    return len(tokens) == _CEOP_COLUMNS and _is_date(tokens[0]) and _is_date(tokens[2])


def _static_meta(path: Path, tokens: list[str]):
    """ismn MetaData of the station's static-variables csv, or None."""
    from ismn.filehandlers import StaticMetaFile

    if len(tokens) < 3:
        return None
    csv = path.parent / f"{tokens[0]}_{tokens[1]}_{tokens[2]}_static_variables.csv"
    if not csv.is_file():
        return None
    try:
        return StaticMetaFile(csv.parent, csv.name).metadata
    except Exception as exc:  # the csv is optional: keep the data, say why
        log.warning("skipping unreadable ISMN static-variables file %s: %s", csv, exc)
        return None


def _meta_value(md, name: str):
    try:
        var = md[name]
    except Exception:
        return None
    try:
        if hasattr(var, "val"):
            return var.val
        return var[0].val  # several entries: best_meta_for_depth left the best first
    except Exception:
        return None


def _clean(value, kind: str):
    if kind == "num":
        try:
            out = float(value)
        except (TypeError, ValueError):
            return np.nan
        return out
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "unknown"
    return str(value)


def _read_with_ismn(path: Path, variable: str) -> SensorRecord:
    from ismn.filehandlers import DataFile
    from ismn.meta import Depth

    try:
        handler = DataFile(path.parent, path.name)
    except Exception:
        first = " ".join(_first_line(path))[:60]
        raise DataError(f"not an ISMN data file in the header+values or CEOP layout (first line {first!r})",
                        path=path, field="header") from None
    md = handler.metadata
    tokens = path.name.split("_")
    static = _static_meta(path, tokens)
    try:
        if static is not None:
            md.merge(static, inplace=True, exclude_empty=False)
        instrument = md["instrument"]
        md = md.best_meta_for_depth(Depth(instrument.depth.start, instrument.depth.end))
        var_name = md["variable"].val
        depth_from, depth_to = float(instrument.depth.start), float(instrument.depth.end)
        meta = {
            "network": tokens[1] if len(tokens) > 1 else str(_meta_value(md, "network")),
            "station": str(_meta_value(md, "station")),
            "sensor": str(instrument.val),
            "variable": str(var_name),
            "latitude": float(_meta_value(md, "latitude")),
            "longitude": float(_meta_value(md, "longitude")),
            "elevation": float(_meta_value(md, "elevation")),
            "depth_from": depth_from,
            "depth_to": depth_to,
            "file_format": handler.file_type,
        }
    except Exception as exc:
        raise DataError(f"incomplete ISMN metadata: {exc}", path=path, field="header") from None
    for name, kind in STATIC_FIELDS:
        meta[name] = _clean(_meta_value(md, name), kind)
    if meta["variable"] != variable:
        return SensorRecord(pd.DataFrame({"value": [], "flag": []}), meta)
    try:
        raw = handler.read_data()
    except Exception as exc:
        raise DataError(f"cannot parse ISMN data lines: {exc.__class__.__name__}: {exc}",
                        path=path, field=variable) from None
    if var_name not in raw.columns or f"{var_name}_flag" not in raw.columns:
        raise DataError("data columns missing", path=path, field=variable)
    frame = pd.DataFrame({"value": raw[var_name].to_numpy(), "flag": raw[f"{var_name}_flag"].to_numpy()},
                         index=raw.index)
    return SensorRecord(_validate(frame, path, variable), meta)


def _validate(frame: pd.DataFrame, path: Path, variable: str) -> pd.DataFrame:
    """Numeric values, string flags, a UTC DatetimeIndex, sorted; else DataError."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        try:
            frame.index = pd.DatetimeIndex(frame.index)
        except (TypeError, ValueError):
            raise DataError("time stamps are not dates", path=path, field="date_time") from None
    try:
        values = pd.to_numeric(frame["value"], errors="raise").astype(float)
    except (TypeError, ValueError):
        raise DataError("non-numeric values", path=path, field=variable) from None
    if frame.index.hasnans:
        raise DataError("unparsable time stamps", path=path, field="date_time")
    out = pd.DataFrame({"value": values.to_numpy(), "flag": frame["flag"].astype(str).to_numpy()},
                       index=frame.index.astype("datetime64[ns]"))
    out.index.name = "time"
    return out.sort_index(kind="stable")


def _read_old_ceop(path: Path, tokens0: list[str], variable: str) -> list[SensorRecord]:
    """Old combined CEOP file: one line per time and depth with soil temperature and moisture.

    Columns: nominal date time, actual date time, CSE, network, station, lat,
    lon, elevation, '-', depth (m), soil temperature, flag, soil moisture
    (m3/m3), flag (as ismn 0.x read them). Missing values are -999.99.
    """
    if variable != "soil_moisture":
        return []
    try:
        raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, engine="c")
    except Exception as exc:
        raise DataError(f"cannot parse CEOP file: {exc.__class__.__name__}", path=path, field="data") from None
    if raw.shape[1] != _CEOP_COLUMNS:
        raise DataError(f"expected {_CEOP_COLUMNS} columns in a CEOP line, got {raw.shape[1]}", path=path,
                        field="data")
    try:
        times = pd.to_datetime(raw[0] + " " + raw[1], format="%Y/%m/%d %H:%M")
        depth = raw[11].astype(float)
        value = raw[14].astype(float)
        lat, lon, elev = (float(raw[c].iloc[0]) for c in (7, 8, 9))
    except (TypeError, ValueError):
        raise DataError("non-numeric or undated CEOP line", path=path, field="soil_moisture") from None
    value = value.where(value > -999.0)
    flag = raw[15].astype(str)
    tokens = path.name.split("_")
    records = []
    for d in np.unique(depth.to_numpy()):
        sel = (depth == d).to_numpy()
        frame = pd.DataFrame({"value": value[sel].to_numpy(), "flag": flag[sel].to_numpy()},
                             index=pd.DatetimeIndex(times[sel]))
        meta = {
            "network": tokens[1] if len(tokens) > 1 else str(raw[5].iloc[0]),
            "station": str(raw[6].iloc[0]),
            "sensor": "unknown",
            "variable": "soil_moisture",
            "latitude": lat, "longitude": lon, "elevation": elev,
            "depth_from": float(d), "depth_to": float(d),
            "file_format": "ceop",
        }
        for name, kind in STATIC_FIELDS:
            meta[name] = _clean(None, kind)
        records.append(SensorRecord(_validate(frame, path, "soil_moisture"), meta))
    return records


def _quiet(func, *args):
    """Call into the ismn package without its pandas deprecation warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"ismn(\..*)?$")
        return func(*args)


def read_ismn_file(path: str | Path, variable: str = "soil_moisture") -> list[SensorRecord]:
    """Read one ISMN data file into sensor records (one, or one per depth for old CEOP files).

    Files of another variable give records with empty data. Raises DataError
    naming the file for anything that is not a readable ISMN file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("ISMN file not found", path=path)
    tokens = _first_line(path)
    if not tokens:
        raise DataError("empty file", path=path, field="header")
    if _looks_like_old_ceop(tokens):
        return _read_old_ceop(path, tokens, variable)
    return [_quiet(_read_with_ismn, path, variable)]


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
