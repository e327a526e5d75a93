"""Temporal matching of station series to a product's series at the stations: the matched pairs.

Input: the station data (site, time) of :func:`smfusion.io.stations.read_stations`
and the product series at the same stations (site, time) of
:func:`smfusion.data.extract.product_at_stations` (``value``, optional
``obs_time``). The product is the temporal reference: one candidate pair per
product value, at its time ``t`` (``obs_time`` where given, else the ``time``
stamp). Modes:

* ``daily``: the station's daily mean on the UTC date of ``t``; sub-daily
  station series are averaged to days with at least ``min_hours`` values;
* ``nearest``: the station value nearest to ``t`` within +-``window``
  (:func:`smfusion.data.collocation.match_times`); ties go to the earlier value;
* ``mean``: the mean of the station values within +-``window`` of ``t``.

``auto`` picks ``daily`` for daily station data or for a product stamped at
midnight without ``obs_time`` (a daily product), else ``nearest``.
:func:`match_pairs` also returns each series' climatology on the pair dates
(day of year, fitted on each series' whole record as given; see
:class:`smfusion.data.climatology.Climatology`) for the anomaly correlation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.data.climatology import Climatology, day_of_year_365
from smfusion.data.collocation import match_times
from smfusion.errors import DataError

__all__ = ["Pairs", "MODES", "resolve_mode", "daily_means", "match_pairs", "restrict_dates"]

MODES = ("auto", "daily", "nearest", "mean")


@dataclass
class Pairs:
    """Matched pairs on the product's axis: (site, time) arrays; NaN where no pair."""

    obs: np.ndarray  # station
    sim: np.ndarray  # product
    when: np.ndarray  # datetime64[ns] reference time (product time)
    clim_obs: np.ndarray
    clim_sim: np.ndarray
    mode: str

    def valid(self) -> np.ndarray:
        return np.isfinite(self.obs) & np.isfinite(self.sim)


def _ref_times(prod: xr.Dataset) -> np.ndarray:
    t = np.asarray(prod["time"].values).astype("datetime64[ns]")
    when = np.broadcast_to(t[None, :], prod["value"].shape).copy()
    if "obs_time" in prod:
        ot = np.asarray(prod["obs_time"].values).astype("datetime64[ns]")
        when = np.where(np.isnat(ot), when, ot)
    return when


def resolve_mode(mode: str, station_sampling: str, prod: xr.Dataset) -> str:
    """The matching mode ``auto`` stands for (see the module doc); other modes pass through."""
    if mode not in MODES:
        raise DataError(f"matching must be one of {MODES}, got {mode!r}", field="matching")
    if mode != "auto":
        return mode
    if station_sampling == "daily":
        return "daily"
    t = pd.DatetimeIndex(np.asarray(prod["time"].values))
    midnight = bool(len(t)) and bool((t == t.normalize()).all())
    return "daily" if midnight and "obs_time" not in prod else "nearest"


def daily_means(station: xr.DataArray, min_hours: int = 12, sampling: str = "hourly") -> xr.DataArray:
    """Daily means (site, time at 00:00 UTC); for sub-daily data only days with >= ``min_hours`` values."""
    if not 1 <= int(min_hours) <= 24:
        raise DataError(f"min_hours must be 1..24, got {min_hours}", field="min_hours")
    station = station.transpose("site", "time")
    day = station["time"].dt.floor("D")
    grouped = station.groupby(day.rename("day"))
    mean, count = grouped.mean(skipna=True), grouped.count()
    if sampling != "daily":
        mean = mean.where(count >= int(min_hours))
    return mean.rename({"day": "time"}).transpose("site", "time")


def _lookup_days(daily: xr.DataArray, when: np.ndarray) -> np.ndarray:
    days = np.asarray(daily["time"].values).astype("datetime64[ns]")
    flat = when.astype("datetime64[D]").astype("datetime64[ns]")
    pos = np.searchsorted(days, flat)
    hit = (pos < days.size) & (days[np.clip(pos, 0, max(days.size - 1, 0))] == flat) if days.size else \
        np.zeros(flat.shape, dtype=bool)
    vals = np.asarray(daily.values, dtype=float)
    rows = np.arange(vals.shape[0])[:, None]
    out = np.where(hit, vals[rows, np.clip(pos, 0, max(days.size - 1, 0))] if days.size else np.nan, np.nan)
    return np.where(np.isnat(when), np.nan, out)


def _clim_on(series: xr.DataArray, when: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Each row's own day-of-year climatology (fitted on its whole record) at the times ``when``."""
    series = series.transpose("site", "time")
    if not np.isfinite(np.asarray(series.values, dtype=float)).any():
        return np.full(when.shape, np.nan)
    clim = Climatology().fit(series, window=window, min_count=min_count)
    ok = ~np.isnat(when)
    slot = np.zeros(when.shape, dtype=np.int64)
    slot[ok] = day_of_year_365(when[ok])
    rows = np.arange(clim.values.shape[0])[:, None]
    return np.where(ok, clim.values[rows, slot], np.nan)


def match_pairs(station: xr.Dataset, prod: xr.Dataset, *, variable: str = "soil_moisture", mode: str = "auto",
                window: str = "1h", min_hours: int = 12, clim_window: int = 31, clim_min_count: int = 5) -> Pairs:
    """Matched (station, product) pairs for every station; see the module doc."""
    sampling = station.attrs.get("sampling", "hourly")
    if not np.array_equal(np.asarray(station["site"].values), np.asarray(prod["site"].values)):
        raise DataError("station and product series have different site labels or order", field="site")
    mode = resolve_mode(mode, sampling, prod)
    st = station[variable].transpose("site", "time")
    when = _ref_times(prod)
    sim = np.asarray(prod["value"].transpose("site", "time").values, dtype=float)
    when = np.where(np.isfinite(sim), when, np.datetime64("NaT"))
    daily = daily_means(st, min_hours, sampling)
    if mode == "daily":
        obs = _lookup_days(daily, when)
    else:
        try:
            pd.Timedelta(window)
        except (TypeError, ValueError):
            raise DataError(f"window must be a time span such as '1h' or '30min', got {window!r}",
                            field="window") from None
        sat = xr.DataArray(when, dims=("site", "time"), coords={"site": st["site"].values})
        obs = match_times(sat, st, window=window, how=mode)["value"].values
    clim_obs = _clim_on(daily, when, clim_window, clim_min_count)
    prod_series = prod["value"].transpose("site", "time")
    clim_sim = _clim_on(prod_series.assign_coords(site=np.arange(prod_series.sizes["site"])), when, clim_window,
                        clim_min_count)
    return Pairs(obs=np.asarray(obs, dtype=float), sim=sim, when=when, clim_obs=clim_obs, clim_sim=clim_sim,
                 mode=mode)


def restrict_dates(pairs: Pairs, start=None, end=None, keep_days: list[set] | None = None) -> Pairs:
    """Pairs inside [start, end] (UTC dates, inclusive) and, per station, on ``keep_days`` (sets of dates)."""
    day = pairs.when.astype("datetime64[D]")
    keep = ~np.isnat(pairs.when)
    if start is not None:
        keep &= day >= np.datetime64(pd.Timestamp(start).date(), "D")
    if end is not None:
        keep &= day <= np.datetime64(pd.Timestamp(end).date(), "D")
    if keep_days is not None:
        for i, days in enumerate(keep_days):
            keep[i] &= np.isin(day[i], np.asarray(sorted(days), dtype="datetime64[D]"))
    nan = np.nan
    return Pairs(obs=np.where(keep, pairs.obs, nan), sim=np.where(keep, pairs.sim, nan), when=pairs.when,
                 clim_obs=np.where(keep, pairs.clim_obs, nan), clim_sim=np.where(keep, pairs.clim_sim, nan),
                 mode=pairs.mode)


def pair_days(pairs: Pairs) -> list[set]:
    """Per station, the set of UTC dates that carry a valid pair."""
    day = pairs.when.astype("datetime64[D]")
    ok = pairs.valid()
    return [set(day[i][ok[i]].tolist()) for i in range(day.shape[0])]
