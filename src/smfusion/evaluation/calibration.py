"""Calibration of predictive distributions against observations: coverage, CRPS, PIT, spread-skill.

Scores of a :class:`~smfusion.runs.predictive.Predictive` (any run: point
heads as the Gaussian of the ensemble spread, probabilistic heads as the
mixture over members) at (cell, day) points with an observation:

* coverage of the central ``p`` interval: the fraction of observations whose
  PIT ``u = F(y)`` satisfies ``|u - 1/2| <= p / 2`` (pooled, and the median
  over cells of each cell's coverage); for a Gaussian this is
  ``|y - m| <= z_p s``;
* CRPS (Gneiting and Raftery 2007), closed forms:
  Gaussian ``s [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)]``, ``z = (y - m) / s``;
  Gaussian mixture ``sum_i w_i A(y - m_i, s_i^2) - 1/2 sum_ij w_i w_j A(m_i - m_j, s_i^2 + s_j^2)``
  with ``A(d, v) = E|d + sqrt(v) Z| = 2 sqrt(v) phi(d / sqrt(v)) + d (2 Phi(d / sqrt(v)) - 1)``
  (Grimit et al. 2006); after an isotonic PIT map ``R``, that closed form plus
  the quadrature of the change ``int (R(F(x)) - 1{x >= y})^2 - (F(x) - 1{x >= y})^2 dx``;
* PIT histogram (10 equal bins; flat when calibrated), reliability curve
  (observed frequency of ``y <= q_tau`` against ``tau``), log score, and
  spread-skill bins (RMSE of the mean against the predicted total std,
  :func:`smfusion.evaluation.metrics.spread_skill`).

:func:`calibration_section` is what ``smfusion evaluate`` prints below every
metrics table: the run's distribution raw and recalibrated, beside the
ensemble-spread Gaussian; it writes ``metrics/calibration.json`` and
``plots/reliability.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr

from smfusion.evaluation.metrics import spread_skill
from smfusion.io.atomic import write_text
from smfusion.runs.predictive import Predictive, Recalibration, concat_rows, mixture_cdf

__all__ = ["crps_gaussian", "crps_mixture", "crps_numeric", "crps", "pit_values", "coverage_from_pit",
           "calibration_scores", "format_scores", "plot_reliability", "calibration_section", "cv_calibration_section",
           "LEVELS"]

LEVELS = (0.5, 0.68, 0.9, 0.95)
INV_SQRT_PI = 1.0 / np.sqrt(np.pi)
MIN_CELL_OBS = 10  # cells with fewer observations stay out of the median over cells


def _phi(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def crps_gaussian(y, mu, sigma) -> np.ndarray:
    """CRPS of N(mu, sigma^2) at ``y`` (closed form, see the module doc); ``|y - mu|`` where sigma is 0."""
    y, mu, sigma = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (y, mu, sigma)))
    s = np.where(sigma > 0, sigma, 1.0)
    z = (y - mu) / s
    val = s * (z * (2.0 * ndtr(z) - 1.0) + 2.0 * _phi(z) - INV_SQRT_PI)
    return np.where(sigma > 0, val, np.abs(y - mu))


def _abs_mean(d, v):
    """E|d + sqrt(v) Z| for Z ~ N(0, 1)."""
    s = np.sqrt(v)
    safe = np.where(s > 0, s, 1.0)
    return np.where(s > 0, 2.0 * safe * _phi(d / safe) + d * (2.0 * ndtr(d / safe) - 1.0), np.abs(d))


def crps_mixture(y, loc, scale, weight) -> np.ndarray:
    """CRPS of the Gaussian mixture (components on the last axis) at ``y`` (closed form, module doc)."""
    y = np.asarray(y, dtype=np.float64)[..., None]
    loc, scale, weight = (np.asarray(a, dtype=np.float64) for a in (loc, scale, weight))
    first = (weight * _abs_mean(y - loc, scale**2)).sum(-1)
    d = loc[..., :, None] - loc[..., None, :]
    v = scale[..., :, None] ** 2 + scale[..., None, :] ** 2
    second = (weight[..., :, None] * weight[..., None, :] * _abs_mean(d, v)).sum((-2, -1))
    return first - 0.5 * second


def crps_numeric(pred: Predictive, y: np.ndarray, n_grid: int = 400) -> np.ndarray:
    """CRPS of ``pred`` (1-D points) with its PIT map ``R`` at ``y``: the mixture's closed form plus, by
    quadrature, ``int_lo^y (R(F)^2 - F^2) + int_y^hi ((1 - R(F))^2 - (1 - F)^2)`` on a grid of ``n_grid``
    points per observation covering the distribution (+-9 component scales) and ``y`` (the quadrature error
    scales with how far ``R`` is from the identity)."""
    loc, scale, weight = pred.mixture()
    lo = np.minimum((loc - 9 * scale).min(-1), y) - 1e-6
    hi = np.maximum((loc + 9 * scale).max(-1), y) + 1e-6
    t = np.linspace(0.0, 1.0, n_grid)
    x = lo[:, None] + (hi - lo)[:, None] * t
    f = mixture_cdf(x, loc[:, None, :], scale[:, None, :], weight[:, None, :])
    r = pred.recal.pit_map(f)
    dx = (hi - lo) / (n_grid - 1)

    def cum(g):  # cumulative trapezoid from lo
        c = np.concatenate([np.zeros((g.shape[0], 1)), np.cumsum(0.5 * (g[:, 1:] + g[:, :-1]), axis=1)], 1)
        return c * dx[:, None]

    c1, c2 = cum(r**2 - f**2), cum((1.0 - r) ** 2 - (1.0 - f) ** 2)
    pos = (y - lo) / dx
    j = np.clip(np.floor(pos).astype(int), 0, n_grid - 2)
    fr = (pos - j)[:, None]
    rows = np.arange(y.size)[:, None]

    def at(c):
        return (c[rows, j[:, None]] * (1 - fr) + c[rows, j[:, None] + 1] * fr)[:, 0]

    return crps_mixture(y, loc, scale, weight) + at(c1) + (c2[:, -1] - at(c2))


def crps(pred: Predictive, y: np.ndarray, chunk: int = 4000) -> np.ndarray:
    """CRPS of ``pred`` (points flattened to 1-D) at ``y``: closed form unless an isotonic PIT map is set."""
    out = np.empty(y.shape, dtype=np.float64)
    for a in range(0, y.size, chunk):
        part = pred.select(lambda arr: arr[a:a + chunk])
        yy = y[a:a + chunk]
        if part.recal.pit_x is not None:
            out[a:a + chunk] = crps_numeric(part, yy)
        else:
            out[a:a + chunk] = crps_mixture(yy, *part.mixture())
    return out


def pit_values(pred: Predictive, y: np.ndarray) -> np.ndarray:
    return pred.cdf(y)


def coverage_from_pit(pit: np.ndarray, level: float) -> np.ndarray:
    """Whether each observation lies in the central ``level`` interval: ``|u - 1/2| <= level / 2``."""
    return np.abs(np.asarray(pit) - 0.5) <= level / 2.0 + 1e-12


def calibration_scores(pred: Predictive, obs: np.ndarray, levels=LEVELS, n_bins: int = 10) -> dict[str, Any]:
    """Every score of the module doc for ``pred`` at the points of ``obs`` ((cell, day) or (example, 1);
    NaN: no observation)."""
    obs = np.asarray(obs, dtype=np.float64)
    ok = np.isfinite(obs) & np.isfinite(pred.means).all(axis=0)
    sub = pred.select(lambda a: a[ok])
    y = obs[ok]
    pit = pit_values(sub, y)
    mom = sub.moments()
    std = np.sqrt(mom["total_var"])
    out: dict[str, Any] = {"n": int(y.size), "recalibration": pred.recal.method}
    cells = np.nonzero(ok)[0]
    counts = np.bincount(cells, minlength=obs.shape[0])
    enough = counts >= MIN_CELL_OBS
    for lv in levels:
        inside = coverage_from_pit(pit, lv)
        key = f"{round(lv * 100)}"
        out[f"coverage_{key}"] = float(inside.mean())
        per_cell = np.bincount(cells, weights=inside, minlength=obs.shape[0]) / np.maximum(counts, 1)
        out[f"coverage_{key}_cell_median"] = float(np.median(per_cell[enough])) if enough.any() else float("nan")
    c = crps(sub, y)
    out["crps"] = float(c.mean())
    per_cell = np.bincount(cells, weights=c, minlength=obs.shape[0]) / np.maximum(counts, 1)
    out["crps_cell_median"] = float(np.median(per_cell[enough])) if enough.any() else float("nan")
    if pred.recal.pit_x is None:
        out["log_score"] = float(-sub.logpdf(y).mean())
    out["pit_histogram"] = (np.histogram(pit, bins=10, range=(0.0, 1.0))[0] / max(y.size, 1)).tolist()
    taus = np.round(np.arange(0.05, 1.0, 0.05), 2)
    out["reliability"] = {"tau": taus.tolist(), "observed": [float((pit <= t).mean()) for t in taus]}
    ss = spread_skill(y, mom["mean"], std, n_bins=n_bins)
    out["spread_skill"] = {k: np.asarray(v).tolist() for k, v in ss.items()}
    rms, err = np.asarray(ss["rms_std"]), np.asarray(ss["rmse"])
    good = np.isfinite(rms) & np.isfinite(err)
    out["spread_skill_r"] = float(np.corrcoef(rms[good], err[good])[0, 1]) if good.sum() > 2 else float("nan")
    out["rmse_over_rms_std"] = float(np.sqrt(np.mean((y - mom["mean"]) ** 2)) / np.sqrt(np.mean(std**2)))
    out["mean_epistemic_std"] = float(np.sqrt(mom["epistemic_var"]).mean())
    out["mean_aleatoric_std"] = float(np.sqrt(mom["aleatoric_var"]).mean())
    return out


def format_scores(rows: dict[str, dict], title: str) -> str:
    """One line per distribution: coverage of the central intervals (pooled / median over cells), CRPS,
    spread-skill; then each one's PIT histogram."""
    lines = [title, f"  {'distribution':<52} " + " ".join(f"{'cov' + str(round(lv * 100)):>11}" for lv in LEVELS)
             + f" {'CRPS':>8} {'ss_r':>5} {'err/std':>7}"]
    for label, s in rows.items():
        cov = " ".join(f"{s[f'coverage_{round(lv * 100)}']:.3f}/{s[f'coverage_{round(lv * 100)}_cell_median']:.3f}"
                       for lv in LEVELS)
        lines.append(f"  {label:<52} {cov} {s['crps']:8.4f} {s['spread_skill_r']:5.2f} {s['rmse_over_rms_std']:7.2f}")
    lines.append("  (coverage: pooled over cell-days / median over cells; nominal 0.50 0.68 0.90 0.95. CRPS in target"
                 " units, mean over cell-days; ss_r: correlation of RMSE with predicted std over 10 equal-count bins;"
                 " err/std: RMSE / rms predicted std, 1 = calibrated)")
    for label, s in rows.items():
        hist = " ".join(f"{h:.3f}" for h in s["pit_histogram"])
        lines.append(f"  PIT histogram, {label}: {hist}  (0.100 each = calibrated)")
    return "\n".join(lines)


def plot_reliability(rows: dict[str, dict], path: str | Path) -> Path:
    """Reliability diagram: observed frequency of ``y <= q_tau`` against ``tau`` per distribution, and the
    PIT histograms; PNG at ``path``."""
    from smfusion.evaluation.plots import _new_figure, _save

    fig = _new_figure((10, 4.5))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    for label, s in rows.items():
        r = s["reliability"]
        ax1.plot(r["tau"], r["observed"], marker="o", ms=3, label=label)
        ax2.step(np.arange(10) / 10 + 0.05, np.asarray(s["pit_histogram"]) * 10, where="mid", label=label)
    ax1.set(xlabel="nominal quantile level tau", ylabel="observed frequency of obs <= q_tau", xlim=(0, 1), ylim=(0, 1))
    ax1.legend(fontsize=7)
    ax2.axhline(1.0, color="k", ls="--", lw=1)
    ax2.set(xlabel="PIT", ylabel="density", title="PIT histogram")
    return _save(fig, path)


def calibration_section(run, raw: dict[str, Predictive], recal: dict[str, Predictive], obs: np.ndarray,
                        run_dir: Path, label: str, plots: bool = True) -> str:
    """The calibration lines printed with a metrics table (see the module doc); '' for a run without any
    spread (one point-head member, no noise runs). ``raw``/``recal``: each target's distribution without and
    with the run's recalibration (:meth:`smfusion.runs.Run.distribution` of the evaluation's one set of
    forward passes); ``obs``: (row, time, target) in physical units."""
    method = run.cfg.uncertainty.recalibration
    recal = recal if method != "none" else None
    text, payload = [], {}
    for t, var in enumerate(run.cfg.data.target):
        p = raw[var]
        if p.n_members == 1 and not p.probabilistic and p.noise_var is None:
            continue
        rows = {}
        if p.n_members > 1 and (p.probabilistic or p.noise_var is not None):
            rows["ensemble spread only (Gaussian of the members' std)"] = calibration_scores(
                Predictive(p.means), obs[..., t])
        rows[f"{label}, raw"] = calibration_scores(p, obs[..., t])
        note = run.recalibration_note if recal is not None else "recalibration off (uncertainty.recalibration none)"
        if recal is not None and recal[var].recal.method != "none":
            rows[f"{label}, recalibrated ({method})"] = calibration_scores(recal[var], obs[..., t])
        payload[var] = {"rows": rows, "recalibration": note}
        text.append(format_scores(rows, f"Calibration of the predictive distribution of {var} (test period, "
                                         f"{rows[f'{label}, raw']['n']} cell-days with an observation; "
                                         f"recalibration: {note})"))
        if plots:
            plot_reliability(rows, Path(run_dir) / "plots" / (f"reliability_{var}.png" if t else "reliability.png"))
    if not payload:
        return ""
    write_text(Path(run_dir) / "metrics" / "calibration.json", json.dumps(payload, indent=1, default=float))
    return "\n\n" + "\n\n".join(text)


def cv_calibration_section(held: list[tuple[dict, np.ndarray]], targets: list[str], run_dir: Path) -> str:
    """Calibration on held-out units of spatial CV: ``held`` = per fold (target -> Predictive of its held-out
    units, recalibrated as the fold's run says; observations (row, time, target)), pooled over folds.
    Writes ``calibration.json`` in ``run_dir``; '' when the runs have no spread."""
    text, payload = [], {}
    for t, var in enumerate(targets):
        preds = [d[var] for d, _ in held]
        if all(p.n_members == 1 and not p.probabilistic and p.noise_var is None for p in preds):
            continue
        try:
            pooled = concat_rows(preds)
        except ValueError:  # isotonic maps differ between folds: score the variance-scaled distributions
            pooled = concat_rows([p.with_recalibration(Recalibration(
                "variance", p.recal.epistemic_factor, p.recal.aleatoric_factor)) for p in preds])
        obs = np.concatenate([o[..., t] for _, o in held], 0)
        methods = sorted({p.recal.method for p in preds})
        label = f"held-out units, recalibration {'/'.join(methods)}"
        scores = calibration_scores(pooled, obs)
        # joining folds materialises each ensemble into one mixture: take the split of the spread from the folds
        for part in ("epistemic", "aleatoric"):
            vals = [np.sqrt(p.moments()[f"{part}_var"])[np.isfinite(o[..., t])] for p, (_, o) in zip(preds, held)]
            scores[f"mean_{part}_std"] = float(np.concatenate(vals).mean())
        payload[var] = {label: scores}
        text.append(format_scores(payload[var], f"Calibration of {var} on held-out units (all folds pooled)"))
    if not payload:
        return ""
    write_text(Path(run_dir) / "calibration.json", json.dumps(payload, indent=1, default=float))
    return "\n\n" + "\n\n".join(text)
