"""Where a nowcast's error lies: by the age of its last input retrieval, on dry and wet days, and against the
retrieval's own random error (issue 29's goals).

All functions are pure numpy on ``(site, time)`` arrays with NaN where there is no value (daily steps).

* :func:`semivariance`: per site ``D(tau) = 1/2 mean_t (y[t + tau] - y[t])^2`` over the pairs of days ``tau``
  apart that both have a retrieval. For a retrieval ``y = s + n`` (signal ``s``, white random error ``n`` of
  variance ``sigma^2``), ``D(tau) = sigma^2 + 1/2 E[(s[t + tau] - s[t])^2]``, so ``D(1)`` bounds ``sigma^2``
  from above and the extrapolation of ``D`` to ``tau = 0`` (the nugget) estimates it.
* :func:`noise_bounds`: medians over sites of ``sqrt(D(1))`` (upper bound of ``sigma``) and of the nuggets
  ``2 D(1) - D(2)`` (a line through lags 1, 2) and ``3 D(1) - 3 D(2) + D(3)`` (a parabola through 1, 2, 3).
* :func:`grouped_rms`: the root-mean-square error of a prediction and of a reference prediction (persistence)
  pooled over the cell-days of each group, and ``sqrt(cov(e_sim, e_ref))``: both errors contain ``-n[d]``, the
  target's own random error, so where the rest of the two errors are uncorrelated or positively correlated
  (a nowcast that partly persists the last retrieval), the root of their covariance bounds ``sigma`` from
  above too.
"""

from __future__ import annotations

import numpy as np

__all__ = ["semivariance", "noise_bounds", "wet_days", "grouped_rms"]


def semivariance(y: np.ndarray, tau: int) -> tuple[np.ndarray, np.ndarray]:
    """Per site (first axis): ``D(tau) = 1/2 mean((y[:, t + tau] - y[:, t])^2)`` over the pairs with both values
    finite, and the number of pairs (NaN where there is none)."""
    if tau < 1 or tau >= y.shape[1]:
        raise ValueError(f"tau must lie in [1, {y.shape[1] - 1}], got {tau}")
    d = y[:, tau:] - y[:, :-tau]
    ok = np.isfinite(d)
    n = ok.sum(axis=1)
    s = np.where(ok, d * d, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, 0.5 * s / n, np.nan), n


def noise_bounds(y: np.ndarray, min_pairs: int = 20) -> dict[str, float]:
    """The module docstring's estimates of the retrieval's random error std over the sites with at least
    ``min_pairs`` pairs at each of lags 1, 2 and 3 days: ``sqrt_d1`` (an upper bound), ``nugget_linear`` and
    ``nugget_quadratic`` (roots of the median nuggets, 0 if negative), the share of sites whose nugget is
    negative (a noisy estimate), and ``sites``."""
    d, n = zip(*(semivariance(y, tau) for tau in (1, 2, 3)))
    ok = np.all([k >= min_pairs for k in n], axis=0)
    d1, d2, d3 = (v[ok] for v in d)
    lin, quad = 2 * d1 - d2, 3 * d1 - 3 * d2 + d3
    if not ok.any():
        return {"sites": 0, "sqrt_d1": np.nan, "nugget_linear": np.nan, "nugget_quadratic": np.nan,
                "negative_linear": np.nan, "negative_quadratic": np.nan}
    return {"sites": int(ok.sum()), "sqrt_d1": float(np.sqrt(np.median(d1))),
            "nugget_linear": float(np.sqrt(max(np.median(lin), 0.0))),
            "nugget_quadratic": float(np.sqrt(max(np.median(quad), 0.0))),
            "negative_linear": float(np.mean(lin < 0)), "negative_quadratic": float(np.mean(quad < 0))}


def wet_days(precip: np.ndarray, days: int = 3, threshold: float = 0.5) -> np.ndarray:
    """True where the precipitation summed over the ``days`` days up to and including each day reaches
    ``threshold`` (the forcing's units; NaN counts as 0)."""
    c = np.cumsum(np.nan_to_num(precip), axis=1)
    prior = np.concatenate([np.zeros((c.shape[0], days)), c[:, :-days]], axis=1)
    return (c - prior) >= threshold


def grouped_rms(obs: np.ndarray, sim: np.ndarray, ref: np.ndarray, groups: dict[str, np.ndarray]
                ) -> dict[str, dict[str, float]]:
    """For each group (a boolean mask like ``obs``), over its cell-days where ``obs``, ``sim`` and ``ref`` are
    finite: ``n``, ``rms`` of ``sim - obs``, ``rms_ref`` of ``ref - obs`` and ``sqrt_cov``, the root of the
    (uncentred) mean of ``(sim - obs)(ref - obs)`` (NaN if negative or empty)."""
    e, r = sim - obs, ref - obs
    ok = np.isfinite(e) & np.isfinite(r)
    out = {}
    for name, mask in groups.items():
        m = ok & mask
        k = int(m.sum())
        if k == 0:
            out[name] = {"n": 0, "rms": np.nan, "rms_ref": np.nan, "sqrt_cov": np.nan}
            continue
        cov = float(np.mean(e[m] * r[m]))
        out[name] = {"n": k, "rms": float(np.sqrt(np.mean(e[m] ** 2))), "rms_ref": float(np.sqrt(np.mean(r[m] ** 2))),
                     "sqrt_cov": float(np.sqrt(cov)) if cov >= 0 else np.nan}
    return out
