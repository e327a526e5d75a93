"""Issue 12 benchmark: calibrated predictive distributions on the CONUS test year (real SMAP + NLDAS).

Trains three ensembles of the recipe in ``configs/uncertainty_conus.yaml`` (the demo recipe with a held-out
validation period for recalibration): point heads (rmse), Gaussian heads (beta-NLL) and 3-component
Gaussian-mixture heads (mixture NLL), then prints one table on the test year 2016-04-01..2017-03-31, rows =
ensemble spread only, noise runs, Gaussian single model, Gaussian ensemble, mixture ensemble, each raw and
recalibrated (fitted on the validation period only); columns = coverage of the central 68% / 95% intervals
(pooled over cell-days / median over cells), CRPS, spread-skill correlation, median R and ubRMSE of the
mean, and the 68% / 95% coverage on cells held out by spatial CV folds (``--cv-kind kmeans``: the project's
regional folds, balanced k-means on EASE-2 coordinates, seed 0, docs/ungauged.md; ``block``: contiguous
``--block-deg`` lat/lon blocks). Each fold holds out
``--cv-validation-fraction`` of its training cells as validation cells (never trained on): its
recalibration is fitted on them over the validation period, so it sees the error at unseen cells.

    OMP_NUM_THREADS=1 nice python benchmarks/uncertainty.py [--out runs/uncertainty] [--jobs 2]
        [--cv-kind kmeans] [--cv-k 5] [--cv-members 2] [--block-deg 8] [--cv-validation-fraction 0.2] [--no-cv]

Training resumes from checkpoints in ``--out``; a finished run is not retrained.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

KINDS = {
    "regression": {"model": {"head": "regression"}, "training": {"loss": "rmse"}},
    "gaussian": {"model": {"head": "gaussian"}, "training": {"loss": "gaussian_nll"}},
    "gmm": {"model": {"head": "gmm", "components": 3}, "training": {"loss": "mixture_nll"}},
}
ROWS = ("ensemble spread only", "noise runs", "Gaussian single model", "Gaussian ensemble", "mixture ensemble")
REQUIRED = {"coverage_68": (0.63, 0.73), "coverage_95": (0.92, 0.97)}


def variant(cfg, kind: str, members=None, split=None, global_target=False):
    """``cfg`` with the head/loss of ``kind`` (and, for CV folds, the fold's sites and global target scaling)."""
    c = cfg.model_copy(deep=True)
    for section, values in KINDS[kind].items():
        setattr(c, section, getattr(c, section).model_copy(update=values))
    if members is not None:
        c.training = c.training.model_copy(update={"ensemble": members})
    if split is not None:
        c.split = c.split.model_copy(update={"kind": "sites", **split})
    if global_target:  # per-site target scaling would need observations at the held-out cells
        c.normalization = c.normalization.model_copy(update={"target": "global"})
    return c


def _train(job) -> str:
    from smfusion.training.run import train

    cfg, run_dir = job
    return str(train(cfg, run_dir))


def train_all(jobs: list, n_jobs: int) -> None:
    if n_jobs <= 1:
        for job in jobs:
            _train(job)
        return
    with ProcessPoolExecutor(n_jobs) as pool:
        list(pool.map(_train, jobs))


def row_distributions(runs: dict, data, batches: dict, noise_runs: int, noise: float) -> dict:
    """Row -> Predictive on each of ``batches`` (name -> Batches), raw."""
    from smfusion.runs.predictive import Predictive

    out = {}
    for name, b in batches.items():
        reg = runs["regression"].predict_distribution(data, None, None, batches=b, recalibration="none")
        noisy = runs["regression"].predict_distribution(data, None, None, noise_runs=noise_runs, noise=noise,
                                                        seed=0, batches=b, recalibration="none")
        g = runs["gaussian"].predict_distribution(data, None, None, batches=b, recalibration="none")
        m = runs["gmm"].predict_distribution(data, None, None, batches=b, recalibration="none")
        var = next(iter(reg))
        g1 = Predictive(g[var].means[:1], g[var].loc[:1], g[var].scale[:1], g[var].weight[:1])
        out[name] = dict(zip(ROWS, (Predictive(reg[var].means), noisy[var], g1, g[var], m[var])))
    return out


def recalibrated(val: dict, obs_val: np.ndarray, test: dict, method: str) -> dict:
    """Each row's test distribution with the recalibration fitted on its validation distribution."""
    from smfusion.runs.predictive import fit_recalibration

    return {row: test[row].with_recalibration(fit_recalibration(val[row], obs_val, method)) for row in test}


def temporal(cfg, out: Path, n_jobs: int, method: str) -> dict:
    from smfusion.evaluation.calibration import calibration_scores
    from smfusion.evaluation.metrics import pearson_r, ubrmse
    from smfusion.runs import Run

    dirs = {k: out / "temporal" / k for k in KINDS}
    train_all([(variant(cfg, k), d) for k, d in dirs.items()], n_jobs)
    runs = {k: Run.load(d) for k, d in dirs.items()}
    ad = runs["gaussian"].adapter
    data = ad.load()
    tb = ad.eval_batches(data, runs["gaussian"].split.test, cfg.periods.test.as_tuple())
    vb = ad.validation_batches(data, runs["gaussian"].split)
    obs_t, obs_v = ad.observations(data, tb)[..., 0], ad.observations(data, vb)[..., 0]
    unc = cfg.uncertainty
    dists = row_distributions(runs, data, {"test": tb, "validation": vb}, unc.noise_runs or 10, unc.noise)
    recal = recalibrated(dists["validation"], obs_v, dists["test"], method)
    res = {}
    for row in ROWS:
        mean = dists["test"][row].moments()["mean"]
        point = {"median_r": float(np.nanmedian(pearson_r(obs_t, mean))),
                 "ubrmse": float(np.nanmedian(ubrmse(obs_t, mean)))}
        res[row] = {"raw": {**calibration_scores(dists["test"][row], obs_t), **point},
                    "recalibrated": {**calibration_scores(recal[row], obs_t), **point,
                                     "factors": [recal[row].recal.epistemic_factor,
                                                 recal[row].recal.aleatoric_factor]}}
    res["_n_sites"] = int(len(tb))
    return res


def spatial_cv(cfg, out: Path, n_jobs: int, k: int, members: int, block_deg: float, kind: str,
               val_fraction: float) -> dict:
    from smfusion.data.adapters import adapter_for
    from smfusion.data.spatial_cv import make_folds
    from smfusion.evaluation.calibration import calibration_scores
    from smfusion.runs import Run
    from smfusion.runs.predictive import concat_rows

    ad = adapter_for(cfg)
    data = ad.load()
    units = ad.cv_units(data)
    folds = make_folds(kind, units["ids"], lat=units["lat"], lon=units["lon"], k=k, block_deg=block_deg, seed=0)
    jobs, fold_dirs = [], []
    for f in folds:
        split = {"train_sites": [int(s) for s in f["train"]], "test_sites": [int(s) for s in f["test"]],
                 "validation_fraction": val_fraction}
        dirs = {kk: out / ("cv" if kind == "block" else f"cv_{kind}") / f"fold_{f['fold']}" / kk for kk in KINDS}
        jobs += [(variant(cfg, kk, members, split, global_target=True), d) for kk, d in dirs.items()]
        fold_dirs.append(dirs)
    train_all(jobs, n_jobs)
    unc = cfg.uncertainty
    pooled = {row: {"raw": [], "recalibrated": []} for row in ROWS}
    obs_all = []
    for dirs in fold_dirs:
        runs = {kk: Run.load(d) for kk, d in dirs.items()}
        fa = runs["gaussian"].adapter
        tb = fa.eval_batches(data, runs["gaussian"].split.test, cfg.periods.test.as_tuple())
        vb = fa.validation_batches(data, runs["gaussian"].split)
        dists = row_distributions(runs, data, {"test": tb, "validation": vb}, unc.noise_runs or 10, unc.noise)
        # variance scaling in CV even with --method isotonic: folds' isotonic maps differ, so pooled
        # scores would need one map
        recal = recalibrated(dists["validation"], fa.observations(data, vb)[..., 0], dists["test"], "variance")
        for row in ROWS:
            pooled[row]["raw"].append(dists["test"][row])
            pooled[row]["recalibrated"].append(recal[row])
        obs_all.append(fa.observations(data, tb)[..., 0])
    obs = np.concatenate(obs_all, 0)
    res = {row: {w: calibration_scores(concat_rows(p), obs) for w, p in d.items()} for row, d in pooled.items()}
    res["_folds"] = [{"fold": f["fold"], "n_test": len(f["test"]), "groups": f.get("groups")} for f in folds]
    return res


def table(res: dict, cv: dict | None) -> str:
    head = (f"{'row':<24}{'recal':<6}{'cov68':>12}{'cov95':>12}{'CRPS':>8}{'ss_r':>6}{'R_med':>7}{'ubRMSE':>8}"
            f"{'CV cov68':>12}{'CV cov95':>12}")
    lines = [head, "-" * len(head)]
    for row in ROWS:
        for w in ("raw", "recalibrated"):
            s = res[row][w]
            c = cv[row][w] if cv else None
            cvs = (f"{c['coverage_68']:.3f}/{c['coverage_68_cell_median']:.3f} "
                   f"{c['coverage_95']:.3f}/{c['coverage_95_cell_median']:.3f}") if c else f"{'-':>12}{'-':>12}"
            lines.append(f"{row:<24}{'yes' if w != 'raw' else 'no':<6}"
                         f"{s['coverage_68']:.3f}/{s['coverage_68_cell_median']:.3f} "
                         f"{s['coverage_95']:.3f}/{s['coverage_95_cell_median']:.3f}"
                         f"{s['crps']:8.4f}{s['spread_skill_r']:6.2f}{s['median_r']:7.3f}{s['ubrmse']:8.4f}  {cvs}")
    return "\n".join(lines)


def checks(res: dict, cv: dict | None, row: str) -> list[str]:
    s = res[row]["recalibrated"]
    base = res["ensemble spread only"]["raw"]["crps"]
    out = []
    for key, (lo, hi) in REQUIRED.items():
        for v, where in ((s[key], "pooled"), (s[f"{key}_cell_median"], "median over cells")):
            out.append(f"{key} {where} {v:.3f} in [{lo}, {hi}]: {'ok' if lo <= v <= hi else 'MISSED'}")
    gain = 1 - s["crps"] / base
    out.append(f"CRPS {s['crps']:.4f} vs ensemble-spread Gaussian {base:.4f}: {100 * gain:.1f}% lower "
               f"(>= 15%: {'ok' if gain >= 0.15 else 'MISSED'})")
    out.append(f"median R {s['median_r']:.3f} >= 0.84: {'ok' if s['median_r'] >= 0.84 else 'MISSED'}; "
               f"ubRMSE {s['ubrmse']:.4f} <= 0.030: {'ok' if s['ubrmse'] <= 0.030 else 'MISSED'}")
    if cv:
        c = cv[row]["recalibrated"]["coverage_95"]
        out.append(f"held-out cells (spatial CV) coverage_95 {c:.3f} >= 0.90: {'ok' if c >= 0.90 else 'MISSED'}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/uncertainty_conus.yaml")
    p.add_argument("--out", default="runs/uncertainty")
    p.add_argument("--jobs", type=int, default=1, help="ensembles trained at once (one process each)")
    p.add_argument("--method", default="variance", choices=["variance", "isotonic"])
    p.add_argument("--no-cv", action="store_true")
    p.add_argument("--cv-kind", default="kmeans", choices=["kmeans", "block", "station"])
    p.add_argument("--cv-k", type=int, default=5)
    p.add_argument("--cv-members", type=int, default=2)
    p.add_argument("--block-deg", type=float, default=8.0)
    p.add_argument("--cv-validation-fraction", type=float, default=0.2)
    args = p.parse_args(argv)

    from smfusion.config import load_config

    cfg = load_config(args.config)
    out = Path(args.out)
    t0 = time.perf_counter()
    res = temporal(cfg, out, args.jobs, args.method)
    cv = None if args.no_cv else spatial_cv(cfg, out, args.jobs, args.cv_k, args.cv_members,
                                            args.block_deg, args.cv_kind, args.cv_validation_fraction)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"temporal": res, "cv": cv}, indent=1, default=float))
    per = cfg.periods
    print(f"Protocol: CONUS SMAP_AM, {res['_n_sites']} cells, temporal split; train {per.train.start}..{per.train.end},"
          f" validation (held out; recalibration fitted there) {per.validation.start}..{per.validation.end}, test "
          f"{per.test.start}..{per.test.end}; {cfg.model.name} hidden {cfg.model.hidden_size}, "
          f"{cfg.training.epochs * (cfg.training.iterations_per_epoch or 0)} minibatches per member, ensembles of "
          f"{cfg.training.ensemble}; Gaussian beta-NLL beta {cfg.uncertainty.beta_nll}; mixture: 3 components; "
          f"noise runs: {cfg.uncertainty.noise_runs or 10} x input noise {cfg.uncertainty.noise} x training std; "
          f"recalibration: {args.method}")
    if cv:
        how = f"{args.block_deg} deg lat/lon blocks" if args.cv_kind == "block" else "the project's regional folds"
        print(f"Spatial CV: {len(cv['_folds'])} {args.cv_kind} folds ({how}), ensembles of "
              f"{args.cv_members}, global target scaling, {args.cv_validation_fraction:.0%} of each fold's training "
              f"cells held out for the recalibration (validation period; variance scaling); coverage on the held-out "
              f"cells over the test year, pooled over cell-days / median over cells")
    print("coverage columns: pooled over cell-days / median over cells (nominal 0.68, 0.95); CRPS m3/m3, mean over"
          " cell-days; ss_r: corr(RMSE, predicted std) over 10 equal-count bins; R_med, ubRMSE: median over cells")
    print(table(res, cv))
    print("\nrequired (Gaussian ensemble, recalibrated):")
    for line in checks(res, cv, "Gaussian ensemble"):
        print("  " + line)
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
