"""Skill metrics for soil-moisture estimates, in the style of pytesmo.

Every metric is a small pure numpy function ``f(obs, sim, axis=-1, min_count=...)``:

* ``obs`` and ``sim`` are broadcast against each other; the statistic is taken
  along ``axis`` (``axis=None`` pools every element). For the canonical
  (site, time) arrays the default ``axis=-1`` gives one value per site, computed
  for all sites at once (no Python loop over sites).
* A pair is used only where both ``obs`` and ``sim`` are finite; NaN (or inf)
  in either drops the pair.
* The result is NaN where fewer than ``min_count`` valid pairs remain (default
  2; 3 for the correlation-based metrics) or where the statistic is undefined
  (zero variance, zero mean), without emitting RuntimeWarnings.

Anomaly correlation: the caller passes the climatologies (for instance from
:meth:`smfusion.data.climatology.Climatology.climatology_for`) and
:func:`anomaly_r` subtracts them; each series is taken against its own
climatology. Passing anomalies directly to :func:`pearson_r` is equivalent.

Calibration metrics for probabilistic (Gaussian mean, std) output:
:func:`interval_coverage` and :func:`spread_skill`.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Callable

import numpy as np

__all__ = [
    "bias",
    "rmse",
    "ubrmse",
    "pearson_r",
    "anomaly_r",
    "nse",
    "kge",
    "count",
    "METRICS",
    "compute_all",
    "interval_coverage",
    "spread_skill",
]


# --------------------------------------------------------------------------- helpers


def _prepare(*arrays, axis):
    """Broadcast to float arrays with the reduction axis last; return (arrays, valid mask)."""
    arrs = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in arrays))
    if axis is None:
        arrs = [a.reshape(-1) for a in arrs]
    else:
        arrs = [np.moveaxis(a, axis, -1) for a in arrs]
    valid = np.ones(arrs[0].shape, dtype=bool)
    for a in arrs:
        valid &= np.isfinite(a)
    arrs = [np.where(valid, a, 0.0) for a in arrs]
    return arrs, valid


def _div(num, den):
    """num / den, NaN where den is zero or not finite (no warnings)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=float), np.asarray(den, dtype=float))
    ok = np.isfinite(den) & (den != 0)
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=ok)


def _finish(value, n, min_count):
    """Mask values with fewer than ``min_count`` valid pairs; 0-d results become scalars."""
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    out = np.where(n >= min_count, value, np.nan)
    return out[()]


def _moments(obs, sim, axis):
    """n, mean_obs, mean_sim, var_obs, var_sim, cov (ddof=0) over valid pairs."""
    (o, s), valid = _prepare(obs, sim, axis=axis)
    n = valid.sum(axis=-1)
    mo = _div(o.sum(axis=-1), n)
    ms = _div(s.sum(axis=-1), n)
    # two-pass (centred) sums for accuracy
    do = np.where(valid, o - mo[..., None], 0.0)
    ds = np.where(valid, s - ms[..., None], 0.0)
    vo = _div((do * do).sum(axis=-1), n)
    vs = _div((ds * ds).sum(axis=-1), n)
    cov = _div((do * ds).sum(axis=-1), n)
    return n, mo, ms, vo, vs, cov


def _r_from(vo, vs, cov):
    return _div(cov, np.sqrt(vo) * np.sqrt(vs))  # product of roots: vo * vs can underflow


# --------------------------------------------------------------------------- metrics


def count(obs, sim, axis=-1):
    """Number of valid pairs: n = sum(isfinite(obs) & isfinite(sim))."""
    _, valid = _prepare(obs, sim, axis=axis)
    return valid.sum(axis=-1)[()]


def bias(obs, sim, axis=-1, min_count=2):
    """Mean error: bias = mean(sim - obs)."""
    (o, s), valid = _prepare(obs, sim, axis=axis)
    n = valid.sum(axis=-1)
    return _finish(_div((s - o).sum(axis=-1), n), n, min_count)


def rmse(obs, sim, axis=-1, min_count=2):
    """Root-mean-square error: rmse = sqrt(mean((sim - obs)**2))."""
    (o, s), valid = _prepare(obs, sim, axis=axis)
    n = valid.sum(axis=-1)
    d = s - o
    return _finish(np.sqrt(_div((d * d).sum(axis=-1), n)), n, min_count)


def ubrmse(obs, sim, axis=-1, min_count=2):
    """Unbiased RMSE: ubrmse = sqrt(rmse**2 - bias**2) = std(sim - obs, ddof=0).

    Computed as the population standard deviation of the differences, which
    equals the formula above without its cancellation error.
    """
    (o, s), valid = _prepare(obs, sim, axis=axis)
    n = valid.sum(axis=-1)
    d = s - o
    md = _div(d.sum(axis=-1), n)
    dc = np.where(valid, d - md[..., None], 0.0)
    return _finish(np.sqrt(_div((dc * dc).sum(axis=-1), n)), n, min_count)


def pearson_r(obs, sim, axis=-1, min_count=3):
    """Pearson correlation: r = cov(obs, sim) / (std(obs) * std(sim)).

    NaN where either series is constant over the valid pairs.
    """
    n, _, _, vo, vs, cov = _moments(obs, sim, axis)
    return _finish(_r_from(vo, vs, cov), n, min_count)


def anomaly_r(obs, sim, clim_obs, clim_sim, axis=-1, min_count=3):
    """Anomaly correlation: r = pearson_r(obs - clim_obs, sim - clim_sim).

    ``clim_obs`` and ``clim_sim`` are each series' own climatology evaluated on
    the same dates (broadcastable to ``obs``/``sim``). Pairs where a
    climatology is NaN are dropped like any other missing value.
    """
    o = np.asarray(obs, dtype=float) - np.asarray(clim_obs, dtype=float)
    s = np.asarray(sim, dtype=float) - np.asarray(clim_sim, dtype=float)
    return pearson_r(o, s, axis=axis, min_count=min_count)


def nse(obs, sim, axis=-1, min_count=2):
    """Nash-Sutcliffe efficiency: nse = 1 - sum((sim - obs)**2) / sum((obs - mean(obs))**2).

    NaN where obs is constant over the valid pairs.
    """
    (o, s), valid = _prepare(obs, sim, axis=axis)
    n = valid.sum(axis=-1)
    mo = _div(o.sum(axis=-1), n)
    d = s - o
    oc = np.where(valid, o - mo[..., None], 0.0)
    value = 1.0 - _div((d * d).sum(axis=-1), (oc * oc).sum(axis=-1))
    return _finish(value, n, min_count)


def kge(obs, sim, axis=-1, min_count=3):
    """Kling-Gupta efficiency (Gupta et al. 2009).

    kge = 1 - sqrt((r - 1)**2 + (alpha - 1)**2 + (beta - 1)**2), with
    r = pearson_r, alpha = std(sim) / std(obs), beta = mean(sim) / mean(obs).
    NaN where std(obs), std(sim) or mean(obs) is zero.
    """
    n, mo, ms, vo, vs, cov = _moments(obs, sim, axis)
    r = _r_from(vo, vs, cov)
    alpha = _div(np.sqrt(vs), np.sqrt(vo))
    beta = _div(ms, mo)
    value = 1.0 - np.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2)
    return _finish(value, n, min_count)


#: The plain ``f(obs, sim)`` metrics, by their project-wide names.
METRICS: dict[str, Callable[..., np.ndarray]] = {
    "bias": bias,
    "rmse": rmse,
    "ubrmse": ubrmse,
    "pearson_r": pearson_r,
    "nse": nse,
    "kge": kge,
}


def compute_all(obs, sim, axis=-1, metrics=None, clim_obs=None, clim_sim=None) -> dict[str, np.ndarray]:
    """Every metric in ``metrics`` (default: all of :data:`METRICS`) plus ``n``.

    Returns ``{"n": valid-pair count, name: values, ...}``, one value per site
    for (site, time) input. ``anomaly_r`` is added when both ``clim_obs`` and
    ``clim_sim`` are given. Each metric uses its own default ``min_count``.
    """
    names = list(METRICS) if metrics is None else list(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise KeyError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    if (clim_obs is None) != (clim_sim is None):
        raise ValueError("give both clim_obs and clim_sim for anomaly_r, or neither")
    out = {"n": np.asarray(count(obs, sim, axis=axis))}
    for name in names:
        out[name] = np.asarray(METRICS[name](obs, sim, axis=axis))
    if clim_obs is not None:
        out["anomaly_r"] = np.asarray(anomaly_r(obs, sim, clim_obs, clim_sim, axis=axis))
    return out


# --------------------------------------------------------------------------- calibration


def _check_std(std):
    std = np.asarray(std, dtype=float)
    if np.any(std < 0):  # NaN compares False
        raise ValueError("std must be non-negative")
    return std


def interval_coverage(obs, mean, std, level=0.9, axis=-1, min_count=2):
    """Fraction of obs inside the central Gaussian interval of probability ``level``.

    coverage = mean(|obs - mean| <= z * std), z = Phi^-1((1 + level) / 2)
    (z = 1.645 for level 0.9), over points where obs, mean and std are all
    finite. A calibrated forecast gives coverage close to ``level``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    (o, m, s), valid = _prepare(obs, mean, _check_std(std), axis=axis)
    inside = valid & (np.abs(o - m) <= z * s)
    n = valid.sum(axis=-1)
    return _finish(_div(inside.sum(axis=-1), n), n, min_count)


def spread_skill(obs, mean, std, n_bins=10, min_count=2) -> dict[str, np.ndarray]:
    """Binned spread against skill, pooled over all points.

    Valid points (obs, mean, std all finite) are sorted into ``n_bins``
    equal-count bins of predicted ``std`` (quantile edges). Per bin:
    ``mean_std`` = mean(std), ``rms_std`` = sqrt(mean(std**2)),
    ``rmse`` = sqrt(mean((obs - mean)**2)) and ``count``. For a calibrated
    Gaussian forecast ``rmse`` matches ``rms_std`` (and ``mean_std`` to within
    the spread of std inside the bin). Bins with fewer than ``min_count``
    points are NaN. Also returns ``bin_edges`` (n_bins + 1 values).
    """
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    n_bins = int(n_bins)
    (o, m, s), valid = _prepare(obs, mean, _check_std(std), axis=None)
    o, m, s = o[valid], m[valid], s[valid]
    if s.size:
        edges = np.quantile(s, np.linspace(0.0, 1.0, n_bins + 1))
    else:
        edges = np.full(n_bins + 1, np.nan)
    idx = np.clip(np.searchsorted(edges[1:-1], s, side="right"), 0, n_bins - 1)
    cnt = np.bincount(idx, minlength=n_bins)
    err2 = np.bincount(idx, weights=(o - m) ** 2, minlength=n_bins)
    ssum = np.bincount(idx, weights=s, minlength=n_bins)
    s2sum = np.bincount(idx, weights=s * s, minlength=n_bins)
    ok = cnt >= max(int(min_count), 1)
    return {
        "bin_edges": edges,
        "mean_std": np.where(ok, _div(ssum, cnt), np.nan),
        "rms_std": np.where(ok, np.sqrt(_div(s2sum, cnt)), np.nan),
        "rmse": np.where(ok, np.sqrt(_div(err2, cnt)), np.nan),
        "count": cnt,
    }
