"""Fusion ablation table (paper-shaped), the real-data point table, and predict-points throughput.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/fusion_ablation.py [--out runs/fusion_bench]

1. SYNTHETIC shards (smfusion.synthetic.fusion_shards, 60 sensors x 30 days,
   8x8 patches, seed 0): configs/fusion_synthetic.yaml with fusion.groups
   growing one source at a time; rows: SMAP alone, GLDAS alone (rescaled on
   train), SMAP+GLDAS NN, then + each group. Split by sensor (fold 0 of 5
   test, 20% of the rest validation); metrics pooled over every example.
2. REAL data: configs/fusion_conus_points.yaml on the CONUS SMAP sample as a
   point table (label SMAP_AM of the day; see that config), split by cell.
3. Throughput of ``smfusion predict-points`` with the full synthetic model.

Sized for about 5-10 minutes on one core.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from smfusion.config import load_config
from smfusion.io.fusion_schema import ablation_rows
from smfusion.settings import conus_dir
from smfusion.synthetic.fusion_shards import write_shards
from smfusion.data.adapters.points import load_points
from smfusion.evaluation.report import evaluate
from smfusion.products.points import predict_points_file
from smfusion.training.run import train

REPO = Path(__file__).resolve().parents[1]


def _fmt(s):
    return f"{s['ubrmse']:7.4f} {s['rmse']:7.4f} {s['r']:6.3f}"


def _pct(a, b):
    return f"{100.0 * (a - b) / b:+6.1f}%"


def table(title: str, rows: list[tuple[str, dict]], ref: dict, protocol: str) -> str:
    head = f"{'row':<26}{'val ubRMSE':>10} {'RMSE':>7} {'R':>6} | {'test ubRMSE':>11} {'RMSE':>7} {'R':>6} |" \
           f" {'d ubRMSE':>8} {'d RMSE':>8} {'d R':>8}"
    lines = [title, protocol, head, "-" * len(head)]
    for name, m in rows:
        v, t = m["validation"], m["test"]
        lines.append(f"{name:<26}{_fmt(v):>26} | {_fmt(t):>27} | {_pct(t['ubrmse'], ref['ubrmse']):>8}"
                     f" {_pct(t['rmse'], ref['rmse']):>8} {_pct(t['r'], ref['r']):>8}")
    return "\n".join(lines)


def ablation(cfg_path: Path, points, out: Path, rows) -> list[tuple[str, dict]]:
    results = []
    base = None
    for name, groups in rows:
        cfg = load_config(cfg_path)
        cfg.fusion.groups = groups
        t0 = time.time()
        run = train(cfg, out / name.replace("+", "plus").replace(" ", "_"), resume=False, data=points.with_groups(groups))
        evaluate(run)
        m = json.loads((run / "metrics" / "metrics.json").read_text())
        print(f"  trained {name:<20} in {time.time() - t0:5.1f} s", flush=True)
        if base is None:
            base = m
            for b in ("SMAP alone", "GLDAS alone (rescaled)"):
                results.append((b, {k: base[k][b] for k in ("validation", "test")}))
        results.append((name, {k: m[k]["model"] for k in ("validation", "test")}))
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/fusion_bench")
    ap.add_argument("--sensors", type=int, default=60)
    ap.add_argument("--times", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)

    # 1. synthetic ablation
    shards = out / "synthetic_shards"
    write_shards(shards, n_sensors=args.sensors, n_times=args.times, size=8, seed=0, n_shards=4)
    cfg_path = REPO / "configs" / "fusion_synthetic.yaml"
    cfg = load_config(cfg_path)
    cfg.data.root = str(shards)
    tmp_cfg = out / "fusion_synthetic.yaml"
    from smfusion.config import dump_config
    from smfusion.io.atomic import write_text

    write_text(tmp_cfg, dump_config(cfg))
    points = load_points(cfg)
    rows = ablation(tmp_cfg, points, out / "synthetic", ablation_rows())
    ref = dict(rows)["SMAP+GLDAS NN"]["test"]
    n_sens = len(set(points.sensor.tolist()))
    print(table(
        "SYNTHETIC data (smfusion.synthetic.fusion_shards, seed 0) -- not real-world skill",
        rows, ref,
        f"protocol: {len(points)} examples of {n_sens} sensors, split by sensor (kfold fold 0 of 5 = test, 20% of "
        f"the rest = validation), metrics pooled over examples; d = test change vs SMAP+GLDAS NN",
    ))

    # 2. real-data point table
    if conus_dir() is None:
        print("\nREAL data table skipped: no CONUS sample (set SMFUSION_DATA_DIR)")
    else:
        ccfg_path = REPO / "configs" / "fusion_conus_points.yaml"
        ccfg = load_config(ccfg_path)
        cpts = load_points(ccfg)
        crow = [("SMAP+GLDAS NN", ["smap", "gldas"]), ("+ soilgrids", ["smap", "gldas", "soilgrids"]),
                ("+ modis", ["smap", "gldas", "soilgrids", "modis"])]
        crows = ablation(ccfg_path, cpts, out / "conus", crow)
        names = {"SMAP alone": "SMAP alone (persistence)", "GLDAS alone (rescaled)": "NLDAS API (rescaled)",
                 "SMAP+GLDAS NN": "SMAP+NLDAS NN", "+ soilgrids": "+ soil statics", "+ modis": "+ NDVI"}
        crows = [(names.get(n, n), m) for n, m in crows]
        print(table(
            "\nREAL data: CONUS SMAP sample (hydroDL CONUSv4f1) as a point table",
            crows, dict(crows)["SMAP+NLDAS NN"]["test"],
            f"protocol: {len(cpts)} cell-days 2015-04-01..2017-03-31 of 412 cells with SMAP_AM and an earlier "
            "retrieval <= 7 days before; label SMAP_AM of the day; split by cell (fold 0 of 5 = test, 20% of the "
            "rest = validation); pooled over cell-days; d = test change vs SMAP+NLDAS NN",
        ))

    # 3. predict-points throughput (full synthetic model)
    (unl,) = write_shards(out / "unlabelled", n_sensors=20, n_times=25, size=8, seed=1, n_shards=1, labelled=False)
    full_run = out / "synthetic" / ablation_rows()[-1][0].replace("+", "plus").replace(" ", "_")
    t0 = time.time()
    _, n = predict_points_file(unl, full_run, out / "predictions.csv", progress=False)
    dt = time.time() - t0
    print(f"\npredict-points throughput (full model, 8x8 patches, 1 thread, reading gzip shard incl. CRC): "
          f"{n / dt:.0f} examples/s ({n} examples in {dt:.2f} s)")


if __name__ == "__main__":
    main()
