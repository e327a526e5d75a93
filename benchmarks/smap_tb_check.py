"""Real-data check of the brightness-temperature path (issue 14, item 6): SMAP L2 TB -> soil moisture.

Protocol (printed with the table):

* data: the two real SMAP L2 half-orbit granules of ``../shared/data/smap_l2``
  (SPL2SMP v8, 2015-08-11, ascending), read by :mod:`smfusion.io.smap_l2`;
  target = ``soil_moisture`` (DCA) of recommended quality (retrieval_qual_flag
  bit 0), inputs = ``tb_h_corrected`` / ``tb_v_corrected`` of good quality
  (tb_qual_flag bit 0) plus the ancillary fields present in the granule
  (surface temperature, vegetation water content, clay, sand, bulk density,
  roughness h, albedo, water fraction, incidence angle) and the derived
  polarisation ratio PR = (V - H) / (V + H) and TB / T_s; the retrieved
  ``vegetation_opacity`` is *not* an input (it is a co-retrieved output);
* one sample per EASE-2 M36 cell (a cell seen by both half-orbits keeps the
  first), cells with every input and the target valid;
* split: spatial k-fold over blocks of B x B M36 cells (default 5 folds,
  B = 4, about 144 km): no test cell shares a block with a training cell;
  repeated with ``--repeats`` seeded block assignments;
* statistics over the pooled test pixels of one repetition (a single day:
  the correlation is spatial), mean and standard deviation over repetitions:
  R (Pearson), ubRMSE, RMSE, bias, in m3/m3;
* models: MLP (2 x 64 ReLU, Adam, full batch, ensemble of 3 seeds) and
  ordinary least squares, each on all inputs and on TB only (H, V, PR); the
  training-set mean as the floor.

This is a sanity bound on real L-band data (TB carries the soil-moisture
signal the DCA retrieval uses), not CASM's skill: one day, one product, and
the DCA retrieval is itself a function of these inputs.

Usage: ``python benchmarks/smap_tb_check.py [--folds 5] [--block 4] [--repeats 5] [--epochs 400]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

TB = ["tb_h_corrected", "tb_v_corrected"]
ANCILLARY = ["surface_temperature", "vegetation_water_content", "clay_fraction", "sand_fraction", "bulk_density",
             "roughness_coefficient", "albedo", "static_water_body_fraction", "boresight_incidence"]


def load_cells(folder: Path):
    """Inputs (dict of 1-D arrays), target and M36 row/col of every usable cell of the granules."""
    from smfusion.io.smap_l2 import find_l2_granules, read_l2_granule

    paths = find_l2_granules(folder)
    if not paths:
        sys.exit(f"no SMAP L2 granules under {folder}")
    parts = []
    for p in paths:
        g = read_l2_granule(p, ("soil_moisture", *TB, *ANCILLARY), quality="recommended", tb_quality="good")
        parts.append({v: g[v].values for v in ("soil_moisture", *TB, *ANCILLARY, "row", "col")})
    data = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    _, first = np.unique(data["row"] * 1000 + data["col"], return_index=True)  # a cell seen twice: the first
    data = {k: v[np.sort(first)] for k, v in data.items()}
    n_cells = first.size
    data["pr"] = (data["tb_v_corrected"] - data["tb_h_corrected"]) / (data["tb_v_corrected"] + data["tb_h_corrected"])
    data["ev"] = data["tb_v_corrected"] / data["surface_temperature"]
    data["eh"] = data["tb_h_corrected"] / data["surface_temperature"]
    names_all = [*TB, "pr", "ev", "eh", *ANCILLARY]
    ok = np.isfinite(data["soil_moisture"]) & np.all([np.isfinite(data[v]) for v in names_all], axis=0)
    return {k: v[ok] for k, v in data.items()}, names_all, [p.name for p in paths], int(n_cells)


def fit_linear(xtr, ytr, xte):
    a = np.c_[np.ones(len(xtr)), xtr]
    coef, *_ = np.linalg.lstsq(a, ytr, rcond=None)
    return np.c_[np.ones(len(xte)), xte] @ coef


def fit_mlp(xtr, ytr, xte, epochs: int, seeds=(0, 1, 2)):
    import torch

    out = []
    xt, yt, xe = (torch.as_tensor(a, dtype=torch.float32) for a in (xtr, ytr[:, None], xte))
    for s in seeds:
        torch.manual_seed(s)
        net = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                                  torch.nn.ReLU(), torch.nn.Linear(64, 1))
        opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
        for _ in range(epochs):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(xt), yt)
            loss.backward()
            opt.step()
        with torch.no_grad():
            out.append(net(xe).numpy()[:, 0])
    return np.mean(out, axis=0)


def block_folds(row, col, block: int, folds: int, seed: int):
    keys = (row // block) * 1000 + (col // block)
    uniq = np.unique(keys)
    assign = np.random.default_rng(seed).permutation(uniq.size) % folds
    return assign[np.searchsorted(uniq, keys)]


def run(data, names_all, folds: int, block: int, repeats: int, epochs: int):
    from smfusion.evaluation.metrics import bias, pearson_r, rmse, ubrmse

    y = data["soil_moisture"].astype(float)
    tb_only = [*TB, "pr"]
    models = {
        "MLP, TB + ancillary": ("mlp", names_all), "MLP, TB only (H, V, PR)": ("mlp", tb_only),
        "linear, TB + ancillary": ("linear", names_all), "linear, TB only (H, V, PR)": ("linear", tb_only),
        "baseline: training mean": ("mean", []),
    }
    scores = {m: [] for m in models}
    for rep in range(repeats):
        fold = block_folds(data["row"], data["col"], block, folds, seed=rep)
        pred = {m: np.full(y.size, np.nan) for m in models}
        for f in range(folds):
            tr, te = fold != f, fold == f
            if te.sum() == 0 or tr.sum() < 20:
                continue
            ym, ys = y[tr].mean(), y[tr].std()
            for m, (kind, names) in models.items():
                if kind == "mean":
                    pred[m][te] = ym
                    continue
                x = np.stack([data[v] for v in names], axis=1).astype(float)
                mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-9
                xtr, xte = (x[tr] - mu) / sd, (x[te] - mu) / sd
                fit = fit_mlp(xtr, (y[tr] - ym) / ys, xte, epochs) if kind == "mlp" else \
                    fit_linear(xtr, (y[tr] - ym) / ys, xte)
                pred[m][te] = fit * ys + ym
        for m in models:
            p = pred[m]
            r = np.nan if models[m][0] == "mean" else pearson_r(y, p, axis=None)  # a constant per fold has no R
            scores[m].append((r, ubrmse(y, p, axis=None), rmse(y, p, axis=None), bias(y, p, axis=None)))
    return scores


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="folder of SMAP L2 granules (default: <data dir>/smap_l2)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--block", type=int, default=4, help="block size in M36 cells")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=400)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from smfusion.settings import data_dir

    folder = Path(args.data) if args.data else (data_dir() or Path("../shared/data")) / "smap_l2"
    t0 = time.perf_counter()
    data, names_all, files, n_cells = load_cells(folder)
    scores = run(data, names_all, args.folds, args.block, args.repeats, args.epochs)
    print("SMAP L2 TB -> soil moisture, spatially separated split (issue 14 item 6; a sanity bound, not CASM)")
    print(f"Data: {', '.join(files)} (SPL2SMP, 2015-08-11, ascending half-orbits)")
    from smfusion.grids.ease2 import rowcol_to_latlon

    lat, lon = rowcol_to_latlon("M36", data["row"], data["col"])
    print(f"Cells: {n_cells} distinct M36 cells in the granules; {data['soil_moisture'].size} with recommended-quality"
          f" soil moisture, good-quality TB and every input (lat {lat.min():.1f}..{lat.max():.1f}, "
          f"lon {lon.min():.1f}..{lon.max():.1f})")
    print(f"Split: {args.folds}-fold spatial CV over blocks of {args.block} x {args.block} M36 cells, "
          f"{args.repeats} seeded repetitions; statistics over the pooled test pixels of a repetition "
          "(spatial, one day), mean +- std over repetitions")
    print(f"Inputs (all): {', '.join(names_all)}; MLP 2 x 64 ReLU, Adam 3e-3, {args.epochs} full-batch epochs, "
          "3-seed ensemble; inputs and target standardised on the training folds")
    print()
    print("| model | R | ubRMSE | RMSE | bias |")
    print("|---|---|---|---|---|")
    for m, rows in scores.items():
        a = np.asarray(rows, dtype=float)
        cells = []
        for k in range(4):
            col = a[:, k]
            cells.append("-" if np.isnan(col).all() else f"{np.nanmean(col):.3f} +- {np.nanstd(col):.3f}")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print(f"\ntarget std over the cells: {data['soil_moisture'].std():.4f} m3/m3; wall {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
