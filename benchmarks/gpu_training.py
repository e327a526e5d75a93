"""Training on a CUDA device against the CPU: time per minibatch, and the accuracy of the same members.

Protocol (real data): the CONUS sample (412 cells, SMAP_AM, NLDAS-2 forcing), the seen-cell member of
``configs/conus_lstm.yaml`` (``benchmarks/seen_cells.py``'s ``+ antecedent means`` row: LSTM 64, dropout 0.5,
3000 minibatches of 100 cells x 30 days, weights averaged over the last 5 epochs, per-site target scaling),
train 2015-04-01..2016-03-31 on every cell, test 2016-04-01..2017-03-31, median over cells.

1. Time per minibatch of the training loop (``Trainer.fit`` of one epoch of 300 minibatches, without data
   loading) on the CPU with 1 thread and on the GPU.
2. Seeds 0..N-1 trained in full on each device (one process per member, 1 CPU thread each, all at once):
   wall time of each member's training and its test R / ubRMSE. The CPU and GPU members of one seed draw the
   same minibatches and start from the same weights; dropout masks come from each device's generator, so
   they are two draws of the same recipe, not the same numbers.

    python benchmarks/gpu_training.py [--seeds 4] [--out runs/gpu_training]

Needs a CUDA device; a finished member in ``--out`` is not retrained.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from seen_cells import CONFIG, single_config  # noqa: E402


def _time_epoch(device: str, out: Path) -> float:
    """Seconds per minibatch of one epoch of 300 minibatches on ``device`` (1 CPU thread)."""
    from smfusion.training import trainer
    from smfusion.training.run import train

    cfg = single_config(CONFIG, (), 0)
    cfg.training.device, cfg.training.epochs, cfg.training.swa_epochs = device, 1, None
    spent = []
    fit = trainer.Trainer.fit

    def timed(self, *a, **k):
        t0 = time.perf_counter()
        res = fit(self, *a, **k)
        spent.append(time.perf_counter() - t0)
        return res

    trainer.Trainer.fit = timed
    try:
        train(cfg, out / f"time_{device}", resume=False)
    finally:
        trainer.Trainer.fit = fit
    return spent[0] / cfg.training.iterations_per_epoch


def _member(job) -> tuple[float, float, float]:
    """Train (unless done) and score one member: (training seconds, R, ubRMSE)."""
    from smfusion.evaluation.report import evaluate
    from smfusion.training.run import train

    device, seed, run_dir = job
    cfg = single_config(CONFIG, (), seed)
    cfg.training.device = device
    t0 = time.perf_counter()
    if not (Path(run_dir) / "member_0" / "model.pt").is_file():
        train(cfg, run_dir)
    seconds = time.perf_counter() - t0
    row = evaluate(run_dir).summary.iloc[0]
    return seconds, float(row["pearson_r"]), float(row["ubrmse"])


def main() -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--out", default="runs/gpu_training")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("gpu_training: torch sees no CUDA device on this machine", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(f"Protocol: {CONFIG}, variant 0 as one member (LSTM 64, per-site target scaling); train 2015-04-01.."
          "2016-03-31, test 2016-04-01..2017-03-31, 412 cells, SMAP_AM; median over cells")
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    ctx = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:  # each timing in a fresh process
        per = {d: pool.submit(_time_epoch, d, out).result() for d in ("cpu", "cuda")}
    print(f"training loop, seconds per minibatch of 100 x 30 days: CPU (1 thread) {per['cpu'] * 1e3:.1f} ms, "
          f"GPU {per['cuda'] * 1e3:.1f} ms ({per['cpu'] / per['cuda']:.1f}x)")
    jobs = [(d, s, str(out / f"{d}_seed{s}")) for d in ("cpu", "cuda") for s in range(args.seeds)]
    with ProcessPoolExecutor(len(jobs), mp_context=ctx) as pool:
        res = dict(zip(jobs, pool.map(_member, jobs)))
    print(f"{'device':<6} {'seconds per member':<28} {'R per seed':<32} {'ubRMSE per seed':<32} mean R / ubRMSE")
    for d in ("cpu", "cuda"):
        rows = [res[j] for j in jobs if j[0] == d]
        t, r, u = (np.array([x[i] for x in rows]) for i in range(3))
        print(f"{d:<6} {' '.join(f'{v:.0f}' for v in t):<28} {' '.join(f'{v:.4f}' for v in r):<32} "
              f"{' '.join(f'{v:.4f}' for v in u):<32} {r.mean():.4f} / {u.mean():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
