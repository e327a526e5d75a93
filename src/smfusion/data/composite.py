"""N-day compositing of the canonical (site, time) model, on windows fixed to an origin date.

Window k covers the days ``origin + k N .. origin + (k + 1) N - 1`` (k may be
negative); its label is its first day. A variable's composite is the mean of
its valid (finite) values in the window, NaN where it has none: for
brightness temperatures, the passes available in the window (CASM's 3-day
compositing of the inputs). Variables without a ``time`` dim are kept as they
are. Because windows are fixed to the origin, any two periods composite the
same days together, and a period can be widened to whole windows first
(:func:`snap_to_windows`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError

__all__ = ["window_index", "window_start", "snap_to_windows", "composite_windows"]


def window_index(times, days: int, origin) -> np.ndarray:
    """Index k of the window holding each date (floor division of the days since ``origin``)."""
    t = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).normalize()
    return np.floor_divide((t - pd.Timestamp(origin).normalize()).days.to_numpy(), int(days))


def window_start(k, days: int, origin) -> pd.DatetimeIndex:
    """First day of windows ``k``."""
    return pd.Timestamp(origin).normalize() + pd.to_timedelta(np.asarray(k, dtype=np.int64) * int(days), unit="D")


def snap_to_windows(start, end, days: int, origin) -> tuple[str, str]:
    """``start`` moved back to its window's first day, ``end`` forward to its window's last day."""
    k0, k1 = window_index([pd.Timestamp(start), pd.Timestamp(end)], days, origin)
    a = window_start([k0], days, origin)[0]
    b = window_start([k1 + 1], days, origin)[0] - pd.Timedelta(days=1)
    return a.strftime("%Y-%m-%d"), b.strftime("%Y-%m-%d")


def composite_windows(ds: xr.Dataset, days: int, origin) -> xr.Dataset:
    """``ds`` (dims site, time) averaged over the N-day windows of ``origin`` (see the module doc)."""
    if days == 1:
        return ds
    if ds.sizes.get("time", 0) == 0:
        return ds
    t = pd.DatetimeIndex(ds["time"].values)
    if not t.is_monotonic_increasing:
        raise DataError("time is not increasing: cannot composite", field="time")
    k = window_index(t, days, origin)
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    labels = window_start(k[first], days, origin).values.astype("datetime64[ns]")
    out = {}
    for name, da in ds.data_vars.items():
        if "time" not in da.dims:
            out[name] = da
            continue
        dims = da.dims
        a = np.moveaxis(np.asarray(da.values, dtype=np.float64), dims.index("time"), -1)
        ok = np.isfinite(a)
        s = np.add.reduceat(np.where(ok, a, 0.0), first, axis=-1)
        n = np.add.reduceat(ok, first, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        m = np.moveaxis(m, -1, dims.index("time")).astype(da.dtype if np.issubdtype(da.dtype, np.floating)
                                                        else np.float32)
        attrs = dict(da.attrs, cell_methods=f"time: mean of the valid values (interval: {days} days)")
        out[name] = (dims, m, attrs)
    coords = {k_: v for k_, v in ds.coords.items() if "time" not in v.dims}
    coords["time"] = ("time", labels, {"long_name": f"first day of the {days}-day window"})
    res = xr.Dataset(out, coords=coords, attrs=dict(ds.attrs))
    res.attrs.update(composite_days=int(days), composite_origin=str(pd.Timestamp(origin).date()))
    return res
