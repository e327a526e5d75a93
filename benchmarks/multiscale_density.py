"""Issue 27 item 4: R at held-out stations against the density of training stations, on the twin.

    OMP_NUM_THREADS=1 python benchmarks/multiscale_density.py [--densities 5 10 20 40 80] [--seeds 0 1]

For each twin seed the twin of ``configs/multiscale_twin.yaml`` is generated with stations at every M36
cell (``station_fraction`` 1, up to ``--max-stations-per-cell``); ``--n-test`` stations (seeded by the
twin seed) are held out and scored over the test period; the training stations are the first
``round(d * fine cells / 1000)`` of the others in a seeded order, so the sets are nested. Rows:
(a) satellite only (no station: trained once per seed), (b) station only, (c) the config's multiscale
recipe, (d) the satellite product; median R and RMSE over the held-out stations, then the mean over seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))

from multiscale_twin import member_config  # noqa: E402

from smfusion.config import TwinConfig, load_config  # noqa: E402
from smfusion.data.adapters.multiscale import station_sites  # noqa: E402
from smfusion.data.loading import load_dataset, span  # noqa: E402
from smfusion.experiments.cv import station_metrics  # noqa: E402
from smfusion.runs import Run  # noqa: E402
from smfusion.training.run import train  # noqa: E402

ROWS = {"a": ("(a) satellite only", 1.0, 0.0), "b": ("(b) station only", 0.0, 1.0), "c": ("(c) multiscale recipe", None, 1.0)}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/multiscale_twin.yaml")
    ap.add_argument("--densities", type=float, nargs="+", default=[5, 10, 20, 40, 80],
                    help="training stations per 1000 fine cells")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="twin seeds (also the station draw)")
    ap.add_argument("--n-test", type=int, default=20)
    ap.add_argument("--max-stations-per-cell", type=int, default=3)
    ap.add_argument("--methods", default="abc")
    ap.add_argument("--run-dir", default="runs/bench_multiscale_density")
    ap.add_argument("--plot", default=None, help="write the curve as this PNG")
    ap.add_argument("--resume", action="store_true", help="reuse the trained runs already in --run-dir")
    ap.add_argument("--dynamics", choices=["calibrated", "original"], default=None,
                    help="twin dynamics (default: the config's; original = the twin before issue 27's calibration)")
    ap.add_argument("--sat-noise", type=float, default=None, help="twin sat_noise (0.03 in the original twin)")
    return ap.parse_args(argv)


def one_seed(cfg, seed: int, args, t0: float) -> list[dict]:
    cfg = cfg.model_copy(deep=True)
    cfg.data.twin = (cfg.data.twin or TwinConfig()).model_copy(update={
        "seed": seed, "station_fraction": 1.0, "max_stations_per_cell": args.max_stations_per_cell,
        **{k: v for k, v in (("dynamics", args.dynamics), ("sat_noise", args.sat_noise)) if v is not None}})
    ds = load_dataset(cfg.data, *span(cfg))
    period = (cfg.periods.test or cfg.periods.train).as_tuple()
    stations = np.random.default_rng(seed).permutation(station_sites(ds, cfg.data.target[0],
                                                                     cfg.periods.train.as_tuple()))
    test, pool = np.sort(stations[: args.n_test]), stations[args.n_test:]
    n_fine = ds.sizes["site"]
    obs = ds[cfg.data.target[0]].sel(site=test, time=slice(*period)).values
    rows_test = np.searchsorted(ds["site"].values, test)
    sat = ds["sm_satellite"].sel(site=test, time=slice(*period)).values
    out, sat_only = [], None
    for d in args.densities:
        n = int(round(d * n_fine / 1000))
        if n > pool.size:
            raise SystemExit(f"density {d:g} needs {n} training stations, the twin has {pool.size} besides the test")
        train_sites = np.sort(pool[:n])
        preds = {"(d) satellite product": sat}
        for key in args.methods:
            name, wc, ws = ROWS[key]
            if key == "a" and sat_only is not None:
                preds[name] = sat_only
                continue
            wc = cfg.multiscale.w_coarse if wc is None else wc
            # no operator without stations (as benchmarks/multiscale_twin.py's (a)): nothing would anchor it
            op = cfg.multiscale.observation.kind if cfg.multiscale.observation is not None and ws > 0 else "none"
            fcfg = member_config(cfg, wc, ws, cfg.multiscale.coarse_target, op, train_sites, test)
            rd = train(fcfg, Path(args.run_dir) / f"seed_{seed}" / f"d{d:g}_{key}", resume=args.resume, data=ds)
            p = Run.load(rd).predict_members(ds, ds["site"].values, period).mean(0)[..., 0][rows_test]
            preds[name] = p
            if key == "a":
                sat_only = p
            print(f"seed {seed} density {d:g} ({n} stations) {name} trained ({time.time() - t0:.0f} s)", flush=True)
        for name, p in preds.items():
            m = station_metrics(obs, p)
            out.append({"seed": seed, "density": d, "n_train": n, "method": name,
                        "R": float(np.nanmedian(m["R"])), "RMSE": float(np.nanmedian(m["RMSE"]))})
            print(f"  seed {seed} density {d:g} {name}: R {out[-1]['R']:.3f} RMSE {out[-1]['RMSE']:.4f}", flush=True)
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    t0 = time.time()
    rows = []
    for seed in args.seeds:
        rows += one_seed(cfg, seed, args, t0)
    df = pd.DataFrame(rows)
    tw = cfg.data.twin or TwinConfig()
    print(f"\nProtocol: twin n_coarse {tw.n_coarse} (x16 M09 cells), stations at every M36 cell (<= "
          f"{args.max_stations_per_cell} each), {args.n_test} held-out stations per seed, twin seeds {args.seeds}; "
          f"trained {cfg.periods.train.start}..{cfg.periods.train.end}, scored on the test period; medians over "
          "held-out stations, mean over seeds (per-seed values in brackets).")
    for metric in ("R", "RMSE"):
        print(f"\n{metric} at held-out stations; columns: training stations per 1000 fine cells")
        tab = df.pivot_table(index="method", columns="density", values=metric, aggfunc="mean")
        per = df.pivot_table(index="method", columns="density", values=metric, aggfunc=lambda v: list(v))
        for name in dict.fromkeys(df["method"]):
            fmt = ".3f" if metric == "R" else ".4f"
            cells = [f"{tab.loc[name, d]:{fmt}} [{' '.join(f'{v:{fmt}}' for v in per.loc[name, d])}]"
                     for d in tab.columns]
            print(f"{name:28s}" + "  ".join(cells))
    print("training stations per density:", dict(zip(df["density"], df["n_train"])))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        for ax, metric in zip(axes, ("R", "RMSE")):
            tab = df.pivot_table(index="method", columns="density", values=metric, aggfunc="mean")
            for name in dict.fromkeys(df["method"]):
                ax.plot(tab.columns, tab.loc[name], marker="o", label=name)
            ax.set_xscale("log")
            ax.set_xticks(list(tab.columns), [f"{d:g}" for d in tab.columns])
            ax.minorticks_off()
            ax.set_xlabel("training stations per 1000 fine (M09) cells")
            ax.set_ylabel(f"median {metric} at held-out stations")
        axes[0].legend()
        fig.suptitle(f"Twin, seeds {args.seeds}: multiscale vs station density")
        fig.savefig(args.plot, dpi=90)
    print(f"\nwall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
