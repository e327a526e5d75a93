"""Issue 27 item 3: is the twin's satellite and soil moisture like reality where reality is measurable here?

    python benchmarks/twin_calibration.py [--config configs/multiscale_twin.yaml] [--seed 0] [--sat-* ...]

Real: SMAP_AM (CONUS sample, nearest cell within 60 km) vs the three USCRN stations, 2015-04-01..2017-03-31,
daily; SMAP L3 AM vs the nine Hawaii SCAN sensors (ISMN, flag G, nearest hourly value within 1 h),
2017-01-01..2018-12-31. Twin: its satellite vs its stations at the station cells over 2015-04-01..2017-03-31
(the twin's own config and seed). Statistics per station, then the median (and range):

- R and ubRMSE of the satellite against the station (days with both);
- lag-1 and lag-5 autocorrelation of the daily station series (pairs of days both present);
- fraction of variance in the seasonal cycle: variance of the least-squares fit of
  ``a0 + sum_{k=1,2} a_k sin(2 pi k doy / 365.25) + b_k cos(...)`` over the variance of the series;
- SD of the series and SD of its day-to-day change (pairs of consecutive days both present).

Diagnostic rows of the twin (issue 27: is low persistence in the truth or in the station errors?): the same
statistics of the truth at the station cells and of the station errors (station minus truth). ``--sensitivity``
instead prints the truth's persistence at the station cells for the original twin with one layer-1 dynamics
parameter changed at a time, then the calibrated set (seed and config as above). ``--land-model`` prints
R and RMSE of the land-model baseline (``sm_land_model``) against the stations and the truth at the station
cells over the same span, with its own equations = the truth's and = the other dynamics.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

SPAN = ("2015-04-01", "2017-03-31")
HAWAII = ("2017-01-01", "2018-12-31")


def autocorr(x: np.ndarray, lag: int) -> float:
    """Pearson correlation of ``x[t]`` and ``x[t + lag]`` over the pairs with both present."""
    a, b = x[:-lag], x[lag:]
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 10 else np.nan


def seasonal_fraction(x: np.ndarray, doy: np.ndarray, harmonics: int = 2) -> float:
    """Variance of the least-squares annual-harmonics fit over the variance of ``x`` (days present)."""
    ok = np.isfinite(x)
    if ok.sum() < 60:
        return np.nan
    w = 2 * np.pi * doy[ok] / 365.25
    design = np.column_stack([np.ones(ok.sum())] + [f(k * w) for k in range(1, harmonics + 1) for f in (np.sin, np.cos)])
    fit = design @ np.linalg.lstsq(design, x[ok], rcond=None)[0]
    return float(np.var(fit) / np.var(x[ok]))


def dynamics(series: np.ndarray, times) -> pd.DataFrame:
    """Lag-1, lag-5 autocorrelation and seasonal fraction of each row of ``series`` (site, day)."""
    doy = pd.DatetimeIndex(times).day_of_year.values
    return pd.DataFrame([{"lag1": autocorr(x, 1), "lag5": autocorr(x, 5), "seasonal": seasonal_fraction(x, doy),
                          "sd": float(np.nanstd(x)), "sd_change": float(np.nanstd(np.diff(x)))} for x in series])


def sat_vs_station(sat: np.ndarray, st: np.ndarray) -> pd.DataFrame:
    """R and ubRMSE of each row pair over the days with both."""
    rows = []
    for s, o in zip(sat, st):
        ok = np.isfinite(s) & np.isfinite(o)
        if ok.sum() < 20:
            continue
        d = (s[ok] - s[ok].mean()) - (o[ok] - o[ok].mean())
        rows.append({"R": float(np.corrcoef(s[ok], o[ok])[0, 1]), "ubRMSE": float(np.sqrt(np.mean(d**2))),
                     "n": int(ok.sum())})
    return pd.DataFrame(rows)


def _daily(ds, var: str, start: str, end: str) -> tuple[np.ndarray, pd.DatetimeIndex]:
    days = pd.date_range(start, end, freq="D")
    t = pd.DatetimeIndex(ds["time"].values).normalize()
    frame = pd.DataFrame(ds[var].transpose("site", "time").values.T, index=t).groupby(level=0).mean()
    return frame.reindex(days).values.T, days


def real(data) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """{name: (satellite vs station table, station dynamics table)} for USCRN and Hawaii SCAN."""
    from smfusion.evaluation.validation import ValidationOptions, validate, validate_series
    from smfusion.io.hydrodl import read_hydrodl
    from smfusion.io.ismn import read_ismn
    from smfusion.io.stations import read_stations

    out = {}
    stations = read_stations(data / "uscrn")
    smap = read_hydrodl(data / "conus_smap", dynamic=[], static=[], target=["SMAP_AM"], start=SPAN[0], end=SPAN[1])
    opts = ValidationOptions(max_distance_km=60.0, start=SPAN[0], end=SPAN[1], n_boot=100, seed=0)
    res = validate_series(stations, [("SMAP_AM", smap)], opts)
    x, days = _daily(stations, "soil_moisture", *SPAN)
    out["USCRN (3) vs SMAP_AM, 2015-04..2017-03"] = (res.table, dynamics(x, days))
    base = data / "insitu_hawaii_scan"
    opts = ValidationOptions(max_distance_km=50.0, start=HAWAII[0], end=HAWAII[1], matching="nearest", window="1h",
                             n_boot=100, seed=0)
    res = validate(("SMAP_L3_AM", base / "gridded_timeseries" / "SMAP_L3" / "SMAP_V8_AM"),
                   base / "ISMN_TESTDATA_HAWAII", (), opts)
    ismn = read_ismn(base / "ISMN_TESTDATA_HAWAII", depth=(0.0, 0.1), daily=True)  # sensors at 5.08 cm
    x, days = _daily(ismn, "soil_moisture", *HAWAII)
    out["Hawaii SCAN (9) vs SMAP L3 AM, 2017-2018"] = (res.table, dynamics(x, days))
    return out


def twin(args) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    from smfusion.config import TwinConfig, load_config
    from smfusion.synthetic.twin import make_twin

    cfg = load_config(args.config)
    tw = (cfg.data.twin or TwinConfig()).model_copy(update={k: v for k, v in vars(args).items()
                                                             if k.startswith("sat_") and v is not None})
    if args.seed is not None:
        tw = tw.model_copy(update={"seed": args.seed})
    if args.dynamics is not None:
        tw = tw.model_copy(update={"dynamics": args.dynamics})
    ds = make_twin(cfg.data.root, start=SPAN[0], end=SPAN[1], **tw.model_dump())
    st = ds["sm_station"].transpose("site", "time").values
    rows = np.isfinite(st).any(axis=1)
    sat = ds["sm_satellite"].transpose("site", "time").values[rows]
    times = ds["time"].values
    name = f"twin seed {tw.seed} {tw.dynamics} (sat noise {tw.sat_noise:g}), {rows.sum()} stations"
    truth = ds["sm_true"].transpose("site", "time").values[rows]
    return {name: (sat_vs_station(sat, st[rows]), dynamics(st[rows], times)),
            "  same twin, truth at the station cells": (sat_vs_station(sat, truth), dynamics(truth, times)),
            "  same twin, station errors (station - truth)": (pd.DataFrame({"R": [], "ubRMSE": []}),
                                                              dynamics(st[rows] - truth, times))}


SENSITIVITY = {"k1 0.1 (all cells)": {"k1": 0.1}, "evap_scale 0.3": {"evap_scale": 0.3},
               "top layer 100 mm": {"d1": 100.0}, "coupling 0.5": {"coupling": 0.5}, "bypass 0.7": {"bypass": 0.7},
               "layer 2 200 mm": {"d2": 200.0}}


def sensitivity(args) -> None:
    """Truth persistence at the station cells: original twin, one parameter changed at a time, calibrated."""
    from unittest import mock

    from smfusion.config import load_config
    from smfusion.synthetic import twin as tw

    cfg = load_config(args.config)
    base = (cfg.data.twin.model_dump() if cfg.data.twin else {}) | {"sat_noise": 0.03}
    if args.seed is not None:
        base["seed"] = args.seed
    probes = {"original": "original"} | {k: f"probe {k}" for k in SENSITIVITY} | {"calibrated": "calibrated"}
    extra = {f"probe {k}": {"water": v, "station_ar": 0.7} for k, v in SENSITIVITY.items()}
    print(f"{'truth at the station cells':30s}{'lag-1':>8s}{'lag-5':>8s}{'seasonal':>10s}{'SD':>8s}{'SD change':>11s}")
    with mock.patch.dict(tw.DYNAMICS, extra):
        for label, name in probes.items():
            ds = tw.make_twin(cfg.data.root, start=SPAN[0], end=SPAN[1], **(base | {"dynamics": name}))
            st = ds["sm_station"].transpose("site", "time").values
            d = dynamics(ds["sm_true"].transpose("site", "time").values[np.isfinite(st).any(axis=1)], ds["time"].values)
            print(f"{label:30s}" + "".join(f"{d[k].median():{w}.3f}" for k, w in
                                            (("lag1", 8), ("lag5", 8), ("seasonal", 10), ("sd", 8), ("sd_change", 11))))


def land_model(args) -> None:
    """The land-model baseline with the truth's equations and with the other set (``DYNAMICS``)."""
    from smfusion.config import TwinConfig, load_config
    from smfusion.evaluation.metrics import pearson_r
    from smfusion.synthetic.twin import make_twin

    cfg = load_config(args.config)
    tw = (cfg.data.twin or TwinConfig()).model_dump() | {k: v for k, v in (("seed", args.seed),
                                                                           ("dynamics", args.dynamics)) if v}
    print(f"land model, twin seed {tw['seed']} {tw['dynamics']}{'':12s}R vs stations  RMSE vs stations   R vs truth"
          f"  RMSE vs truth")
    for land in (tw["dynamics"], "original" if tw["dynamics"] == "calibrated" else "calibrated"):
        ds = make_twin(cfg.data.root, start=SPAN[0], end=SPAN[1], land_dynamics=land, **tw)
        st = ds["sm_station"].transpose("site", "time").values
        rows = np.isfinite(st).any(axis=1)
        sim = ds["sm_land_model"].transpose("site", "time").values[rows]
        truth = ds["sm_true"].transpose("site", "time").values[rows]
        out = []
        for obs in (st[rows], truth):
            rmse = np.sqrt(np.nanmean((sim - obs) ** 2, axis=1))
            out += [np.nanmedian(pearson_r(obs, sim)), np.nanmedian(rmse)]
        print(f"  equations: {land:34s}" + "".join(f"{v:>15.3f}" if i % 2 == 0 else f"{v:>15.4f}"
                                                     for i, v in enumerate(out)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/multiscale_twin.yaml")
    ap.add_argument("--seed", type=int, default=None)
    for k in ("bias", "seasonal", "gain_loss", "noise"):
        ap.add_argument(f"--sat-{k.replace('_', '-')}", dest=f"sat_{k}", type=float, default=None)
    ap.add_argument("--dynamics", choices=("calibrated", "original"), default=None,
                    help="the twin's layer-1 dynamics and station-error persistence (default: the config's)")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--sensitivity", action="store_true", help="one-at-a-time layer-1 parameters (see above)")
    ap.add_argument("--land-model", action="store_true", help="the land-model baseline's equations (see above)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.sensitivity:
        return sensitivity(args)
    if args.land_model:
        return land_model(args)
    from smfusion.settings import data_dir

    blocks = {} if args.skip_real else real(data_dir())
    blocks.update(twin(args))

    def cell(v: pd.Series) -> str:
        v = v.dropna()
        return f"{v.median():.3f} ({v.min():.2f}-{v.max():.2f})" if len(v) else "n/a"

    cols = {"R": "sat-vs-station R", "ubRMSE": "ubRMSE", "lag1": "lag-1 ACF", "lag5": "lag-5 ACF",
            "seasonal": "seasonal fraction", "sd": "SD", "sd_change": "SD of daily change"}
    print(f"{'':58s}" + "".join(f"{v:>22s}" for v in cols.values()))
    for name, (sv, dyn) in blocks.items():
        both = pd.concat([sv, dyn], axis=1)
        print(f"{name[:58]:58s}" + "".join(f"{cell(both[k]):>22s}" for k in cols))
    print("\nmedian (min-max) over stations; see the module docstring for the protocol.")


if __name__ == "__main__":
    main()
