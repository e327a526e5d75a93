"""Homogeneity of long products: per-cell trend of product minus reference, and jumps at era boundaries.

Pure numpy functions over the canonical (site, time) arrays (time on the last
axis, NaN = missing, one value per site). ``d = product - reference`` is the
series tested: a homogeneous product has no trend and no jump in ``d`` even
where the product's source sensor changes. Time is in decimal years,
t = (time - time_0) / 365.25 days.

* :func:`trend`: ordinary least squares over the valid pairs,
      b = sum (t - mean t)(d - mean d) / sum (t - mean t)^2     (units of d per year),
  with its standard error corrected for lag-1 autocorrelation of the
  residuals e (Santer et al. 2000, JGR 105(D6)): r1 = corr(e_k, e_k+1) over
  consecutive valid values, n_eff = n (1 - r1) / (1 + r1),
      se(b) = sqrt(sum e^2 / (n_eff - 2) / sum (t - mean t)^2).
* :func:`mean_jump`: mean(d after) - mean(d before) over ``window_days`` on each
  side of the boundary (the boundary day counts as after), with the Welch
  standard error sqrt(s_a^2 / n_a + s_b^2 / n_b).
* :func:`variance_ratio`: var(d after) / var(d before) (ddof = 1) over the same windows.
* :func:`homogeneity`: all of them per site plus CASM's stability criterion,
  |b| <= 0.01 m3/m3 per year (Skulovich & Gentine, CASM dataset), and
  :func:`summarize_homogeneity` a printable table (medians over sites).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["STABILITY_CRITERION", "decimal_years", "trend", "mean_jump", "variance_ratio", "homogeneity",
           "summarize_homogeneity"]

STABILITY_CRITERION = 0.01  # m3/m3 per year


def decimal_years(time, origin=None) -> np.ndarray:
    """Years since ``origin`` (default the first time), 365.25-day years."""
    t = pd.DatetimeIndex(np.asarray(time))
    t0 = t[0] if origin is None else pd.Timestamp(origin)
    return np.asarray((t - t0) / pd.Timedelta(days=365.25), dtype=float)


def _lag1(e: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation of ``e`` over consecutive valid values (last axis), NaN if too few."""
    out = np.full(e.shape[:-1], np.nan)
    for idx in np.ndindex(*e.shape[:-1]):
        x = e[idx][valid[idx]]
        if x.size > 3 and np.var(x) > 0:
            out[idx] = np.corrcoef(x[:-1], x[1:])[0, 1]
    return out


def trend(d, time, min_count: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slope per year, autocorrelation-corrected standard error, n) of ``d`` against time (module doc)."""
    d = np.asarray(d, dtype=float)
    t = np.broadcast_to(decimal_years(time), d.shape)
    valid = np.isfinite(d)
    n = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm = np.where(valid, t, 0).sum(-1) / n
        dm = np.where(valid, d, 0).sum(-1) / n
        tc = np.where(valid, t - tm[..., None], 0.0)
        dc = np.where(valid, d - dm[..., None], 0.0)
        sxx = (tc * tc).sum(-1)
        slope = (tc * dc).sum(-1) / sxx
        e = np.where(valid, dc - slope[..., None] * tc, 0.0)
        r1 = np.clip(np.nan_to_num(_lag1(e, valid)), 0.0, 0.99)
        n_eff = np.clip(n * (1 - r1) / (1 + r1), 3.0, None)
        se = np.sqrt((e * e).sum(-1) / (n_eff - 2) / sxx)
    ok = (n >= min_count) & (sxx > 0)
    return np.where(ok, slope, np.nan)[()], np.where(ok, se, np.nan)[()], n[()]


def _sides(d, time, boundary, window_days):
    tt = pd.DatetimeIndex(np.asarray(time))
    b = pd.Timestamp(boundary)
    w = pd.Timedelta(days=window_days)
    before = np.asarray((tt >= b - w) & (tt < b))
    after = np.asarray((tt >= b) & (tt < b + w))
    d = np.asarray(d, dtype=float)
    return np.where(before, d, np.nan), np.where(after, d, np.nan)


def _stats(x):
    n = np.isfinite(x).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.nansum(x, -1) / n
        v = np.nansum((x - m[..., None]) ** 2, -1) / (n - 1)
    return m, v, n


def mean_jump(d, time, boundary, window_days: int = 365, min_count: int = 10):
    """(mean after - mean before, Welch standard error) of ``d`` at ``boundary`` (module doc)."""
    a, b = _sides(d, time, boundary, window_days)[::-1]
    ma, va, na = _stats(a)
    mb, vb, nb = _stats(b)
    ok = (na >= min_count) & (nb >= min_count)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(va / na + vb / nb)
    return np.where(ok, ma - mb, np.nan)[()], np.where(ok, se, np.nan)[()]


def variance_ratio(d, time, boundary, window_days: int = 365, min_count: int = 10):
    """var(d after) / var(d before) at ``boundary`` (module doc); NaN for a zero variance before."""
    a, b = _sides(d, time, boundary, window_days)[::-1]
    _, va, na = _stats(a)
    _, vb, nb = _stats(b)
    ok = (na >= min_count) & (nb >= min_count) & (vb > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, va / vb, np.nan)[()]


def homogeneity(product, reference, time, boundaries=(), *, window_days: int = 365,
                criterion: float = STABILITY_CRITERION, min_count: int = 10) -> dict[str, np.ndarray]:
    """Per-site homogeneity of ``product`` against ``reference`` (both (site, time), same units).

    Keys: ``trend`` (units per year), ``trend_se``, ``n``, ``stable`` (|trend| <=
    ``criterion``; False where the trend is NaN), and per boundary
    ``jump@<date>``, ``jump_se@<date>``, ``variance_ratio@<date>``.
    """
    d = np.asarray(product, dtype=float) - np.asarray(reference, dtype=float)
    slope, se, n = trend(d, time, min_count)
    out = {"trend": slope, "trend_se": se, "n": n, "stable": np.abs(np.nan_to_num(slope, nan=np.inf)) <= criterion}
    for b in boundaries:
        key = str(pd.Timestamp(b).date())
        out[f"jump@{key}"], out[f"jump_se@{key}"] = mean_jump(d, time, b, window_days, min_count)
        out[f"variance_ratio@{key}"] = variance_ratio(d, time, b, window_days, min_count)
    return out


def summarize_homogeneity(result: dict[str, np.ndarray], criterion: float = STABILITY_CRITERION) -> pd.DataFrame:
    """Printable summary: mean, median, median and 90th percentile of |value| over sites (|ratio - 1| for variance
    ratios), and the stable fraction (in ``mean`` and ``median``)."""
    rows = []
    for key, v in result.items():
        if key in ("n", "stable") or key.startswith("jump_se@"):
            continue
        v = np.atleast_1d(np.asarray(v, dtype=float))
        ok = v[np.isfinite(v)]
        mag = np.abs(ok - 1.0) if key.startswith("variance_ratio@") else np.abs(ok)
        rows.append({"statistic": key, "sites": ok.size, "mean": float(np.mean(ok)) if ok.size else np.nan,
                     "median": float(np.median(ok)) if ok.size else np.nan,
                     "median |.|": float(np.median(mag)) if ok.size else np.nan,
                     "p90 |.|": float(np.percentile(mag, 90)) if ok.size else np.nan})
    stable = np.atleast_1d(result["stable"])
    rows.append({"statistic": f"stable (|trend| <= {criterion} per year)", "sites": stable.size,
                 "mean": float(stable.mean()), "median": float(stable.mean()), "median |.|": np.nan, "p90 |.|": np.nan})
    return pd.DataFrame(rows).set_index("statistic")
