"""Issue 13 benchmark: prediction at unseen places, regional cross-validation on the real CONUS sample.

Protocol: the 412 CONUS cells split into the project's 5 contiguous regional folds (balanced k-means
on EASE-Grid 2.0 coordinates, seed 0, each ~20% of the cells); each fold trains on the other 4 regions
over 2015-04-01..2016-03-31 and is scored on its held-out cells only over the test year
2016-04-01..2017-03-31 (unseen cells AND unseen year) and over the training year (unseen cells).
The same recipe trained on all cells (temporal split) gives the seen-cell score of the same cells.
Median over each fold's held-out cells of the per-cell R, ubRMSE, RMSE and bias vs SMAP_AM.

Each ablation row is a set of overrides of ``configs/conus_ungauged.yaml`` (``ROWS``); ``final`` is
the file itself. Trained folds are kept under ``--run-root/<row>/`` and reused on a re-run.

    python benchmarks/ungauged.py                      # every row (hours on 2 cores)
    python benchmarks/ungauged.py --rows issue,final   # some rows
    python benchmarks/ungauged.py --report             # print the rows already trained, train nothing
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import yaml

CONFIG = "configs/conus_ungauged.yaml"
STATIC_SOIL = ["Bulk", "Capa", "Clay", "Sand", "Silt"]
FLAGS = ["flag_albedo", "flag_extraOrd", "flag_landcover", "flag_roughness", "flag_vegDense", "flag_waterbody"]
CLIMATE = ["p_mean", "pet_mean", "aridity", "p_seasonality", "frac_snow", "high_prec_freq", "high_prec_dur",
           "low_prec_freq", "low_prec_dur", "t_mean"]
# trailing means of the forcing (data/features.py): the slow state a 30-day training window cannot see
ANTECEDENT = {"APCP_FORA": [3, 7, 30, 90], "TMP_2_FORA": [7, 30, 90], "DSWRF_FORA": [30], "SPFH_2_FORA": [30]}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        # an empty mapping replaces (clears) the section; a non-empty one is merged key by key
        out[k] = merge(out[k], v) if isinstance(v, dict) and v and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


# every setting an ablation row changes, as the issue's recipe has it; rows override some of them
ISSUE = {"descriptors": {"climate": [], "location": "none", "static_noise": 0.0}, "features": {"antecedent": {}},
         "normalization": {"target": "global"}, "model": {"hidden_size": 64, "dropout": 0.5},
         "training": {"weight_decay": 0.0, "ensemble": 1, "seed": 0, "lr": 0.003}, "variants": []}
# the final recipe's ensemble: 2 members of each of two variants (30-day windows with weight averaging,
# 90-day windows), as in configs/conus_ungauged.yaml
ENSEMBLE = {"training": {"ensemble": 2}, "variants": [{}, {"training": {"seq_len": 90, "iterations_per_epoch": 150}}]}


def row(**over) -> dict:
    return merge(ISSUE, over)


def seed(over: dict, s: int) -> dict:
    """The row ``over`` trained with seed ``s`` (the spread between seeds)."""
    return merge(over, {"training": {"seed": s}})


NOISE = row(descriptors={"climate": CLIMATE, "static_noise": 0.25})
ANTE = row(descriptors={"climate": CLIMATE}, features={"antecedent": ANTECEDENT})
ANTE_LOCATION = row(descriptors={"climate": CLIMATE, "static_noise": 0.25, "location": "xyz"},
                    features={"antecedent": ANTECEDENT})
# relative saturation of water-balance buckets (data/water_balance.py)
BUCKET = merge(ANTE_LOCATION, {"features": {"bucket": {"capacities_mm": [10, 50, 200]}}})
# every training cell weighs by its relative error (Kratzert et al. 2019's loss for ungauged basins)
NSE = merge(ANTE_LOCATION, {"training": {"loss": "nse"}})
ANTE_NOISE05 = merge(ANTE_LOCATION, {"descriptors": {"static_noise": 0.5}})
ANTE_H128 = merge(ANTE_LOCATION, {"model": {"hidden_size": 128}, "training": {"lr": 0.002}})
# the statics without the six 0/1-like flag_* maps (which may let the network tell training cells apart)
NO_FLAGS = merge(ANTE_LOCATION, {"data": {"static": ["Bulk", "Capa", "Clay", "NDVI", "Sand", "Silt"]}})
FOURIER = merge(ANTE_LOCATION, {"descriptors": {"location": "fourier"}})

# name -> (what the row changes, overrides of the final config). Rows are listed in the order the
# ablation tried them; docs/ungauged.md says which were kept.
ROWS: dict[str, tuple[str, dict]] = {
    "issue": ("the issue's recipe: conus_lstm member, global target scaling, 12 statics", row()),
    "climate": ("+ 10 climate indices of the training-period forcing",
                row(descriptors={"climate": CLIMATE})),
    "predicted": ("+ climate indices, target scaled by mean/std predicted from statics",
                  row(descriptors={"climate": CLIMATE}, normalization={"target": "predicted"})),
    "noise": ("+ climate indices, noise 0.25 on the statics of training minibatches", NOISE),
    "location": ("+ climate indices, noise 0.25, location as a unit vector (xyz)",
                 row(descriptors={"climate": CLIMATE, "static_noise": 0.25, "location": "xyz"})),
    "noise05": ("+ climate indices, noise 0.5 on the statics",
                row(descriptors={"climate": CLIMATE, "static_noise": 0.5})),
    "noise_s1": ("the noise row again with training seed 1 (the spread between seeds)", seed(NOISE, 1)),
    "wd": ("+ climate indices, noise 0.25, weight decay 1e-4", merge(NOISE, {"training": {"weight_decay": 1e-4}})),
    "antecedent": ("+ climate indices, trailing 3-90-day means of precipitation, temperature, radiation, humidity",
                   ANTE),
    "antecedent_s1": ("the antecedent row again with training seed 1 (the spread between seeds)", seed(ANTE, 1)),
    "ante_location": ("+ climate indices, antecedent means, noise 0.25, location as a unit vector (xyz)",
                      ANTE_LOCATION),
    "ante_location_s1": ("the ante_location row again with training seed 1", seed(ANTE_LOCATION, 1)),
    "bucket": ("+ climate indices, antecedent means, noise 0.25, xyz, 10/50/200 mm water-balance buckets",
               BUCKET),
    "bucket_s1": ("the bucket row again with training seed 1", seed(BUCKET, 1)),
    "nse": ("the ante_location row trained on NSE* (squared errors over each training cell's target std)",
            NSE),
    "nse_s1": ("the nse row again with training seed 1", seed(NSE, 1)),
    "ante_noise05": ("the ante_location row with noise 0.5 on the statics", ANTE_NOISE05),
    "ante_noise05_s1": ("the ante_noise05 row again with training seed 1", seed(ANTE_NOISE05, 1)),
    "ante_h32": ("the ante_location row with hidden size 32", merge(ANTE_LOCATION, {"model": {"hidden_size": 32}})),
    "ante_h128": ("the ante_location row with hidden size 128, learning rate 0.002", ANTE_H128),
    "ante_h128_s1": ("the ante_h128 row again with training seed 1", seed(ANTE_H128, 1)),
    "ante_short": ("the ante_location row trained 6 epochs, weights averaged over the last 3",
                   merge(ANTE_LOCATION, {"training": {"epochs": 6, "swa_epochs": 3}})),
    "ante_noflags": ("the ante_location row without the six flag_* statics", NO_FLAGS),
    "ante_fourier": ("the ante_location row with location as sin/cos of EASE-2 x, y at 4000 and 2000 km", FOURIER),
    "issue_ens": ("the issue's recipe as an ensemble of 4 (2 x 30-day SWA + 2 x 90-day windows)",
                  row(**ENSEMBLE)),
    "final": ("the final recipe (configs/conus_ungauged.yaml): climate indices, antecedent means, location, static "
              "noise 0.25, LSTM 128; ensemble of 4", {}),
}
REQUIRED = {"ratio": 1.10, "R": 0.80}


def row_config(name: str, config: str, args):
    from smfusion.config import parse_config

    raw = merge(yaml.safe_load(Path(config).read_text()), ROWS[name][1])
    if args.ensemble:
        raw["training"]["ensemble"] = args.ensemble
    if args.epochs:
        raw["training"]["epochs"] = args.epochs
        raw["training"]["swa_epochs"] = min(raw["training"].get("swa_epochs") or 0, args.epochs) or None
    raw["training"]["threads"] = args.threads
    raw["training"]["progress"] = False
    if name != "final" and not args.all_baselines:
        raw["cv"]["baselines"] = []
    return parse_config(raw, source=f"{config} + row {name}")


def fold_lines(name: str, summary: dict) -> list[str]:
    """Per-fold and median rows of the model (and member 0, baselines, temporal) on the test period."""
    test = summary["periods"]["test"]
    ratio = summary.get("ubrmse_ratio", {})
    out = []
    for label, r in test.items():
        for f, v in list(r["per_fold"].items()) + [("all", r["pooled"])]:
            rr = ratio.get(f) if label == "model" and f != "all" else (
                summary.get("ubrmse_ratio_pooled") if label == "model" else None)
            out.append(f"{name:<10} {label[:62]:<62} {str(f):>4} {v['R']:7.4f} {v['ubRMSE']:7.4f} {v['RMSE']:7.4f} "
                       f"{v['bias']:8.4f} " + (f"{rr:6.3f}" if rr is not None else "     -"))
    return out


def checks(summary: dict) -> str:
    test = summary["periods"]["test"]["model"]["per_fold"]
    ratio = summary.get("ubrmse_ratio", {})
    bad_r = [f for f, v in test.items() if v["R"] < REQUIRED["R"]]
    bad_u = [f for f, r in ratio.items() if r > REQUIRED["ratio"]]
    return (f"R >= {REQUIRED['R']} in every fold: {'ok' if not bad_r else f'MISSED in folds {bad_r}'}; "
            f"held-out/temporal ubRMSE <= {REQUIRED['ratio']} in every fold: "
            f"{'ok' if ratio and not bad_u else f'MISSED in folds {bad_u}'}")


def ablation_table(summaries: dict) -> str:
    """One line per row: held-out medians over all 412 cells (test year), per-fold R, the held-out/temporal
    ubRMSE ratio (all cells and worst fold), the temporal score of the same recipe, training-year R."""
    lines = ["| row | held-out R | ubRMSE | RMSE | bias | R per fold 0-4 | ratio (worst fold) | temporal R / ubRMSE"
             " | training-year R |", "|---|---|---|---|---|---|---|---|---|"]
    for name, sm in summaries.items():
        test = sm["periods"]["test"]
        m, t = test["model"], test.get("same recipe, temporal split (seen cells)")
        folds = " ".join(f"{v['R']:.3f}" for _, v in sorted(m["per_fold"].items()))
        ratio = sm.get("ubrmse_ratio", {})
        rr = f"{sm['ubrmse_ratio_pooled']:.3f} ({max(ratio.values()):.3f})" if ratio else "-"
        tt = f"{t['pooled']['R']:.4f} / {t['pooled']['ubRMSE']:.4f}" if t else "-"
        tr = sm["periods"].get("train", {}).get("model", {}).get("pooled", {}).get("R")
        p = m["pooled"]
        trs = f"{tr:.4f}" if tr is not None else "-"
        lines.append(f"| {name} | {p['R']:.4f} | {p['ubRMSE']:.4f} | {p['RMSE']:.4f} | {p['bias']:.4f} | {folds} | "
                     f"{rr} | {tt} | {trs} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=CONFIG)
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {list(ROWS)}")
    p.add_argument("--run-root", default="runs/ungauged")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ensemble", type=int, default=None, help="members per fold (default: the config's)")
    p.add_argument("--epochs", type=int, default=None, help="screening: fewer epochs than the config")
    p.add_argument("--all-baselines", action="store_true", help="baselines in every row (default: final only)")
    p.add_argument("--report", action="store_true", help="only print rows whose summary.json exists")
    p.add_argument("--folds", default=None, help="train only these folds, e.g. 0,1 or 2,temporal (to share the "
                   "work between processes; a run without --folds then reuses them and scores all)")
    args = p.parse_args()

    from smfusion.experiments.cv import run_cv

    head = (f"{'row':<10} {'scored':<62} {'fold':>4} {'R':>7} {'ubRMSE':>7} {'RMSE':>7} {'bias':>8} "
            f"{'ratio':>6}")
    done = {}
    for name in args.rows.split(","):
        run_dir = Path(args.run_root) / name
        if args.report:
            if not (run_dir / "summary.json").is_file():
                continue
            summary = json.loads((run_dir / "summary.json").read_text())
            summary = {**summary, "ubrmse_ratio": {int(k): v for k, v in summary.get("ubrmse_ratio", {}).items()},
                       "periods": {p_: {lab: {**r, "per_fold": {int(k): v for k, v in r["per_fold"].items()}}
                                        for lab, r in rows.items()} for p_, rows in summary["periods"].items()}}
        else:
            cfg = row_config(name, args.config, args)
            t0 = time.perf_counter()
            if args.folds:
                parts = args.folds.split(",")
                run_cv(cfg, run_dir, folds_only=[int(f) for f in parts if f != "temporal"],
                       temporal="temporal" in parts)
                print(f"{name}: trained folds {args.folds} in {time.perf_counter() - t0:.0f} s")
                continue
            summary = run_cv(cfg, run_dir).summary
            print(f"\n{name}: {ROWS[name][0]} -- {time.perf_counter() - t0:.0f} s", flush=True)
        print(f"\n{name}: {ROWS[name][0]}\nProtocol: {summary['protocol']}\n{head}")
        print("\n".join(fold_lines(name, summary)))
        if "train" in summary["periods"]:
            v = summary["periods"]["train"]["model"]["pooled"]
            print(f"{name:<10} training year, held-out cells (model, all folds): R {v['R']:.4f} ubRMSE "
                  f"{v['ubRMSE']:.4f} RMSE {v['RMSE']:.4f} bias {v['bias']:.4f}")
        print(f"{name:<10} {checks(summary)}", flush=True)
        done[name] = summary
    if len(done) > 1:
        print("\nAblation (test year 2016-04-01..2017-03-31, held-out cells, median over cells):")
        print(ablation_table(done))


if __name__ == "__main__":
    main()
