"""What each sensor of the CASM twin sees of the truth (issue 14, phase 1): the figures of docs/casm.md.

Protocol (printed with the table): the twin of
:func:`smfusion.synthetic.casm_twin.make_casm_twin` (seed, cells, period as
given); per sensor and channel, over that sensor's era and the days it
observes: the number of observations, and the median over cells of the
per-cell Pearson R of TB_H, TB_V and the polarisation ratio
PR = (V - H) / (V + H) with the truth ``sm_true`` (0-5 cm), on the full signal
and on anomalies (each series minus its cell's calendar-month mean over the
sensor's era). The SMAP-like target ``sm_smap`` is scored against the truth
the same way (R, ubRMSE, bias; median over cells), and its trend against the
truth per cell (:mod:`smfusion.evaluation.homogeneity`). Generation time is
wall-clock on this machine.

Usage: ``python benchmarks/casm_twin_sensors.py [--cells 200] [--seed 0] [--dielectric mironov]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd


def monthly_anomaly(x: np.ndarray, month: np.ndarray) -> np.ndarray:
    out = np.full_like(x, np.nan)
    for m in range(1, 13):
        sel = month == m
        if sel.any():
            with np.errstate(invalid="ignore"):
                out[:, sel] = x[:, sel] - np.nanmean(x[:, sel], axis=1, keepdims=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dielectric", default="mironov", choices=["mironov", "dobson"])
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import warnings

    from smfusion.evaluation.homogeneity import trend
    from smfusion.evaluation.metrics import bias, pearson_r, ubrmse
    from smfusion.synthetic.casm_sensors import SENSORS
    from smfusion.synthetic.casm_twin import make_casm_twin

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    t0 = time.perf_counter()
    ds = make_casm_twin(seed=args.seed, n_cells=args.cells, dielectric=args.dielectric)
    wall = time.perf_counter() - t0
    time_index = pd.DatetimeIndex(ds["time"].values)
    month = time_index.month.values
    truth = ds["sm_true"].values.astype(float)
    print("CASM twin: what each sensor sees of the truth (issue 14, phase 1)")
    print(f"Twin: {ds.sizes['site']} EASE-2 M25 cells (CONUS sample locations), {time_index[0].date()} .. "
          f"{time_index[-1].date()}, seed {args.seed}, dielectric {args.dielectric}; generated in {wall:.1f} s")
    print(f"Forcing: {ds.attrs['forcing_years']}")
    print("Statistic: median over cells of the per-cell Pearson R with sm_true on the sensor's observation days; "
          "anomalies = minus the cell's calendar-month mean over the era")
    print()
    print("| sensor | era | channel | obs | R(H) | R(V) | R(PR) | anom R(H) | anom R(V) | anom R(PR) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, spec in SENSORS.items():
        for ch in spec.channels:
            h = ds[spec.var("h", ch)].values.astype(float)
            v = ds[spec.var("v", ch)].values.astype(float)
            pr = (v - h) / (v + h)
            seen = np.isfinite(v)
            t = np.where(seen, truth, np.nan)
            ta = monthly_anomaly(t, month)
            r = [np.nanmedian(pearson_r(t, x)) for x in (h, v, pr)]
            ra = [np.nanmedian(pearson_r(ta, monthly_anomaly(x, month))) for x in (h, v, pr)]
            print(f"| {name} | {spec.start} .. {spec.end} | {ch.freq_ghz} GHz, {spec.incidence} deg | "
                  f"{int(seen.sum()):,} | " + " | ".join(f"{x:.3f}" for x in (*r, *ra)) + " |")
    smap = ds["sm_smap"].values.astype(float)
    ts = np.where(np.isfinite(smap), truth, np.nan)
    slope, se, _ = trend(smap - truth, ds["time"].values)
    print()
    print("| target vs truth | obs | R | anom R | ubRMSE | bias | median abs bias | trend (m3/m3/yr) median, p90 abs |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| sm_smap ({SENSORS['smap'].start} .. {SENSORS['smap'].end}) | {int(np.isfinite(smap).sum()):,} | "
          f"{np.nanmedian(pearson_r(ts, smap)):.3f} | "
          f"{np.nanmedian(pearson_r(monthly_anomaly(ts, month), monthly_anomaly(smap, month))):.3f} | "
          f"{np.nanmedian(ubrmse(ts, smap)):.4f} | {np.nanmedian(bias(ts, smap)):.4f} | "
          f"{np.nanmedian(np.abs(bias(ts, smap))):.4f} | {np.nanmedian(slope):.5f}, "
          f"{np.nanpercentile(np.abs(slope), 90):.5f} |")
    print(f"\ntruth: mean {np.nanmean(truth):.3f}, per-cell std median {np.nanmedian(np.nanstd(truth, axis=1)):.3f} m3/m3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
