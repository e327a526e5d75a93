"""Lagged, antecedent, polarization-ratio and bucket input features, a transform of the canonical Dataset.

For a dynamic variable ``v`` (dims site, time, daily steps):

* lag ``k``: ``v_lag{k}[t] = v[t - k]`` (NaN for the first ``k`` days);
* antecedent window ``w``: ``v_mean{w}[t] = mean(v[t - w + 1 .. t])`` over the
  finite values in the window (NaN if none; the first ``w - 1`` days use the
  days available);
* polarization ratio of a pair of brightness temperatures (H, V):
  ``PR[t] = (V[t] - H[t]) / (V[t] + H[t])`` (NaN where either is missing;
  independent of the emitting temperature to first order);
* bucket of capacity ``C`` mm: ``bucket{C}[t]`` = relative saturation of a water-balance bucket fed by
  the precipitation and drained at the Priestley-Taylor PET (:mod:`smfusion.data.water_balance`).

They let a per-day model (the MLP) see the recent past; compute them on a
period that starts ``max(k, w)`` days before the first scored day (the
warm-up does that). ``k`` and ``w`` are days: on data composited over N-day
windows (attribute ``composite_days``, :mod:`smfusion.data.composite`) they
become ``max(1, round(k / N))`` steps, so a daily run predicted from N-day
composites sees about the same stretch of the past as in training.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import xarray as xr

from smfusion.config import FeaturesConfig
from smfusion.data.climate import forcing_pet, per_day
from smfusion.data.water_balance import bucket_saturation
from smfusion.errors import DataError

__all__ = ["feature_names", "add_features"]


def lag_name(v: str, k: int) -> str:
    return f"{v}_lag{k}"


def mean_name(v: str, w: int) -> str:
    return f"{v}_mean{w}"


def bucket_name(capacity_mm: float) -> str:
    return f"bucket{capacity_mm:g}"


def feature_names(cfg: FeaturesConfig, of: Optional[Iterable[str]] = None) -> list[str]:
    """Names of the derived variables, in the order they are added (only those of the variables ``of``)."""
    keep = None if of is None else set(of)
    names = [lag_name(v, k) for v, ks in cfg.lags.items() for k in ks if keep is None or v in keep]
    names += [mean_name(v, w) for v, ws in cfg.antecedent.items() for w in ws if keep is None or v in keep]
    names += [n for n, pair in cfg.polarization_ratio.items() if keep is None or set(pair) <= keep]
    if cfg.bucket is not None and (keep is None or set(cfg.bucket.variables) <= keep):
        names += [bucket_name(c) for c in cfg.bucket.capacities_mm]
    return names


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    if k < x.shape[1]:
        out[:, k:] = x[:, : x.shape[1] - k]
    return out


def _trailing_mean(x: np.ndarray, w: int) -> np.ndarray:
    ok = np.isfinite(x)
    zero = np.zeros((x.shape[0], 1))
    csum = np.concatenate([zero, np.cumsum(np.where(ok, x, 0.0), axis=1)], axis=1)
    ccnt = np.concatenate([zero, np.cumsum(ok, axis=1)], axis=1)
    hi = np.arange(1, x.shape[1] + 1)
    lo = np.maximum(hi - w, 0)
    s = csum[:, hi] - csum[:, lo]
    n = ccnt[:, hi] - ccnt[:, lo]
    out = np.full(x.shape, np.nan)
    np.divide(s, n, out=out, where=n > 0)
    return out


def steps(days: int, step_days: int) -> int:
    """Time steps covering ``days`` days on data with ``step_days``-day steps (at least 1)."""
    return max(1, int(round(int(days) / int(step_days))))


def add_features(ds: xr.Dataset, cfg: FeaturesConfig) -> xr.Dataset:
    """``ds`` with the lag, antecedent-mean, polarization-ratio and bucket variables of ``cfg`` added as
    (site, time) variables (lags and windows in days; steps of ``ds.attrs['composite_days']`` days, default 1;
    buckets need daily steps)."""
    if not cfg.lags and not cfg.antecedent and not cfg.polarization_ratio and cfg.bucket is None:
        return ds
    n = int(ds.attrs.get("composite_days", 1))
    out = ds.copy()
    for v, ks in cfg.lags.items():
        x = np.asarray(ds[v].transpose("site", "time").values, dtype=np.float64)
        for k in ks:
            out[lag_name(v, k)] = (("site", "time"), _lag(x, steps(k, n)).astype(np.float32),
                                  {"long_name": f"{v} {k} days before", "units": ds[v].attrs.get("units", "1")})
    for v, ws in cfg.antecedent.items():
        x = np.asarray(ds[v].transpose("site", "time").values, dtype=np.float64)
        for w in ws:
            out[mean_name(v, w)] = (("site", "time"), _trailing_mean(x, steps(w, n)).astype(np.float32),
                                   {"long_name": f"mean {v} over the last {w} days",
                                    "units": ds[v].attrs.get("units", "1")})
    for name, (h, v) in cfg.polarization_ratio.items():
        th = np.asarray(ds[h].transpose("site", "time").values, dtype=np.float64)
        tv = np.asarray(ds[v].transpose("site", "time").values, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            pr = (tv - th) / (tv + th)
        out[name] = (("site", "time"), np.where(np.isfinite(pr), pr, np.nan).astype(np.float32),
                     {"long_name": f"polarization ratio ({v} - {h}) / ({v} + {h})", "units": "1"})
    if cfg.bucket is not None:
        _add_buckets(out, cfg.bucket, n)
    return out


def _add_buckets(out: xr.Dataset, b, step_days: int) -> None:
    missing = [v for v in b.variables if v not in out]
    if missing or step_days != 1:
        raise DataError(f"bucket features need daily {b.variables} (missing {missing}, {step_days}-day steps)",
                        field="features.bucket")
    t, pet = forcing_pet(out, b)
    p = per_day(out[b.precipitation], b.precipitation)
    for c in b.capacities_mm:
        out[bucket_name(c)] = (("site", "time"), bucket_saturation(p, t, pet, c, b.melt_mm_per_degc).astype(np.float32),
                               {"long_name": f"relative saturation of a {c:g} mm water-balance bucket", "units": "1"})
