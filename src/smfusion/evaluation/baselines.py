"""Reference baselines computed from the canonical (site, time) Dataset.

Periods are ``(start, end)`` date strings, both ends inclusive. Each baseline
returns a (site, time) DataArray over the test-period dates of ``ds``, with the
Dataset's site coordinates (``lat``, ``lon``) attached.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from smfusion.data.climatology import Climatology
from smfusion.errors import DataError

__all__ = ["climatology_baseline", "linear_baseline"]


def _period(ds: xr.Dataset, period, what: str) -> xr.Dataset:
    start, end = period
    sub = ds.sel(time=slice(start, end))
    if sub.sizes["time"] == 0:
        raise DataError(f"{what} period {start} .. {end} holds no dates of the dataset")
    return sub


def _site_time(da: xr.DataArray) -> xr.DataArray:
    return da.transpose("site", "time")


def climatology_baseline(ds: xr.Dataset, target: str, train_period, test_period, window: int = 31,
                         min_count: int = 5) -> xr.DataArray:
    """Training-period day-of-year climatology of ``target`` on the test dates.

    Uses :class:`smfusion.data.climatology.Climatology` (``window``,
    ``min_count``). Where the climatology is NaN the per-site training mean is
    used instead; sites with no training data stay NaN.
    """
    train = _period(ds, train_period, "training")
    test = _period(ds, test_period, "test")
    y_train = _site_time(train[target])
    clim = Climatology().fit(ds[target], window=window, min_count=min_count, period=train_period)
    pred = clim.climatology_for(test["time"].values, site=_site_labels(y_train))
    vals = y_train.values.astype(float)
    n = np.isfinite(vals).sum(axis=1)
    site_mean = np.full(vals.shape[0], np.nan)
    np.divide(np.where(np.isfinite(vals), vals, 0.0).sum(axis=1), n, out=site_mean, where=n > 0)
    filled = np.where(np.isnan(pred.values), site_mean[:, None], pred.values)
    return _output(ds, test, filled, target, "climatology", train_period)


def _site_labels(da: xr.DataArray):
    return da["site"].values if "site" in da.coords else None


def _design(sub: xr.Dataset, dynamic_vars: Sequence[str], static_vars: Sequence[str]) -> np.ndarray:
    """Inputs as a (site, time, n_inputs) array; statics repeated along time."""
    nsite, ntime = sub.sizes["site"], sub.sizes["time"]
    cols = [_site_time(sub[v]).values.astype(float) for v in dynamic_vars]
    for v in static_vars:
        s = sub[v]
        if s.dims != ("site",):
            raise DataError(f"static input '{v}' must have dims ('site',), got {s.dims}", field=v)
        cols.append(np.broadcast_to(s.values.astype(float)[:, None], (nsite, ntime)))
    if not cols:
        return np.empty((nsite, ntime, 0))
    return np.stack(cols, axis=-1)


def linear_baseline(ds: xr.Dataset, target: str, dynamic_vars: Sequence[str], static_vars: Sequence[str],
                    train_period, test_period, test_ds: xr.Dataset | None = None) -> xr.DataArray:
    """Ordinary least squares with intercept, ``target ~ dynamic + static inputs``.

    Fitted on every training (site, day) pair where the target and all inputs
    are finite. Inputs are standardised with the mean and std of those pairs
    (a constant input keeps std 1). Predicts every test (site, day) of
    ``test_ds`` (default ``ds``: e.g. pass held-out sites for a spatial split);
    NaN where an input is missing.
    """
    dynamic_vars, static_vars = list(dynamic_vars), list(static_vars)
    train = _period(ds, train_period, "training")
    test = _period(ds, test_period, "test")
    x_tr = _design(train, dynamic_vars, static_vars)
    x_tr = x_tr.reshape(x_tr.shape[0] * x_tr.shape[1], x_tr.shape[2])
    y_tr = _site_time(train[target]).values.astype(float).reshape(-1)
    rows = np.isfinite(y_tr) & np.all(np.isfinite(x_tr), axis=1)
    if not rows.any():
        raise DataError(f"no training (site, day) pairs with '{target}' and all inputs present", field=target)
    x_fit, y_fit = x_tr[rows], y_tr[rows]
    mu = x_fit.mean(axis=0)
    sd = x_fit.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    a = np.column_stack([np.ones(len(y_fit)), (x_fit - mu) / sd])
    coef, *_ = np.linalg.lstsq(a, y_fit, rcond=None)

    if test_ds is not None:
        test = _period(test_ds, test_period, "test")
    x_te = _design(test, dynamic_vars, static_vars)
    pred = coef[0] + ((x_te - mu) / sd) @ coef[1:]
    return _output(ds, test, pred, target, "linear", train_period)


def _output(ds: xr.Dataset, test: xr.Dataset, values: np.ndarray, target: str, kind: str,
            train_period) -> xr.DataArray:
    ref = _site_time(test[target])
    out = xr.DataArray(values, dims=("site", "time"), coords=ref.coords, name=target)
    out.attrs.update(baseline=kind, train_period=f"{train_period[0]} .. {train_period[1]}")
    if "units" in ds[target].attrs:
        out.attrs["units"] = ds[target].attrs["units"]
    return out
