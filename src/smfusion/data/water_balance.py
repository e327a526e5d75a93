"""A bucket water balance of the forcing: relative soil saturation at every cell, no target needed.

Daily steps per site, for a bucket of capacity ``C`` (mm) with state ``S`` and snow store ``W`` (mm):

* precipitation ``P`` (mm/day) falls as snow when air temperature ``T <= 0`` deg C (``W += P``), else as
  rain ``R = P``; degree-day melt ``M = min(W, f * max(T, 0))`` (``f`` mm per deg C per day);
* infiltration fills the bucket, the excess runs off: ``S' = min(S + R + M, C)``;
* evapotranspiration at the Priestley-Taylor PET (:func:`smfusion.data.climate.priestley_taylor_pet`)
  scaled by the water available: ``E = PET * S' / C``; ``S = S' - E``;
* the feature is ``S / C`` (0 dry .. 1 full), the state at the end of the day.

Spin-up: the state starts full on the first day read, runs over the first ``min(365, n)`` days, and the
whole record then runs again from the state that year ended with (the first year cycled once, a common
land-model spin-up). The state remembers its start for about ``C / PET`` days, so a bucket computed on
data that start later differs for a while: products that read a block's history (products/blocks.py)
read :data:`SPINUP_DAYS` before it. Missing forcing (NaN) counts as no precipitation and no PET, and
the feature is NaN on such days.

It is a proxy of the slow soil water state that a 30-day training window cannot build from its own
inputs (docs/ungauged.md), not a land model: no drainage below field capacity, no vegetation, one layer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SPINUP_DAYS", "bucket_saturation"]

SPINUP_DAYS = 365


def _run(p: np.ndarray, t: np.ndarray, pet: np.ndarray, capacity: float, melt: float,
         s0: np.ndarray, w0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s, w = s0.copy(), w0.copy()
    out = np.empty(p.shape)
    for i in range(p.shape[1]):
        cold = t[:, i] <= 0.0
        w += np.where(cold, p[:, i], 0.0)
        m = np.minimum(w, melt * np.maximum(t[:, i], 0.0))
        w -= m
        s = np.minimum(s + np.where(cold, 0.0, p[:, i]) + m, capacity)
        s -= pet[:, i] * s / capacity
        out[:, i] = s
    return out / capacity, s, w


def bucket_saturation(precip: np.ndarray, temp_c: np.ndarray, pet: np.ndarray, capacity_mm: float,
                      melt_mm_per_degc: float = 3.0) -> np.ndarray:
    """Relative saturation ``S / C`` (site, time) of the bucket of the module doc from daily (site, time)
    precipitation (mm/day), air temperature (deg C) and PET (mm/day, at most ``C`` a day)."""
    if capacity_mm <= 0:
        raise ValueError(f"bucket capacity must be positive, got {capacity_mm}")
    p, t, e = (np.asarray(a, dtype=np.float64) for a in (precip, temp_c, pet))
    bad = ~(np.isfinite(p) & np.isfinite(t) & np.isfinite(e))
    p, t = np.where(bad, 0.0, p), np.where(bad, 0.0, t)
    e = np.clip(np.where(bad, 0.0, e), 0.0, capacity_mm)
    n_site, n = p.shape
    full, empty = np.full(n_site, float(capacity_mm)), np.zeros(n_site)
    k = min(SPINUP_DAYS, n)
    _, s0, w0 = _run(p[:, :k], t[:, :k], e[:, :k], capacity_mm, melt_mm_per_degc, full, empty)
    out, _, _ = _run(p, t, e, capacity_mm, melt_mm_per_degc, s0, w0)
    return np.where(bad, np.nan, out)
