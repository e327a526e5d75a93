"""The paper's fusion ablation on SYNTHETIC shards, a REAL-data point table, and predict-points throughput.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/fusion_ablation.py [--out runs/fusion_bench]

1. SYNTHETIC shards in the published layout (smfusion.synthetic.fusion_shards,
   60 sensors x 30 days, 8x8 images, seed 0; 10% of examples without
   Sentinel-2, 20% without ASTER): configs/fusion_synthetic.yaml with
   fusion.groups per row of the paper's ablation, in its order (SMAP alone,
   GLDAS alone rescaled on train, SMAP+GLDAS NN, S1+DEM, +S2, +SoilGrids,
   +SMAP+GLDAS). Split by sensor (fold 0 of 5 test, 20% of the rest
   validation); metrics pooled over every example; % change vs the SMAP+GLDAS
   NN with the paper's sign (+ = better).
2. REAL data: configs/fusion_conus_points.yaml on the CONUS SMAP sample as a
   point table (label SMAP_AM of the day; see that config), split by cell.
3. Throughput of ``smfusion predict-points`` with the full synthetic model.

Sized for about 5-10 minutes on one core. The small synthetic set is loaded into memory
(``fusion.stream: false``); ``--shards DIR`` instead runs the paper's ablation, streaming, on any
folder of shards in the published layout labelled by ``smfusion merge-labels`` (``--config``
for the training settings, default configs/fusion_synthetic.yaml):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fusion_ablation.py --shards data/smr_full \
        --config configs/fusion_published.yaml --out runs/fusion_ablation_published
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from smfusion.config import dump_config, load_config
from smfusion.experiments.fusion_ablation import row_slug, format_table, run_ablation
from smfusion.io.atomic import write_text
from smfusion.io.fusion_schema import GROUP_ORDER, ablation_rows
from smfusion.settings import conus_dir
from smfusion.synthetic.fusion_shards import write_shards
from smfusion.data.adapters.points import load_points
from smfusion.products.points import predict_points_file

REPO = Path(__file__).resolve().parents[1]


def synthetic(out: Path, sensors: int, times: int) -> None:
    shards = out / "synthetic_shards"
    write_shards(shards, n_sensors=sensors, n_times=times, size=8, seed=0, n_shards=4)
    cfg = load_config(REPO / "configs" / "fusion_synthetic.yaml")
    cfg.data.root = str(shards)
    write_text(out / "fusion_synthetic.yaml", dump_config(cfg))
    cfg.fusion.groups = list(GROUP_ORDER)
    cfg.fusion.stream = False  # 1,800 small examples: decoded once, held in memory
    points = load_points(cfg)
    rows = run_ablation(cfg, points, out / "synthetic")
    n_sens = len(set(points.sensor.tolist()))
    print(format_table(
        rows, "SYNTHETIC data (smfusion.synthetic.fusion_shards, published layout, seed 0) -- not real-world skill",
        f"protocol: {len(points)} examples of {n_sens} sensors, split by sensor (kfold fold 0 of 5 = test, 20% of "
        "the rest = validation), metrics pooled over examples, one training seed per row"))


def from_shards(out: Path, shards: Path, config: Path) -> None:
    """The paper's ablation streamed from ``shards`` (published layout, labelled), in the paper's order."""
    cfg = load_config(config)
    cfg.data.reader, cfg.data.root = "tfrecord", str(shards)
    cfg.fusion.groups, cfg.fusion.stream = list(GROUP_ORDER), True
    shard_set = load_points(cfg)  # the index only: examples are read as each step needs them
    rows = run_ablation(cfg, shard_set, out / "shards")
    n_sens = len(set(shard_set.sensor.tolist()))
    sp = cfg.split
    print(format_table(
        rows, f"Shards in {shards} (streamed; SYNTHETIC unless they are the published data)",
        f"protocol: {len(shard_set)} labelled examples of {n_sens} sensors in {len(shard_set.index.shards)} shards, "
        f"split by sensor (kfold fold {sp.fold} of {sp.k} = test, {sp.validation_fraction:.0%} of the rest = "
        f"validation, seed {sp.seed}), metrics pooled over examples, config {config}, one training seed per row"))


def real_points(out: Path) -> None:
    if conus_dir() is None:
        print("\nREAL data table skipped: no CONUS sample (set SMFUSION_DATA_DIR)")
        return
    cfg = load_config(REPO / "configs" / "fusion_conus_points.yaml")
    pts = load_points(cfg)
    rows = [("SMAP+GLDAS NN", ["smap", "gldas"]), ("+ soil statics", ["smap", "gldas", "soilgrids"]),
            ("+ NDVI", ["smap", "gldas", "soilgrids", "modis"])]
    res = run_ablation(cfg, pts, out / "conus", rows)
    names = {"SMAP alone": "SMAP alone (persistence)", "GLDAS alone (rescaled)": "NLDAS API (rescaled)",
             "SMAP+GLDAS NN": "SMAP+NLDAS NN"}
    res = [(names.get(n, n), m) for n, m in res]
    print(format_table(
        res, "\nREAL data: CONUS SMAP sample (hydroDL CONUSv4f1) as a point table (not the paper's task)",
        f"protocol: {len(pts)} cell-days 2015-04-01..2017-03-31 of 412 cells with SMAP_AM and an earlier "
        "retrieval <= 7 days before; label SMAP_AM of the day; split by cell (fold 0 of 5 = test, 20% of the "
        "rest = validation); pooled over cell-days", reference="SMAP+NLDAS NN"))


def throughput(out: Path) -> None:
    (unl,) = write_shards(out / "unlabelled", n_sensors=20, n_times=25, size=8, seed=1, n_shards=1, labelled=False)
    full_run = out / "synthetic" / row_slug(ablation_rows()[-1][0])
    t0 = time.time()
    _, n = predict_points_file(unl, full_run, out / "predictions.csv", progress=False)
    dt = time.time() - t0
    print(f"\npredict-points throughput (S1+DEM+S2+SoilGrids+SMAP+GLDAS model, 8x8 images, 1 thread, gzip shard "
          f"incl. CRC and decoding every field): {n / dt:.0f} examples/s ({n} examples in {dt:.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/fusion_bench")
    ap.add_argument("--sensors", type=int, default=60)
    ap.add_argument("--times", type=int, default=30)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--shards", type=Path, help="run only the ablation, streamed from this folder of labelled shards")
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "fusion_synthetic.yaml")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    if args.shards is not None:
        from_shards(out, args.shards, args.config)
        return
    synthetic(out, args.sensors, args.times)
    if not args.skip_real:
        real_points(out)
    throughput(out)


if __name__ == "__main__":
    main()
