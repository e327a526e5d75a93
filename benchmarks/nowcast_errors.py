"""Issue 29: where the DI model's error lies on the CONUS test year (real SMAP_AM + NLDAS), and how far the
goals are from SMAP's own random error.

Prints, for a trained DI run (``benchmarks/nowcast.py`` or ``smfusion train configs/conus_di.yaml``) at a lead,
on the test days with a retrieval (:mod:`smfusion.evaluation.nowcast_errors`):

* the error (RMS pooled over cell-days) of the DI model and of persistence by the age of the last retrieval the
  model saw, on dry and wet days (precipitation summed over the 3 days up to the day >= ``--wet``, forcing
  units), with the root of the two errors' covariance (an upper bound of the target's random error);
* the retrieval noise bounds of the test year's SMAP_AM at the run's test cells: ``sqrt(D(1))`` and the nuggets.

    OMP_NUM_THREADS=1 python benchmarks/nowcast_errors.py RUN [--lead 1] [--precip APCP_FORA] [--wet 0.5]
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--lead", type=int, default=1)
    ap.add_argument("--precip", default="APCP_FORA")
    ap.add_argument("--wet", type=float, default=0.5, help="3-day precipitation sum (forcing units) of a wet day")
    args = ap.parse_args(argv)
    from smfusion.data.integration import last_retrieval
    from smfusion.evaluation.nowcast import period_days, persistence
    from smfusion.evaluation.nowcast_errors import grouped_rms, noise_bounds, wet_days
    from smfusion.runs import Run

    run = Run.load(args.run)
    run.at_lead(args.lead)
    cfg, target = run.cfg, run.cfg.data.target[0]
    data, ids, test = run.adapter.load(), run.split.test, cfg.periods.test.as_tuple()
    days = period_days(data.time.values, test)
    obs_all = data[target].sel(site=ids).transpose("site", "time").values.astype(np.float64)
    sim = np.asarray(run.predict_distribution(data, ids, test, recalibration="none")[target].moments()["mean"])
    obs, ref = obs_all[:, days], persistence(obs_all, args.lead)[:, days]
    _, age, present = last_retrieval(obs_all, args.lead, cfg.data_integration.max_age)
    age = np.where(present, age, 0)[:, days]
    wet = wet_days(data[args.precip].sel(site=ids).transpose("site", "time").values, 3, args.wet)[:, days]
    groups = {"all": np.ones_like(wet)}
    for a, label in ((1, "1"), (2, "2"), (3, "3")):
        groups |= {f"age {label}, dry": (age == a) & ~wet, f"age {label}, wet": (age == a) & wet}
    groups |= {"age >= 4": age >= 4, "dry": ~wet, "wet": wet}
    print(f"DI run {args.run} at lead {args.lead}: test {test[0]}..{test[1]}, {len(ids)} cells, {len(run.members)} "
          f"members; days with a {target} retrieval; age: of the last retrieval at or before d - lead (days); wet: "
          f"{args.precip} summed over the 3 days up to d >= {args.wet}; RMS pooled over the cell-days (m3/m3)")
    print(f"{'group':<14} {'cell-days':>9} {'DI RMS':>7} {'persist':>7} {'sqrt cov':>8}")
    for name, s in grouped_rms(obs, sim, ref, groups).items():
        print(f"{name:<14} {s['n']:>9} {s['rms']:7.4f} {s['rms_ref']:7.4f} {s['sqrt_cov']:8.4f}")
    nb = noise_bounds(obs)
    print(f"{target} random error std over the test year at {nb['sites']} cells (>= 20 pairs at lags 1-3 days): "
          f"sqrt D(1) {nb['sqrt_d1']:.4f} (upper bound); nugget, line through lags 1-2 {nb['nugget_linear']:.4f} "
          f"(negative at {nb['negative_linear']:.0%} of the cells), parabola through 1-3 {nb['nugget_quadratic']:.4f} "
          f"(negative at {nb['negative_quadratic']:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
