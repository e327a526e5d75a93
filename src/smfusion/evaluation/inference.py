"""Significance and confidence intervals for validation statistics.

* :func:`pearson_p`: two-sided p-value of Pearson's r under H0 rho = 0,
  t = r * sqrt((n - 2) / (1 - r**2)) with n - 2 degrees of freedom (the test
  ``scipy.stats.pearsonr`` makes).
* :func:`pearson_ci`: Fisher-z interval tanh(atanh(r) -+ z_(1-alpha/2) / sqrt(n - 3))
  (as ``pytesmo.metrics.pairwise.pearson_r_ci``).
* :func:`bootstrap_median_ci`: percentile-bootstrap interval of the median of
  per-station values, reproducible by ``seed``.

All functions are vectorised over numpy arrays and return NaN where the
statistic is undefined (too few samples, NaN input).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["pearson_p", "pearson_ci", "bootstrap_median_ci"]


def pearson_p(r, n):
    """Two-sided p-value of r from n pairs: 2 * T_{n-2}.sf(|t|), t = r sqrt((n-2)/(1-r^2)); NaN for n < 3."""
    r = np.asarray(r, dtype=float)
    n = np.asarray(n, dtype=float)
    r, n = np.broadcast_arrays(r, n)
    ok = np.isfinite(r) & (n >= 3)
    rr = np.clip(np.where(ok, r, 0.0), -1.0, 1.0)
    dof = np.where(ok, n - 2.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(rr) * np.sqrt(dof / np.maximum(1.0 - rr * rr, 0.0))
    p = np.where(np.isinf(t), 0.0, 2.0 * stats.t.sf(np.where(np.isinf(t), 0.0, t), dof))
    return np.where(ok, np.minimum(p, 1.0), np.nan)[()]


def pearson_ci(r, n, alpha: float = 0.05):
    """(lower, upper) Fisher-z confidence interval of r at level 1 - alpha; NaN for n < 4."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    r = np.asarray(r, dtype=float)
    n = np.asarray(n, dtype=float)
    r, n = np.broadcast_arrays(r, n)
    ok = np.isfinite(r) & (n >= 4)
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.arctanh(np.clip(np.where(ok, r, 0.0), -1.0, 1.0))
        half = z / np.sqrt(np.where(ok, n - 3.0, 1.0))
    lo = np.where(ok, np.tanh(v - half), np.nan)
    hi = np.where(ok, np.tanh(v + half), np.nan)
    return lo[()], hi[()]


def bootstrap_median_ci(values, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict:
    """Median of the finite ``values`` and its percentile-bootstrap interval.

    ``n_boot`` resamples of the finite values with replacement (numpy
    ``default_rng(seed)``); the interval is the alpha/2 and 1 - alpha/2
    quantiles of the resampled medians. Returns ``{"median", "lower",
    "upper", "n"}``; NaN bounds for fewer than 2 finite values.
    """
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    out = {"median": float(np.median(x)) if x.size else float("nan"), "lower": float("nan"),
           "upper": float("nan"), "n": int(x.size)}
    if x.size < 2:
        return out
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(int(n_boot), x.size))
    medians = np.median(x[idx], axis=1)
    out["lower"], out["upper"] = (float(v) for v in np.quantile(medians, [alpha / 2.0, 1.0 - alpha / 2.0]))
    return out
