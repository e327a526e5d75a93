"""Global product on the distributed engine: every land cell of the EASE-2 36 km grid (issue 17).

1. Writes SYNTHETIC forcing (``smfusion.synthetic.global_forcing``: seasonal cycles
   by latitude, storms, a bucket soil-moisture target) for all 103,902 land cells
   of ``ease2/ease36land.nc`` to a local Zarr store (EASE-2 M36, (time, y, x)),
   2015-06-01 .. 2018-12-31 (kept for reruns).
2. Trains an LSTM on it (reader ``grid_inputs``, lazy training reads) on
   2015-07 .. 2015-12 -- a few minibatches: the skill is irrelevant here, the
   model's size is what counts.
3. Generates the product (site layout, Zarr) with a fresh ``LocalCluster`` per
   case and prints, per case: pixel-days per second, the model's work rate as
   a fraction of the dense float32 matmul limit of the same workers (best of
   five 1024^3 matmuls on every worker at once, measured before and after the
   product: their mean) and of the matmul rate they sustain over 10 s at the
   same times (other jobs on the machine take cores from both alike), and the
   peak resident memory of each worker
   (``VmHWM``; also after its imports, before any task).

Work counted: output pixel-days x members x model FLOPs per pixel-day
(2 x in x out per linear layer, 2 x 4H x (in + H) per LSTM step and layer);
the first block's warm-up (the run's ``warmup_days``) and everything else
(reading forcing, normalising, writing) are overhead. Cases: 100k cells x
1 year on 1 and on 2 workers (speed-up), 10k cells x 1 and 3 years, and
100k vs 10k cells (memory per worker).

Usage: ``python benchmarks/global_product.py [--out bench_out/global] [--hidden 256] [--cases CELLS:YEARS:WORKERS,...]``
(needs ``ease2/ease36land.nc`` in the data folder). Check ``uptime``: other
jobs on the machine change every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

STORE_PERIOD = ("2015-06-01", "2018-12-31")
TRAIN = ("2015-07-01", "2015-12-31")
YEARS = {1: ("2016-01-01", "2016-12-31"), 3: ("2016-01-01", "2018-12-31")}


def load() -> str:
    return open("/proc/loadavg").read().split()[0]


def write_store(out: Path) -> tuple[Path, Path]:
    """The SYNTHETIC forcing store (written once) and the cell list (lat/lon of every land cell)."""
    import numpy as np
    import pandas as pd

    from smfusion.grids.ease2 import get_grid, rowcol_to_latlon
    from smfusion.grids.land import land_cells
    from smfusion.synthetic.global_forcing import write_forcing_store

    rows, cols = land_cells("M36")
    store, cells = out / "forcing.zarr", out / "cells.csv"
    if not (store / ".zmetadata").is_file():
        t0 = time.perf_counter()
        shutil.rmtree(store, ignore_errors=True)
        write_forcing_store(store, rows, cols, *STORE_PERIOD)
        print(f"wrote the SYNTHETIC store {store} ({rows.size:,} cells, {STORE_PERIOD[0]} .. {STORE_PERIOD[1]}) "
              f"in {time.perf_counter() - t0:.0f} s")
    lat, lon = rowcol_to_latlon(get_grid("M36"), rows, cols)
    pd.DataFrame({"lat": np.round(lat, 6), "lon": np.round(lon, 6)}).to_csv(cells, index=False)
    return store, cells


def train_run(out: Path, store: Path, cells: Path, hidden: int, members: int) -> Path:
    from smfusion.config import parse_config
    from smfusion.training.run import train

    run_dir = out / f"run_h{hidden}_m{members}"
    if (run_dir / f"member_{members - 1}" / "model.pt").is_file():
        return run_dir
    names = ("precip", "tair", "swdown", "spfh", "sand", "clay", "sm")
    cfg = parse_config({
        "name": "global_bench",
        "data": {"reader": "grid_inputs", "dynamic": ["precip", "tair", "swdown", "spfh"], "static": ["sand", "clay"],
                 "target": ["sm"], "lazy": {"block_sites": 4096, "cache_mb": 512},
                 "grid_inputs": {"grid": "M36", "cells": str(cells),
                                 "stores": [{"path": str(store), "variables": {v: {"name": v} for v in names}}]}},
        "periods": {"train": list(TRAIN), "warmup_days": 30},
        "model": {"name": "lstm", "hidden_size": hidden, "dropout": 0.0},
        "training": {"epochs": 1, "batch_size": 64, "seq_len": 60, "iterations_per_epoch": 20, "ensemble": members,
                     "progress": False, "threads": 1},
        "uncertainty": {"noise_runs": 0}})
    t0 = time.perf_counter()
    train(cfg, run_dir)
    print(f"trained {run_dir} in {time.perf_counter() - t0:.0f} s (lazy reads, 20 minibatches per member)")
    return run_dir


def _worker_matmul(n: int = 1024, reps: int = 5, seconds: float = 10.0) -> tuple[float, float]:
    """Float32 FLOP/s of (n x n) @ (n x n) products on one thread (run on every worker at once): the best of
    ``reps`` single products (the limit) and the mean over ``seconds`` of back-to-back products (what the
    thread sustains while other jobs share the cores)."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ b
        k += 1
    return 2.0 * n**3 / best, 2.0 * n**3 * k / (time.perf_counter() - t0)


def _worker_peak_mb() -> float:
    """Peak resident memory of this process (VmHWM: reset by exec, unlike ru_maxrss, which a worker would
    inherit from the process that started it)."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024.0


def case(run_dir: Path, out: Path, n_cells: int, years: int, workers: int, chunk_sites: int) -> dict:
    """One product in a fresh local cluster: wall, the workers' matmul limit, their peak memory."""
    import numpy as np
    from distributed import Client, LocalCluster

    from smfusion.products.cluster import WORKER_ENV
    from smfusion.products.longterm import predict_product

    start, end = YEARS[years]
    target = out / f"product_{n_cells}_{years}y_{workers}w.zarr"
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(out / f".{target.name}.work", ignore_errors=True)
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0", env=dict(WORKER_ENV),
                      memory_limit=0) as lc, Client(lc) as client:
        client.run(lambda: __import__("smfusion.products.longterm"))  # imports outside the timing
        base = sorted(client.run(_worker_peak_mb).values())
        before = np.sum(list(client.run(_worker_matmul).values()), axis=0)
        load0 = load()
        t0 = time.perf_counter()
        predict_product(run_dir, start, end, target, chunk_sites=chunk_sites, client=client, progress=False,
                        sites=np.arange(n_cells))
        wall = time.perf_counter() - t0
        peaks = sorted(client.run(_worker_peak_mb).values())
        after = np.sum(list(client.run(_worker_matmul).values()), axis=0)
    limit, sustained = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    days = (np.datetime64(end) - np.datetime64(start)).astype(int) + 1
    shutil.rmtree(target, ignore_errors=True)
    return {"cells": n_cells, "years": years, "workers": workers, "days": int(days), "wall": wall, "limit": limit,
            "limits": (before[0], after[0]), "sustained": sustained, "sustaineds": (before[1], after[1]),
            "peaks": peaks, "base": base, "load": f"{load0} -> {load()}"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="bench_out/global")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--members", type=int, default=1)
    p.add_argument("--chunk-sites", type=int, default=2048)
    p.add_argument("--cases", default="all", help="all, or comma list of cells:years:workers (e.g. 103902:1:2)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from product_throughput import flops_per_step

    from smfusion.runs import Run

    print(f"load average at start: {load()} (2 cores; other jobs share them)")
    store, cells = write_store(out)
    run_dir = train_run(out, store, cells, args.hidden, args.members)
    run = Run.load(run_dir)
    n_all = sum(1 for _ in open(cells)) - 1
    f_step = flops_per_step(run.members[0])
    cases = [(n_all, 1, 1), (n_all, 1, 2), (10_000, 1, 1), (10_000, 3, 1)] if args.cases == "all" else \
        [tuple(int(v) for v in c.split(":")) for c in args.cases.split(",")]
    results = [case(run_dir, out, c, y, w, args.chunk_sites) for c, y, w in cases]
    print(f"\nProduct: LSTM hidden {args.hidden}, {len(run.members)} member(s), no noisy runs, warm-up "
          f"{run.cfg.periods.warmup_days} d before the first block, state carried across blocks; blocks of "
          f"{args.chunk_sites} cells x 366 days; site layout, Zarr; one thread per worker")
    print(f"model FLOPs per pixel-day (one member): {f_step:,.0f}")
    print("\n| cells | years | workers | pixel-days | wall (s) | pixel-days/s | GFLOP/s (output only) | "
          "matmul limit, before / after (GFLOP/s) | % of limit | sustained matmul, before / after | % of sustained |"
          " peak RSS per worker (MB) | after imports (MB) | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        px = r["cells"] * r["days"]
        rate = px / r["wall"]
        gf = rate * f_step * len(run.members) / 1e9
        r.update(rate=rate, pct=100 * gf * 1e9 / r["limit"], pct_sustained=100 * gf * 1e9 / r["sustained"])
        print(f"| {r['cells']:,} | {r['years']} | {r['workers']} | {px:,} | {r['wall']:.1f} | {rate:,.0f} | {gf:.2f} |"
              f" {r['limits'][0] / 1e9:.1f} / {r['limits'][1] / 1e9:.1f} | {r['pct']:.0f}% |"
              f" {r['sustaineds'][0] / 1e9:.1f} / {r['sustaineds'][1] / 1e9:.1f} | {r['pct_sustained']:.0f}% |"
              f" {', '.join(f'{m:.0f}' for m in r['peaks'])} | {', '.join(f'{m:.0f}' for m in r['base'])} |"
              f" {r['load']} |")
    by = {(r["cells"], r["years"], r["workers"]): r for r in results}
    if (n_all, 1, 1) in by and (n_all, 1, 2) in by:
        print(f"\nspeed-up 1 -> 2 workers ({n_all:,} cells, 1 year): "
              f"{by[(n_all, 1, 1)]['wall'] / by[(n_all, 1, 2)]['wall']:.2f}")
    if (10_000, 1, 1) in by and (10_000, 3, 1) in by:
        print(f"peak memory per worker, 3 years / 1 year (10,000 cells): "
              f"{max(by[(10_000, 3, 1)]['peaks']) / max(by[(10_000, 1, 1)]['peaks']):.3f}")
    if (10_000, 1, 1) in by and (n_all, 1, 1) in by:
        print(f"peak memory per worker, {n_all:,} / 10,000 cells (1 year): "
              f"{max(by[(n_all, 1, 1)]['peaks']) / max(by[(10_000, 1, 1)]['peaks']):.3f}")
    print(f"load average at end: {load()}")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
