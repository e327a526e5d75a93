"""Issue 13 benchmark: one LSTM at seen cells (hydroDL temporal protocol) with and without the new inputs.

Protocol: CONUS sample (412 cells, SMAP_AM, NLDAS-2 forcing), train 2015-04-01..2016-03-31 on every cell,
test 2016-04-01..2017-03-31, median over cells of the per-cell R, ubRMSE, RMSE and bias on days with SMAP.
Each row is one member of ``configs/conus_lstm.yaml`` (its first variant: LSTM 64, dropout 0.5, 3000
minibatches of 100 cells x 30 days, weight averaging over the last 5 epochs, per-site target scaling),
trained alone with seeds 0..N-1 (one thread each):

* ``hydroDL inputs``: the 7 forcings + 12 statics only (no ``descriptors``, no ``features``);
* ``+ climate indices``: + the 10 climate indices of the training-period forcing (``descriptors``);
* ``+ antecedent means``: + the trailing means of the forcing (``features.antecedent``): the config itself;
* ``+ water-balance buckets``: the config + 10 / 50 / 200 mm buckets (``features.bucket``; tried, not kept).

The evaluation's baseline rows of the config's own runs (climatology, linear model on the same inputs) and the published hydroDL rows (scored here from
``reference/`` in the data folder, same protocol) are printed beside.

    OMP_NUM_THREADS=1 python benchmarks/seen_cells.py [--seeds 4] [--jobs 2] [--out runs/seen_cells]

A finished run in ``--out`` is not retrained.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CONFIG = "configs/conus_lstm.yaml"
# name -> (config sections dropped, sections added); runs are numbered by row, so rows are only appended
ROWS = {"hydroDL inputs": (("descriptors", "features"), {}), "+ climate indices": (("features",), {}),
        "+ antecedent means": ((), {}),
        "+ water-balance buckets": ((), {"features": {"bucket": {"capacities_mm": [10, 50, 200]}}})}
RECIPE = "+ antecedent means"  # the config itself: its runs give the baseline rows
REQUIRED = {"R": 0.845, "ubRMSE": 0.029}


def single_config(config: str, drop: tuple, seed: int, add: dict | None = None):
    """The config's first variant as one member with training seed ``seed``, without the sections ``drop``,
    with the keys of ``add`` (section -> {key: value}) set."""
    import yaml

    from smfusion.config import parse_config

    raw = yaml.safe_load(Path(config).read_text())
    variants = raw.pop("variants", None) or [{}]
    for section in ("model", "training"):
        raw[section] = {**raw[section], **variants[0].get(section, {})}
    for section in drop:
        raw.pop(section, None)
    for section, keys in (add or {}).items():
        raw[section] = {**raw.get(section, {}), **keys}
    raw["training"].update(ensemble=1, seed=seed, threads=1, progress=False)
    return parse_config(raw, source=f"{config}, variant 0, seed {seed}, without {list(drop) or 'nothing'}"
                        f"{f', with {add}' if add else ''}")


def _train_and_score(job) -> list[tuple[str, float, float]]:
    from smfusion.evaluation.report import evaluate
    from smfusion.training.run import train

    cfg, run_dir = job
    if not (Path(run_dir) / "member_0" / "model.pt").is_file():
        train(cfg, run_dir)
    summary = evaluate(run_dir).summary
    return [(str(name), float(row["pearson_r"]), float(row["ubrmse"])) for name, row in summary.iterrows()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=CONFIG)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="runs/seen_cells")
    args = p.parse_args()

    jobs = [(single_config(args.config, drop, s, add), str(Path(args.out) / f"{i}_seed{s}"))
            for i, (drop, add) in enumerate(ROWS.values()) for s in range(args.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        scores = list(pool.map(_train_and_score, jobs))
    print(f"Protocol: {args.config}, variant 0 as one member (LSTM, per-site target scaling); train 2015-04-01.."
          "2016-03-31, test 2016-04-01..2017-03-31, 412 cells, SMAP_AM; median over cells; seeds 0.."
          f"{args.seeds - 1}; {time.perf_counter() - t0:.0f} s with {args.jobs} process(es)")
    print(f"{'row':<48} {'R per seed':<32} {'ubRMSE per seed':<32} {'mean R':>7} {'mean ubRMSE':>11}")
    for i, name in enumerate(ROWS):
        rows = scores[i * args.seeds:(i + 1) * args.seeds]
        r, u = np.array([x[0][1] for x in rows]), np.array([x[0][2] for x in rows])
        ok = (r >= REQUIRED["R"]).all() and (u <= REQUIRED["ubRMSE"]).all()
        print(f"{name:<48} {' '.join(f'{v:.4f}' for v in r):<32} {' '.join(f'{v:.4f}' for v in u):<32} "
              f"{r.mean():7.4f} {u.mean():11.4f}  R >= {REQUIRED['R']} and ubRMSE <= {REQUIRED['ubRMSE']} "
              f"with every seed: {'ok' if ok else 'MISSED'}")
    # baselines (fitted on the inputs of the last row: the full recipe) and the published rows
    for name, r, u in scores[list(ROWS).index(RECIPE) * args.seeds][1:]:
        print(f"{name:<48} {'':<32} {'':<32} {r:7.4f} {u:11.4f}")


if __name__ == "__main__":
    main()
