"""In-situ station soil moisture for validation, from three sources, in one (site, time) model.

* **ISMN**: a download folder or its ``.zip`` (files read by the ``ismn``
  package through :func:`smfusion.io.ismn.read_ismn`, quality flags applied,
  hourly means). A zip is extracted (data files and static-variable files
  only) into a temporary folder that is removed afterwards.
* **Station table** (USCRN-style daily files): a CSV with one row per station,
  columns ``station``, ``file`` (relative to the table's folder), ``lat``,
  ``lon``, optional ``network`` and ``depth_m`` (or ``depth_from``/``depth_to``,
  m; empty = unknown). Each file is a CSV with a time column (``timestamp``,
  ``time``, ``date`` or ``date_time``; UTC) and a value column (``vwc``,
  ``soil_moisture`` or ``sm``, m3/m3), optional ``flag``. A folder holding
  ``stations.csv`` names such a table.
* **Long CSV**: one file with columns ``station``, ``lat``, ``lon``, a time
  column and a value column as above (optional ``network``, ``depth_from``,
  ``depth_to``, ``flag``), one row per station and time.

Values <= -99 are missing (sentinels such as -9999); a value above 1 is
refused (percent instead of m3/m3). Rows with a ``flag`` outside
``good_flags`` are dropped. Stations whose depth is known and outside
``depth`` are dropped; stations of unknown depth are kept and said so in the
log and in ``depth_from``/``depth_to`` = NaN. See docs/formats.md.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["VARIABLE", "TIME_COLUMNS", "VALUE_COLUMNS", "read_stations", "sampling_of"]

VARIABLE = "soil_moisture"
TIME_COLUMNS = ("timestamp", "time", "date", "date_time", "datetime")
VALUE_COLUMNS = ("vwc", "soil_moisture", "sm")
_ISMN_DEPTH_RE = re.compile(r"_sm_(\d+\.\d+)_(\d+\.\d+)_")


def read_stations(path: str | Path, *, depth: tuple[float, float] = (0.0, 0.1), good_flags: Sequence[str] = ("G",),
                  value_column: str | None = None) -> xr.Dataset:
    """Station series (site, time) of ``soil_moisture`` (m3/m3) from an ISMN folder/zip, a station table or a long CSV.

    Site coords: ``lat``, ``lon``, ``station`` (name), ``network``,
    ``depth_from``, ``depth_to`` (m, NaN unknown). ``attrs['sampling']`` is
    ``hourly`` or ``daily`` (median step), ``attrs['station_source']`` the kind.
    """
    path = Path(path)
    lo, hi = (float(v) for v in depth)
    if not 0.0 <= lo <= hi:
        raise DataError(f"depth range must be 'top-bottom' with 0 <= top <= bottom (m), got {depth}", field="depth")
    if not path.exists():
        raise DataError("station path not found", path=path)
    kind = _kind(path)
    if kind == "ismn":
        ds = _read_ismn(path, (lo, hi), good_flags)
    elif kind == "table":
        table = path / "stations.csv" if path.is_dir() else path
        ds = _read_table(table, (lo, hi), good_flags, value_column)
    else:
        ds = _read_long(path, (lo, hi), good_flags, value_column)
    ds.attrs.update(station_source=kind, station_path=str(path), sampling=sampling_of(ds),
                    depth_range_m=f"{lo}-{hi}", good_flags=" ".join(good_flags))
    return ds


def _kind(path: Path) -> str:
    if path.is_dir():
        if (path / "stations.csv").is_file():
            return "table"
        if next(path.rglob("*.stm"), None) is not None:
            return "ismn"
        raise DataError("folder holds neither ISMN files (*.stm) nor a stations.csv table", path=path)
    if path.suffix.lower() == ".zip":
        return "ismn"
    if path.suffix.lower() == ".stm":
        return "ismn"
    if path.suffix.lower() != ".csv":
        raise DataError("station input must be an ISMN folder or .zip, a station table or a long CSV", path=path)
    header = _csv_header(path)
    if "file" in header:
        return "table"
    if "station" in header:
        return "long"
    raise DataError(f"CSV has neither a 'file' column (station table) nor a 'station' column (long CSV); "
                    f"columns {sorted(header)}", path=path, field="station")


def _csv_header(path: Path) -> set[str]:
    try:
        return {c.strip().lower() for c in pd.read_csv(path, nrows=0).columns}
    except Exception as exc:
        raise DataError(f"cannot read CSV header: {exc.__class__.__name__}: {exc}", path=path) from None


def sampling_of(ds: xr.Dataset) -> str:
    """'hourly' when the median step between a station's values is under a day, else 'daily'."""
    t = np.asarray(ds["time"].values).astype("datetime64[ns]")
    v = np.isfinite(np.asarray(ds[VARIABLE].values, dtype=float))
    steps = []
    for row in v:
        tt = t[row]
        if tt.size > 1:
            steps.append(np.median(np.diff(tt).astype("timedelta64[s]").astype(float)))
    return "hourly" if steps and float(np.median(steps)) < 86400.0 else "daily"


# ---------------------------------------------------------------------------- ISMN


def _ismn_depths(folder: Path) -> list[str]:
    found = sorted({f"{float(m.group(1)):g}-{float(m.group(2)):g}" for p in folder.rglob("*.stm")
                    if (m := _ISMN_DEPTH_RE.search(p.name))})
    return found[:10]


def _extract_zip(path: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename
                if info.is_dir() or not (name.endswith(".stm") or name.endswith("_static_variables.csv")):
                    continue
                target = (dest / name).resolve()
                if dest.resolve() not in target.parents:
                    raise DataError(f"zip member escapes the archive folder: {name!r}", path=path)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as exc:
        raise DataError(f"not a readable zip archive: {exc}", path=path) from None


def _read_ismn(path: Path, depth, good_flags) -> xr.Dataset:
    from smfusion.io.ismn import read_ismn

    if path.is_file() and path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="smfusion_ismn_") as tmp:
            _extract_zip(path, Path(tmp))
            if next(Path(tmp).rglob("*.stm"), None) is None:
                raise DataError("zip archive holds no ISMN data files (*.stm)", path=path)
            return _read_ismn(Path(tmp), depth, good_flags).load()
    ds = read_ismn(path, depth=depth, good_flags=tuple(good_flags), daily=False)
    if ds.sizes["site"] == 0:
        where = path if path.is_dir() else path.parent
        raise DataError(f"no soil-moisture sensor with data within depth {depth[0]}-{depth[1]} m and flags "
                        f"{list(good_flags)}; sensor depths found (m): {_ismn_depths(where) or 'none'}",
                        path=path, field="depth")
    ds = ds.rename({"soil_moisture": VARIABLE}) if "soil_moisture" != VARIABLE else ds
    return ds


# ---------------------------------------------------------------------------- CSV


def _pick(columns, wanted: Sequence[str], what: str, path: Path, given: str | None = None) -> str:
    cols = {c.lower(): c for c in columns}
    if given is not None:
        if given.lower() not in cols:
            raise DataError(f"{what} column {given!r} missing; columns {list(columns)}", path=path, field=given)
        return cols[given.lower()]
    for w in wanted:
        if w in cols:
            return cols[w]
    raise DataError(f"no {what} column (one of {list(wanted)}); columns {list(columns)}", path=path, field=what)


def _series(frame: pd.DataFrame, path: Path, good_flags, value_column) -> pd.Series:
    """One station's values on a sorted UTC index, flags and sentinels applied; DataError names the file."""
    tcol = _pick(frame.columns, TIME_COLUMNS, "time", path)
    vcol = _pick(frame.columns, VALUE_COLUMNS, "value", path, value_column)
    try:
        times = pd.to_datetime(frame[tcol], utc=True).dt.tz_convert(None)
    except (TypeError, ValueError) as exc:
        raise DataError(f"time stamps are not dates: {exc}", path=path, field=tcol) from None
    values = pd.to_numeric(frame[vcol], errors="coerce")
    bad_text = values.isna() & frame[vcol].notna() & (frame[vcol].astype(str).str.strip() != "")
    if bad_text.any():
        first = frame[vcol][bad_text].iloc[0]
        raise DataError(f"non-numeric value {first!r}", path=path, field=vcol)
    values = values.where(values > -99.0)
    if (values > 1.0).any():
        raise DataError(f"value {float(values.max())} > 1: soil moisture must be in m3/m3, not percent",
                        path=path, field=vcol)
    flag = next((c for c in frame.columns if c.lower() == "flag"), None)
    keep = np.ones(len(frame), dtype=bool) if flag is None else frame[flag].astype(str).isin(list(good_flags)).to_numpy()
    s = pd.Series(values.to_numpy(dtype=float)[keep], index=pd.DatetimeIndex(times[keep]).astype("datetime64[ns]"))
    s = s[np.isfinite(s.to_numpy())].sort_index(kind="stable")
    if s.index.has_duplicates:
        s = s.groupby(level=0).mean()
    return s


def _depth_of(row: pd.Series) -> tuple[float, float]:
    def num(key):
        v = row.get(key)
        try:
            return float(v)
        except (TypeError, ValueError):
            return np.nan

    if "depth_from" in row or "depth_to" in row:
        return num("depth_from"), num("depth_to")
    d = num("depth_m")
    return d, d


def _depth_ok(d: tuple[float, float], depth, name: str, unknown: list[str]) -> bool:
    """Inside the depth range; a station of unknown depth is kept and its name added to ``unknown``."""
    if not np.isfinite(d[0]) or not np.isfinite(d[1]):
        unknown.append(str(name))
        return True
    return depth[0] <= d[0] and d[1] <= depth[1]


def _log_unknown(unknown: list[str], depth, path: Path) -> None:
    """One log line for every station of unknown depth (not one per station)."""
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        log.warning("%s: %d station(s) of unknown depth kept (depth filter %s-%s m not applied): %s", path,
                    len(unknown), *depth, shown)


def _coord(row: pd.Series, key: str, path: Path) -> float:
    try:
        v = float(row[key])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"station {row.get('station')!r}: {key} missing or not a number", path=path, field=key) from None
    lim = 90.0 if key == "lat" else 180.0
    if not -lim <= v <= lim:
        raise DataError(f"station {row.get('station')!r}: {key} {v} outside [-{lim}, {lim}]", path=path, field=key)
    return v


def _read_table(path: Path, depth, good_flags, value_column) -> xr.Dataset:
    try:
        table = pd.read_csv(path, dtype={"station": str, "file": str, "network": str})
    except Exception as exc:
        raise DataError(f"cannot read station table: {exc.__class__.__name__}: {exc}", path=path) from None
    table.columns = [c.strip().lower() for c in table.columns]
    for col in ("station", "file", "lat", "lon"):
        if col not in table.columns:
            raise DataError(f"station table lacks column {col!r}; columns {list(table.columns)}", path=path, field=col)
    metas, series, unknown = [], [], []
    for _, row in table.iterrows():
        d = _depth_of(row)
        if not _depth_ok(d, depth, row["station"], unknown):
            continue
        file = path.parent / str(row["file"])
        if not file.is_file():
            raise DataError(f"series file of station {row['station']!r} not found", path=file, field="file")
        try:
            frame = pd.read_csv(file)
        except Exception as exc:
            raise DataError(f"cannot read station series: {exc.__class__.__name__}: {exc}", path=file) from None
        series.append(_series(frame, file, good_flags, value_column))
        metas.append(_meta(row, d, path))
    _log_unknown(unknown, depth, path)
    return _to_dataset(series, metas, path)


def _read_long(path: Path, depth, good_flags, value_column) -> xr.Dataset:
    try:
        frame = pd.read_csv(path, dtype={"station": str, "network": str})
    except Exception as exc:
        raise DataError(f"cannot read station CSV: {exc.__class__.__name__}: {exc}", path=path) from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    for col in ("station", "lat", "lon"):
        if col not in frame.columns:
            raise DataError(f"long station CSV lacks column {col!r}", path=path, field=col)
    metas, series, unknown = [], [], []
    for name, group in frame.groupby("station", sort=False):
        first = group.iloc[0]
        for key in ("lat", "lon"):
            if group[key].nunique() > 1:
                raise DataError(f"station {name!r} has more than one {key}", path=path, field=key)
        d = _depth_of(first)
        if not _depth_ok(d, depth, name, unknown):
            continue
        series.append(_series(group, path, good_flags, value_column))
        metas.append(_meta(first, d, path))
    _log_unknown(unknown, depth, path)
    return _to_dataset(series, metas, path)


def _meta(row: pd.Series, d, path: Path) -> dict:
    net = row.get("network")
    return {"station": str(row["station"]), "lat": _coord(row, "lat", path), "lon": _coord(row, "lon", path),
            "network": "unknown" if net is None or (isinstance(net, float) and np.isnan(net)) else str(net),
            "depth_from": d[0], "depth_to": d[1]}


def _to_dataset(series: list[pd.Series], metas: list[dict], path: Path) -> xr.Dataset:
    if not series:
        raise DataError("no station left after the depth filter", path=path, field="depth")
    ids = [m["station"] for m in metas]
    if len(set(ids)) != len(ids):
        raise DataError(f"station names repeat: {sorted({i for i in ids if ids.count(i) > 1})}", path=path,
                        field="station")
    times = pd.DatetimeIndex(sorted(set().union(*[set(s.index) for s in series]))).astype("datetime64[ns]")
    values = np.full((len(series), times.size), np.nan)
    for i, s in enumerate(series):
        values[i, times.get_indexer(s.index)] = s.to_numpy()
    col = {k: [m[k] for m in metas] for k in metas[0]}
    coords = {
        "site": ("site", np.asarray(ids, dtype=str), {"cf_role": "timeseries_id"}),
        "time": ("time", times.values, {"standard_name": "time", "long_name": "time (UTC)"}),
        "lat": ("site", np.asarray(col["lat"], dtype=float), {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("site", np.asarray(col["lon"], dtype=float), {"standard_name": "longitude", "units": "degrees_east"}),
        "station": ("site", np.asarray(ids, dtype=str)),
        "network": ("site", np.asarray(col["network"], dtype=str)),
        "depth_from": ("site", np.asarray(col["depth_from"], dtype=float), {"units": "m", "positive": "down"}),
        "depth_to": ("site", np.asarray(col["depth_to"], dtype=float), {"units": "m", "positive": "down"}),
    }
    attrs = {"long_name": "in-situ soil moisture", "units": "m3 m-3",
             "standard_name": "volume_fraction_of_condensed_water_in_soil"}
    return xr.Dataset({VARIABLE: (("site", "time"), values, attrs)}, coords=coords)
