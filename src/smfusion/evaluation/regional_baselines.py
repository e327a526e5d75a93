"""Baselines for held-out cells that use no target value at the cell (regional CV, docs/ungauged.md).

Each function returns a (held-out site, day) array in physical units over the scored dates
``dates`` (the days of the scored period in the data), from training sites only:

* :func:`idw_climatology`: inverse-distance mean of the ``k`` nearest training sites'
  day-of-year climatology (training period, 31-day window; a slot short of values takes
  the site's training mean);
* :func:`idw_observations`: inverse-distance mean of the nearest training sites'
  observations on the same day (over those with an observation that day) -- it uses the
  training sites' targets *on the scored days*, which the model never sees;
* :func:`linear_model` / :func:`fit_gbm` + :func:`gbm_predict`: ordinary least squares / gradient-boosted trees
  (scikit-learn ``HistGradientBoostingRegressor``) of the target on the day's forcing and the
  statics, fitted on the training sites over the training period; the trees also get the
  trailing 3-, 7- and 30-day means of each forcing (they have no memory of their own).

Inverse distance: weights ``1 / d^p`` (great circle, km; d floored at 1 km) over the ``k``
nearest training sites, renormalised over those with a value.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from smfusion.data.climatology import Climatology
from smfusion.data.features import _trailing_mean
from smfusion.data.regions import distance_matrix
from smfusion.evaluation.baselines import linear_baseline

__all__ = ["idw_weights", "idw_climatology", "idw_observations", "linear_model", "fit_gbm", "gbm_predict"]

GBM_WINDOWS = (3, 7, 30)
GBM_MAX_ROWS = 200_000
GBM_PARAMS = {"max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 31, "min_samples_leaf": 50,
              "l2_regularization": 1.0}


def idw_weights(ds: xr.Dataset, train_ids, test_ids, k: int, power: float) -> np.ndarray:
    """(n_test, n_train) weights ``1 / d^power`` on each test site's ``k`` nearest training sites, else 0."""
    tr, te = ds.sel(site=np.asarray(train_ids)), ds.sel(site=np.asarray(test_ids))
    d = np.maximum(distance_matrix(te.lat.values, te.lon.values, tr.lat.values, tr.lon.values), 1.0)
    k = min(k, d.shape[1])
    near = np.argsort(d, axis=1, kind="stable")[:, :k]
    w = np.zeros_like(d)
    rows = np.arange(d.shape[0])[:, None]
    w[rows, near] = d[rows, near] ** -power
    return w


def _idw(w: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weighted mean over the sources with a value: (n_test, n_src) x (n_src, time) -> (n_test, time)."""
    ok = np.isfinite(values)
    num = w @ np.where(ok, values, 0.0)
    den = w @ ok.astype(float)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def idw_climatology(ds: xr.Dataset, target: str, train_ids, test_ids, train_period, dates, k: int = 8,
                    power: float = 2.0, window: int = 31) -> np.ndarray:
    """See the module doc."""
    y = ds[target].sel(site=np.asarray(train_ids))
    clim = Climatology().fit(y, window=window, period=tuple(train_period)).filled()
    src = clim.climatology_for(np.asarray(dates), site=np.asarray(train_ids)).values
    return _idw(idw_weights(ds, train_ids, test_ids, k, power), src)


def idw_observations(ds: xr.Dataset, target: str, train_ids, test_ids, dates, k: int = 8,
                     power: float = 2.0) -> np.ndarray:
    """See the module doc."""
    src = ds[target].sel(site=np.asarray(train_ids), time=np.asarray(dates)).transpose("site", "time").values
    return _idw(idw_weights(ds, train_ids, test_ids, k, power), src.astype(np.float64))


def linear_model(ds: xr.Dataset, target: str, dynamic: Sequence[str], static: Sequence[str], train_ids,
                 test_ids, train_period, period) -> np.ndarray:
    """Least squares on the day's forcing and the statics (:func:`~smfusion.evaluation.baselines.linear_baseline`)."""
    return linear_baseline(ds.sel(site=np.asarray(train_ids)), target, dynamic, static, tuple(train_period),
                           tuple(period), test_ds=ds.sel(site=np.asarray(test_ids))).values


def _gbm_design(ds: xr.Dataset, dynamic: Sequence[str], static: Sequence[str], period) -> np.ndarray:
    """(site, day, feature) over ``period``: each forcing, its trailing means (from the whole record before
    the period, so the first days have their windows), then the statics."""
    keep = (ds.time.values >= np.datetime64(period[0])) & (ds.time.values <= np.datetime64(period[1]))
    cols = []
    for v in dynamic:
        x = ds[v].transpose("site", "time").values.astype(np.float64)
        cols.append(x[:, keep])
        cols.extend(_trailing_mean(x, w)[:, keep] for w in GBM_WINDOWS)
    n_time = int(keep.sum())
    cols.extend(np.repeat(ds[v].values.astype(np.float64)[:, None], n_time, axis=1) for v in static)
    return np.stack(cols, axis=-1)


def fit_gbm(ds: xr.Dataset, target: str, dynamic: Sequence[str], static: Sequence[str], train_ids, train_period,
            seed: int = 0):
    """Gradient-boosted trees on the training sites and period (see the module doc); at most ``GBM_MAX_ROWS``
    training rows (seeded draw)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    tr = ds.sel(site=np.asarray(train_ids))
    x = _gbm_design(tr, dynamic, static, train_period)
    y = tr[target].sel(time=slice(*train_period)).transpose("site", "time").values.astype(np.float64)
    x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1)
    rows = np.flatnonzero(np.isfinite(y))
    if rows.size > GBM_MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, GBM_MAX_ROWS, replace=False))
    model = HistGradientBoostingRegressor(**GBM_PARAMS, random_state=seed)
    return model.fit(x[rows], y[rows])


def gbm_predict(model, ds: xr.Dataset, dynamic: Sequence[str], static: Sequence[str], test_ids, period
                ) -> np.ndarray:
    """(test site, day) predictions of a :func:`fit_gbm` model over ``period``."""
    xt = _gbm_design(ds.sel(site=np.asarray(test_ids)), dynamic, static, period)
    return model.predict(xt.reshape(-1, xt.shape[-1])).reshape(xt.shape[:2])
