"""Throughput and peak memory of long-term product generation (issue 5).

Prints, in one run on this machine (1 thread):

* the measured dense float32 matmul rate (FLOP/s, best of several square
  matmuls) -- the limit the model is compared with;
* the model's FLOPs per pixel-day (one member, one forward pass: 2 x in x out
  per linear layer, 2 x 4H x (in + H) per LSTM step and layer) and the
  product's FLOPs per pixel-day (x members x (1 + noise runs) x warm-up overhead);
* the model's forward rate on in-memory arrays, as a fraction of the limit;
* end-to-end product generation (read forcing, features, anomalies, every
  member and noisy run, composites, CF NetCDF), in pixel-days per second and
  as a fraction of the limit;
* peak resident memory (``resource.getrusage`` of a fresh subprocess per case)
  for 1 and 3 years of output with the same chunking: it must stay flat.

Usage: ``python benchmarks/product_throughput.py --run runs/casm_conus`` (a trained
run, e.g. from ``smfusion train configs/casm_conus.yaml --run-dir runs/casm_conus``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

CASES = {1: ("2015-04-01", "2016-03-31"), 3: ("2015-04-01", "2018-03-31")}


def matmul_flops(n: int = 1024, reps: int = 5) -> float:
    """Best float32 FLOP/s over ``reps`` (n x n) @ (n x n) products on one thread."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def flops_per_step(model) -> float:
    """Multiply-add FLOPs of one forward step of one pixel (linear and LSTM layers).

    The MLP applies the statics' columns of its input layer once per sequence,
    not per day: those are not counted.
    """
    from torch import nn

    from smfusion.models.mlp import MLP

    total = -2.0 * model.n_static * model.input_layer[0].out_features if isinstance(model, MLP) else 0.0
    for mod in model.modules():
        if isinstance(mod, nn.Linear):
            total += 2.0 * mod.in_features * mod.out_features
        elif isinstance(mod, nn.LSTM):
            h = mod.hidden_size
            for layer in range(mod.num_layers):
                n_in = mod.input_size if layer == 0 else h
                total += 2.0 * 4 * h * (n_in + h)
    return total


def child(run: str, years: int, chunk_days: int, chunk_sites: int) -> None:
    """One product in this fresh process; prints JSON with wall time and peak RSS."""
    import torch

    torch.set_num_threads(1)
    from smfusion.products.longterm import predict_product

    start, end = CASES[years]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        predict_product(run, start, end, Path(tmp) / "p.nc", chunk_days=chunk_days, chunk_sites=chunk_sites,
                        progress=False)
        wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"years": years, "wall_s": wall, "peak_rss_mb": rss_mb}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default="runs/casm_conus")
    p.add_argument("--chunk-days", type=int, default=366)
    p.add_argument("--chunk-sites", type=int, default=512)
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        child(args.run, args.child, args.chunk_days, args.chunk_sites)
        return 0
    if not (Path(args.run) / "config.yaml").is_file():
        print(f"no trained run at {args.run}: train one first (smfusion train configs/casm_conus.yaml "
              f"--run-dir {args.run})", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from smfusion.runs import Run
    from smfusion.runs.passes import predict_batches

    limit = matmul_flops()
    run = Run.load(args.run)
    cfg = run.cfg
    n_mem, n_noise = len(run.members), cfg.uncertainty.noise_runs
    f_step = flops_per_step(run.members[0])

    # model forward on in-memory arrays (one member, all cells, one year + warm-up)
    start, end = CASES[1]
    w0 = (np.datetime64(start) - np.timedelta64(cfg.periods.warmup_days, "D")).astype(str)
    ds = run.adapter.load(str(w0), end, require_target=False, inputs_only=True)
    arr = run.adapter.eval_batches(ds, ds.site.values, (start, end))
    chunk = getattr(run.members[0], "predict_chunk_sites", arr.chunk)
    predict_batches(run.members[0], arr, chunk=chunk)
    t0 = time.perf_counter()
    reps = 3
    for _ in range(reps):
        predict_batches(run.members[0], arr, chunk=chunk)
    fwd_s = (time.perf_counter() - t0) / reps
    steps = arr.y.shape[0] * arr.y.shape[1]
    fwd_rate = steps * f_step / fwd_s

    # end-to-end product and peak memory, one fresh process per case
    results = {}
    for years in CASES:
        cmd = [sys.executable, __file__, "--run", args.run, "--child", str(years), "--chunk-days",
               str(args.chunk_days), "--chunk-sites", str(args.chunk_sites)]
        outp = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results[years] = json.loads(outp)
    n_site = arr.n_site
    warm_overhead = (args.chunk_days + cfg.periods.warmup_days) / args.chunk_days
    f_pixel_day = f_step * n_mem * (1 + n_noise) * warm_overhead

    print(f"Run: {args.run} ({cfg.model.name} hidden {cfg.model.hidden_size}, {n_mem} members, "
          f"{n_noise} noisy runs each, warm-up {cfg.periods.warmup_days} d)")
    print(f"Domain: {n_site} cells; chunks of {args.chunk_days} days x {args.chunk_sites} cells; 1 thread")
    print(f"measured dense matmul limit (float32, 1024^3): {limit / 1e9:.2f} GFLOP/s")
    print(f"model FLOPs per pixel-day (one member, one pass): {f_step:,.0f}")
    print(f"product FLOPs per pixel-day (x {n_mem} members x {1 + n_noise} passes x warm-up {warm_overhead:.2f}):"
          f" {f_pixel_day:,.0f}")
    print(f"model forward on in-memory arrays ({chunk} cells per pass): {steps / fwd_s:,.0f} pixel-days/s = {fwd_rate / 1e9:.2f} GFLOP/s"
          f" = {100 * fwd_rate / limit:.0f}% of the limit")
    print()
    print("| output | pixel-days | wall (s) | pixel-days/s | GFLOP/s | % of limit | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for years, r in results.items():
        t0, t1 = (np.datetime64(d) for d in CASES[years])
        px = n_site * (int((t1 - t0).astype(int)) + 1)
        rate = px / r["wall_s"]
        print(f"| {years} year(s) {CASES[years][0]} .. {CASES[years][1]} | {px:,} | {r['wall_s']:.1f} | {rate:,.0f} |"
              f" {rate * f_pixel_day / 1e9:.2f} | {100 * rate * f_pixel_day / limit:.0f}% | {r['peak_rss_mb']:.0f} |")
    ratio = results[3]["peak_rss_mb"] / results[1]["peak_rss_mb"]
    print(f"\npeak memory 3 years / 1 year: {ratio:.2f} ({'flat' if ratio < 1.15 else 'GROWS with the period'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
