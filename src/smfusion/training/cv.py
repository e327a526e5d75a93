"""``smfusion cv``: spatial cross-validation over stations, scored on held-out stations only.

Folds come from :mod:`smfusion.data.spatial_cv` (``cfg.cv``) and are saved to
``<run_dir>/folds.json``; fold ``i`` is trained into ``<run_dir>/fold_<i>/``
(multiscale configs with :func:`~smfusion.training.multiscale.train_multiscale`,
others with :func:`~smfusion.training.run.train`) with the fold's training
stations, then predicts its test stations over the test period (the training
period when there is none). Metrics per station go to ``metrics.csv``; per-fold
and pooled medians to ``summary.json`` and the printed table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from smfusion.config import RunConfig, dump_config
from smfusion.data.loading import span
from smfusion.data.spatial_cv import make_folds, save_folds
from smfusion.evaluation.metrics import bias, pearson_r, rmse, ubrmse
from smfusion.io.atomic import write_text

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


def _load(cfg: RunConfig):
    if cfg.multiscale is not None:
        from smfusion.data.gridded import load_multiscale_dataset
        from smfusion.training.multiscale import station_sites

        ds = load_multiscale_dataset(cfg.data, *span(cfg))
        return ds, station_sites(ds, cfg.data.target[0], cfg.periods.train.as_tuple())
    from smfusion.data.loading import load_dataset

    ds = load_dataset(cfg.data, *span(cfg))
    return ds, ds["site"].values


def run_cv(cfg: RunConfig, run_dir: Optional[str | Path] = None) -> CVResult:
    """Train every fold of ``cfg.cv`` and score held-out stations (see the module doc)."""
    from smfusion.training.run import TrainedRun, train

    run_dir = Path(run_dir) if run_dir is not None else (Path(cfg.run_dir) if cfg.run_dir else Path("runs") / cfg.name)
    ds, stations = _load(cfg)
    cv = cfg.cv
    lat = ds["lat"].sel(site=stations).values
    lon = ds["lon"].sel(site=stations).values
    networks = ds["network"].sel(site=stations).values if "network" in ds.coords else None
    folds = make_folds(cv.kind, stations, lat=lat, lon=lon, networks=networks, k=cv.k, block_deg=cv.block_deg,
                       seed=cv.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", dump_config(cfg))
    save_folds(run_dir / "folds.json", folds, meta=cv.model_dump())
    period = (cfg.periods.test or cfg.periods.train).as_tuple()
    target = cfg.data.target[0]
    rows = []
    for f in folds:
        fcfg = cfg.model_copy(deep=True)
        fcfg.split = fcfg.split.model_copy(update={"kind": "sites", "train_sites": [int(s) for s in f["train"]],
                                                   "test_sites": [int(s) for s in f["test"]]})
        fdir = run_dir / f"fold_{f['fold']}"
        if cfg.multiscale is not None:
            from smfusion.training.multiscale import train_multiscale

            train_multiscale(fcfg, fdir, ds=ds)
        else:
            train(fcfg, fdir)
        test = np.asarray(f["test"])
        pred = TrainedRun.load(fdir).predict_members(ds, test, period).mean(axis=0)[..., 0]
        obs = ds[target].sel(site=test, time=slice(*period)).transpose("site", "time").values
        m = station_metrics(obs, pred)
        for i, s in enumerate(test):
            rows.append({"fold": f["fold"], "site": s, **{k: float(v[i]) for k, v in m.items()},
                         "n_obs": int(np.isfinite(obs[i]).sum())})
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
