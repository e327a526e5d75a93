"""Evaluate a trained run (any adapter) on its test period and sites, beside baseline rows.

Series runs (sequence, multiscale) are scored per site (median over sites);
point runs pooled over a split's examples (:mod:`smfusion.evaluation.points`).
For series, writes under the run directory: ``predictions/test.nc`` (the mean, the distribution layers of
``smfusion predict`` when the run has a spread, the observations as ``<target>_obs``), ``metrics/sites_<row>.csv``,
``metrics/summary.csv``, ``metrics/metrics.json`` and ``plots/*.png``; returns the
printed report (protocol lines above the table of model and baseline rows). R is
reported on the full signal (``pearson_r``) and on anomalies from the observed
training-period climatology (``anomaly_r``). Ensembles (N > 1) and runs with
``uncertainty.noise_runs`` > 0 or a probabilistic head also get the calibration of
their predictive distribution, raw and recalibrated (``metrics/calibration.json``,
``plots/reliability.png``; :mod:`smfusion.evaluation.calibration`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.data.climatology import Climatology
from smfusion.data.loading import data_root
from smfusion.errors import ConfigError
from smfusion.evaluation import baselines, plots
from smfusion.evaluation.tables import Report, format_summary, site_table, summary
from smfusion.evaluation.calibration import calibration_section
from smfusion.evaluation.nowcast import lead_section
from smfusion.io import cf
from smfusion.io.atomic import atomic_path, write_text
from smfusion.io.layer_names import OBSERVED, layer
from smfusion.runs import Run

REFERENCE_PERIOD = ("2016-04-01", "2017-03-31")
ROW_LABELS = {
    "climatology": "baseline: training-period climatology",
    "linear": "baseline: linear model, same inputs",
    "hydrodl_lstm": "published hydroDL LSTM (ep100)",
    "hydrodl_multitask": "published hydroDL multitask LSTM (+Noah target)",
    "satellite": "baseline: satellite retrieval of the parent coarse cell",
}


def describe_members(cfg) -> str:
    """E.g. 'lstm hidden 64, ensemble of 8' or
    'ensemble of 16: 8 x lstm hidden 64 (SWA 5) + 8 x lstm hidden 128 (seq 90)'."""
    groups: dict[int, list] = {}
    for m in cfg.members():
        groups.setdefault(m.variant, []).append(m)

    def what(m) -> str:
        extra = [f"seq {m.training.seq_len}"] if m.training.seq_len != cfg.training.seq_len else []
        extra += [f"SWA {m.training.swa_epochs}"] if m.training.swa_epochs else []
        return f"{m.model.name} hidden {m.model.hidden_size}" + (f" ({', '.join(extra)})" if extra else "")

    if len(groups) == 1:
        return f"{what(cfg.members()[0])}, ensemble of {cfg.n_members}"
    return f"ensemble of {cfg.n_members}: " + " + ".join(f"{len(ms)} x {what(ms[0])}" for ms in groups.values())


def describe_seasonal(cfg) -> str:
    sea = cfg.seasonal
    text = f"target {sea.target_mode}, dynamic inputs {sea.input_mode}"
    if "anomaly" in (sea.target_mode, sea.input_mode):
        text += f" (anomalies from a {sea.window}-day day-of-year climatology of the training period"
        if sea.input_mode == "anomaly" and sea.input_period is not None:
            text += f"; inputs' of {sea.input_period.start} .. {sea.input_period.end}"
        text += ")"
    return text


def protocol_of(run: Run, n_sites: int) -> dict:
    cfg = run.cfg
    test = cfg.periods.test
    split = cfg.split.kind if cfg.split.kind != "kfold" else f"spatial {cfg.split.k}-fold, fold {cfg.split.fold}"
    return {
        "target": ", ".join(cfg.data.target),
        "period": f"train {cfg.periods.train.start} .. {cfg.periods.train.end}; test {test.start} .. {test.end}",
        "split": split,
        "n_sites": n_sites,
        "adapter": run.adapter.name,
        "inputs": f"{len(cfg.data.dynamic)} dynamic + {len(cfg.data.static)} static" + _extra(run.adapter),
        "model": describe_members(cfg),
        "seasonal": describe_seasonal(cfg),
        "statistic": "median over sites of per-site metric, days with an observation",
        "R": "pearson_r on the full signal; anomaly_r on anomalies from the observed training-period"
             f" {cfg.evaluation.climatology_window}-day climatology (same for obs and model)",
    }


def _extra(adapter) -> str:
    """' + N derived (names)' for runs with lagged / antecedent / polarization-ratio / bucket features and
    ' + N descriptors (names)' for runs with a descriptors section (docs/ungauged.md), as the adapter names
    them; else ''."""
    out = ""
    for kind, names in adapter.derived_inputs().items():
        out += f" + {len(names)} {kind} ({', '.join(names)})" if names else ""
    return out


def evaluate(run_dir: str | Path, plots_on: bool | None = None, recalibration: str | None = None) -> Report:
    """Score the run's test predictions and the baselines; write metrics, predictions, plots.
    ``recalibration`` (none, variance, isotonic) overrides ``uncertainty.recalibration``."""
    run = Run.load(run_dir)
    if recalibration is not None:
        run.cfg.uncertainty.recalibration = recalibration
    if run.layout == "points":
        from smfusion.evaluation.points import evaluate_points

        return evaluate_points(run)
    if run.cfg.periods.test is None:
        raise ConfigError(f"config of run '{run_dir}': periods.test is not set, so there is nothing to evaluate")
    return _evaluate_sites(run, plots_on)


def _evaluate_sites(run: Run, plots_on: bool | None) -> Report:
    cfg, run_dir = run.cfg, run.run_dir
    target = cfg.data.target[0]
    train_p, test_p = cfg.periods.train.as_tuple(), cfg.periods.test.as_tuple()
    ds = run.adapter.load()
    sites = run.split.test
    batches = run.adapter.eval_batches(ds, sites, test_p)
    passes = run.forward(batches, cfg.uncertainty.noise_runs)  # the one forward pass of every member
    raw = run.distribution(passes, "none", data=ds)
    dist = run.distribution(passes, data=ds)  # the config's recalibration
    member_pred = np.stack([raw[v].means for v in cfg.data.target], -1)
    pred = run.to_dataset(member_pred, ds, batches, noisy=passes.noisy)
    pred = run.add_distribution(pred, dist, ds, batches, cfg.uncertainty.quantiles)  # as `smfusion predict` has them
    observed = run.adapter.observations(ds, batches)
    obs = observed[..., 0]
    stored = pred.assign({layer(target, OBSERVED): (("site", "time"), obs, {  # the report reads them from the file
        "units": pred[target].attrs.get("units", ""), "long_name": f"observed {target} (the scored target)"})})
    cf.write_netcdf(stored, run_dir / "predictions" / "test.nc", title=f"smfusion {cfg.name} test predictions",
                    config=cfg.to_dict())
    times = pred["time"].values
    test_ds = ds.sel(site=sites)
    clim = Climatology().fit(test_ds[target], window=cfg.evaluation.climatology_window, period=train_p)
    clim_test = clim.climatology_for(times, site=sites).values
    lat, lon = test_ds.lat.values, test_ds.lon.values

    def table(sim: np.ndarray) -> pd.DataFrame:
        return site_table(obs, sim, sites, lat, lon, clim_obs=clim_test, clim_sim=clim_test)

    n = len(run.members)
    kind = " residual" if cfg.seasonal.target_mode == "anomaly" else ""
    ours = f"smfusion {cfg.model.name}{kind}" + (f" (ensemble mean of {n})" if n > 1 else " (single model)")
    tables = {ours: table(pred[target].values)}
    if n > 1:
        tables[f"smfusion {cfg.model.name} (member 0 alone)"] = table(member_pred[0, ..., 0])
    for name in cfg.evaluation.baselines:
        sim = _baseline(name, run.adapter, ds, sites, run.split.train, target, train_p, test_p)
        if sim is not None:
            tables[ROW_LABELS[name]] = table(sim)
    summ = summary(tables)
    protocol = protocol_of(run, len(sites))
    text = format_summary(summ, protocol)
    mdir = run_dir / "metrics"
    plots_enabled = cfg.evaluation.plots if plots_on is None else plots_on
    text += calibration_section(run, raw, dist, observed, run_dir, ours, plots=plots_enabled)
    text += _homogeneity(run, ds, pred[target].values, obs, sites, times, ours)
    if cfg.data_integration is not None:  # skill against lead beside persistence (docs/nowcast.md)
        text += lead_section(run)
    for i, (label, tab) in enumerate(tables.items()):
        with atomic_path(mdir / f"sites_{i}.csv") as tmp:
            tab.assign(row=label).to_csv(tmp)
    with atomic_path(mdir / "summary.csv") as tmp:
        summ.to_csv(tmp)
    payload = {"protocol": protocol, "summary": json.loads(summ.to_json(orient="index"))}
    write_text(mdir / "metrics.json", json.dumps(payload, indent=1))
    write_text(mdir / "report.txt", text + "\n")
    if cfg.evaluation.plots if plots_on is None else plots_on:
        obs_da = xr.DataArray(obs, dims=("site", "time"), coords={"site": sites, "time": times})
        _plots(run_dir / "plots", tables[ours], obs_da, pred[target], tables)
    return Report(text=text, summary=summ, protocol=protocol, tables=tables)


def _homogeneity(run: Run, ds, pred: np.ndarray, obs: np.ndarray, sites, times, label: str) -> str:
    """CASM runs (adapter tb) and data with a truth: trend of the test prediction minus the target and the truth."""
    truth = ds.attrs.get("truth")
    if run.adapter.name != "tb" and truth not in ds:
        return ""
    from smfusion.evaluation.product_check import homogeneity_lines

    refs = {run.cfg.data.target[0]: obs}
    if truth in ds and truth not in refs:
        refs[truth] = ds[truth].sel(site=sites, time=times).transpose("site", "time").values
    return "\n" + homogeneity_lines(pred, refs, times, label)


def _baseline(name, adapter, ds, sites, train_sites, target, train_p, test_p):
    cfg = adapter.cfg
    if name == "climatology":
        return baselines.climatology_baseline(
            ds.sel(site=sites), target, train_p, test_p, window=cfg.evaluation.climatology_window
        ).values
    if name == "linear":  # the model's own inputs, as the adapter has them: forcing, derived features, statics
        full, dynamic, static = adapter.baseline_inputs(ds)
        return baselines.linear_baseline(full.sel(site=train_sites), target, dynamic, static, train_p, test_p,
                                         test_ds=full.sel(site=sites)).values
    if name == "satellite":
        if cfg.multiscale is None or cfg.multiscale.satellite not in ds:
            return None  # multiscale runs only: the coarse retrieval repeated on its fine cells
        return ds[cfg.multiscale.satellite].sel(site=sites, time=slice(*test_p)).transpose("site", "time").values
    if name in ("hydrodl_lstm", "hydrodl_multitask"):
        if test_p != REFERENCE_PERIOD or target != "SMAP_AM" or cfg.data.reader != "hydrodl":
            return None  # published predictions exist for this protocol only
        from smfusion.io.hydrodl import read_reference

        ref = read_reference(data_root(cfg.data), name)
        return ref.sel(site=sites).values
    raise KeyError(name)


def _plots(pdir: Path, ours: pd.DataFrame, obs: xr.DataArray, pred: xr.DataArray, tables: dict) -> None:
    lat, lon = ours["lat"].values, ours["lon"].values
    plots.plot_site_map(lat, lon, ours["pearson_r"].values, "Per-site R vs SMAP (test)", pdir / "map_r.png", label="R")
    plots.plot_site_map(
        lat, lon, ours["ubrmse"].values, "Per-site ubRMSE (test)", pdir / "map_ubrmse.png", cmap="magma_r",
        label="ubRMSE (m3/m3)",
    )
    order = np.argsort(ours["pearson_r"].fillna(-1).values)
    pick = [int(order[len(order) // 10]), int(order[len(order) // 2]), int(order[-1])] if len(order) >= 3 else [0]
    plots.plot_timeseries(
        obs["time"].values,
        obs.values[pick],
        {"smfusion": pred.values[pick]},
        [f"site {ours.index[i]} (R={ours['pearson_r'].iloc[i]:.2f})" for i in pick],
        pdir / "timeseries.png",
        ylabel="soil moisture (m3/m3)",
    )
    plots.plot_scatter(obs.values, pred.values, pdir / "scatter.png", title="test period, all sites")
