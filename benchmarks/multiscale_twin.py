"""Multiscale vs single-scale on the twin experiment, spatial CV over stations.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/multiscale_twin.py [--scenario main]

For each fold (cfg.cv, or the scenario's CV) LSTMs are trained on the fold's
training stations and the satellite everywhere: (a) satellite only (w_site=0),
(b) station only (w_coarse=0), (c) multiscale (both terms, one row per
``--w-coarse`` value, ``--coarse-target`` and ``--observation`` operator, w_site=1; default: the config's
recipe). (a) uses no station, so it is trained once and scored in every fold. They are scored over the test period against
held-out stations only, beside (d) the satellite product itself (parent-cell
retrieval) and (e) the water balance run with wrong parameters and coarse
forcing ("land model"). Second block: against the fine truth at every fine cell
(each fold's model, median over cells, mean over folds).

Scenarios (``--scenario``; each flag below overrides the scenario's value):

- ``main``: the config as is (twin seed 0, 48 M36 cells, ~57 stations, 4-fold by station);
- ``weights``: main with w_coarse 1, 0.3, 0.1 for (c);
- ``sparse``: 96 M36 cells, stations in 20 % of them (1 each, ~19 stations, ~14 per training fold);
- ``block``: main with 4-fold CV by 4-degree lat/lon blocks (held-out stations in unseen regions);
- ``sparse-block``: sparse + block CV;
- ``anomaly``: main with (c) rows for both coarse targets (absolute, and window anomalies: the
  satellite constrains dynamics only, the stations the level);
- ``clean-satellite``: main with a satellite whose only errors are noise and gaps (no bias, seasonal
  error or gain loss): a diagnostic, not a realistic satellite.
- ``input-errors``: main with ``input_errors`` 1 (the model's forcing and soil inputs have realistic
  errors, the truth does not; docs/twin.md) and (c) rows for both coarse targets.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from smfusion.config import TwinConfig, load_config
from smfusion.data.adapters.multiscale import station_sites
from smfusion.data.loading import load_dataset
from smfusion.data.loading import span
from smfusion.data.spatial_cv import make_folds
from smfusion.experiments.cv import station_metrics
from smfusion.runs import Run
from smfusion.training.run import train

SCENARIOS = {
    "main": {},
    "weights": {"w_coarse": [1.0, 0.3, 0.1]},
    "sparse": {"n_coarse": 96, "station_fraction": 0.2, "max_stations_per_cell": 1},
    "block": {"cv_kind": "block", "block_deg": 4.0},
    "anomaly": {"coarse_target": ["absolute", "anomaly"]},
    "clean-satellite": {"sat_bias": 0.0, "sat_seasonal": 0.0, "sat_gain_loss": 0.0},
    "sparse-block": {"n_coarse": 96, "station_fraction": 0.2, "max_stations_per_cell": 1, "cv_kind": "block",
                     "block_deg": 4.0},
    "input-errors": {"input_errors": 1.0, "coarse_target": ["absolute", "anomaly"]},
}
TWIN_FLAGS = ("n_coarse", "station_fraction", "max_stations_per_cell", "seed", "sat_bias", "sat_seasonal",
              "sat_gain_loss", "sat_noise", "input_errors", "dynamics")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/multiscale_twin.yaml")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="main")
    ap.add_argument("--run-dir", default=None, help="default runs/bench_multiscale_twin/<scenario>")
    ap.add_argument("--w-coarse", type=float, nargs="+", default=None, help="w_coarse of (c) rows (w_site 1)")
    ap.add_argument("--coarse-target", choices=["absolute", "anomaly"], nargs="+", default=None,
                    help="coarse term(s) of the (c) rows: absolute values and/or window anomalies")
    ap.add_argument("--observation", choices=["none", "cell", "static"], nargs="+", default=None,
                    help="observation operator(s) of the (c) rows (default: the config's multiscale.observation)")
    ap.add_argument("--l2", type=float, default=None,
                    help="the observation operator's l2 penalty (default: the config's; 0.01 before the sparse diagnosis)")
    ap.add_argument("--ensemble", type=int, default=None,
                    help="members per trained row (training.ensemble; seeds training.seed + i), for every method alike")
    ap.add_argument("--methods", default="abc", help="which trained methods: any of a, b, c")
    ap.add_argument("--n-coarse", type=int, default=None)
    ap.add_argument("--station-fraction", type=float, default=None)
    ap.add_argument("--max-stations-per-cell", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None, help="twin seed")
    ap.add_argument("--sat-bias", type=float, default=None)
    ap.add_argument("--sat-seasonal", type=float, default=None)
    ap.add_argument("--sat-gain-loss", type=float, default=None)
    ap.add_argument("--input-errors", type=float, default=None, help="twin input_errors (0 off, 1 realistic)")
    ap.add_argument("--sat-noise", type=float, default=None, help="twin sat_noise (0.03 before issue 27's calibration)")
    ap.add_argument("--dynamics", choices=["calibrated", "original"], default=None,
                    help="twin dynamics: calibrated (default) or original (the twin before issue 27's calibration)")
    ap.add_argument("--cv-kind", choices=["station", "block", "network"], default=None)
    ap.add_argument("--block-deg", type=float, default=None)
    ap.add_argument("--k", type=int, default=None, help="number of CV folds")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the trained runs already in --run-dir (same config) instead of training afresh")
    return ap.parse_args(argv)


def setup(args: argparse.Namespace):
    """Config with the scenario's and the flags' overrides applied, and the list of (c) weights."""
    opts = dict(SCENARIOS[args.scenario])
    for key in ("w_coarse", "coarse_target", "observation", *TWIN_FLAGS, "cv_kind", "block_deg", "k"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    cfg = load_config(args.config)
    twin = (cfg.data.twin or TwinConfig()).model_copy(update={k: opts[k] for k in TWIN_FLAGS if k in opts})
    cfg.data.twin = twin
    cv = {k2: opts[k1] for k1, k2 in (("cv_kind", "kind"), ("block_deg", "block_deg"), ("k", "k")) if k1 in opts}
    cfg.cv = cfg.cv.model_copy(update=cv)
    w_list = [float(w) for w in opts.get("w_coarse", [cfg.multiscale.w_coarse])]
    targets = list(opts.get("coarse_target", [cfg.multiscale.coarse_target]))
    own = cfg.multiscale.observation
    if args.l2 is not None and own is not None:
        own = cfg.multiscale.observation = own.model_copy(update={"l2": args.l2})
        opts["l2"] = args.l2
    if args.ensemble is not None:
        cfg.training = cfg.training.model_copy(update={"ensemble": args.ensemble})
        opts["ensemble"] = args.ensemble
    observations = [own.kind if own is not None else "none"]
    if "observation" in opts:
        observations = list(opts["observation"])
    return cfg, [(w, t, o) for o in observations for t in targets for w in w_list], opts


def methods(which: str, variants: list[tuple[float, str, str]]) -> dict[str, tuple[float, float, str, str]]:
    """Trained rows: name -> (w_coarse, w_site, coarse_target, observation operator kind or 'none')."""
    out = {}
    if "a" in which:
        out["(a) satellite only"] = (1.0, 0.0, "absolute", "none")
    if "b" in which:
        out["(b) station only"] = (0.0, 1.0, "absolute", "none")
    if "c" in which:
        for w, t, o in variants:
            name = f"(c) multiscale w_coarse={w:g}" + (" anomaly" if t == "anomaly" else "")
            out[name + ("" if o == "none" else f" op={o}")] = (w, 1.0, t, o)
    return out


def member_config(cfg, wc: float, ws: float, ct: str, obs: str, train_sites, test_sites):
    """The config of one trained row of one fold (the recipe's operator settings kept, its kind replaced)."""
    from smfusion.config import ObservationConfig

    fcfg = cfg.model_copy(deep=True)
    op = None if obs == "none" else (fcfg.multiscale.observation or ObservationConfig()).model_copy(update={"kind": obs})
    fcfg.multiscale = fcfg.multiscale.model_copy(update={"w_coarse": wc, "w_site": ws, "coarse_target": ct,
                                                         "observation": op if wc > 0 else None})
    fcfg.training.progress = False
    fcfg.split = fcfg.split.model_copy(update={"kind": "sites", "train_sites": [int(s) for s in train_sites],
                                               "test_sites": [int(s) for s in test_sites]})
    return fcfg


def operator_rows(run: Run, ds, fold, name: str) -> list[dict]:
    """Per coarse cell: the learned operator's mean bias and gain over the training period beside the twin
    satellite's true errors in the same form (least squares of the retrieval on the coarse-mean truth),
    both evaluated at the coarse-mean truth (smfusion.evaluation.observation)."""
    from smfusion.evaluation.observation import coarse_means, fitted_errors, learned_errors

    cfg = run.cfg
    sub = ds.sel(time=slice(*cfg.periods.train.as_tuple()))
    coarse = sub["coarse"].values
    ids, x = coarse_means(sub["sm_true"].transpose("site", "time").values, coarse)
    _, sat = coarse_means(sub[cfg.multiscale.satellite].transpose("site", "time").values, coarse)
    _, lat = coarse_means(sub["lat"].values[:, None], coarse)
    _, lon = coarse_means(sub["lon"].values[:, None], coarse)
    doy = pd.DatetimeIndex(sub["time"].values).day_of_year.values
    scaler = run.adapter.scaler
    mu, sd = scaler.mean[cfg.multiscale.satellite], scaler.std[cfg.multiscale.satellite]
    true_b, true_g = fitted_errors(x, sat, doy, cfg.multiscale.observation.harmonics)
    rows = []
    for k, member in enumerate(run.members):
        b, g = learned_errors(member.observation, x, sat, doy, mu, sd)
        rows += [{"fold": fold, "method": name, "member": k, "coarse": int(c), "lat": lat[i, 0], "lon": lon[i, 0],
                  "bias": b[i], "gain": g[i], "true_bias": true_b[i], "true_gain": true_g[i]}
                 for i, c in enumerate(ids)]
    return rows


def report_operator(op: pd.DataFrame, out: Path) -> None:
    """Print learned vs true bias and gain (pooled over folds) and write them as CSV and a map."""
    out.mkdir(parents=True, exist_ok=True)
    op.to_csv(out / "operator.csv", index=False)
    print("\nobservation operator vs the twin satellite's true errors (per coarse cell, training period, pooled "
          "over folds)\n" + " " * 38 + " bias: mean   true   corr    MAE   gain: mean  true   corr")
    for name, d in op.groupby("method", sort=False):
        print(f"{name:38s}{d['bias'].mean():11.4f}{d['true_bias'].mean():7.4f}"
              f"{np.corrcoef(d['bias'], d['true_bias'])[0, 1]:7.2f}{(d['bias'] - d['true_bias']).abs().mean():7.4f}"
              f"{d['gain'].mean():11.3f}{d['true_gain'].mean():7.3f}{np.corrcoef(d['gain'], d['true_gain'])[0, 1]:7.2f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    d = op[op["method"] == op["method"].iloc[0]].groupby("coarse").mean(numeric_only=True)
    fig, axes = plt.subplots(2, 2, figsize=(11, 6), constrained_layout=True)
    for row, (key, lim) in enumerate((("bias", None), ("gain", None))):
        vals = np.concatenate([d[key].values, d[f"true_{key}"].values])
        lo, hi = np.nanmin(vals), np.nanmax(vals)
        for col, (col_key, title) in enumerate(((key, "learned"), (f"true_{key}", "twin satellite, true"))):
            sc = axes[row, col].scatter(d["lon"], d["lat"], c=d[col_key], vmin=lo, vmax=hi, cmap="RdBu", s=40)
            axes[row, col].set_title(f"{key}: {title}" + (" (m3/m3)" if key == "bias" else ""))
        fig.colorbar(sc, ax=axes[row, :].tolist())
    fig.suptitle(f"{op['method'].iloc[0]}: learned observation operator (mean over folds) vs true satellite errors")
    fig.savefig(out / "operator_map.png", dpi=90)
    plt.close(fig)


def paired(st: pd.DataFrame, first: str, second: str, n_boot: int = 2000) -> str:
    """Per held-out station, ``first`` minus ``second`` in R and RMSE: median difference, its 95 % bootstrap
    interval (stations resampled, seed 0) and how many stations ``first`` wins."""
    a = st[st["method"] == first].set_index(["fold", "site"])
    b = st[st["method"] == second].set_index(["fold", "site"]).loc[a.index]
    rng = np.random.default_rng(0)
    out = []
    for key, better in (("R", 1.0), ("RMSE", -1.0)):
        d = (a[key] - b[key]).to_numpy()
        d = d[np.isfinite(d)]
        boot = np.median(d[rng.integers(0, d.size, (n_boot, d.size))], axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        out.append(f"{key}: median {np.median(d):+.4f} [{lo:+.4f}, {hi:+.4f}], better at {(better * d > 0).sum()} of "
                   f"{d.size} stations")
    return f"{first} minus {second} per held-out station: " + "; ".join(out)


def print_bias(st: pd.DataFrame, order: list[str]) -> None:
    """Where the RMSE at held-out stations comes from (RMSE^2 = bias^2 + ubRMSE^2 per station): the bias
    against the station, against the truth at the station's cell (the model's own bias) and the rest
    (the station's own offset, station minus cell truth, the same for every method)."""
    print("\nRMSE at held-out stations split into bias and ubRMSE; the same held-out cells against their truth\n"
          "(median over stations unless 'mean'; 'rms': root of the mean square over stations)\n" + " " * 38
          + "  RMSE  rms RMSE |bias| bias^2/MSE mean bias | vs cell truth: R   RMSE  rms RMSE  sd bias mean bias")
    for name in order:
        s = st[st["method"] == name]
        share = (s["bias"] ** 2 / s["RMSE"] ** 2).median()
        print(f"{name:38s}{s['RMSE'].median():7.4f}{np.sqrt((s['RMSE'] ** 2).mean()):9.4f}"
              f"{s['bias'].abs().median():7.4f}{share:9.2f}{s['bias'].mean():11.4f}   {s['R_truth'].median():14.3f}"
              f"{s['RMSE_truth'].median():8.4f}{np.sqrt((s['RMSE_truth'] ** 2).mean()):9.4f}"
              f"{s['bias_truth'].std():9.4f}{s['bias_truth'].mean():10.4f}")
    s = st[st["method"] == order[0]]
    offset = s["bias_truth"] - s["bias"]  # station minus cell truth, mean over the scored days
    print(f"station offsets (station - cell truth, scored period): mean {offset.mean():+.4f}, sd {offset.std():.4f}, "
          f"median |.| {offset.abs().median():.4f}")
    if "(b) station only" in order:
        b = st[st["method"] == "(b) station only"].set_index(["fold", "site"])["bias_truth"]
        for name in (n for n in order if n.startswith("(c)")):
            c = st[st["method"] == name].set_index(["fold", "site"])["bias_truth"].loc[b.index]
            print(f"{name}: its bias vs cell truth correlates with (b)'s over the held-out stations, "
                  f"r = {b.corr(c):.2f}")


def print_tables(st: pd.DataFrame, tr: pd.DataFrame, order: list[str]) -> None:
    """Pooled medians at held-out stations, per-fold R, the fine-truth block and the paired (c) vs (b) lines."""
    print("\nvs held-out stations                    R       RMSE    ubRMSE   bias")
    for name in order:
        s = st[st["method"] == name]
        print(f"{name:38s}{s['R'].median():7.3f} {s['RMSE'].median():8.4f} {s['ubRMSE'].median():8.4f} "
              f"{s['bias'].median():8.4f}")
    print("\nper-fold median R vs held-out stations:")
    print(st.pivot_table(index="method", columns="fold", values="R", aggfunc="median").loc[order].round(3).to_string())
    print("\nvs fine truth at all fine cells (median over cells, mean over folds)   R   RMSE   ubRMSE")
    for name in order:
        s = tr[tr["method"] == name]
        print(f"{name:38s}{s['R'].mean():7.3f} {s['RMSE'].mean():8.4f} {s['ubRMSE'].mean():8.4f}")
    print_bias(st, order)
    base = "(b) station only"
    for name in order:
        if name.startswith("(c)") and base in order:
            print("\n" + paired(st, name, base))


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    cfg, w_list, opts = setup(args)
    run_root = Path(args.run_dir or f"runs/bench_multiscale_twin/{args.scenario}")
    t0 = time.time()
    ds = load_dataset(cfg.data, *span(cfg))
    target = cfg.data.target[0]
    period = (cfg.periods.test or cfg.periods.train).as_tuple()
    stations = station_sites(ds, target, cfg.periods.train.as_tuple())
    cv = cfg.cv
    folds = make_folds(cv.kind, stations, lat=ds["lat"].sel(site=stations).values,
                       lon=ds["lon"].sel(site=stations).values, networks=ds["network"].sel(site=stations).values,
                       k=cv.k, block_deg=cv.block_deg, seed=cv.seed)
    test_ds = ds.sel(time=slice(*period))
    truth = test_ds["sm_true"].values
    st_rows, truth_rows, op_rows = [], [], []
    station_free = {}  # satellite-only predictions (trained once: the folds differ only in their stations)
    trained = methods(args.methods, w_list)
    for f in folds:
        test = np.asarray(f["test"])
        obs = test_ds[target].sel(site=test).values
        preds = {"(d) satellite product": test_ds["sm_satellite"].sel(site=test).values,
                 "(e) land model (wrong parameters)": test_ds["sm_land_model"].sel(site=test).values}
        full = {"(d) satellite product": test_ds["sm_satellite"].values,
                "(e) land model (wrong parameters)": test_ds["sm_land_model"].values}
        for i, (name, (wc, ws, ct, op_kind)) in enumerate(trained.items()):
            if ws == 0 and name in station_free:  # no station enters it: the same model in every fold
                p = station_free[name]
            else:
                fcfg = member_config(cfg, wc, ws, ct, op_kind, f["train"], test)
                run = Run.load(train(fcfg, run_root / f"fold_{f['fold']}" / f"m{i}", resume=args.resume, data=ds))
                p = run.predict_members(ds, ds["site"].values, period).mean(0)[..., 0]
                if op_kind != "none" and wc > 0:
                    op_rows += operator_rows(run, ds, f["fold"], name)
                if ws == 0:
                    station_free[name] = p
                print(f"fold {f['fold']} {name} trained ({time.time() - t0:.0f} s)", flush=True)
            full[name] = p
            preds[name] = p[np.searchsorted(ds["site"].values, test)]
        at_truth = test_ds["sm_true"].sel(site=test).values  # the held-out station cells' truth
        for name, p in preds.items():
            m = station_metrics(obs, p)
            vs_truth = station_metrics(at_truth, p)
            st_rows += [{"fold": f["fold"], "method": name, "site": s, **{k: v[i] for k, v in m.items()},
                         **{f"{k}_truth": vs_truth[k][i] for k in ("R", "RMSE", "bias")}}
                        for i, s in enumerate(test)]
        for name, p in full.items():
            m = station_metrics(truth, p)
            truth_rows.append({"fold": f["fold"], "method": name, **{k: float(np.nanmedian(v)) for k, v in m.items()}})
    st = pd.DataFrame(st_rows)
    tr = pd.DataFrame(truth_rows)
    order = list(dict.fromkeys(st["method"]))
    tw = cfg.data.twin
    n_train = [len(f["train"]) for f in folds]
    how = (f"{cv.k}-fold by station (seed {cv.seed})" if cv.kind == "station" else
           f"{len(folds)}-fold by {cv.block_deg:g}-degree lat/lon blocks (seed {cv.seed})" if cv.kind == "block" else
           "leave-one-network-out")
    print()
    print(f"Scenario '{args.scenario}' {opts or ''}")
    print(f"Protocol: twin seed {tw.seed}, {ds.sizes['site']} M09 fine cells in "
          f"{np.unique(ds['coarse'].values).size} M36 cells, {len(stations)} stations (station_fraction "
          f"{tw.station_fraction:g}, <= {tw.max_stations_per_cell} per M36 cell; satellite bias {tw.sat_bias:g}, "
          f"seasonal {tw.sat_seasonal:g}, gain loss {tw.sat_gain_loss:g}, noise {tw.sat_noise:g}; input errors "
          f"{tw.input_errors:g}; dynamics {tw.dynamics}); CV {how}, "
          f"{min(n_train)}-{max(n_train)} training stations per fold; trained {cfg.periods.train.start}.."
          f"{cfg.periods.train.end}; scored {period[0]}..{period[1]}; LSTM hidden {cfg.model.hidden_size}, "
          f"{cfg.training.epochs} x {cfg.training.iterations_per_epoch} minibatches, w_site 1; "
          f"median over {len(st['site'].unique())} held-out stations (pooled over folds).")
    print_tables(st, tr, order)
    run_root.mkdir(parents=True, exist_ok=True)
    st.to_csv(run_root / "stations.csv", index=False)
    if op_rows:
        report_operator(pd.DataFrame(op_rows), run_root)
    print(f"\nwall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
