"""Skill against lead of a data-integration run, beside its baselines (issue 29).

For each lead ``L`` the value of day ``d`` may use the retrievals up to ``d - L`` only. Rows:

* ``DI model``: the run at lead ``L`` (:meth:`smfusion.runs.Run.at_lead`), the ensemble mean;
* ``persistence``: the last retrieval at or before ``d - L`` (no age limit);
* ``climatology + persisted anomaly``: ``c(d) + (y(t*) - c(t*))`` with ``t*`` that retrieval and ``c`` the
  training period's day-of-year climatology of each cell (31-day window, at least 5 values; the cell's
  training mean where it has none);
* ``projection``: a run of the same recipe without retrievals (the same at every lead);
* ``projection + damped residual``: a linear error correction of the projection, ``p(d) + rho^(d - t*) (y(t*)
  - p(t*))``, with ``rho`` fitted per lead on the validation period (least squares over its cell-days on a
  grid 0, 0.05 .. 0.95): what the retrievals give without learning.

Scores: per cell over the test days that have a retrieval (and a value in every row), R, ubRMSE and RMSE
(:mod:`smfusion.evaluation.metrics`), median over cells; the DI model's coverage of its central 68% / 95%
intervals pooled over those cell-days, raw and recalibrated (the run's ``uncertainty.recalibration``,
fitted per lead on the validation period: :meth:`smfusion.runs.Run.recalibration`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from smfusion.data.climatology import Climatology
from smfusion.data.integration import last_retrieval
from smfusion.evaluation.calibration import calibration_scores
from smfusion.evaluation.metrics import pearson_r, rmse, ubrmse
from smfusion.runs import Run

__all__ = ["persistence", "persisted_anomaly", "lead_scores", "lead_table", "format_lead_table", "lead_section",
           "period_days", "projection_series", "ROWS", "LEADS"]

ROWS = ("DI model", "persistence", "climatology + persisted anomaly", "projection", "projection + damped residual")
DAMPING = np.round(np.arange(0.0, 0.96, 0.05), 2)
LEADS = (1, 2, 3, 5, 7)  # days (the table)


def period_days(times: np.ndarray, period) -> slice:
    """The positions of the days of the inclusive ``period`` (start, end) in the sorted daily ``times``."""
    t0, t1 = (int(np.searchsorted(times, np.datetime64(pd.Timestamp(d), "ns"), side=side))
              for d, side in zip(period, ("left", "right")))
    return slice(t0, t1)


def persistence(obs: np.ndarray, lead: int) -> np.ndarray:
    """The last finite value of ``obs`` (site, time) at or before ``d - lead`` for every day ``d`` (NaN if none)."""
    value, _, present = last_retrieval(obs, lead, max_age=obs.shape[1])
    return np.where(present, value, np.nan)


def persisted_anomaly(obs: np.ndarray, clim: np.ndarray, lead: int) -> np.ndarray:
    """``clim[d] + (obs[t*] - clim[t*])``, ``t*`` the last retrieval at or before ``d - lead``."""
    return clim + persistence(obs - clim, lead)


def damped_residual(obs: np.ndarray, proj: np.ndarray, lead: int, rho: float) -> np.ndarray:
    """``proj[d] + rho^(d - t*) (obs[t*] - proj[t*])``, ``t*`` the last retrieval at or before ``d - lead``."""
    value, age, present = last_retrieval(obs - proj, lead, max_age=obs.shape[1])
    return proj + np.where(present, value * float(rho) ** age, 0.0)


def fit_damping(obs: np.ndarray, proj: np.ndarray, lead: int, days: slice) -> float:
    """The ``rho`` of :data:`DAMPING` with the least squared error of :func:`damped_residual` over ``days``."""
    def sse(rho):
        e = (damped_residual(obs, proj, lead, rho) - obs)[:, days]
        return float(np.nansum(e * e))
    return float(min(DAMPING, key=sse))


def projection_series(proj_dir, cfg, ids: np.ndarray, times: np.ndarray, target: str, test: tuple
                      ) -> tuple[np.ndarray, slice]:
    """The projection run's prediction on ``times`` (site, time; NaN before the validation period or, without
    one, 60 days before the scored period ``test``) and the validation days (empty without a validation period)."""
    val = cfg.periods.validation.as_tuple() if cfg.periods.validation else None
    start = min(val[0], test[0]) if val else (pd.Timestamp(test[0]) - pd.Timedelta(days=60)).strftime("%Y-%m-%d")
    end = max(val[1], test[1]) if val else test[1]
    pred = Run.load(proj_dir).predict(start, end, ids=ids)[target].transpose("site", "time")
    out = np.full((len(ids), times.size), np.nan)
    out[:, np.searchsorted(times, pred.time.values)] = pred.values
    if val is None:
        return out, slice(0, 0)
    return out, period_days(times, val)


def lead_scores(obs: np.ndarray, sim: np.ndarray) -> dict[str, float]:
    """Median over sites of R, ubRMSE and RMSE of ``sim`` against ``obs`` (site, time; NaN: no pair)."""
    with np.errstate(all="ignore"):
        return {"R": float(np.nanmedian(pearson_r(obs, sim))), "ubRMSE": float(np.nanmedian(ubrmse(obs, sim))),
                "RMSE": float(np.nanmedian(rmse(obs, sim)))}


def _climatology(data, target: str, ids: np.ndarray, times: np.ndarray, train_period) -> np.ndarray:
    """Training-period day-of-year climatology of ``target`` at ``ids`` on ``times`` (site mean where NaN)."""
    clim = Climatology().fit(data[target], window=31, min_count=5, period=train_period)
    c = clim.climatology_for(times, site=ids).values.astype(np.float64)
    train = data[target].sel(site=ids, time=slice(*train_period)).transpose("site", "time").values
    with np.errstate(all="ignore"):
        mean = np.nanmean(train, axis=1)
    return np.where(np.isfinite(c), c, mean[:, None])


def lead_table(di_dir: str | Path | Run, projection_dir: Optional[str | Path], leads=LEADS, on: str = "test"
               ) -> dict:
    """The module docstring's table on the DI run's test period (``on="validation"``: its validation period,
    for choosing a recipe without the test year; then without the damped residual, whose ``rho`` is fitted
    there) and test sites: ``{"protocol": ..., "leads": {L: {row: scores}}}`` (leads above the run's
    ``max_age`` are left out)."""
    run = di_dir if isinstance(di_dir, Run) else Run.load(di_dir)
    leads = [int(k) for k in leads if k <= run.cfg.data_integration.max_age]
    cfg, target = run.cfg, run.cfg.data.target[0]
    if on not in ("test", "validation") or getattr(cfg.periods, on) is None:
        raise ValueError(f"on={on!r}: give 'test' or 'validation', a period the run has")
    test, train = getattr(cfg.periods, on).as_tuple(), cfg.periods.train.as_tuple()
    data = run.adapter.load()  # every period: the training period's climatology, the test year with its warm-up
    ids = run.split.test
    times = data.time.values
    days = period_days(times, test)  # the scored period
    obs_all = data[target].sel(site=ids).transpose("site", "time").values.astype(np.float64)
    clim = _climatology(data, target, ids, times, train)
    proj = val_days = None
    if projection_dir is not None:
        proj, val_days = projection_series(projection_dir, cfg, ids, times, target, test)
    obs = obs_all[:, days]
    out: dict = {"leads": {}, "protocol": {
        "test": list(test), "scored": on, "train": list(train), "validation": list(cfg.periods.validation.as_tuple())
        if cfg.periods.validation else None, "cells": int(len(ids)), "members": len(run.members),
        "recalibration": cfg.uncertainty.recalibration, "di": cfg.data_integration.model_dump(mode="json")}}
    for lead in leads:
        run.at_lead(lead)
        dist = run.predict_distribution(data, ids, test, recalibration="none")[target]
        sims = {"DI model": dist.moments()["mean"], "persistence": persistence(obs_all, lead)[:, days],
                "climatology + persisted anomaly": persisted_anomaly(obs_all, clim, lead)[:, days]}
        rho = None
        if proj is not None:
            sims["projection"] = proj[:, days]
            if val_days.stop > val_days.start and on == "test":
                rho = fit_damping(obs_all, proj, lead, val_days)
                sims["projection + damped residual"] = damped_residual(obs_all, proj, lead, rho)[:, days]
        ok = np.isfinite(obs) & np.all([np.isfinite(s) for s in sims.values()], axis=0)
        o = np.where(ok, obs, np.nan)
        row = {name: lead_scores(o, s) for name, s in sims.items()}
        recal = run.recalibration().get(target)
        cov = {"raw": calibration_scores(dist, o)}
        if recal is not None:
            cov["recalibrated"] = calibration_scores(dist.with_recalibration(recal), o)
        row["DI model"].update({f"{k}_cov{lv}": c[f"coverage_{lv}"] for k, c in cov.items() for lv in (68, 95)})
        row["_n"] = int(ok.sum())
        if rho is not None:
            row["projection + damped residual"]["rho"] = rho
        out["leads"][int(lead)] = row
    run.at_lead(cfg.data_integration.lead)
    return out


def lead_section(run: Run) -> str:
    """``smfusion evaluate`` of a data-integration run: the table at :data:`LEADS` without the projection row,
    also written to ``metrics/nowcast.json`` (which ``smfusion report`` shows; benchmarks/nowcast.py writes it
    with the projection row)."""
    from smfusion.io.atomic import write_text

    res = lead_table(run, None)
    write_text(Path(run.run_dir) / "metrics" / "nowcast.json", json.dumps(res, indent=1))
    return "\n\n" + format_lead_table(res) + "\n"


def format_lead_table(res: dict) -> str:
    """The table of :func:`lead_table` as text, with its protocol."""
    p = res["protocol"]
    lines = [f"Skill against lead: train {p['train'][0]}..{p['train'][1]}, validation "
             f"{p['validation'][0] + '..' + p['validation'][1] if p['validation'] else 'none'}, "
             f"{'scored on the VALIDATION period' if p.get('scored') == 'validation' else 'test'} "
             f"{p['test'][0]}..{p['test'][1]}, {p['cells']} cells, DI ensemble of {p['members']}, data_integration "
             f"{p['di']}; median over cells of R / ubRMSE / RMSE (m3/m3) on the test days with a retrieval; "
             f"coverage pooled over those cell-days (recalibration {p['recalibration']}, fitted per lead on the "
             "validation period)",
             f"{'lead':>4} {'row':<32} {'R':>6} {'ubRMSE':>7} {'RMSE':>7} {'cov68 raw/recal':>16} {'cov95 raw/recal':>16}"]
    for lead, rows in res["leads"].items():
        for name in ROWS:
            if name not in rows:
                continue
            s = rows[name]
            cov = ["", ""]
            if "raw_cov68" in s:
                cov = [f"{s['raw_cov68']:.3f}/{s.get('recalibrated_cov68', float('nan')):.3f}",
                       f"{s['raw_cov95']:.3f}/{s.get('recalibrated_cov95', float('nan')):.3f}"]
            lines.append(f"{lead:>4} {name:<32} {s['R']:6.3f} {s['ubRMSE']:7.4f} {s['RMSE']:7.4f} {cov[0]:>16} "
                         f"{cov[1]:>16}")
        lines.append(f"{'':>4} ({rows['_n']} cell-days)")
    return "\n".join(lines)
