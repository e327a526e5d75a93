"""Issue 29 probes: where a DI run's error lies, and what more members, blends, corrections, training-time
perturbations and fewer cells do to it (real SMAP_AM + NLDAS, CONUS sample). docs/nowcast.md quotes what they
printed.

    OMP_NUM_THREADS=1 python benchmarks/nowcast_probes.py errors RUN [--lead 1] [--precip APCP_FORA] [--wet 0.5]
        the error budget on the test days with a retrieval (smfusion.evaluation.nowcast_errors): the RMS of the DI
        mean and of persistence by the age of the last retrieval the model saw, on dry and wet days (precipitation
        summed over the 3 days up to the day >= --wet, forcing units), with the root of the two errors'
        covariance (an upper bound of the target's random error std), and the target's random-error bounds from
        its own structure function at the run's test cells;
    ... members RUN [--lead 1]
        scores of k-member subsets (consecutive members) of the run's ensemble mean on its test period, and
        the infinite-ensemble estimate (a least-squares fit of ubRMSE^2 = a + b / k over the subsets);
    ... blends RUN PROJECTION [--lead 1]
        the ensemble mean blended with the projection + damped residual, with the projection, and with its own
        last residual (k * (y(t*) - DI(t*)): what the DI model leaves of the persistent error);
    ... residuals RUN PROJECTION [--lead 1]
        how much of the ensemble mean's test-year error a learned correction finds: gradient boosting on the
        DI mean and spread, the projection, the last two retrievals (values, ages), the last retrieval minus the
        DI mean, the precipitation of d .. d - 3, the temperature of d and the day of year (sin, cos), fitted on
        the odd months and scored on the even ones (same cells), and fitted on half the cells and scored on the
        other half (same days: it then learns each day's error from other cells' retrievals of that day,
        which a nowcast cannot know, so this split only shows how far the day's error is shared in space);
    ... neighbours RUN [--lead 1] [--radius 200 300 500]
        the correlation of each cell's DI error (its test-year mean removed) with the mean error of the cells
        within the radius on the same day and 1 and 2 days before: how much a spatial model could take from
        the neighbours' latest retrievals;
    ... cells SMALL FULL [--members 4] [--lead 1 3]
        SMALL trained on a subset of FULL's cells (train ... --set data.sites=[...]): both scored on SMALL's cells,
        FULL with its first --members members (as many as SMALL has): what fewer training cells cost;
    ... train OUT [--members 2] [--tuning] [--set K=V ...] [--forcing-noise OFFSET DAILY]
            [--climate-forcing START END] [--lead 1 3]
        trains the DI run of configs/conus_di.yaml (benchmarks/nowcast.py's configs(), no projection twin) and
        prints its scores on the scored period (the tuning split's validation period with --tuning). The two
        options change training in ways the library does not offer (probes, not adopted):
        --forcing-noise adds Gaussian noise to the normalised dynamic inputs of every training window (not to the
        retrieval channels): one offset per window and variable of std OFFSET plus daily noise of std DAILY;
        --climate-forcing computes the climate indices (descriptors.climate, added) from the forcing of that
        period instead of the training period's (the recipe's training period is shorter than the year they
        need; forcing only, no target is read).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

CLIMATE = "[p_mean, pet_mean, aridity, p_seasonality, frac_snow, high_prec_freq, high_prec_dur, low_prec_freq, " \
          "low_prec_dur, t_mean]"


def _scored(run, on: str):
    """The run's data, scored sites, period, and the observations on it (site, time)."""
    data, ids = run.adapter.load(), run.split.test
    period = getattr(run.cfg.periods, on).as_tuple()
    from smfusion.evaluation.nowcast import period_days

    obs_all = data[run.cfg.data.target[0]].sel(site=ids).transpose("site", "time").values.astype(np.float64)
    return data, ids, period, obs_all, period_days(data.time.values, period)


def _moments(run, data, ids, period) -> dict[str, np.ndarray]:
    """The run's predictive moments of its first target (site, time) on ``period``, not recalibrated."""
    return run.predict_distribution(data, ids, period, recalibration="none")[run.cfg.data.target[0]].moments()


def _scores(obs: np.ndarray, sim: np.ndarray) -> str:
    """:func:`~smfusion.evaluation.nowcast.lead_scores` as text (pairs where ``obs`` or ``sim`` is NaN drop out)."""
    from smfusion.evaluation.nowcast import lead_scores

    s = lead_scores(obs, sim)
    return f"R {s['R']:.4f}  ubRMSE {s['ubRMSE']:.4f}  RMSE {s['RMSE']:.4f}"


def errors(args) -> None:
    from smfusion.data.integration import last_retrieval
    from smfusion.evaluation.nowcast import persistence
    from smfusion.evaluation.nowcast_errors import grouped_rms, noise_bounds, wet_days
    from smfusion.runs import Run

    run = Run.load(args.run).at_lead(args.lead)
    data, ids, period, obs_all, days = _scored(run, "test")
    target = run.cfg.data.target[0]
    sim = _moments(run, data, ids, period)["mean"]
    obs, ref = obs_all[:, days], persistence(obs_all, args.lead)[:, days]
    _, age, present = last_retrieval(obs_all, args.lead, run.cfg.data_integration.max_age)
    age = np.where(present, age, 0)[:, days]
    wet = wet_days(data[args.precip].sel(site=ids).transpose("site", "time").values, 3, args.wet)[:, days]
    groups = {"all": np.ones_like(wet)}
    for a in (1, 2, 3):
        groups |= {f"age {a}, dry": (age == a) & ~wet, f"age {a}, wet": (age == a) & wet}
    groups |= {"age >= 4": age >= 4, "dry": ~wet, "wet": wet}
    print(f"DI run {args.run} at lead {args.lead}: test {period[0]}..{period[1]}, {len(ids)} cells, {len(run.members)} "
          f"members; days with a {target} retrieval; age: of the last retrieval at or before d - lead (days); wet: "
          f"{args.precip} summed over the 3 days up to d >= {args.wet}; RMS pooled over the cell-days (m3/m3)")
    print(f"{'group':<14} {'cell-days':>9} {'DI RMS':>7} {'persist':>7} {'sqrt cov':>8}")
    for name, g in grouped_rms(obs, sim, ref, groups).items():
        print(f"{name:<14} {g['n']:>9} {g['rms']:7.4f} {g['rms_ref']:7.4f} {g['sqrt_cov']:8.4f}")
    nb = noise_bounds(obs)
    print(f"{target} random error std over the test year at {nb['sites']} cells (>= 20 pairs at lags 1-3 days): "
          f"sqrt D(1) {nb['sqrt_d1']:.4f} (upper bound); nugget, line through lags 1-2 {nb['nugget_linear']:.4f} "
          f"(negative at {nb['negative_linear']:.0%} of the cells), parabola through 1-3 {nb['nugget_quadratic']:.4f} "
          f"(negative at {nb['negative_quadratic']:.0%})")


def members(args) -> None:
    from smfusion.evaluation.nowcast import lead_scores
    from smfusion.runs import Run

    run = Run.load(args.run).at_lead(args.lead)
    data, ids, period, obs_all, days = _scored(run, "test")
    pred = run.predict_members(data, ids, period)[..., 0]  # (member, site, time)
    obs = obs_all[:, days]
    print(f"{args.run} at lead {args.lead}: test {period[0]}..{period[1]}, {len(ids)} cells; median over cells on the "
          "days with a retrieval; k consecutive members from each start")
    ks, mse = [], []
    k = 1
    while k <= pred.shape[0]:
        for start in range(0, pred.shape[0] - k + 1, k):
            sim = pred[start:start + k].mean(0)
            ks.append(k)
            mse.append(lead_scores(obs, sim)["ubRMSE"] ** 2)
            print(f"  k {k:>2} from member {start}: {_scores(obs, sim)}")
        k *= 2
    a, b = np.linalg.lstsq(np.c_[np.ones(len(ks)), 1.0 / np.asarray(ks)], np.asarray(mse), rcond=None)[0]
    print(f"  infinite-ensemble estimate (ubRMSE^2 = a + b / k): ubRMSE {np.sqrt(max(a, 0.0)):.4f}")


def blends(args) -> None:
    from smfusion.data.integration import last_retrieval
    from smfusion.evaluation.nowcast import damped_residual, fit_damping, projection_series
    from smfusion.runs import Run

    run = Run.load(args.run).at_lead(args.lead)
    data, ids, period, obs_all, days = _scored(run, "test")
    target = run.cfg.data.target[0]
    di = np.full_like(obs_all, np.nan)
    di[:, days] = _moments(run, data, ids, period)["mean"]
    proj, val_days = projection_series(args.projection, run.cfg, ids, data.time.values, target, period)
    rho = fit_damping(obs_all, proj, args.lead, val_days)
    dr = damped_residual(obs_all, proj, args.lead, rho)
    value, _, present = last_retrieval(obs_all - di, args.lead, run.cfg.data_integration.max_age)  # test year only
    own = np.where(present & np.isfinite(value), value, 0.0)
    obs = obs_all[:, days]
    print(f"{args.run} at lead {args.lead} blended (test {period[0]}..{period[1]}; weights on a grid, not fitted: "
          f"the best is an optimistic bound); damped residual rho {rho} (fitted on the validation period)")
    for name, other in (("projection + damped residual", dr), ("projection", proj)):
        for w in (0.0, 0.1, 0.2, 0.3):
            sim = (di + w * (other - di))[:, days]
            print(f"  DI + {w:.1f} x ({name} - DI): {_scores(obs, sim)}")
    ok = np.isfinite(obs - di[:, days]) & present[:, days]
    r = np.corrcoef((obs - di[:, days])[ok], own[:, days][ok])[0, 1]
    print(f"  correlation of the DI error with its own error at the last retrieval (pooled): {r:.3f}")
    for k in (0.1, 0.2, 0.3):
        sim = (di + k * own)[:, days]
        print(f"  DI + {k:.1f} x own last residual: {_scores(obs, sim)}")


def residuals(args) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from smfusion.data.integration import last_retrievals
    from smfusion.evaluation.nowcast import projection_series
    from smfusion.runs import Run

    run = Run.load(args.run).at_lead(args.lead)
    data, ids, period, obs_all, days = _scored(run, "test")
    target = run.cfg.data.target[0]
    mom = _moments(run, data, ids, period)
    di, obs = np.asarray(mom["mean"]), obs_all[:, days]
    proj = projection_series(args.projection, run.cfg, ids, data.time.values, target, period)[0][:, days]
    last = []
    for value, age, present in last_retrievals(obs_all, args.lead, run.cfg.data_integration.max_age, 2):
        last += [np.where(present, value, np.nan)[:, days], np.where(present, age, np.nan)[:, days]]
    series = lambda v: data[v].sel(site=ids).transpose("site", "time").values  # noqa: E731
    rain = series(run.cfg.data.dynamic[0])
    time = pd.DatetimeIndex(data.time.values[days])
    doy = 2 * np.pi * time.day_of_year.values / 365.25
    feats = [di, np.sqrt(mom["total_var"]), proj, *last, last[0] - di,
             *(rain[:, days.start - k:days.stop - k] for k in range(4)), series("TMP_2_FORA")[:, days],
             np.sin(doy), np.cos(doy)]
    x = np.stack([np.broadcast_to(np.asarray(f, np.float64), di.shape) for f in feats], axis=-1)
    resid = obs - di
    ok = np.isfinite(resid)
    half = np.zeros(len(ids), bool)
    half[np.random.default_rng(0).permutation(len(ids))[:len(ids) // 2]] = True
    odd = (time.month.values % 2 == 1)[None, :]
    print(f"{args.run} at lead {args.lead}: a learned correction of the DI mean (test {period[0]}..{period[1]}, "
          f"{len(ids)} cells; median over the scored cells on their days with a retrieval)")
    splits = (("odd months -> even months", ok & odd), ("half the cells -> the other half", ok & half[:, None]))
    for name, fit in splits:
        test = ok & ~fit
        gbm = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=100,
                                            random_state=0).fit(x[fit], resid[fit])
        corr = np.zeros_like(di)
        corr[test] = gbm.predict(x[test])
        o = np.where(test, obs, np.nan)
        print(f"  {name}: DI {_scores(o, di)}; corrected {_scores(o, di + corr)}")


def neighbours(args) -> None:
    from smfusion.runs import Run

    run = Run.load(args.run).at_lead(args.lead)
    data, ids, period, obs_all, days = _scored(run, "test")
    err = obs_all[:, days] - _moments(run, data, ids, period)["mean"]
    err = err - np.nanmean(err, axis=1, keepdims=True)
    lat, lon = (np.radians(data[v].sel(site=ids).values) for v in ("lat", "lon"))
    cos = np.sin(lat[:, None]) * np.sin(lat) + np.cos(lat[:, None]) * np.cos(lat) * np.cos(lon[:, None] - lon)
    dist = 6371.0 * np.arccos(np.clip(cos, -1.0, 1.0))
    fin = np.isfinite(err)
    print(f"{args.run} at lead {args.lead}: correlation of a cell's DI error with its neighbours' mean error, test "
          f"{period[0]}..{period[1]}, {len(ids)} cells (pooled over cell-days)")
    for radius in args.radius:
        w = ((dist < radius) & (dist > 0)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            near = (w @ np.where(fin, err, 0.0)) / (w @ fin)
        for lag in (0, 1, 2):
            a, b = err[:, lag:], near[:, :near.shape[1] - lag]
            ok = np.isfinite(a) & np.isfinite(b)
            print(f"  within {radius:g} km (median {np.median(w.sum(1)):.0f} cells), neighbours {lag} day(s) before: "
                  f"{np.corrcoef(a[ok], b[ok])[0, 1]:.3f} ({ok.sum()} cell-days)")


def cells(args) -> None:
    from smfusion.runs import Run

    small, full = Run.load(args.small), Run.load(args.full)
    full.members = list(full.members)[:args.members]
    for lead in args.lead:
        row = {}
        for name, run in (("small", small), ("full", full)):
            run.at_lead(lead)
            data, ids, period, obs_all, days = _scored(run, "test")
            keep = np.isin(ids, small.split.test)
            sim = _moments(run, data, ids[keep], period)["mean"]
            row[name] = (len(run.split.train), len(run.members), _scores(obs_all[keep][:, days], sim))
        for name, (n_train, n_mem, text) in row.items():
            print(f"lead {lead}: trained on {n_train} cells, {n_mem} members, scored on {int(keep.sum())} cells "
                  f"(test {period[0]}..{period[1]}): {text}")


def _perturb_forcing(offset: float, daily: float) -> None:
    """Wrap the sequence sampler so that each training window's dynamic inputs (not the retrieval channels) get
    Gaussian noise: per window and variable ``offset``, per day ``daily`` (normalised units)."""
    from smfusion.data.adapters import sequence

    inner = sequence.SequenceSampler._integrated

    def noisy(self, rng):
        batch = inner(self, rng)
        x, n = batch["x_dynamic"], self.arrays.x_dynamic.shape[-1]
        off = offset * rng.standard_normal((x.shape[0], 1, n)).astype(np.float32)
        day = daily * rng.standard_normal((x.shape[0], x.shape[1], n)).astype(np.float32)
        x[..., :n] += off + day
        return batch

    sequence.SequenceSampler._integrated = noisy


def _climate_forcing(start: str, end: str) -> None:
    """Climate indices from the forcing of ``start..end`` instead of the training period (and the check that
    the training period spans a year dropped)."""
    from smfusion.data import checks, climate
    from smfusion.data.adapters import sequence

    inner, generic = climate.add_descriptors, checks._generic

    def patched(ds, cfg, forcing=None):
        c = cfg.model_copy(deep=True)
        c.periods.train = c.periods.train.model_copy(update={"start": start, "end": end})
        return inner(ds, c, forcing)

    sequence.add_descriptors = patched
    checks._generic = lambda cfg, training: [p for p in generic(cfg, training) if "full year" not in p.what]


def train_probe(args) -> None:
    from nowcast import configs
    from smfusion.runs import Run
    from smfusion.training.run import train

    sets = list(args.set)
    if args.forcing_noise:
        _perturb_forcing(*args.forcing_noise)
    if args.climate_forcing:
        _climate_forcing(*args.climate_forcing)
        sets.append(f"descriptors.climate={CLIMATE}")
    di, _ = configs(args.config, args.members, sets=sets, tuning=args.tuning)
    train(di, args.out)
    run = Run.load(args.out)
    on = "validation" if args.tuning else "test"
    for lead in args.lead:
        run.at_lead(lead)
        data, ids, period, obs_all, days = _scored(run, on)
        print(f"{args.out} lead {lead} ({on} {period[0]}..{period[1]}, {len(ids)} cells, {len(run.members)} members): "
              f"{_scores(obs_all[:, days], _moments(run, data, ids, period)['mean'])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="probe", required=True)
    p = sub.add_parser("errors")
    p.add_argument("run")
    p.add_argument("--lead", type=int, default=1)
    p.add_argument("--precip", default="APCP_FORA")
    p.add_argument("--wet", type=float, default=0.5, help="3-day precipitation sum (forcing units) of a wet day")
    p = sub.add_parser("members")
    p.add_argument("run")
    p.add_argument("--lead", type=int, default=1)
    p = sub.add_parser("blends")
    p.add_argument("run")
    p.add_argument("projection")
    p.add_argument("--lead", type=int, default=1)
    p = sub.add_parser("residuals")
    p.add_argument("run")
    p.add_argument("projection")
    p.add_argument("--lead", type=int, default=1)
    p = sub.add_parser("neighbours")
    p.add_argument("run")
    p.add_argument("--lead", type=int, default=1)
    p.add_argument("--radius", type=float, nargs="+", default=[200.0, 300.0, 500.0])
    p = sub.add_parser("cells")
    p.add_argument("small")
    p.add_argument("full")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--lead", type=int, nargs="+", default=[1, 3])
    p = sub.add_parser("train")
    p.add_argument("out")
    p.add_argument("--config", default="configs/conus_di.yaml")
    p.add_argument("--members", type=int, default=2)
    p.add_argument("--tuning", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--forcing-noise", type=float, nargs=2, metavar=("OFFSET", "DAILY"))
    p.add_argument("--climate-forcing", nargs=2, metavar=("START", "END"))
    p.add_argument("--lead", type=int, nargs="+", default=[1, 3])
    args = ap.parse_args(argv)
    probes = {"errors": errors, "members": members, "blends": blends, "residuals": residuals,
              "neighbours": neighbours, "cells": cells, "train": train_probe}
    probes[args.probe](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
