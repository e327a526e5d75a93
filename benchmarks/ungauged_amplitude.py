"""Issue 13 diagnostic: the amplitude of the predicted series at held-out and at seen cells, and what fixing it
could give.

For a regional CV directory written by ``smfusion cv`` / ``benchmarks/ungauged.py`` (with its ``temporal/``
run), prints per fold, over the fold's held-out cells (test period, days with an observation, cells with >= 30
of them; medians over cells):

1. ``std(prediction) / std(SMAP_AM)``, median and quartiles, from the fold's model (the cells unseen) and from
   the temporal run (the same cells seen).
2. The held-out / temporal ubRMSE ratio as scored, and a *bound* on what an amplitude correction can give:
   the ratio if every held-out series were rescaled about its mean by the factor that minimises its ubRMSE,
   ``std(obs) sqrt(1 - R^2)`` (it uses the held-out target: an oracle, not a method).
3. A *transfer check* of a target-free amplitude correction: the rescaling factor ``k`` of each held-out
   cell, fitted over the training period (``k = cov(pred, obs) / var(pred)``), is predicted for fold i's
   cells from the other folds' held-out cells by (a) their median, (b) a ridge regression, (c) gradient-
   boosted trees on the run's static inputs plus the log std and mean of the cell's own prediction; the
   test-period prediction is rescaled by ``exp(log k)`` about its training-period mean and scored. This is
   optimistic (the other folds' models were trained on fold i's cells), so a correction that fails here
   would fail in an honest inner cross-validation too.

    OMP_NUM_THREADS=1 python benchmarks/ungauged_amplitude.py runs/ungauged_e3/final
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from smfusion.evaluation.metrics import pearson_r, ubrmse


def std_ratios(pred, obs, sites) -> np.ndarray:
    """``std(pred) / std(obs)`` per site on the days ``obs`` is finite (sites with >= 30 days, std > 0)."""
    out = []
    for s in sites:
        o = obs.sel(site=s).values
        ok = np.isfinite(o)
        if ok.sum() < 30 or np.std(o[ok]) == 0:
            continue
        out.append(np.std(pred.sel(site=s).values[ok]) / np.std(o[ok]))
    return np.asarray(out)


def rescale_factor(obs: np.ndarray, pred: np.ndarray) -> float:
    """The ``k`` minimising the ubRMSE of ``mean(pred) + k (pred - mean(pred))``: ``cov(pred, obs) / var(pred)``."""
    ok = np.isfinite(obs) & np.isfinite(pred)
    p, o = pred[ok] - pred[ok].mean(), obs[ok] - obs[ok].mean()
    return float(p @ o / (p @ p))


def exact_amplitude_ubrmse(obs: np.ndarray, pred: np.ndarray) -> float:
    """ubRMSE after the best rescaling about the mean: ``std(obs) sqrt(1 - R^2)`` (R <= 0: ``std(obs)``)."""
    r = float(pearson_r(obs, pred))
    return float(np.nanstd(obs[np.isfinite(pred)]) * np.sqrt(1 - r * r if r > 0 else 1.0))


def _features(data, statics: list[str], pred_train: np.ndarray) -> np.ndarray:
    """Per cell: its static inputs, and the log std and mean of its own training-period prediction."""
    x = np.column_stack([data[v].values for v in statics]
                        + [np.log(np.nanstd(pred_train, axis=1)), np.nanmean(pred_train, axis=1)]).astype(float)
    x = np.where(np.isfinite(x), x, np.nanmean(x, axis=0))
    return (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)


def transfer_check(obs_tr, obs_te, pred_tr, pred_te, fold_of, x) -> dict[str, list[float]]:
    """Median test ubRMSE per fold of each correction of section 3 of the module docstring."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV

    logk = np.log(np.clip([rescale_factor(o, p) for o, p in zip(obs_tr, pred_tr)], 0.2, 5.0))
    models = {"constant": None, "ridge": lambda: RidgeCV(alphas=np.logspace(-2, 3, 20)),
              "trees": lambda: HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_depth=3,
                                                             min_samples_leaf=20, random_state=0)}
    out = {name: [] for name in ("none", *models)}
    for f in np.unique(fold_of):
        fit, test = fold_of != f, fold_of == f
        for name in out:
            if name == "none":
                k = np.zeros(test.sum())
            elif models[name] is None:
                k = np.full(test.sum(), np.median(logk[fit]))
            else:
                k = models[name]().fit(x[fit], logk[fit]).predict(x[test])
            m = np.nanmean(pred_tr[test], axis=1, keepdims=True)
            scaled = m + np.exp(k)[:, None] * (pred_te[test] - m)
            out[name].append(float(np.nanmedian(ubrmse(obs_te[test], scaled))))
    return out


def main() -> None:
    from smfusion.runs import Run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cv_dir")
    args = p.parse_args()
    root = Path(args.cv_dir)
    temporal = Run.load(root / "temporal")
    (t0, t1), (start, end) = (tuple(str(d) for d in per.as_tuple())
                              for per in (temporal.cfg.periods.train, temporal.cfg.periods.test))
    data = temporal.load_data(t0, end)
    target = temporal.cfg.data.target[0]
    obs = data[target].sel(time=slice(start, end))
    seen = temporal.predict(start, end, data=data)[target].sel(time=obs.time)
    folds = json.loads((root / "folds.json").read_text())["folds"]
    sites, fold_of, pred = [], [], []
    print(f"{root}: test period {start}..{end}, over each fold's held-out cells")
    print(f"{'fold':<5} {'std(pred)/std(obs) held out':<30} {'seen (temporal run)':<22} {'ubRMSE ratio':>12} "
          f"{'bound: exact amplitude':>22}")
    for fold in folds:
        unseen = Run.load(root / f"fold_{fold['fold']}").predict(t0, end, data=data)[target]
        h, t = (std_ratios(x.sel(time=obs.time), obs, fold["test"]) for x in (unseen, seen))
        o, u, s = (x.sel(site=fold["test"]).values for x in (obs, unseen.sel(time=obs.time), seen))
        ub_seen = np.nanmedian(ubrmse(o, s))
        exact = np.nanmedian([exact_amplitude_ubrmse(a, b) for a, b in zip(o, u)])
        print(f"{fold['fold']:<5} {np.median(h):.3f} [{np.percentile(h, 25):.2f}-{np.percentile(h, 75):.2f}]"
              f"{'':<13} {np.median(t):.3f} [{np.percentile(t, 25):.2f}-{np.percentile(t, 75):.2f}]    "
              f"{np.nanmedian(ubrmse(o, u)) / ub_seen:12.3f} {exact / ub_seen:22.3f}")
        sites += list(fold["test"])
        fold_of += [fold["fold"]] * len(fold["test"])
        pred.append(unseen.sel(site=fold["test"]))
    pred = np.concatenate([x.values for x in pred])
    times = data.time.values
    tr, te = (times >= np.datetime64(t0)) & (times <= np.datetime64(t1)), np.isin(times, obs.time.values)
    obs_all = data[target].sel(site=sites).values
    statics = [v for v in temporal.cfg.data.static if v in data and data[v].dims == ("site",)]
    statics += [v for v in data.data_vars if str(v).startswith(("clim_", "loc_")) and v not in statics]
    x = _features(data.sel(site=sites), statics, pred[:, tr])
    res = transfer_check(obs_all[:, tr], obs_all[:, te], pred[:, tr], pred[:, te], np.asarray(fold_of), x)
    print(f"transfer check (median held-out test ubRMSE per fold, k from the other folds' held-out cells, "
          f"{len(statics)} statics + the prediction's log std and mean):")
    for name, v in res.items():
        print(f"  {name:<9} " + " ".join(f"{u:.4f}" for u in v))


if __name__ == "__main__":
    main()
