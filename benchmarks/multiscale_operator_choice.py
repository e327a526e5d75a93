"""How the recipe's observation operator was chosen (issue 27): a short recipe, not the benchmark's.

    OMP_NUM_THREADS=1 python benchmarks/multiscale_operator_choice.py [--input-errors 0]

Twin seed 0, 24 M36 cells (384 M09 cells), stations split 3-fold by station (``split.kind kfold``, folds
0-2, each fold's held-out stations scored), LSTM hidden 24, 8 x 30 minibatches (3 coarse cells + 12
stations), trained 2015-04-01..2016-03-31, scored 2016-04-01..2016-12-31 (the short recipe of
tests/training/test_multiscale.py). Rows: station only, multiscale without operator, and the operator
kinds ``cell`` and ``static`` at lr_scale 1 and 10; pooled median R and RMSE over the held-out stations.
Chosen on this setting, then run unchanged in benchmarks/multiscale_twin.py (no tuning on its scenarios).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from smfusion.config import ObservationConfig, parse_config
from smfusion.data.loading import load_dataset, span
from smfusion.experiments.cv import station_metrics
from smfusion.runs import Run
from smfusion.training.run import train

VARIANTS = [("station only", None, 0.0), ("multiscale, no operator", None, 1.0),
            ("operator cell", {"kind": "cell"}, 1.0), ("operator cell, lr_scale 10", {"kind": "cell", "lr_scale": 10}, 1.0),
            ("operator static", {"kind": "static"}, 1.0),
            ("operator static, lr_scale 10", {"kind": "static", "lr_scale": 10}, 1.0)]


def config(w_coarse: float, fold: int, input_errors: float, observation: dict | None, twin: dict | None = None):
    return parse_config({
        "name": "ms_operator_choice",
        "data": {"reader": "twin", "dynamic": ["APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "SPFH_2_FORA"],
                 "static": ["Sand", "Clay", "Capa", "NDVI"], "target": ["sm_station"],
                 "twin": {"seed": 0, "n_coarse": 24, "input_errors": input_errors, **(twin or {})}},
        "periods": {"train": ["2015-04-01", "2016-03-31"], "test": ["2016-04-01", "2016-12-31"], "warmup_days": 365},
        "split": {"kind": "kfold", "k": 3, "fold": fold},
        "normalization": {"log1p": ["APCP_FORA"]},
        "model": {"name": "lstm", "hidden_size": 24, "dropout": 0.0},
        "training": {"epochs": 8, "iterations_per_epoch": 30, "seq_len": 120, "lr": 0.008, "threads": 1,
                     "lr_schedule": "cosine", "clip_grad_norm": 1.0, "progress": False, "checkpoint_every": 6},
        "multiscale": {"w_coarse": w_coarse, "w_site": 1.0, "groups_per_batch": 3, "stations_per_batch": 12,
                       "burn_in": 20, **({"observation": observation} if observation else {})},
    })


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input-errors", type=float, default=0.0)
    ap.add_argument("--run-dir", default="runs/bench_multiscale_operator_choice")
    ap.add_argument("--dynamics", choices=["calibrated", "original"], default="calibrated",
                    help="twin dynamics (the choice in docs/multiscale.md was made on: original, --sat-noise 0.03)")
    ap.add_argument("--sat-noise", type=float, default=None, help="twin sat_noise (default: the twin's)")
    args = ap.parse_args(argv)
    twin = {"dynamics": args.dynamics, **({} if args.sat_noise is None else {"sat_noise": args.sat_noise})}
    torch.set_num_threads(1)
    t0 = time.time()
    base = config(1.0, 0, args.input_errors, None, twin)
    ds = load_dataset(base.data, *span(base))
    period = base.periods.test.as_tuple()
    res: dict[str, list] = {}
    for fold in range(3):
        for name, obs, wc in VARIANTS:
            cfg = config(wc, fold, args.input_errors, obs, twin)
            run = Run.load(train(cfg, f"{args.run_dir}/{name.replace(' ', '_').replace(',', '')}", resume=False,
                                 data=ds))
            test = run.split.test
            pred = run.predict_members(ds, test, period).mean(0)[..., 0]
            m = station_metrics(ds["sm_station"].sel(site=test, time=slice(*period)).values, pred)
            res.setdefault(name, []).append(m)
            print(f"fold {fold} {name}: R {np.nanmedian(m['R']):.3f} RMSE {np.nanmedian(m['RMSE']):.4f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    print(f"\ninput_errors {args.input_errors:g}; pooled over the 3 folds' held-out stations")
    for name, ms in res.items():
        r = np.concatenate([m["R"] for m in ms])
        e = np.concatenate([m["RMSE"] for m in ms])
        print(f"{name:32s} median R {np.nanmedian(r):.3f}  RMSE {np.nanmedian(e):.4f}")


if __name__ == "__main__":
    main()
