"""Issue 2 speed benchmark: wall time and peak memory to reach median test R 0.841.

Same data, protocol and minibatch settings (100 cells x 30 days) for both:
  * smfusion: the base model and training settings of configs/conus_lstm.yaml (hidden-64 LSTM members; the config's variants are not used here),
    members trained one after another; after every epoch the test year is
    predicted and the median per-cell R of the ensemble so far (finished members
    plus the one in training) is scored; the clock counts training only.
  * hydroDL 0.1.5 itself (CpuLstmModel, its trainer), run by
    benchmarks/hydrodl_reference_run.py under .venv-hydrodl (see HYDRODL.md),
    in a subprocess, one after the other on the same machine.

    python benchmarks/train_speed.py [--threads 2] [--hydrodl-max-seconds 3600]

If hydroDL does not reach the target within its budget, the ratio is printed as
a lower bound (">=").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TARGET_R = 0.841


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_smfusion(config: str, threads: int, max_members: int) -> dict:
    import torch

    from smfusion.config import load_config
    from smfusion.data.adapters import adapter_for
    from smfusion.evaluation.metrics import pearson_r
    from smfusion.runs.load import build_member
    from smfusion.runs.passes import predict_batches
    from smfusion.training.trainer import Trainer

    t_wall = time.perf_counter()
    torch.set_num_threads(threads)
    cfg = load_config(config)
    cfg.training.progress = False
    adapter = adapter_for(cfg)
    ds = adapter.load()
    split = adapter.split(ds)
    adapter.fit(ds, split)
    tr = adapter.train_batches(ds, split, cfg.training)
    test_p = cfg.periods.test.as_tuple()
    arr = adapter.eval_batches(ds, split.test, test_p)
    target = cfg.data.target[0]
    obs = ds[target].sel(site=split.test, time=slice(*test_p)).values

    train_s, history, finished = 0.0, [], []
    reached = False
    for member in range(max_members):
        mcfg = cfg.training.model_copy(update={"seed": cfg.training.seed + member, "epochs": 1})
        torch.manual_seed(mcfg.seed)
        model = build_member(cfg, adapter)
        trainer = Trainer(model, mcfg)
        for epoch in range(1, cfg.training.epochs + 1):
            trainer.cfg = mcfg.model_copy(update={"seed": 1000 * mcfg.seed + epoch})
            t0 = time.perf_counter()
            trainer.fit(tr, None, resume=False)
            train_s += time.perf_counter() - t0
            sim = adapter.to_physical(predict_batches(model, arr)[:, arr.score_from:], arr)[..., 0]
            ens = np.mean([*finished, sim], axis=0)
            r = float(np.nanmedian(pearson_r(obs, ens)))
            history.append([member, epoch, round(train_s, 1), round(r, 4)])
            print(f"smfusion member {member} epoch {epoch}: {train_s:7.1f} s train, ensemble-so-far median R {r:.4f}",
                  flush=True)
            if r >= TARGET_R:
                reached = True
                break
        finished.append(sim)
        if reached:
            break
    return {
        "tool": "smfusion",
        "reached": reached,
        "train_seconds": train_s,
        "wall_seconds": time.perf_counter() - t_wall,
        "peak_rss_mb": peak_rss_mb(),
        "median_r": history[-1][3],
        "members": len(finished),
        "history": history,
    }


def run_hydrodl(threads: int, max_seconds: float, python: str) -> dict:
    if not Path(python).is_file():
        return {"tool": "hydroDL", "error": f"{python} not found: run bash benchmarks/setup_hydrodl_venv.sh"}
    cmd = [python, str(REPO / "benchmarks/hydrodl_reference_run.py"), "--threads", str(threads),
           "--max-seconds", str(max_seconds), "--target-r", str(TARGET_R)]
    print("running:", " ".join(cmd), flush=True)
    from smfusion.settings import data_dir

    # the hydroDL venv has no smfusion: hand it the data folder smfusion resolved, so both read the same files
    env = dict(os.environ)
    if data_dir() is not None:
        env["SMFUSION_DATA_DIR"] = str(data_dir())
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"tool": "hydroDL", "error": f"exit {proc.returncode}: {proc.stderr[-2000:]}"}
    return json.loads(lines[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "configs/conus_lstm.yaml"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-members", type=int, default=8)
    p.add_argument("--hydrodl-max-seconds", type=float, default=3600.0)
    p.add_argument("--hydrodl-python", default=str(REPO / ".venv-hydrodl/bin/python"))
    p.add_argument("--skip-hydrodl", action="store_true")
    args = p.parse_args()

    print(f"Protocol: train 2015-04-01..2016-03-31, test 2016-04-01..2017-03-31, 412 cells, target SMAP_AM, "
          f"7 forcings + 12 statics; minibatch 100 cells x 30 days; {args.threads} threads; "
          f"stop at median test R >= {TARGET_R}; clock = training only.")
    # hydroDL first: a child's ru_maxrss starts from its parent's high-water mark at
    # fork, so running it after our training would report our peak as its own.
    theirs = None if args.skip_hydrodl else run_hydrodl(args.threads, args.hydrodl_max_seconds, args.hydrodl_python)
    ours = run_smfusion(args.config, args.threads, args.max_members)

    print("\n| tool | reached R 0.841 | training s | wall s | peak RSS MB | final median R |")
    print("|---|---|---|---|---|---|")
    for res in (ours, theirs):
        if res is None:
            continue
        if "error" in res:
            print(f"| {res['tool']} | error: {res['error'][:200]} | | | | |")
            continue
        print(f"| {res['tool']} | {res['reached']} | {res['train_seconds']:.0f} | {res['wall_seconds']:.0f} | "
              f"{res['peak_rss_mb']:.0f} | {res['median_r']:.4f} |")
    if theirs and "error" not in theirs and ours["reached"]:
        ratio = theirs["train_seconds"] / ours["train_seconds"]
        bound = "" if theirs["reached"] else ">= "
        print(f"\nspeed-up (hydroDL training s / smfusion training s): {bound}{ratio:.1f}x "
              f"(target >= 5x){'' if theirs['reached'] else ' - hydroDL did not reach R 0.841 within its budget'}")
    print(json.dumps({"smfusion": ours, "hydroDL": theirs}))


if __name__ == "__main__":
    sys.exit(main())
