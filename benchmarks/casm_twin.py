"""CASM on the SYNTHETIC twin through train / predict (issue 14, phase 2): the figures of docs/casm.md.

Protocol (printed with the tables):

* data: the CASM twin (:func:`smfusion.synthetic.casm_twin.make_casm_twin`, ``--cells`` M25 cells, seed
  ``--seed``, 2002-2020): AMSR-E-like (2002-06-19 .. 2011-10-04), AMSR2-like (2012-07-03 ..), SMOS-like
  (2010-01-12 ..) TB; target ``sm_smap`` (SMAP-like retrieval, 2015-03-31 ..); truth ``sm_true``;
* runs (``configs/casm_twin_*.yaml``, ``smfusion train``): per-day MLP from each source's H, V, PR and
  the means of H and V over the last 3-30 days to the target, trained on 2015-04-01 .. 2018-12-31
  (SMOS-like, AMSR2-like); the AMSR-E-like run on 2010-01-12 .. 2011-10-04 against the SMOS-like run's
  product (its overlap with SMOS); AMSR2/AMSR-E with and without transfer from the SMOS-like run; all of
  it for residual training (seasonal cycle removed from inputs and target, the inputs' climatology on
  the day as extra inputs) and absolute training (raw TB and means -> target);
* products (``smfusion predict --product [--era ...]``): each source over its whole era, daily and as
  3-day windows composited from the passes; chains CASM (AMSR-E | SMOS) and AMSR (AMSR-E | SMOS | AMSR2);
* statistics: median over cells of the per-cell metric over the steps where both values exist;
  ``overlap R`` vs the target on the held-out years 2019-2020 (AMSR-E: vs its training target, the
  SMOS-like product, 2010-01-12 .. 2011-10-04, in sample), full signal and residual (both minus the run's
  target climatology); skill vs the truth in the overlap period and the back-extended era (before the
  target exists); homogeneity of product - truth (trend per cell, mean jump over cells at each era
  boundary with 365-day windows); baseline rows: the target itself and the target climatology vs truth.

Usage: ``python benchmarks/casm_twin.py [--cells 150] [--seed 0] [--out runs/casm_twin_bench] [--members 2]``.
About 5 minutes on a quiet core, 12-20 on a busy shared one, for 150 cells.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
ERAS = {"smos": ("2010-01-12", "2020-12-31"), "amsr2": ("2012-07-03", "2020-12-31"),
        "amsre": ("2002-06-19", "2011-10-04")}
OVERLAP = {"smos": ("2015-04-01", "2020-12-31"), "amsr2": ("2015-04-01", "2020-12-31"),
           "amsre": ("2010-01-12", "2011-10-04")}
BACK = {"smos": ("2010-01-12", "2015-03-30"), "amsr2": ("2012-07-03", "2015-03-30"),
        "amsre": ("2002-06-19", "2010-01-11")}
HELD_OUT = ("2019-01-01", "2020-12-31")
CHAINS = {"CASM: AMSR-E | SMOS": [("amsre", "2002-06-19", "2010-01-11"), ("smos", "2010-01-12", "2020-12-31")],
          "AMSR: AMSR-E | SMOS | AMSR2": [("amsre", "2002-06-19", "2011-10-04"), ("smos", "2011-10-05", "2012-07-02"),
                                          ("amsr2", "2012-07-03", "2020-12-31")]}


def config(source: str, twin: Path, mode: str, members: int, transfer_from=None, target_product=None):
    from smfusion.config import parse_config

    raw = yaml.safe_load((ROOT / "configs" / f"casm_twin_{source}.yaml").read_text())
    raw["data"]["casm_twin"]["path"] = str(twin)
    raw["name"] = source
    if mode == "absolute":  # raw TB (and raw means) -> target: no anomalies, so no climatologies as inputs
        raw["seasonal"].update(target_mode="absolute", input_mode="absolute", climatology_inputs=[])
    if transfer_from is None:
        raw.pop("transfer", None)
    else:
        raw["transfer"]["from_run"] = str(transfer_from)
    if target_product is not None:
        raw["tb"]["target_product"] = str(target_product)
    raw["training"].update(ensemble=members, progress=False)
    raw.setdefault("evaluation", {})["plots"] = False
    return parse_config(raw)


def train_runs(out: Path, twin: Path, mode: str, members: int) -> dict:
    """SMOS-like run; AMSR2-like and AMSR-E-like runs with and without transfer (module doc)."""
    from smfusion.products.longterm import predict_product
    from smfusion.training.run import train

    d = out / mode
    runs = {"smos": train(config("smos", twin, mode, members), d / "smos")}
    overlap = predict_product(runs["smos"], *OVERLAP["amsre"], d / "smos_overlap.nc", noise_runs=0, progress=False)
    for tr in (True, False):
        src = runs["smos"] if tr else None
        tag = "transfer" if tr else "scratch"
        runs[("amsr2", tr)] = train(config("amsr2", twin, mode, members, src), d / f"amsr2_{tag}")
        runs[("amsre", tr)] = train(config("amsre", twin, mode, members, src, overlap), d / f"amsre_{tag}")
    return runs


def run_of(runs: dict, source: str, transfer: bool):
    return runs["smos"] if source == "smos" else runs[(source, transfer)]


def product(path: Path, eras, days: int, noise_runs=0):
    from smfusion.io.cf import read_product
    from smfusion.products.chain import predict_chain

    if not path.exists():
        predict_chain(eras, path, composite_days=days, noise_runs=noise_runs, progress=False)
    return read_product(path, load=True)


def reference(twin, times, days: int):
    """The twin's truth and target on the product's steps (composited on its windows)."""
    from smfusion.data.composite import composite_windows

    t = pd.DatetimeIndex(times)
    ref = composite_windows(twin.sel(time=slice(t[0], t[-1] + pd.Timedelta(days=days - 1)))[["sm_true", "sm_smap"]],
                            days, t[0])
    return ref.sel(time=t)


def _median(f, obs, sim) -> float:
    return float(np.nanmedian(f(obs, sim)))


def source_rows(p, ref, source: str, label: str) -> tuple[dict, list[dict]]:
    """(overlap R row, skill-vs-truth rows) of one source's era product."""
    from smfusion.evaluation.metrics import bias, pearson_r, ubrmse

    t = pd.DatetimeIndex(p["time"].values)
    sm, clim = p["sm"].values.astype(float), p["sm_climatology"].values.astype(float)

    def sel(period):
        return np.asarray((t >= pd.Timestamp(period[0])) & (t <= pd.Timestamp(period[1])))

    if source == "amsre":  # no overlap with the target: its training target, the SMOS-like product
        s, obs = sel(OVERLAP["amsre"]), ref["smos_product"]
    else:
        s, obs = sel(HELD_OUT), ref["sm_smap"].values.astype(float)
    r = {"run": label, "R full": _median(pearson_r, obs[:, s], sm[:, s]),
         "R residual": _median(pearson_r, obs[:, s] - clim[:, s], sm[:, s] - clim[:, s])}
    truth = ref["sm_true"].values.astype(float)
    rows = []
    for name, period in (("overlap", OVERLAP[source]), ("back-extended", BACK[source])):
        s = sel(period)
        rows.append({"run": label, "period": f"{name} {period[0]} .. {period[1]}",
                     "R": _median(pearson_r, truth[:, s], sm[:, s]), "ubRMSE": _median(ubrmse, truth[:, s], sm[:, s]),
                     "bias": _median(bias, truth[:, s], sm[:, s])})
    rows[1]["ubRMSE back / overlap"] = rows[1]["ubRMSE"] / rows[0]["ubRMSE"]
    return r, rows


def baseline_rows(p, ref, days: int) -> list[dict]:
    from smfusion.evaluation.metrics import bias, pearson_r, ubrmse

    t = pd.DatetimeIndex(p["time"].values)
    truth = ref["sm_true"].values.astype(float)
    rows = []
    for name, sim, period in (("target sm_smap", ref["sm_smap"].values.astype(float), OVERLAP["smos"]),
                              ("target climatology", p["sm_climatology"].values.astype(float), OVERLAP["smos"]),
                              ("target climatology", p["sm_climatology"].values.astype(float), BACK["smos"])):
        s = np.asarray((t >= pd.Timestamp(period[0])) & (t <= pd.Timestamp(period[1])))
        rows.append({"run": f"baseline: {name} ({days}-day)", "period": f"{period[0]} .. {period[1]}",
                     "R": _median(pearson_r, truth[:, s], sim[:, s]), "ubRMSE": _median(ubrmse, truth[:, s], sim[:, s]),
                     "bias": _median(bias, truth[:, s], sim[:, s])})
    return rows


def per_source(out: Path, twin, all_runs: dict, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from smfusion.data.composite import composite_windows

    overlap_rows, skill_rows = [], []
    for mode, runs in all_runs.items():
        smos_daily = product(out / mode / "smos_None_1d.nc", [(runs["smos"], *ERAS["smos"])], 1)
        smos_product = product(out / mode / f"smos_None_{days}d.nc", [(runs["smos"], *ERAS["smos"])], days)
        for source, tr in (("smos", None), ("amsr2", True), ("amsr2", False), ("amsre", True), ("amsre", False)):
            label = f"{mode}, {source}" + ("" if tr is None else (", transfer" if tr else ", no transfer"))
            p = product(out / mode / f"{source}_{tr}_{days}d.nc", [(run_of(runs, source, tr), *ERAS[source])], days)
            ref = reference(twin, p["time"].values, days)
            smos_on_p = composite_windows(smos_daily[["sm"]], days, p["time"].values[0])["sm"]  # AMSR-E's target
            ref = {"sm_true": ref["sm_true"], "sm_smap": ref["sm_smap"],
                   "smos_product": smos_on_p.reindex(time=p["time"].values).values.astype(float)}
            r, rows = source_rows(p, ref, source, label)
            overlap_rows.append(r)
            skill_rows += rows
        if mode == "residual":
            skill_rows += baseline_rows(smos_product, reference(twin, smos_product["time"].values, days), days)
    return pd.DataFrame(overlap_rows).set_index("run"), pd.DataFrame(skill_rows).set_index("run")


def chains(out: Path, all_runs: dict, days: int) -> pd.DataFrame:
    from smfusion.evaluation.product_check import check_product

    rows = []
    for mode, runs in all_runs.items():
        for tr in (True, False):
            for cname, spec in CHAINS.items():
                eras = [(run_of(runs, s, tr), a, b, s) for s, a, b in spec]
                path = out / mode / f"chain_{cname.split(':')[0]}_{tr}_{days}d.nc"
                noise = None if (mode, tr, cname) == ("residual", True, "CASM: AMSR-E | SMOS") else 0
                product(path, eras, days, noise_runs=noise)
                h = check_product(path, runs["smos"]).homogeneity["sm_true"]
                row = {"chain": f"{mode}, {'transfer' if tr else 'no transfer'}, {cname}",
                       "trend mean": h.loc["trend", "mean"], "trend median |.|": h.loc["trend", "median |.|"]}
                for key in [k for k in h.index if k.startswith("jump@")]:
                    row[f"{key} mean"] = h.loc[key, "mean"]
                    row[f"{key} median |.|"] = h.loc[key, "median |.|"]
                rows.append(row)
    return pd.DataFrame(rows).set_index("chain")


def requirements(ov: pd.DataFrame, sk: pd.DataFrame, ch: pd.DataFrame, days: int) -> list[str]:
    out = []
    for run, r in ov.loc[ov.index.str.startswith("residual")].iterrows():
        ok = r["R full"] >= 0.95 and r["R residual"] >= 0.7
        out.append(f"  overlap R {run} ({days}-day): full {r['R full']:.3f} (>= 0.95), residual "
                   f"{r['R residual']:.3f} (>= 0.7): {'met' if ok else 'NOT met'}")
    ratios = sk.loc[sk.index.str.startswith("residual"), "ubRMSE back / overlap"].dropna()
    for run, v in ratios.items():
        out.append(f"  back-extended ubRMSE / overlap ubRMSE {run} ({days}-day): {v:.2f} (<= 1.2): "
                   f"{'met' if v <= 1.2 else 'NOT met'}")
    for chain, r in ch.loc[ch.index.str.startswith("residual")].iterrows():
        jumps = [v for k, v in r.items() if k.endswith(" mean") and k.startswith("jump@") and np.isfinite(v)]
        ok = all(abs(j) < 0.005 for j in jumps) and abs(r["trend mean"]) < 0.002
        out.append(f"  {chain} ({days}-day): mean jumps {', '.join(f'{j:+.4f}' for j in jumps)} (|.| < 0.005), "
                   f"mean trend {r['trend mean']:+.5f} per year (|.| < 0.002): {'met' if ok else 'NOT met'}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--members", type=int, default=2)
    ap.add_argument("--out", default="runs/casm_twin_bench")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    import xarray as xr

    from smfusion.synthetic.casm_twin import write_casm_twin

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    twin_path = out / "twin.nc"
    if not twin_path.exists():
        write_casm_twin(twin_path, seed=args.seed, n_cells=args.cells)
    twin = xr.open_dataset(twin_path).load()
    all_runs = {mode: train_runs(out, twin_path, mode, args.members) for mode in ("residual", "absolute")}
    t_train = time.perf_counter() - t0
    print("CASM on the SYNTHETIC twin through smfusion train / predict (issue 14, phase 2)")
    print("Protocol:\n" + __doc__.split("Protocol (printed with the tables):")[1].split("Usage:")[0].strip("\n"))
    print(f"Twin: {twin.sizes['site']} cells, seed {twin.attrs['seed']}; {args.members} members per run; "
          f"training {t_train:.0f} s")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    fmt = dict(float_format=lambda v: f"{v:.4f}")
    req = []
    for days in (1, 3):
        ov, sk = per_source(out, twin, all_runs, days)
        ch = chains(out, all_runs, days)
        print(f"\n=== {days}-day {'(daily, days with a pass)' if days == 1 else 'windows composited from the passes'}")
        print("\nOverlap R vs the target (held-out 2019-2020; AMSR-E: vs the SMOS-like product 2010-01-12 .. "
              "2011-10-04, in sample):")
        print(ov.to_string(**fmt))
        print("\nSkill vs the truth sm_true, overlap period and back-extended era:")
        print(sk.to_string(**fmt))
        print("\nChained products: product - truth, trend (m3/m3 per year) and mean jump at each era boundary (m3/m3):")
        print(ch.to_string(**fmt))
        req += requirements(ov, sk, ch, days)
    casm = xr.open_dataset(out / "residual" / "chain_CASM_True_3d.nc")
    spreads = [f"mean {k[3:]} {float(casm[k].mean()):.4f}" for k in ("sm_epistemic_std", "sm_aleatoric_std")
               if k in casm]
    print(f"\nCASM chain (residual, transfer, 3-day) uncertainty layers, m3/m3: {', '.join(spreads) or 'none'}")
    print("\nRequired figures (issue 14; residual training, transfer where it applies):")
    print("\n".join(req))
    print(f"\nwall {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
