"""Issue 13 diagnostic: how the test score of an ensemble run grows with its number of members, and where
it would end with infinitely many members of the same variants.

For a trained ensemble run (default ``runs/conus_lstm``, ``benchmarks/conus_temporal.py``), predicts every
member over the test period and prints the median over cells of R and ubRMSE (days with an observation) of
the mean of n members, n = 1, 2, 4, ... N (members drawn at random, the same share of each variant, averaged
over ``--draws`` draws), and the infinite-ensemble estimate per cell:

    ubRMSE_inf^2 = ubRMSE_N^2 - S / (N - 1),   S = mean over members of mean_t (e_m - e_bar)^2,

``e_m`` the anomaly error (prediction minus its mean, minus the same of the observation) of member m and
``e_bar`` their mean: the expected squared error of an N-member mean exceeds the infinite one by the
members' spread over N - 1 (with the unbiased spread), if the members are independent draws of one recipe.

With ``--folds FOLDS.json`` (a regional CV's ``folds.json``) it also prints the whole ensemble's median R and
ubRMSE over each fold's held-out cells: what a model that *saw* those cells' targets reaches there, the
ceiling to hold a held-out score against.

    OMP_NUM_THREADS=1 python benchmarks/ensemble_size.py [runs/conus_lstm] [--folds runs/ungauged_e3/final/folds.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from smfusion.evaluation.metrics import pearson_r, ubrmse


def _anomalies(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``x`` minus its mean over the days ``ok`` of each row, on those days (NaN elsewhere)."""
    x = np.where(ok, x, np.nan)
    return x - np.nanmean(x, axis=-1, keepdims=True)


def infinite_ensemble_ubrmse(obs: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Per row of ``obs`` (row, time), the estimate above from ``members`` (member, row, time)."""
    n = members.shape[0]
    ok = np.isfinite(obs) & np.isfinite(members).all(0)
    e = _anomalies(members, ok) - _anomalies(obs, ok)
    e_bar = e.mean(0)
    spread = np.nanmean(((e - e_bar) ** 2).mean(0), axis=-1)
    return np.sqrt(np.maximum(np.nanmean(e_bar ** 2, axis=-1) - spread / (n - 1), 0.0))


def subsets(variant_of: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` member indices with the same share of each variant (as near as n allows)."""
    groups = [rng.permutation(np.flatnonzero(variant_of == v)) for v in np.unique(variant_of)]
    order = [g[i] for i in range(max(len(g) for g in groups)) for g in groups if i < len(g)]
    return np.asarray(order[:n])


def main() -> None:
    from smfusion.runs import Run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?", default="runs/conus_lstm")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--folds", help="a regional CV's folds.json: also score the ensemble over each fold's cells")
    args = p.parse_args()
    run = Run.load(args.run_dir)
    start, end = (str(d) for d in run.cfg.periods.test.as_tuple())
    data = run.load_data(start, end)
    b = run.adapter.eval_batches(data, run.adapter.all_ids(data), (start, end))
    members = run.predict_members(data, None, None, batches=b)[..., 0]  # (member, site, time)
    _, coords = run.adapter.coords(data, b)  # the rows and scored days of the predictions
    target = run.cfg.data.target[0]
    obs = data[target].sel(site=coords["site"], time=coords["time"]).transpose("site", "time").values
    n_all = members.shape[0]
    variant_of = np.array([m.variant for m in run.cfg.members()])
    rng = np.random.default_rng(0)
    print(f"{args.run_dir}: {n_all} members in {len(np.unique(variant_of))} variant(s); test {start}..{end}, "
          f"{obs.shape[0]} cells, {target}; median over cells of the n-member mean (mean of {args.draws} draws)")
    n = 1
    while True:
        draws = [members[subsets(variant_of, n, rng)].mean(0) for _ in range(args.draws if n < n_all else 1)]
        r = np.mean([np.nanmedian(pearson_r(obs, d)) for d in draws])
        u = np.mean([np.nanmedian(ubrmse(obs, d)) for d in draws])
        print(f"  n = {n:>3}: R {r:.4f}  ubRMSE {u:.4f}")
        if n == n_all:
            break
        n = min(2 * n, n_all)
    print(f"  n = inf (estimate): ubRMSE {np.nanmedian(infinite_ensemble_ubrmse(obs, members)):.4f}")
    if args.folds:
        site = {s: i for i, s in enumerate(np.asarray(coords["site"]).tolist())}
        full = members.mean(0)
        print(f"all {n_all} members over the cells of each fold of {args.folds} (the cells seen in training):")
        for fold in json.loads(Path(args.folds).read_text())["folds"]:
            rows = [site[s] for s in fold["test"]]
            print(f"  fold {fold['fold']}: R {np.nanmedian(pearson_r(obs[rows], full[rows])):.4f}  "
                  f"ubRMSE {np.nanmedian(ubrmse(obs[rows], full[rows])):.4f}  ({len(rows)} cells)")


if __name__ == "__main__":
    main()
