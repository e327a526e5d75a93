"""Calibration of a Gaussian (mean, std) spread against observations, from plain arrays.

The spread itself (epistemic, aleatoric, total std) is computed where the
predictions are made, :mod:`smfusion.runs.ensembles` (re-exported here).

:func:`calibration` scores a Gaussian (mean, total std) forecast with the
coverage of its central 68% and 95% intervals and a binned spread-skill
table (:mod:`smfusion.evaluation.metrics`). What ``smfusion evaluate`` prints
(any predictive distribution: coverage, CRPS, PIT, recalibration) is
:mod:`smfusion.evaluation.calibration`.
"""

from __future__ import annotations

import numpy as np

from smfusion.evaluation.metrics import interval_coverage, spread_skill
from smfusion.runs.ensembles import aleatoric_std, epistemic_std, total_std  # noqa: F401  (re-exported)

__all__ = ["epistemic_std", "aleatoric_std", "total_std", "calibration", "format_calibration"]


def calibration(obs, mean, std, levels=(0.68, 0.95), n_bins=5) -> dict:
    """Coverage of the central intervals (pooled over every site-day with obs, and median over sites)
    and the spread-skill table, for (site, time) arrays."""
    obs, mean, std = (np.asarray(a, dtype=float) for a in (obs, mean, std))
    out: dict = {"n": int((np.isfinite(obs) & np.isfinite(mean) & np.isfinite(std)).sum())}
    for lv in levels:
        key = f"{round(lv * 100)}"
        out[f"coverage_{key}"] = float(interval_coverage(obs, mean, std, level=lv, axis=None))
        out[f"coverage_{key}_site_median"] = float(np.nanmedian(interval_coverage(obs, mean, std, level=lv)))
    ss = spread_skill(obs, mean, std, n_bins=n_bins)
    out["spread_skill"] = {k: np.asarray(v).tolist() for k, v in ss.items()}
    rms, err = np.asarray(ss["rms_std"]), np.asarray(ss["rmse"])
    ok = np.isfinite(rms) & np.isfinite(err)
    out["spread_skill_ratio"] = float(np.sqrt(np.mean(err[ok] ** 2)) / np.sqrt(np.mean(rms[ok] ** 2))) if ok.any() else float("nan")
    out["spread_skill_r"] = float(np.corrcoef(rms[ok], err[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    return out


def format_calibration(cal: dict, label: str) -> str:
    """Printed lines: the coverages beside their nominal levels and the spread-skill bins."""
    lines = [f"Calibration of {label} (pooled over {cal['n']} site-days with an observation):"]
    for key in ("68", "95"):
        if f"coverage_{key}" in cal:
            lines.append(f"  central {key}% interval covers {cal[f'coverage_{key}']:.3f} of obs"
                         f" (median over sites {cal[f'coverage_{key}_site_median']:.3f}; nominal 0.{key})")
    ss = cal["spread_skill"]
    lines.append("  spread-skill bins (equal-count by predicted std): rms std -> rmse")
    for s, e, c in zip(ss["rms_std"], ss["rmse"], ss["count"]):
        lines.append(f"    {s:.4f} -> {e:.4f}  (n={c})")
    lines.append(f"  rmse / rms std = {cal['spread_skill_ratio']:.2f} (1 = calibrated); "
                 f"corr(spread, skill) over bins = {cal['spread_skill_r']:.2f}")
    return "\n".join(lines)
