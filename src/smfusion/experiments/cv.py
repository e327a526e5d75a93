"""``smfusion cv``: spatial and regional cross-validation, scored on held-out units only.

The adapter says what is split (sites, stations of a multiscale run); folds come from
:mod:`smfusion.data.spatial_cv` (``cfg.cv``) and are saved to ``<run_dir>/folds.json``. Fold ``i``
is trained into ``<run_dir>/fold_<i>/`` with :func:`~smfusion.training.run.train` on the fold's
training units only (a buffer ring, if any, is left out), then predicts its held-out units through
:class:`~smfusion.runs.Run` over each scored period of ``cv.periods``:

* ``test``: unseen cells AND unseen year (the training period when the config has no test period);
* ``train``: unseen cells over the training year.

Beside the model (ensemble mean; member 0 alone too when N > 1) each fold scores the baselines of
``cv.baselines`` (:mod:`smfusion.evaluation.regional_baselines`: no target value at the held-out
cell) and, with ``cv.temporal_reference``, the same recipe trained on every unit with the temporal
split (``<run_dir>/temporal/``), scored on the same held-out units over the test period (seen cells,
unseen year). Per-unit metrics go to ``metrics.csv``; per-fold and pooled medians and the ratio of
held-out to temporal ubRMSE to ``summary.json`` and ``report.txt`` (the printed text). Point runs are
split by sensor within ``train`` already (``split.kind kfold``) and are refused here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from smfusion.config import RunConfig, dump_config
from smfusion.data.adapters import adapter_for
from smfusion.data.climate import static_inputs
from smfusion.data.spatial_cv import make_folds, save_folds
from smfusion.errors import ConfigError
from smfusion.evaluation import regional_baselines as rb
from smfusion.evaluation.calibration import cv_calibration_section
from smfusion.evaluation.metrics import bias, pearson_r, rmse, ubrmse
from smfusion.io.atomic import write_text
from smfusion.runs import Run
from smfusion.runs.checks import refuse_invalid
from smfusion.training.run import check_training, default_run_dir, train

__all__ = ["CVResult", "run_cv", "station_metrics", "fold_config", "temporal_config", "MODEL", "MEMBER0",
           "TEMPORAL", "BASELINE_LABELS"]

METRICS = {"R": pearson_r, "RMSE": rmse, "ubRMSE": ubrmse, "bias": bias}
MODEL, MEMBER0, TEMPORAL = "model", "model, member 0 alone", "same recipe, temporal split (seen cells)"
BASELINE_LABELS = {
    "idw_climatology": "baseline: IDW climatology of nearest training cells",
    "idw_observations": "baseline: IDW of training cells' same-day observations",
    "linear": "baseline: linear model, forcing + statics",
    "gbm": "baseline: gradient-boosted trees, forcing (+ trailing means) + statics",
}
PERIOD_TEXT = {"test": "unseen cells AND unseen year", "train": "unseen cells, training year"}


def station_metrics(obs: np.ndarray, sim: np.ndarray) -> dict[str, np.ndarray]:
    """Per-station (row) R, RMSE, ubRMSE, bias on days where both exist."""
    return {k: np.asarray(f(obs, sim), dtype=float) for k, f in METRICS.items()}


@dataclass
class CVResult:
    table: pd.DataFrame  # one row per (held-out station, row label, scored period)
    summary: dict
    text: str


def fold_config(cfg: RunConfig, fold: dict) -> RunConfig:
    """The config of one fold: the recipe with ``split.kind sites`` (fold's training and held-out ids)."""
    fcfg = cfg.model_copy(deep=True)
    fcfg.split = fcfg.split.model_copy(update={"kind": "sites", "train_sites": [int(s) for s in fold["train"]],
                                               "test_sites": [int(s) for s in fold["test"]]})
    return fcfg


def temporal_config(cfg: RunConfig) -> RunConfig:
    """The same recipe on every unit with the temporal split (the seen-cell reference)."""
    tcfg = cfg.model_copy(deep=True)
    tcfg.split = tcfg.split.model_copy(update={"kind": "temporal", "train_sites": None, "test_sites": None})
    return tcfg


def _check(cfg: RunConfig, adapter) -> None:
    if adapter.layout != "site":
        raise ConfigError(f"cv: '{adapter.name}' runs are split by sensor within train (split.kind kfold, "
                          "one fold per config); spatial CV here is for series runs")
    if cfg.normalization.target == "site":
        raise ConfigError("cv: normalization.target 'site' needs the target at every scored site; use 'global' "
                          "or 'predicted' (statistics predicted from the statics)")
    if cfg.seasonal.target_mode == "anomaly":
        raise ConfigError("cv: seasonal.target_mode 'anomaly' needs the target climatology at every scored site")
    if cfg.cv.temporal_reference and cfg.periods.test is None:  # (also checked when run_cv(temporal=True))
        raise ConfigError("cv.temporal_reference needs periods.test (the seen-cell score is on the test period)")
    if cfg.cv.baselines and cfg.multiscale is not None:
        raise ConfigError("cv.baselines are for sequence runs (site targets), not multiscale stations")


def _periods(cfg: RunConfig) -> dict[str, tuple[str, str]]:
    out = {}
    for name in cfg.cv.periods:
        p = cfg.periods.test if name == "test" and cfg.periods.test is not None else cfg.periods.train
        out[name] = p.as_tuple()
    return out


def run_cv(cfg: RunConfig, run_dir: Optional[str | Path] = None, folds_only: Optional[Sequence[int]] = None,
           temporal: Optional[bool] = None) -> CVResult:
    """Train every fold of ``cfg.cv`` (or only ``folds_only``) and score held-out units (see the module doc);
    ``temporal`` overrides ``cv.temporal_reference`` (e.g. to train folds in several processes, then score
    all of them, trained runs being reused)."""
    run_dir = default_run_dir(cfg, run_dir)
    adapter = adapter_for(cfg)
    _check(cfg, adapter)
    adapter.check()
    refuse_invalid(cfg, training=check_training)  # what `smfusion check` reports, before any fold trains
    data = adapter.load()
    units = adapter.cv_units(data)
    cv = cfg.cv
    folds = make_folds(cv.kind, units["ids"], lat=units["lat"], lon=units["lon"], networks=units.get("network"),
                       k=cv.k, block_deg=cv.block_deg, seed=cv.seed, buffer_km=cv.buffer_km,
                       block_cells=cv.block_cells, grid=cv.grid,
                       regions=[r.model_dump() for r in cv.regions] if cv.regions is not None else None,
                       regions_file=cv.regions_file)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", dump_config(cfg))
    save_folds(run_dir / "folds.json", folds, meta=cv.model_dump(mode="json"))
    periods = _periods(cfg)
    rows: list[dict] = []
    held: list = []  # per fold: (predictive distribution, observations) over the last scored period
    todo = [f for f in folds if folds_only is None or f["fold"] in set(folds_only)]
    for f in todo:
        run = Run.load(train(fold_config(cfg, f), run_dir / f"fold_{f['fold']}", data=data))
        fitted: dict = {}  # baselines fitted once per fold, scored over each period
        for pname, period in periods.items():
            fold_rows, b, obs = _score_fold(run, data, f, pname, period, fitted)
            rows += fold_rows
        held.append((run.predict_distribution(data, None, None, batches=b), obs))  # the last period's batches
    if cv.temporal_reference if temporal is None else temporal:
        run = Run.load(train(temporal_config(cfg), run_dir / "temporal", data=data))
        rows += _score_temporal(run, data, todo, cfg.periods.test.as_tuple())
    table = pd.DataFrame(rows)
    summary = summarize(table, protocol=_protocol(cfg, len(units["ids"]), len(folds), periods))
    text = format_cv(summary)
    write_text(run_dir / "metrics.csv", table.to_csv(index=False))
    write_text(run_dir / "summary.json", json.dumps(summary, indent=1, default=float))
    text += cv_calibration_section(held, cfg.data.target, run_dir)
    write_text(run_dir / "report.txt", text + "\n")
    return CVResult(table, summary, text)


def _rows(fold: int, period: str, label: str, sites, obs: np.ndarray, sim: np.ndarray, data) -> list[dict]:
    m = station_metrics(obs, sim)
    lat, lon = (data[c].sel(site=np.asarray(sites)).values for c in ("lat", "lon"))
    return [{"fold": fold, "period": period, "row": label, "site": int(s), "lat": float(lat[i]), "lon": float(lon[i]),
             **{k: float(v[i]) for k, v in m.items()}, "n_obs": int(np.isfinite(obs[i]).sum())}
            for i, s in enumerate(sites)]


def _score_fold(run: Run, data, fold: dict, pname: str, period: tuple[str, str], fitted: dict):
    """Model (and member 0) and baseline rows of one fold's held-out units over ``period``, with the batches
    and observations (row, time, target) they were scored on."""
    b = run.adapter.eval_batches(data, np.asarray(fold["test"]), period)
    members = run.predict_members(data, None, None, batches=b)[..., 0]
    observed = run.adapter.observations(data, b)
    obs = observed[..., 0]
    out = _rows(fold["fold"], pname, MODEL, b.rows, obs, members.mean(axis=0), data)
    if members.shape[0] > 1:
        out += _rows(fold["fold"], pname, MEMBER0, b.rows, obs, members[0], data)
    cfg = run.cfg
    dates = b.time[b.score_from:]
    for name in cfg.cv.baselines:
        sim = _baseline(name, cfg, data, np.asarray(fold["train"]), b.rows, period, dates, fitted)
        out += _rows(fold["fold"], pname, BASELINE_LABELS[name], b.rows, obs, sim, data)
    return out, b, observed


def _baseline(name: str, cfg: RunConfig, ds, train_ids, test_ids, period, dates, fitted: dict) -> np.ndarray:
    target, cv, train_p = cfg.data.target[0], cfg.cv, cfg.periods.train.as_tuple()
    if name == "idw_climatology":
        return rb.idw_climatology(ds, target, train_ids, test_ids, train_p, dates, cv.idw_neighbours, cv.idw_power)
    if name == "idw_observations":
        return rb.idw_observations(ds, target, train_ids, test_ids, dates, cv.idw_neighbours, cv.idw_power)
    if name == "linear":
        return rb.linear_model(ds, target, cfg.data.dynamic, static_inputs(cfg), train_ids, test_ids, train_p, period)
    if name == "gbm":
        if "gbm" not in fitted:
            fitted["gbm"] = rb.fit_gbm(ds, target, cfg.data.dynamic, static_inputs(cfg), train_ids, train_p,
                                       seed=cfg.training.seed)
        return rb.gbm_predict(fitted["gbm"], ds, cfg.data.dynamic, static_inputs(cfg), test_ids, period)
    raise KeyError(name)


def _score_temporal(run: Run, data, folds: list[dict], period: tuple[str, str]) -> list[dict]:
    ids = np.concatenate([np.asarray(f["test"]) for f in folds]) if folds else np.zeros(0, dtype=int)
    b = run.adapter.eval_batches(data, ids, period)
    sim = run.predict_members(data, None, None, batches=b).mean(axis=0)[..., 0]
    obs = run.adapter.observations(data, b)[..., 0]
    fold_of = {int(s): f["fold"] for f in folds for s in f["test"]}
    out = []
    for i, s in enumerate(b.rows):
        out += _rows(fold_of[int(s)], "test", TEMPORAL, [s], obs[i:i + 1], sim[i:i + 1], data)
    return out


def summarize(table: pd.DataFrame, protocol: str = "") -> dict:
    """Per (period, row): per-fold and pooled medians over held-out units; per fold, the ratio of the
    model's median ubRMSE to the temporal reference's on the same units (test period). ``per_fold_median``,
    ``pooled_median`` and ``n_stations`` repeat the model's medians over the first scored period (the
    layout readers of the station CV know)."""
    out: dict = {"protocol": protocol, "periods": {}, "n_units": int(table["site"].nunique()) if len(table) else 0}
    for (period, label), sub in table.groupby(["period", "row"], sort=False):
        per_fold = sub.groupby("fold")[list(METRICS)].median()
        n = sub.groupby("fold")["site"].nunique()
        out["periods"].setdefault(period, {})[label] = {
            "per_fold": {int(f): {**per_fold.loc[f].to_dict(), "n_sites": int(n.loc[f])} for f in per_fold.index},
            "pooled": {**sub[list(METRICS)].median().to_dict(), "n_sites": int(sub["site"].nunique())},
        }
    first = next(iter(out["periods"].values()), {})
    if MODEL in first:  # the model on the first scored period, in the layout of the station CV's summary
        out["per_fold_median"] = {f: {k: v[k] for k in METRICS} for f, v in first[MODEL]["per_fold"].items()}
        out["pooled_median"] = {k: first[MODEL]["pooled"][k] for k in METRICS}
        out["n_stations"] = first[MODEL]["pooled"]["n_sites"]
    test = out["periods"].get("test", {})
    if MODEL in test and TEMPORAL in test:
        m, t = test[MODEL], test[TEMPORAL]
        out["ubrmse_ratio"] = {int(f): m["per_fold"][f]["ubRMSE"] / t["per_fold"][f]["ubRMSE"]
                               for f in m["per_fold"] if f in t["per_fold"]}
        out["ubrmse_ratio_pooled"] = m["pooled"]["ubRMSE"] / t["pooled"]["ubRMSE"]
    return out


def _protocol(cfg: RunConfig, n_units: int, n_folds: int, periods: dict) -> str:
    cv = cfg.cv
    how = {"station": f"{cv.k}-fold by station (seed {cv.seed})",
           "block": f"{cv.k}-fold by {cv.block_deg} deg lat/lon blocks (seed {cv.seed})",
           "network": "leave-one-network-out",
           "kmeans": f"{cv.k} contiguous regions, balanced k-means on EASE-2 coordinates (seed {cv.seed})",
           "ease2": f"{cv.k} contiguous regions of {cv.block_cells}x{cv.block_cells} {cv.grid} blocks (seed {cv.seed})",
           "regions": "leave-one-region-out over user regions"}[cv.kind]
    if cv.buffer_km > 0:
        how += f", {cv.buffer_km:g} km buffer ring left out of training"
    ms = cfg.multiscale
    obj = (f"multiscale w_coarse={ms.w_coarse} w_site={ms.w_site} agg={ms.aggregation}" if ms is not None
           else f"single-scale {cfg.training.loss}")
    scored = "; ".join(f"{k} = {p[0]}..{p[1]} ({PERIOD_TEXT[k]})" for k, p in periods.items())
    what = "stations" if ms is not None else "cells"
    return (f"spatial CV {how}, {n_folds} folds, {n_units} {what}; trained {cfg.periods.train.start}.."
            f"{cfg.periods.train.end} on each fold's training {what}; scored on held-out {what} only: {scored}; "
            f"model {cfg.model.name}, {cfg.n_members} member(s); objective {obj}; target normalisation "
            f"{cfg.normalization.target}; data reader {cfg.data.reader}")


def format_cv(summary: dict) -> str:
    """The printed report: protocol, then per scored period a table of rows x folds (medians over held-out
    units), then the held-out / temporal ubRMSE ratios."""
    lines = [f"Protocol: {summary['protocol']}"]
    head = f"{'row':<72} {'fold':>4} {'n':>4} " + " ".join(f"{k:>7}" for k in METRICS)
    for period, rows in summary["periods"].items():
        lines += ["", f"[{period}] {PERIOD_TEXT.get(period, period)}: median over each fold's held-out units", head]
        for label, r in rows.items():
            for f, v in r["per_fold"].items():
                lines.append(f"{label:<72} {f:>4} {v['n_sites']:>4} " + " ".join(f"{v[k]:7.4f}" for k in METRICS))
            v = r["pooled"]
            lines.append(f"{label:<72} {'all':>4} {v['n_sites']:>4} " + " ".join(f"{v[k]:7.4f}" for k in METRICS))
    if "ubrmse_ratio" in summary:
        ratios = ", ".join(f"fold {f}: {r:.3f}" for f, r in summary["ubrmse_ratio"].items())
        lines += ["", f"held-out / temporal median ubRMSE on the same cells (test period): {ratios}; "
                      f"all: {summary['ubrmse_ratio_pooled']:.3f}"]
    return "\n".join(lines)
