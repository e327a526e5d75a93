"""Transfer learning between input sets on the real CONUS SMAP sample (issue 5).

Protocol (printed with the table):

* source A: all 7 NLDAS forcings + 12 statics, target SMAP_AM on the full first
  year 2015-04-01..2016-03-31, all 412 cells;
* source B: a different input set (precipitation and air temperature only, the
  same statics) with only 3 months of target, 2016-01-01..2016-03-31 (forcing
  before that serves as warm-up only);
* B from scratch vs B fine-tuned from A (the input layer re-mapped by variable
  name: columns of the 5 dropped forcings removed, shared columns kept), once
  with every part trainable and once with the recurrent core frozen, all with
  the same minibatch budget;
* scored on the test year 2016-04-01..2017-03-31 at all 412 cells (median over
  cells of the per-cell metric, days with SMAP), beside A itself.

Usage: ``python benchmarks/transfer.py [--out runs/bench_transfer] [--quick]``.
About 10 minutes on one core (LSTM hidden 64, 2 members per row).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

FORCINGS = ["APCP_FORA", "DLWRF_FORA", "DSWRF_FORA", "TMP_2_FORA", "SPFH_2_FORA", "VGRD_10_FORA", "UGRD_10_FORA"]
STATICS = ["Bulk", "Capa", "Clay", "NDVI", "Sand", "Silt", "flag_albedo", "flag_extraOrd", "flag_landcover",
           "flag_roughness", "flag_vegDense", "flag_waterbody"]
TEST = ["2016-04-01", "2017-03-31"]


def config(name, dynamic, train, iterations, epochs, transfer=None, hidden=64):
    from smfusion.config import parse_config

    raw = {
        "name": name,
        "data": {"dynamic": dynamic, "static": STATICS, "target": ["SMAP_AM"]},
        "periods": {"train": train, "test": TEST, "warmup_days": 365},
        "split": {"kind": "temporal"},
        "model": {"name": "lstm", "hidden_size": hidden, "dropout": 0.5},
        "training": {"epochs": epochs, "iterations_per_epoch": iterations, "batch_size": 100, "seq_len": 30,
                     "lr": 0.003, "ensemble": 2, "threads": 1, "checkpoint_every": epochs, "progress": False},
        "evaluation": {"baselines": ["climatology"], "plots": False},
    }
    if transfer:
        raw["transfer"] = transfer
    return parse_config(raw, source=name)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench_transfer")
    p.add_argument("--quick", action="store_true", help="tiny budget (smoke test, figures meaningless)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from smfusion.evaluation.report import evaluate
    from smfusion.training.run import train

    out = Path(args.out)
    it_a, ep_a, it_b, ep_b = (5, 1, 5, 1) if args.quick else (200, 10, 100, 8)
    b_inputs = ["APCP_FORA", "TMP_2_FORA"]
    b_train = ["2016-01-01", "2016-03-31"]
    runs = {
        "A: 7 forcings, full first year (source)": config("A", FORCINGS, ["2015-04-01", "2016-03-31"], it_a, ep_a),
    }
    a_dir = str(out / "A")
    runs["B from scratch (P + T, 3 months)"] = config("B_scratch", b_inputs, b_train, it_b, ep_b)
    runs["B fine-tuned from A, all parts"] = config("B_ft", b_inputs, b_train, it_b, ep_b, {"from_run": a_dir})
    runs["B fine-tuned from A, LSTM frozen"] = config("B_ft_frozen", b_inputs, b_train, it_b, ep_b,
                                                      {"from_run": a_dir, "freeze": ["lstm"]})
    import numpy as np
    import xarray as xr

    from smfusion.data.climatology import Climatology
    from smfusion.data.loading import load_dataset
    from smfusion.evaluation.tables import site_table, summary

    ds = load_dataset(runs["B from scratch (P + T, 3 months)"].data, "2015-04-01", TEST[1])
    obs = ds["SMAP_AM"].sel(time=slice(*TEST))
    # one climatology for every row: the observed one of the first year (A's training period)
    clim = Climatology().fit(ds["SMAP_AM"], window=31, period=("2015-04-01", "2016-03-31"))
    c = clim.climatology_for(obs.time.values, site=obs.site.values).values

    def table_of(sim):
        return site_table(obs.values, sim, obs.site.values, obs.lat.values, obs.lon.values, clim_obs=c, clim_sim=c)

    tables, seconds = {}, {}
    for label, cfg in runs.items():
        t0 = time.perf_counter()
        run_dir = train(cfg, out / cfg.name, resume=False)
        seconds[label] = time.perf_counter() - t0
        evaluate(run_dir, plots_on=False)  # writes predictions/test.nc and the run's own report
        with xr.open_dataset(run_dir / "predictions" / "test.nc") as pred:
            tables[label] = table_of(pred["SMAP_AM"].transpose("site", "time").values)
        print(f"{label}: trained in {seconds[label]:.0f} s", flush=True)
    tables["baseline: observed climatology of the first year"] = table_of(np.asarray(c))
    table = summary(tables)[["bias", "rmse", "ubrmse", "pearson_r", "anomaly_r", "n_sites"]]
    print()
    print("Target: SMAP_AM")
    print(f"Period: test {TEST[0]} .. {TEST[1]}; A trained 2015-04-01 .. 2016-03-31;"
          f" B trained {b_train[0]} .. {b_train[1]} (365-day forcing warm-up)")
    print("Split: temporal (every cell in training and test, different days)")
    print("Sites: 412")
    print(f"inputs: A = 7 NLDAS forcings + 12 statics; B = {' + '.join(b_inputs)} + the same 12 statics")
    print(f"model: LSTM hidden 64, dropout 0.5, ensemble mean of 2 per row; A {ep_a} x {it_a}, "
          f"every B row {ep_b} x {it_b} minibatches of 100 cells x 30 days")
    print("fine-tuning: A's weights, input layer re-mapped by variable name, A's normalisation for shared variables")
    print("statistic: median over cells of the per-cell metric, days with SMAP; anomaly_r: R of anomalies from the"
          " observed 31-day climatology of 2015-04-01 .. 2016-03-31 (same for every row)")
    print()
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print()
    print("training time (s, this machine): " + ", ".join(f"{k.split(':')[0].split(' (')[0]}: {v:.0f}"
                                                        for k, v in seconds.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
