"""Issue 2 benchmark: the hydroDL temporal protocol on the real CONUS data.

Trains ``configs/conus_lstm.yaml`` (or ``--config``), evaluates it on the test
year and prints the protocol, our rows, the baseline rows and the published
hydroDL rows from the same run, then the required/goal checks.

    python benchmarks/conus_temporal.py [--config configs/conus_lstm.yaml] [--run-dir runs/conus_lstm]
"""

from __future__ import annotations

import argparse
import time

REQUIRED = {"pearson_r": (">=", 0.85), "ubrmse": ("<=", 0.029), "rmse": ("<=", 0.032)}
GOAL = {"pearson_r": (">=", 0.87), "ubrmse": ("<=", 0.026)}


def check(row, targets) -> list[str]:
    out = []
    for metric, (op, thr) in targets.items():
        v = float(row[metric])
        ok = v >= thr if op == ">=" else v <= thr
        out.append(f"{metric} {v:.4f} {op} {thr}: {'ok' if ok else 'MISSED'}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/conus_lstm.yaml")
    p.add_argument("--run-dir", default="runs/conus_lstm")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()

    from smfusion.config import load_config
    from smfusion.evaluation.report import evaluate
    from smfusion.training.run import train

    cfg = load_config(args.config)
    if args.threads:
        cfg.training.threads = args.threads
    t0 = time.perf_counter()
    train(cfg, args.run_dir)
    t_train = time.perf_counter() - t0
    rep = evaluate(args.run_dir)
    print(rep.text)
    ours = rep.summary.index[0]
    print(f"\ntraining wall time: {t_train:.0f} s ({cfg.n_members} member(s), "
          f"{cfg.training.threads or 'default'} threads)")
    print(f"required ({ours}): " + "; ".join(check(rep.summary.loc[ours], REQUIRED)))
    print(f"goal     ({ours}): " + "; ".join(check(rep.summary.loc[ours], GOAL)))


if __name__ == "__main__":
    main()
