"""Per-site day-of-year climatology with a moving window.

Calendar: every date is mapped to one of 365 day-of-year slots (0 = Jan 1,
364 = Dec 31) of a non-leap year. In leap years Feb 29 shares Feb 28's slot
(58) and later dates shift back by one, so Mar 1 is always slot 59.

Fit: for each site and slot, the climatology is the mean of all valid
(finite) training values whose slot lies within ``window // 2`` slots of it,
the window wrapping across the year end (Dec 31 neighbours Jan 1). Where fewer
than ``min_count`` values fall in the window it is NaN. Only values inside the
training ``period`` are used. Computed for all sites at once: a (site, 365)
table of sums and counts, then a circular moving sum along the slots.

:meth:`Climatology.filled` gives a copy where slots short of ``min_count``
take the site's mean over the whole training period (NaN only for sites with
no training value): what the residual-learning pipeline uses, so a gap in
the record does not blank out the predictions on those days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["Climatology", "day_of_year_365", "N_SLOTS"]

N_SLOTS = 365


def day_of_year_365(times) -> np.ndarray:
    """Slot 0..364 of each date on a 365-day calendar (Feb 29 -> Feb 28's slot 58)."""
    t = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    doy = np.asarray(t.day_of_year, dtype=np.int64) - 1
    after_feb28 = np.asarray(t.is_leap_year) & (doy >= 59)  # Feb 29 is doy index 59 in leap years
    return doy - after_feb28.astype(np.int64)


def _circular_window_sum(table: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``table[..., j]`` over the ``window`` slots centred on each slot, wrapping."""
    half = window // 2
    padded = np.concatenate([table[:, N_SLOTS - half :], table, table[:, :half]], axis=1)
    csum = np.concatenate([np.zeros((table.shape[0], 1)), np.cumsum(padded, axis=1)], axis=1)
    return csum[:, window:] - csum[:, :-window]


def _site_coords(obj) -> dict[str, np.ndarray]:
    """The coordinates of ``obj`` that lie on the ``site`` dimension only."""
    return {str(k): np.asarray(v.values) for k, v in obj.coords.items() if v.dims == ("site",)}


def _as_site_time(da: xr.DataArray) -> xr.DataArray:
    if set(da.dims) != {"site", "time"}:
        raise ValueError(f"expected a DataArray with dims ('site', 'time'), got {da.dims}")
    return da.transpose("site", "time")


class Climatology:
    """Day-of-year climatology per site; see the module docstring for the rules.

    Attributes after :meth:`fit`: ``values`` (site, 365) climatology,
    ``counts`` (site, 365) number of values in each window, ``site_coords``
    (the ``site`` coordinate and its ``lat``/``lon``), ``window``,
    ``min_count`` and ``period``.
    """

    def __init__(self) -> None:
        self.values: np.ndarray | None = None
        self.counts: np.ndarray | None = None
        self.site_coords: dict[str, np.ndarray] | None = None
        self.window: int | None = None
        self.min_count: int | None = None
        self.period: tuple[str, str] | None = None
        self.name: str | None = None
        self.site_mean: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting

    def fit(self, da: xr.DataArray, window: int = 31, min_count: int = 5, period=None) -> "Climatology":
        """Fit on ``da`` (site, time), restricted to ``period=(start, end)`` (inclusive) if given.

        ``window`` is an odd number of day-of-year slots (1..365); ``min_count``
        the least number of valid values a window needs.
        """
        window = int(window)
        if window < 1 or window > N_SLOTS or window % 2 == 0:
            raise ValueError(f"window must be an odd integer in 1..{N_SLOTS}, got {window}")
        if int(min_count) < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        da = _as_site_time(da)
        if period is not None:
            start, end = period
            da = da.sel(time=slice(start, end))
            period = (str(start), str(end))
        if da.sizes["time"] == 0:
            raise ValueError(f"no dates to fit the climatology on (period {period})")
        vals = np.asarray(da.values, dtype=float)
        nsite = vals.shape[0]
        slot = day_of_year_365(da["time"].values)
        valid = np.isfinite(vals)
        flat = (np.arange(nsite)[:, None] * N_SLOTS + slot[None, :]).ravel()
        size = nsite * N_SLOTS
        sums = np.bincount(flat, weights=np.where(valid, vals, 0.0).ravel(), minlength=size)
        cnts = np.bincount(flat, weights=valid.ravel().astype(float), minlength=size)
        wsum = _circular_window_sum(sums.reshape(nsite, N_SLOTS), window)
        wcnt = np.rint(_circular_window_sum(cnts.reshape(nsite, N_SLOTS), window)).astype(np.int64)
        ok = wcnt >= int(min_count)
        clim = np.full(wsum.shape, np.nan)
        np.divide(wsum, wcnt, out=clim, where=ok)

        self.values = clim
        self.counts = wcnt
        self.site_coords = _site_coords(da)
        self.window = window
        self.min_count = int(min_count)
        self.period = period
        self.name = da.name
        tot = cnts.reshape(nsite, N_SLOTS).sum(axis=1)
        self.site_mean = np.full(nsite, np.nan)
        np.divide(sums.reshape(nsite, N_SLOTS).sum(axis=1), tot, out=self.site_mean, where=tot > 0)
        return self

    def filled(self) -> "Climatology":
        """A copy whose NaN slots (window short of ``min_count``) hold the site's training mean."""
        self._check_fitted()
        out = Climatology()
        out.__dict__.update(self.__dict__)
        mean = self.site_mean if self.site_mean is not None else np.full(self.values.shape[0], np.nan)
        out.values = np.where(np.isnan(self.values), mean[:, None], self.values)
        return out

    def _check_fitted(self) -> None:
        if self.values is None:
            raise RuntimeError("Climatology is not fitted: call fit() or from_dataset() first")

    # ------------------------------------------------------------------ applying

    def _site_rows(self, site) -> np.ndarray:
        """Row indices of the fitted table for the given site labels (None: all sites)."""
        if site is None:
            return np.arange(self.values.shape[0])
        labels = np.asarray(site)
        if "site" not in self.site_coords:
            if labels.size != self.values.shape[0]:
                raise ValueError("site count differs from the fitted climatology")
            return np.arange(self.values.shape[0])
        index = pd.Index(self.site_coords["site"])
        rows = index.get_indexer(labels)
        if np.any(rows < 0):
            missing = labels[rows < 0][:5].tolist()
            raise ValueError(f"sites not in the fitted climatology: {missing}")
        return rows

    def climatology_for(self, times, site=None) -> xr.DataArray:
        """Climatology on the given dates as a (site, time) DataArray.

        ``site`` selects (and orders) sites by label; default: all fitted sites.
        """
        self._check_fitted()
        times = np.asarray(times, dtype="datetime64[ns]")
        rows = self._site_rows(site)
        data = self.values[rows][:, day_of_year_365(times)]
        coords = {k: ("site", v[rows]) for k, v in self.site_coords.items()}
        coords["time"] = times
        out = xr.DataArray(data, dims=("site", "time"), coords=coords)
        out.name = self.name
        return out

    def _match(self, da: xr.DataArray) -> np.ndarray:
        dst = _as_site_time(da)
        site = dst["site"].values if "site" in dst.coords else None
        if site is None and dst.sizes["site"] != self.values.shape[0]:
            raise ValueError("site count differs from the fitted climatology")
        return self.climatology_for(dst["time"].values, site=site).values

    def transform(self, da: xr.DataArray) -> xr.DataArray:
        """Anomalies: ``da - climatology`` for each site and date (dims kept as in ``da``)."""
        self._check_fitted()
        dst = _as_site_time(da)
        out = dst.copy(data=np.asarray(dst.values, dtype=float) - self._match(da))
        return out.transpose(*da.dims)

    def inverse_transform(self, anom: xr.DataArray) -> xr.DataArray:
        """Values from anomalies: ``anom + climatology``."""
        self._check_fitted()
        dst = _as_site_time(anom)
        out = dst.copy(data=np.asarray(dst.values, dtype=float) + self._match(anom))
        return out.transpose(*anom.dims)

    # ------------------------------------------------------------------ storage

    def to_dataset(self) -> xr.Dataset:
        """The fitted climatology as a Dataset: ``climatology`` and ``count`` on (site, doy)."""
        self._check_fitted()
        doy = np.arange(1, N_SLOTS + 1)
        ds = xr.Dataset(
            {
                "climatology": (("site", "doy"), self.values),
                "count": (("site", "doy"), self.counts),
            },
            coords={"doy": doy},
        )
        if self.site_mean is not None:
            ds["site_mean"] = (("site",), self.site_mean)
        ds = ds.assign_coords({k: ("site", v) for k, v in self.site_coords.items()})
        ds["doy"].attrs["description"] = "day of year on a 365-day calendar; Feb 29 shares Feb 28 (doy 59)"
        ds.attrs.update(
            window=self.window,
            min_count=self.min_count,
            period_start="" if self.period is None else self.period[0],
            period_end="" if self.period is None else self.period[1],
            variable="" if self.name is None else str(self.name),
        )
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "Climatology":
        """Rebuild a fitted Climatology from :meth:`to_dataset` output."""
        clim = cls()
        c = ds["climatology"].transpose("site", "doy")
        if c.sizes["doy"] != N_SLOTS:
            raise ValueError(f"expected {N_SLOTS} day-of-year slots, got {c.sizes['doy']}")
        clim.values = np.asarray(c.values, dtype=float)
        clim.counts = np.asarray(ds["count"].transpose("site", "doy").values, dtype=np.int64)
        clim.site_coords = _site_coords(c)
        clim.window = int(ds.attrs["window"])
        clim.min_count = int(ds.attrs["min_count"])
        start, end = ds.attrs.get("period_start", ""), ds.attrs.get("period_end", "")
        clim.period = (start, end) if start or end else None
        clim.name = ds.attrs.get("variable") or None
        if "site_mean" in ds:
            clim.site_mean = np.asarray(ds["site_mean"].values, dtype=float)
        return clim
