"""What each part of the CASM recipe on the SYNTHETIC twin contributes (issue 14): the ablation of docs/casm.md.

Protocol (printed with the table):

* data: the CASM twin (``--cells`` M25 cells, seed ``--seed``, 2002-2020; as benchmarks/casm_twin.py);
* runs: ``smfusion train`` of ``configs/casm_twin_smos.yaml`` and ``configs/casm_twin_amsr2.yaml`` (the
  recipe) and of variants of them (the rows), without transfer, trained on 2015-04-01 .. 2018-12-31
  against the SMAP-like target, ``--members`` members each; the first block adds one change at a
  time to the previous recipe (the figures of the benchmark before this ablation) and ends at the
  recipe, the second takes one part out of the recipe or changes it, the last row is a diagnostic
  (an input no TB-only method has);
* statistics: daily predictions on the held-out years 2019-2020 (days with a pass); median over
  cells of the per-cell R against the target (the ``overlap R`` of benchmarks/casm_twin.py) and of
  R and ubRMSE against the twin's truth ``sm_true``.

Usage: ``python benchmarks/casm_twin_ablation.py [--cells 150] [--seed 0] [--members 2]
[--out runs/casm_twin_ablation]``. About 6 minutes on a quiet core for 150 cells (20 MLP runs).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = ("2019-01-01", "2020-12-31")
ERA = {"smos": ["2010-01-12", "2020-12-31"], "amsr2": ["2012-07-03", "2020-12-31"]}
PREVIOUS = {"seasonal": {"window": 31, "input_period": "era", "climatology_inputs": []},
            "features": {"antecedent": {}}, "periods": {"warmup_days": 0}}
STEPS = [  # (row, changes from the previous row); the first row is the previous recipe
    ("previous recipe: window 31, input climatologies over the era, inputs H V PR", PREVIOUS),
    ("+ input climatologies on the training years (as the target's)", {"seasonal": {"input_period": None}}),
    ("+ 91-day climatology window", {"seasonal": {"window": 91}}),
    ("+ means of H and V over the last 3, 7, 15, 30 days", {"features": {"antecedent": "recipe"},
                                                             "periods": {"warmup_days": 29}}),
    ("+ the input climatologies on the day as inputs: the recipe (configs/casm_twin_*.yaml)",
     {"seasonal": {"climatology_inputs": "recipe"}}),
]
LEAVE_OUT = [
    ("recipe without the 3-30 day means", {"features": {"antecedent": {}}, "periods": {"warmup_days": 0}}),
    ("recipe without the climatology inputs", {"seasonal": {"climatology_inputs": []}}),
    ("recipe with input climatologies over the era", {"seasonal": {"input_period": "era"}}),
    ("recipe with a 31-day window", {"seasonal": {"window": 31}}),
    ("recipe with hidden 128, 40 epochs", {"model": {"hidden_size": 128}, "training": {"epochs": 40}}),
    ("diagnostic: recipe + the twin's air temperature as an input (not TB only)", {"tair": True}),
]


def _apply(raw: dict, change: dict, recipe: dict, source: str) -> dict:
    out = copy.deepcopy(raw)
    for section, values in change.items():
        if section == "tair":
            out["data"]["dynamic"] = [*out["data"]["dynamic"], "tair"]
            continue
        for key, val in values.items():
            if val == "recipe":
                val = copy.deepcopy(recipe[section][key])
            elif val == "era":
                val = ERA[source]
            out[section][key] = val
    return out


def variants(source: str, twin: Path, members: int) -> list[tuple[str, dict]]:
    """(row, raw config) of every row for one source."""
    recipe = yaml.safe_load((ROOT / "configs" / f"casm_twin_{source}.yaml").read_text())
    recipe["data"]["casm_twin"]["path"] = str(twin)
    recipe.pop("transfer", None)
    recipe["training"].update(ensemble=members, progress=False)
    recipe.setdefault("evaluation", {}).update(plots=False, baselines=[])
    rows, raw = [], recipe
    for name, change in STEPS:
        raw = _apply(raw, change, recipe, source)
        rows.append((name, raw))
    rows += [(name, _apply(recipe, change, recipe, source)) for name, change in LEAVE_OUT]
    return rows


def score(run_dir: Path, twin) -> dict:
    from smfusion.evaluation.metrics import pearson_r, ubrmse
    from smfusion.runs import Run

    p = Run.load(run_dir).predict(*HELD_OUT)["sm_smap"].transpose("site", "time")
    ref = twin.sel(site=p["site"].values, time=p["time"].values)
    sim = p.values.astype(float)
    tgt = ref["sm_smap"].transpose("site", "time").values.astype(float)
    truth = ref["sm_true"].transpose("site", "time").values.astype(float)
    return {"R vs target": float(np.nanmedian(pearson_r(tgt, sim))),
            "R vs truth": float(np.nanmedian(pearson_r(truth, sim))),
            "ubRMSE vs truth": float(np.nanmedian(ubrmse(truth, sim)))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--members", type=int, default=2)
    ap.add_argument("--out", default="runs/casm_twin_ablation")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    import xarray as xr

    from smfusion.config import parse_config
    from smfusion.synthetic.casm_twin import write_casm_twin
    from smfusion.training.run import train

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    twin_path = out / "twin.nc"
    if not twin_path.exists():
        write_casm_twin(twin_path, seed=args.seed, n_cells=args.cells)
    twin = xr.open_dataset(twin_path).load()
    table = {}
    for source in ("smos", "amsr2"):
        for i, (name, raw) in enumerate(variants(source, twin_path, args.members)):
            raw = dict(raw, name=f"{source}_{i}")
            run_dir = out / f"{source}_{i}"
            with contextlib.redirect_stdout(io.StringIO()):
                train(parse_config(raw), run_dir, resume=False)
            for k, v in score(run_dir, twin).items():
                table.setdefault(name, {})[(source, k)] = v
    print("CASM recipe on the SYNTHETIC twin: ablation (issue 14)")
    print("Protocol:\n" + __doc__.split("Protocol (printed with the table):")[1].split("Usage:")[0].strip("\n"))
    print(f"Twin: {twin.sizes['site']} cells, seed {twin.attrs['seed']}; {args.members} members per run\n")
    df = pd.DataFrame.from_dict(table, orient="index")
    df.columns = pd.MultiIndex.from_tuples(df.columns)
    df.index.name = "variant"
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 90)
    print(df.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\nwall {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
