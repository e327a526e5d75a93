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

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError

FILL = -9999.0
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


def _read_matrix(path: Path, field: str) -> np.ndarray:
    if not path.is_file():
        raise DataError("missing file", path=path, field=field)
    try:
        arr = pd.read_csv(path, header=None, dtype=np.float64).to_numpy(copy=True)
    except Exception as exc:  # pandas raises many types on bad CSV
        raise DataError(f"cannot parse CSV ({exc.__class__.__name__}: {exc})", path=path, field=field) from exc
    arr[arr == FILL] = np.nan
    return arr


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
    path = folder / "timeStr.csv"
    if not path.is_file():
        raise DataError("missing file", path=path, field="timeStr")
    dates = pd.to_datetime(pd.read_csv(path, header=None)[0].astype(str), format="%Y-%m-%d")
    return pd.DatetimeIndex(dates)


def read_coords(root: str | Path, subset: str = "CONUSv4f1") -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of every cell from ``crd.csv``."""
    path = _subset_dir(Path(root), subset) / "crd.csv"
    crd = _read_matrix(path, "crd")
    if crd.ndim != 2 or crd.shape[1] != 2:
        raise DataError(f"expected 2 columns (lat, lon), got shape {crd.shape}", path=path, field="crd")
    return crd[:, 0], crd[:, 1]


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
    least one. Missing files raise :class:`DataError` naming the file.
    """
    root = Path(root)
    folders = year_folders(root, subset)
    t0 = pd.Timestamp(start) if start else None
    t1 = pd.Timestamp(end) if end else None
    lat, lon = read_coords(root, subset)
    n_site = lat.size
    site_idx = np.arange(n_site) if sites is None else np.asarray(list(sites), dtype=int)
    if site_idx.size and (site_idx.min() < 0 or site_idx.max() >= n_site):
        raise DataError(f"site index out of range 0..{n_site - 1}", path=root / subset / "crd.csv", field="sites")

    blocks: dict[str, list[np.ndarray]] = {v: [] for v in (*dynamic, *target)}
    times: list[pd.DatetimeIndex] = []
    found_target = {v: False for v in target}
    for _, folder in folders.items():
        dates = _year_dates(folder)
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
            if var in target and var not in dynamic and not path.is_file():
                blocks[var].append(np.full((site_idx.size, int(keep.sum())), np.nan))
                continue
            arr = _read_matrix(path, var)
            if arr.shape != (n_site, dates.size):
                raise DataError(
                    f"expected shape ({n_site}, {dates.size}) (cells, days), got {arr.shape}", path=path, field=var
                )
            if var in found_target:
                found_target[var] = True
            blocks[var].append(arr[site_idx][:, keep])
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
        if arr.shape[0] != n_site:
            raise DataError(f"expected {n_site} rows (cells), got {arr.shape[0]}", path=path, field=var)
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
