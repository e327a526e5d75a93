"""Training speed-up of ``smfusion train --nproc 2`` (DistributedDataParallel, gloo) over one process (issue 17).

Protocol (printed with the figures): a SYNTHETIC store of 2,000 M36 cells
(``smfusion.synthetic.global_forcing``) read by ``grid_inputs``; an LSTM
(hidden ``--hidden``, no dropout, 1 member) trained for ``--iterations``
minibatches of ``--batch`` cells x ``--seq-len`` days, one thread per process;
the same config with 1 and with 2 processes (the global minibatch is the same,
each process runs the model on half of it). Printed: wall time of the training
loop per minibatch (from each run's timing of ``Trainer.fit``, i.e. without
start-up and data loading), the speed-up, and the largest relative difference
between the two loss curves.

Usage: ``python benchmarks/ddp_train.py [--out bench_out/ddp] [--hidden 256 --batch 128 --seq-len 180]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

CHILD = """
import json, sys, time
from smfusion.config import load_config
from smfusion.training import trainer
from smfusion.training.run import train
spent = []
fit = trainer.Trainer.fit
def timed(self, *a, **k):
    t0 = time.perf_counter(); out = fit(self, *a, **k); spent.append(time.perf_counter() - t0); return out
trainer.Trainer.fit = timed
train(load_config(sys.argv[1]), sys.argv[2])
import os
if os.environ.get("RANK", "0") == "0":
    print("FIT_SECONDS", json.dumps(spent))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="bench_out/ddp")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seq-len", type=int, default=180)
    p.add_argument("--iterations", type=int, default=30, help="minibatches in all (3 epochs)")
    args = p.parse_args(argv)
    import numpy as np
    import pandas as pd

    from smfusion.config import dump_config, parse_config
    from smfusion.grids.ease2 import get_grid, rowcol_to_latlon
    from smfusion.synthetic.global_forcing import write_forcing_store

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, cols = np.meshgrid(np.arange(80, 120), np.arange(150, 200), indexing="ij")
    store = out / "forcing.zarr"
    if not (store / ".zmetadata").is_file():
        write_forcing_store(store, rows.ravel(), cols.ravel(), "2015-01-01", "2016-12-31", seed=1)
    lat, lon = rowcol_to_latlon(get_grid("M36"), rows.ravel(), cols.ravel())
    cells = out / "cells.csv"
    pd.DataFrame({"lat": lat, "lon": lon}).to_csv(cells, index=False)
    names = ("precip", "tair", "swdown", "spfh", "sand", "clay", "sm")
    cfg = parse_config({
        "name": "ddp_bench",
        "data": {"reader": "grid_inputs", "dynamic": ["precip", "tair", "swdown", "spfh"], "static": ["sand", "clay"],
                 "target": ["sm"], "grid_inputs": {"grid": "M36", "cells": str(cells), "stores": [
                     {"path": str(store), "variables": {v: {"name": v} for v in names}}]}},
        "periods": {"train": ["2015-02-01", "2016-12-31"], "warmup_days": 0},
        "model": {"name": "lstm", "hidden_size": args.hidden, "dropout": 0.0},
        "training": {"epochs": 3, "batch_size": args.batch, "seq_len": args.seq_len,
                     "iterations_per_epoch": max(1, args.iterations // 3), "progress": False, "threads": 1}})
    path = out / "cfg.yaml"
    path.write_text(dump_config(cfg))
    load0 = open("/proc/loadavg").read().split()[0]
    results = {}
    for nproc in (1, 2):
        run_dir = out / f"run_{nproc}"
        env = dict(os.environ, OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-c", CHILD, str(path), str(run_dir)]
        if nproc > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                   "--no-python", *cmd]
        shutil.rmtree(run_dir, ignore_errors=True)
        t0 = time.perf_counter()
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode:
            print(res.stdout[-2000:], res.stderr[-4000:], file=sys.stderr)
            return 1
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith("FIT_SECONDS"))
        hist = json.loads((run_dir / "member_0" / "history.json").read_text())
        results[nproc] = {"fit": json.loads(line.split(" ", 1)[1])[0], "wall": time.perf_counter() - t0,
                          "loss": [r["train_loss"] for r in hist]}
    one, two = results[1], results[2]
    diff = max(abs(a - b) / abs(a) for a, b in zip(one["loss"], two["loss"]))
    print(f"DDP training: SYNTHETIC store, {rows.size:,} M36 cells; LSTM hidden {args.hidden}, no dropout; "
          f"{args.iterations} minibatches of {args.batch} cells x {args.seq_len} days; gloo; one thread per process")
    print(f"load average: {load0} -> {open('/proc/loadavg').read().split()[0]} (2 cores; other jobs share them)")
    print("| processes | training loop (s) | s per minibatch | whole command (s) |")
    print("|---|---|---|---|")
    for n, r in results.items():
        print(f"| {n} | {r['fit']:.1f} | {r['fit'] / (3 * max(1, args.iterations // 3)):.3f} | {r['wall']:.1f} |")
    print(f"speed-up of the training loop, 1 -> 2 processes: {one['fit'] / two['fit']:.2f}")
    print(f"loss per epoch (mean over its minibatches): 1 process {[round(v, 6) for v in one['loss']]}, "
          f"2 processes {[round(v, 6) for v in two['loss']]}; largest relative difference {diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
