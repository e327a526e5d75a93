"""``smfusion cv``: spatial cross-validation, scored on held-out units only.

The adapter says what is split (sites, stations of a multiscale run); folds
come from :mod:`smfusion.data.spatial_cv` (``cfg.cv``) and are saved to
``<run_dir>/folds.json``; fold ``i`` is trained into ``<run_dir>/fold_<i>/``
with :func:`~smfusion.training.run.train` on the fold's training units, then
predicts its test units over the test period (the training period when there
is none) through :class:`~smfusion.runs.Run`. Metrics per unit go to
``metrics.csv``; per-fold and pooled medians to ``summary.json`` and the
printed table. Point runs are split by sensor within ``train`` already
(``split.kind kfold``) and are refused here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from smfusion.config import RunConfig, dump_config
from smfusion.data.adapters import adapter_for
from smfusion.data.spatial_cv import make_folds, save_folds
from smfusion.errors import ConfigError
from smfusion.evaluation.metrics import bias, pearson_r, rmse, ubrmse
from smfusion.io.atomic import write_text
from smfusion.runs import Run
from smfusion.training.run import default_run_dir, train

__all__ = ["CVResult", "run_cv", "station_metrics"]

METRICS = {"R": pearson_r, "RMSE": rmse, "ubRMSE": ubrmse, "bias": bias}


def station_metrics(obs: np.ndarray, sim: np.ndarray) -> dict[str, np.ndarray]:
    """Per-station (row) R, RMSE, ubRMSE, bias on days where both exist."""
    return {k: np.asarray(f(obs, sim), dtype=float) for k, f in METRICS.items()}


@dataclass
class CVResult:
    table: pd.DataFrame  # one row per held-out station
    summary: dict
    text: str


def run_cv(cfg: RunConfig, run_dir: Optional[str | Path] = None) -> CVResult:
    """Train every fold of ``cfg.cv`` and score held-out units (see the module doc)."""
    run_dir = default_run_dir(cfg, run_dir)
    adapter = adapter_for(cfg)
    if adapter.layout != "site":
        raise ConfigError(f"cv: '{adapter.name}' runs are split by sensor within train (split.kind kfold, "
                          "one fold per config); spatial CV here is for series runs")
    adapter.check()
    from smfusion.data.checks import check_config, raise_for_problems

    raise_for_problems(check_config(cfg))  # before any fold trains
    data = adapter.load()
    units = adapter.cv_units(data)
    stations, cv = units["ids"], cfg.cv
    folds = make_folds(cv.kind, stations, lat=units["lat"], lon=units["lon"], networks=units.get("network"), k=cv.k,
                       block_deg=cv.block_deg, seed=cv.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", dump_config(cfg))
    save_folds(run_dir / "folds.json", folds, meta=cv.model_dump())
    period = (cfg.periods.test or cfg.periods.train).as_tuple()
    rows = []
    for f in folds:
        fcfg = cfg.model_copy(deep=True)
        fcfg.split = fcfg.split.model_copy(update={"kind": "sites", "train_sites": [int(s) for s in f["train"]],
                                                   "test_sites": [int(s) for s in f["test"]]})
        fdir = train(fcfg, run_dir / f"fold_{f['fold']}", data=data)
        run = Run.load(fdir)
        b = run.adapter.eval_batches(data, np.asarray(f["test"]), period)
        pred = run.predict_members(data, None, None, batches=b).mean(axis=0)[..., 0]
        obs = run.adapter.observations(data, b)[..., 0]
        m = station_metrics(obs, pred)
        where = {int(s): i for i, s in enumerate(stations)}
        for i, s in enumerate(b.rows):
            j = where[int(s)]
            rows.append({"fold": f["fold"], "site": s, "lat": float(units["lat"][j]), "lon": float(units["lon"][j]),
                         **{k: float(v[i]) for k, v in m.items()}, "n_obs": int(np.isfinite(obs[i]).sum())})
    table = pd.DataFrame(rows)
    per_fold = table.groupby("fold")[list(METRICS)].median().to_dict(orient="index")
    pooled = table[list(METRICS)].median().to_dict()
    summary = {"protocol": _protocol(cfg, period, len(stations), len(folds)), "per_fold_median": per_fold,
               "pooled_median": pooled, "n_stations": int(len(table))}
    write_text(run_dir / "metrics.csv", table.to_csv(index=False))
    write_text(run_dir / "summary.json", json.dumps(summary, indent=1, default=float))
    return CVResult(table, summary, _text(summary, per_fold, pooled))


def _protocol(cfg: RunConfig, period, n_stations: int, n_folds: int) -> str:
    cv = cfg.cv
    how = {"station": f"{cv.k}-fold by station (seed {cv.seed})",
           "block": f"{cv.k}-fold by {cv.block_deg} deg lat/lon blocks (seed {cv.seed})",
           "network": "leave-one-network-out"}[cv.kind]
    ms = cfg.multiscale
    obj = (f"multiscale w_coarse={ms.w_coarse} w_site={ms.w_site} agg={ms.aggregation}" if ms is not None
           else f"single-scale {cfg.training.loss}")
    return (f"spatial CV {how}, {n_folds} folds, {n_stations} stations; trained {cfg.periods.train.start}.."
            f"{cfg.periods.train.end}; scored on held-out stations only over {period[0]}..{period[1]}; "
            f"model {cfg.model.name}; objective {obj}; data reader {cfg.data.reader}")


def _text(summary: dict, per_fold: dict, pooled: dict) -> str:
    lines = [f"Protocol: {summary['protocol']}", "", "fold  " + "  ".join(f"{k:>7}" for k in METRICS)]
    for fold, vals in per_fold.items():
        lines.append(f"{fold:>4}  " + "  ".join(f"{vals[k]:7.3f}" for k in METRICS))
    lines.append("pool  " + "  ".join(f"{pooled[k]:7.3f}" for k in METRICS) + "   (median over held-out stations)")
    return "\n".join(lines)
