"""Reader for the hydroDL CSV database layout (e.g. ``conus_smap/CONUSv4f1``).

Layout (as published with hydroDL, ``example/data``)::

    <root>/<subset>/<year>/<VAR>.csv   one row per cell, one column per day;
                                       folder Y holds Y-04-01 .. (Y+1)-03-31
    <root>/<subset>/<year>/timeStr.csv the dates of the columns
    <root>/<subset>/const/<VAR>.csv    one value per cell
    <root>/<subset>/crd.csv            lat, lon of each cell centre
    <root>/Statistics/<VAR>_stat.csv   p10, p90, mean, std (statics: const_<VAR>_stat.csv)
    <root>/reference/*.csv             published predictions (normalised)

Missing values are -9999. Everything is returned in the canonical data model:
an ``xarray.Dataset`` with dims ``site`` and ``time``.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.io.csvmatrix import FILL, lines as _lines, read_matrix as _read_matrix  # noqa: F401 (FILL re-exported)

FORCINGS = (
    "APCP_FORA",
    "DLWRF_FORA",
    "DSWRF_FORA",
    "TMP_2_FORA",
    "SPFH_2_FORA",
    "VGRD_10_FORA",
    "UGRD_10_FORA",
)
STATICS = (
    "Bulk",
    "Capa",
    "Clay",
    "NDVI",
    "Sand",
    "Silt",
    "flag_albedo",
    "flag_extraOrd",
    "flag_landcover",
    "flag_roughness",
    "flag_vegDense",
    "flag_waterbody",
)
TARGETS = ("SMAP_AM",)

# CF-style metadata for the variables of the published database.
ATTRS: dict[str, dict[str, str]] = {
    "SMAP_AM": {
        "units": "m3 m-3",
        "long_name": "SMAP L3 radiometer soil moisture, descending (AM) overpass",
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
    },
    "APCP_FORA": {"units": "kg m-2 h-1", "long_name": "NLDAS-2 precipitation (daily mean of hourly totals)"},
    "DLWRF_FORA": {"units": "W m-2", "long_name": "NLDAS-2 downward long-wave radiation"},
    "DSWRF_FORA": {"units": "W m-2", "long_name": "NLDAS-2 downward short-wave radiation"},
    "TMP_2_FORA": {"units": "K", "long_name": "NLDAS-2 2 m air temperature"},
    "SPFH_2_FORA": {"units": "kg kg-1", "long_name": "NLDAS-2 2 m specific humidity"},
    "UGRD_10_FORA": {"units": "m s-1", "long_name": "NLDAS-2 10 m zonal wind"},
    "VGRD_10_FORA": {"units": "m s-1", "long_name": "NLDAS-2 10 m meridional wind"},
    "Bulk": {"units": "g cm-3", "long_name": "soil bulk density"},
    "Capa": {"units": "%", "long_name": "soil field capacity"},
    "Clay": {"units": "%", "long_name": "clay fraction"},
    "Sand": {"units": "%", "long_name": "sand fraction"},
    "Silt": {"units": "%", "long_name": "silt fraction"},
    "NDVI": {"units": "1", "long_name": "normalised difference vegetation index (mean)"},
}


LAT_RANGE, LON_RANGE = (-90.0, 90.0), (-180.0, 360.0)


def _subset_dir(root: Path, subset: str) -> Path:
    root = Path(root)
    sub = root / subset
    if not sub.is_dir():
        raise DataError("hydroDL database subset folder not found", path=sub, field="subset")
    return sub


def year_folders(root: str | Path, subset: str = "CONUSv4f1") -> dict[int, Path]:
    """The year folders of a database, ``{year: path}`` sorted by year."""
    sub = _subset_dir(Path(root), subset)
    years = {int(p.name): p for p in sub.iterdir() if p.is_dir() and p.name.isdigit()}
    if not years:
        raise DataError("no year folders in database", path=sub, field="year")
    return dict(sorted(years.items()))


def _year_dates(folder: Path) -> pd.DatetimeIndex:
    """The days of a year folder from ``timeStr.csv``: valid ``YYYY-MM-DD``, consecutive."""
    path = folder / "timeStr.csv"
    if not path.is_file():
        raise DataError("missing file", path=path, field="timeStr")
    days = []
    for i, line in enumerate(_lines(path, "timeStr"), start=1):
        try:
            days.append(pd.Timestamp(_dt.date.fromisoformat(line.strip().strip('"'))))
        except (ValueError, OverflowError):  # not a date, or outside pandas' years 1677 .. 2262
            raise DataError(f"line {i}: {line.strip()[:40]!r} is not a date YYYY-MM-DD", path=path,
                            field="timeStr") from None
    if not days:
        raise DataError("empty file", path=path, field="timeStr", hint="restore the file")
    dates = pd.DatetimeIndex(days)
    steps = np.diff(dates.values).astype("timedelta64[D]").astype(int)
    if (steps != 1).any():
        i = int(np.nonzero(steps != 1)[0][0])
        raise DataError(f"line {i + 2}: {dates[i + 1].date()} does not follow {dates[i].date()} (one row per day)",
                        path=path, field="timeStr")
    return dates


def available_dates(root: str | Path, subset: str = "CONUSv4f1") -> dict[int, pd.DatetimeIndex]:
    """``{year: days}`` of every year folder (reads only the ``timeStr.csv`` files)."""
    return {y: _year_dates(f) for y, f in year_folders(root, subset).items()}


def read_coords(root: str | Path, subset: str = "CONUSv4f1") -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of every cell from ``crd.csv`` (finite, in range)."""
    path = _subset_dir(Path(root), subset) / "crd.csv"
    crd = _read_matrix(path, "crd")
    if crd.ndim != 2 or crd.shape[1] != 2:
        raise DataError(f"expected 2 columns (lat, lon), got shape {crd.shape}", path=path, field="crd")
    for col, name, (lo, hi) in ((0, "latitude", LAT_RANGE), (1, "longitude", LON_RANGE)):
        v = crd[:, col]
        bad = np.nonzero(~((v >= lo) & (v <= hi)))[0]
        if bad.size:
            r = int(bad[0])
            value = "missing (-9999)" if np.isnan(v[r]) else f"{v[r]:g}"
            raise DataError(f"line {r + 1} (site {r}): {name} {value} outside {lo:g} .. {hi:g}", path=path,
                            field="crd", hint="crd.csv holds lat, lon in degrees, one row per cell")
    return crd[:, 0], crd[:, 1]


def _rows(path: Path) -> int:
    try:
        return len(_lines(path))
    except DataError:
        return -1


def _check_shape(arr: np.ndarray, path: Path, var: str, n_site: int, n_col: int | None, crd: Path) -> None:
    """Refuse a matrix whose rows differ from crd.csv's cells or whose columns differ from timeStr.csv's days.

    When another file of the database agrees with this one, crd.csv (or
    timeStr.csv) is the odd one out and is the file named.
    """
    if arr.shape[0] != n_site:
        others = [p for p in sorted(path.parent.glob("*.csv")) if p != path and not p.name.startswith("time")]
        agree = next((p for p in others[:3] if _rows(p) == arr.shape[0]), None)
        if agree is not None:
            raise DataError(f"lists {n_site} cells, but {path.name} and {agree.name} have {arr.shape[0]} rows"
                            " (one row per cell in every file)", path=crd, field="crd",
                            hint="crd.csv is truncated or has extra rows; restore it")
        raise DataError(f"has {arr.shape[0]} rows, but crd.csv lists {n_site} cells (one row per cell)", path=path,
                        field=var, hint="the file is truncated or has extra rows; restore it")
    if n_col is None or arr.shape[1] == n_col:
        return
    if n_col == 1:
        raise DataError(f"has {arr.shape[1]} columns, expected one value per cell", path=path, field=var)
    raise DataError(f"has {arr.shape[1]} columns, but timeStr.csv lists {n_col} days (one column per day)",
                    path=path, field=var, hint="the file or timeStr.csv is truncated; restore it")


def _check_values(block: np.ndarray, path: Path, var: str, site_idx: np.ndarray, dates: pd.DatetimeIndex) -> None:
    """An input needs a valid value somewhere at every requested site of the requested days."""
    empty = np.isnan(block).all(axis=1)
    if empty.all():
        raise DataError(f"no valid value (all -9999) between {dates[0].date()} and {dates[-1].date()}", path=path,
                        field=var, hint="an input variable needs data; restore the file or drop the variable")
    if empty.any():
        s = int(site_idx[np.nonzero(empty)[0][0]])
        raise DataError(f"site {s} (line {s + 1}) has no valid value (all -9999) between {dates[0].date()} and"
                        f" {dates[-1].date()}", path=path, field=var,
                        hint="drop the site with data.sites or fill the file")


def _site_index(sites: Iterable[int] | None, n_site: int, crd: Path) -> np.ndarray:
    if sites is None:
        return np.arange(n_site)
    idx = np.asarray(list(sites))
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise DataError(f"site indices must be whole numbers, got {idx.dtype}", path=crd, field="sites")
    idx = idx.astype(int)
    if idx.size and (idx.min() < 0 or idx.max() >= n_site):
        bad = int(idx[(idx < 0) | (idx >= n_site)][0])
        raise DataError(f"site index {bad} out of range 0..{n_site - 1}", path=crd, field="sites")
    if np.unique(idx).size != idx.size:
        dup = int(next(v for v in idx if (idx == v).sum() > 1))
        raise DataError(f"site {dup} listed twice", path=crd, field="sites")
    return idx


def _period(start: str | None, end: str | None, all_dates: pd.DatetimeIndex, sub: Path):
    """``(t0, t1)`` of the request; refuses an end after the data or a start after the end."""
    try:
        t0 = pd.Timestamp(start) if start else None
        t1 = pd.Timestamp(end) if end else None
    except (ValueError, TypeError) as exc:
        raise DataError(f"bad date in period {start} .. {end}: {exc}", path=sub, field="time") from None
    if t0 is not None and t1 is not None and t1 < t0:
        raise DataError(f"period ends before it starts: {start} .. {end}", path=sub, field="time")
    last = all_dates[-1]
    if t1 is not None and t1 > last:
        raise DataError(f"period {start} .. {end} ends after the last day of the data, {last.date()}", path=sub,
                        field="time", hint="end the period earlier, or add the missing year folders")
    return t0, t1


def read_hydrodl(
    root: str | Path,
    dynamic: Sequence[str] = FORCINGS,
    static: Sequence[str] = STATICS,
    target: Sequence[str] = TARGETS,
    start: str | None = None,
    end: str | None = None,
    subset: str = "CONUSv4f1",
    sites: Iterable[int] | None = None,
) -> xr.Dataset:
    """Read a hydroDL CSV database into the canonical ``(site, time)`` Dataset.

    ``dynamic`` variables must exist in every year folder overlapping
    ``[start, end]``; ``target`` variables may be absent in some years (they
    are NaN there: a target is not observed everywhere) but must exist in at
    least one. ``end`` must not pass the last day of the data (``start`` may
    precede the first: warm-up). Every input is checked: no text, ragged row,
    NaN or infinite value, no variable or requested site without a valid
    value, coordinates finite and in range. Each problem raises
    :class:`DataError` naming the file, the variable, the line/site/day.
    """
    root = Path(root)
    names = [*dynamic, *static, *target]
    dup = next((v for v in names if names.count(v) > 1), None)
    if dup is not None:
        raise DataError(f"variable '{dup}' requested twice", path=root / subset, field=dup)
    folders = year_folders(root, subset)
    days = {y: _year_dates(f) for y, f in folders.items()}
    t0, t1 = _period(start, end, pd.DatetimeIndex(np.concatenate([d.values for d in days.values()])), root / subset)
    lat, lon = read_coords(root, subset)
    n_site = lat.size
    crd = root / subset / "crd.csv"
    site_idx = _site_index(sites, n_site, crd)

    blocks: dict[str, list[np.ndarray]] = {v: [] for v in (*dynamic, *target)}
    times: list[pd.DatetimeIndex] = []
    found_target = {v: False for v in target}
    for year, folder in folders.items():
        dates = days[year]
        keep = np.ones(dates.size, dtype=bool)
        if t0 is not None:
            keep &= dates >= t0
        if t1 is not None:
            keep &= dates <= t1
        if not keep.any():
            continue
        times.append(dates[keep])
        for var in (*dynamic, *target):
            path = folder / f"{var}.csv"
            if var in target and not path.is_file():
                blocks[var].append(np.full((site_idx.size, int(keep.sum())), np.nan))
                continue
            arr = _read_matrix(path, var, dates)
            _check_shape(arr, path, var, n_site, dates.size, crd)
            block = arr[site_idx][:, keep]
            if var in found_target:
                found_target[var] = True
            else:
                _check_values(block, path, var, site_idx, dates[keep])
            blocks[var].append(block)
    if not times:
        raise DataError(f"no data between {start} and {end}", path=root / subset, field="time")
    for var, ok in found_target.items():
        if not ok:
            raise DataError(
                f"target variable not present in any year between {start} and {end}", path=root / subset, field=var
            )
    time = pd.DatetimeIndex(np.concatenate([t.values for t in times]))
    if not time.is_monotonic_increasing or time.has_duplicates:
        raise DataError("year folders overlap or are out of order", path=root / subset, field="timeStr")
    expected = pd.date_range(time[0], time[-1], freq="D")
    if expected.size != time.size:
        raise DataError("time axis has gaps between year folders", path=root / subset, field="timeStr")

    data_vars: dict[str, tuple] = {}
    for var, parts in blocks.items():
        data_vars[var] = (("site", "time"), np.concatenate(parts, axis=1).astype(np.float32), dict(ATTRS.get(var, {})))
    const_dir = root / subset / "const"
    for var in static:
        path = const_dir / f"{var}.csv"
        arr = _read_matrix(path, var)
        _check_shape(arr, path, var, n_site, 1, crd)
        if np.isnan(arr[site_idx, 0]).all():
            raise DataError("no valid value (all -9999) at the requested sites", path=path, field=var,
                            hint="an input variable needs data; restore the file or drop the variable")
        data_vars[var] = (("site",), arr[site_idx, 0].astype(np.float32), dict(ATTRS.get(var, {})))

    ds = xr.Dataset(
        data_vars,
        coords={
            "site": ("site", site_idx),
            "time": ("time", time.values.astype("datetime64[ns]")),
            "lat": ("site", lat[site_idx], {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("site", lon[site_idx], {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={"source": f"hydroDL CSV database {root / subset}", "Conventions": "CF-1.8"},
    )
    ds.attrs["dynamic_vars"] = list(dynamic)
    ds.attrs["static_vars"] = list(static)
    ds.attrs["target_vars"] = list(target)
    return ds


def read_statistics(root: str | Path, var: str, static: bool = False) -> dict[str, float]:
    """hydroDL's database statistics for ``var``: p10, p90, mean, std."""
    name = f"const_{var}_stat.csv" if static else f"{var}_stat.csv"
    path = Path(root) / "Statistics" / name
    vals = _read_matrix(path, var).ravel()
    if vals.size != 4:
        raise DataError(f"expected 4 values (p10, p90, mean, std), got {vals.size}", path=path, field=var)
    return dict(zip(("p10", "p90", "mean", "std"), map(float, vals)))


REFERENCES = {
    "hydrodl_lstm": "hydrodl_lstm_ep100_test_2016_normalized.csv",
    "hydrodl_multitask": "hydrodl_multitask_sigma_ep100_test_2016_normalized.csv",
}
REFERENCE_START = "2016-04-01"


def read_reference(root: str | Path, name: str = "hydrodl_lstm", sites: Iterable[int] | None = None) -> xr.DataArray:
    """Published hydroDL test-year predictions (2016-04-01..2017-03-31), de-normalised.

    The files are normalised SMAP_AM: value * std + mean with the database
    ``Statistics/SMAP_AM_stat.csv``.
    """
    if name not in REFERENCES:
        raise DataError(f"unknown reference '{name}', choose from {sorted(REFERENCES)}", field="reference")
    path = Path(root) / "reference" / REFERENCES[name]
    arr = _read_matrix(path, name)
    stat = read_statistics(root, "SMAP_AM")
    arr = arr * stat["std"] + stat["mean"]
    idx = np.arange(arr.shape[0]) if sites is None else np.asarray(list(sites), dtype=int)
    time = pd.date_range(REFERENCE_START, periods=arr.shape[1], freq="D")
    return xr.DataArray(
        arr[idx].astype(np.float32),
        dims=("site", "time"),
        coords={"site": idx, "time": time},
        name=name,
        attrs=dict(ATTRS["SMAP_AM"], source=str(path)),
    )
