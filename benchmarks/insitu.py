"""Issue 16 benchmark: products against in-situ stations, real data only.

(a) CONUS / USCRN: smfusion's demo-recipe prediction (trained on SMAP_AM
    2015-04-01..2016-03-31) and SMAP_AM itself, at the cell nearest each of the
    three USCRN stations, scored against the stations' daily series over the
    test year 2016-04-01..2017-03-31 and over 2015-04-01..2017-03-31; each on
    all of its own days and on the days where SMAP_AM exists.
(b) Hawaii / SCAN: SMAP L3 (AM, PM) and ERA5-Land cell-file series against the
    nine SCAN sensors (ISMN, hourly, flag G), 2017-01-01..2018-12-31, nearest
    hourly value within 1 h of the product time.

    python benchmarks/insitu.py [--run-dir runs/demo_insitu] [--prediction FILE.nc]

Without ``--prediction`` the run directory is trained with the demo config
when it holds no trained model, then predicted over 2015-04-01..2017-03-31.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

SPAN = ("2015-04-01", "2017-03-31")
TEST = ("2016-04-01", "2017-03-31")
COLS = ["product", "station", "distance_km", "n", "R", "R_lower", "R_upper", "anomaly_R", "ubRMSE", "RMSE", "bias"]


def _prediction(args) -> Path:
    from smfusion.config import load_config
    from smfusion.products.predict import predict_to_file

    if args.prediction and Path(args.prediction).exists():
        return Path(args.prediction)
    run = Path(args.run_dir)
    if not (run / "member_0" / "model.pt").is_file():
        from smfusion.training.run import train

        print(f"training {args.config} into {run} (demo recipe) ...", flush=True)
        t0 = time.perf_counter()
        train(load_config(args.config), run)
        print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
    out = Path(args.prediction) if args.prediction else run / "predictions" / "insitu_2015-04-01_2017-03-31.nc"
    if not out.exists():
        predict_to_file(run, *SPAN, out)
    return out


def _label(station: str, all_ids) -> str:
    """ISMN ids 'NET:STATION:SENSOR:DEPTHS' -> 'STATION' (+ the sensor's last letters when a station has two)."""
    parts = station.split(":")
    if len(parts) < 4:
        return station
    same = [s for s in all_ids if s.split(":")[1] == parts[1]]
    return parts[1] + (f" ({parts[2][-1]})" if len(set(same)) > 1 else "")


def _show(res, title: str) -> None:
    print(f"\n--- {title}")
    t = res.table[COLS].copy()
    ids = list(dict.fromkeys(t["station"]))
    t["station"] = [_label(s, ids) for s in t["station"]]
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    s = res.summary.set_index(["product", "metric"])
    for p in dict.fromkeys(res.summary["product"]):
        cells = [f"{m} {s.loc[(p, m), 'median']:.3f} [{s.loc[(p, m), 'ci_lower']:.3f}, {s.loc[(p, m), 'ci_upper']:.3f}]"
                 for m in ("R", "anomaly_R", "ubRMSE", "bias")]
        print(f"median over {int(s.loc[(p, 'R'), 'n_stations'])} stations [95% bootstrap], {p}: " + "; ".join(cells))


def _versus(res, a: str, b: str) -> None:
    """Per station: does product a correlate at least as well as b (same dates)?"""
    t = res.table.set_index(["product", "station"])
    for st in dict.fromkeys(res.table["station"]):
        ra, rb = t.loc[(a, st), "R"], t.loc[(b, st), "R"]
        ua, ub = t.loc[(a, st), "ubRMSE"], t.loc[(b, st), "ubRMSE"]
        print(f"  {st}: R {a} {ra:.3f} vs {b} {rb:.3f} ({'>=' if ra >= rb else '<'}); "
              f"ubRMSE {ua:.4f} vs {ub:.4f} ({'lower' if ua < ub else 'not lower'})")


def part_a(args, data) -> None:
    from smfusion.evaluation.validation import ValidationOptions, validate_series
    from smfusion.io.hydrodl import read_hydrodl
    from smfusion.io.stations import read_stations

    pred = _prediction(args)
    smap = read_hydrodl(data / "conus_smap", dynamic=[], static=[], target=["SMAP_AM"], start=SPAN[0], end=SPAN[1])
    stations = read_stations(data / "uscrn")
    products = [("smfusion demo", pred), ("SMAP_AM", smap)]
    print("=" * 100)
    print("(a) CONUS sample vs USCRN (3 stations, daily vwc)")
    print(f"prediction: {pred} (variable SMAP_AM; model trained on SMAP_AM {SPAN[0]}..2016-03-31, so the first "
          "year of the span is the training year w.r.t. SMAP, not w.r.t. the stations)")
    print("protocol: nearest CONUS-sample cell with data within 60 km (site layout, 412 cells); daily matching "
          "(station daily value on the product date, UTC); R Pearson with Fisher-z 95% CI; anomaly R against each "
          "series' own 31-day day-of-year climatology over its record (USCRN 2010-2020; SMAP and model over "
          "2015-04..2017-03); bias = product - station; >= 20 pairs")
    for period in (TEST, SPAN):
        for common in (False, True):
            opts = ValidationOptions(max_distance_km=60.0, start=period[0], end=period[1], common_dates=common,
                                     n_boot=1000, seed=0)
            res = validate_series(stations, products, opts)
            what = "days where SMAP_AM exists (common dates)" if common else "each product on all of its days"
            _show(res, f"{period[0]} .. {period[1]}, {what}")
            if common:
                print("model against SMAP_AM at each station, on the same days:")
                _versus(res, "smfusion demo", "SMAP_AM")
    d = res.table["distance_km"].to_numpy()
    print(f"\nlimits: station-to-cell distance {np.nanmin(d):.1f}-{np.nanmax(d):.1f} km (36 km cells: the cell "
          "is not the station's footprint); the depth of the USCRN daily series is not stated (near-surface, "
          "unknown; USCRN measures at 5-100 cm), SMAP senses ~0-5 cm; 3 stations only, so the medians' bootstrap "
          "intervals span the station values.")


def part_b(data) -> None:
    from smfusion.evaluation.validation import ValidationOptions, validate

    base = data / "insitu_hawaii_scan"
    g = base / "gridded_timeseries"
    refs = [("SMAP_L3_PM", g / "SMAP_L3" / "SMAP_V8_PM"), ("ERA5-Land", g / "ERA5_LAND" / "ERA5_LAND_V20190904")]
    print("\n" + "=" * 100)
    print("(b) Hawaii: SMAP L3 and ERA5-Land vs SCAN (ISMN, 9 sensors at 5.08 cm, hourly, flag G)")
    print("protocol: 2017-01-01..2018-12-31; nearest stored grid point within 50 km; product time = reference "
          "(SMAP: tb_time_seconds overpass time, ERA5-Land: 06:00 UTC stamp); nearest hourly station value "
          "within 1 h; SMAP values in the valid range 0.02-0.5, no retrieval-quality filter (see below); "
          "anomaly R against each series' own 31-day climatology (SMAP 2015-2022, station and ERA5-Land "
          "2017-2018); >= 20 pairs")
    opts = ValidationOptions(max_distance_km=50.0, start="2017-01-01", end="2018-12-31", matching="nearest",
                             window="1h", n_boot=1000, seed=0)
    res = validate(("SMAP_L3_AM", g / "SMAP_L3" / "SMAP_V8_AM"), base / "ISMN_TESTDATA_HAWAII", refs, opts)
    _show(res, "2017-01-01 .. 2018-12-31, each product on all of its pairs")
    rec = validate(("SMAP_L3_AM recommended", g / "SMAP_L3" / "SMAP_V8_AM"), base / "ISMN_TESTDATA_HAWAII",
                   opts=ValidationOptions(**{**opts.__dict__, "quality": "recommended", "min_samples": 1}))
    n_rec = rec.table["n"].tolist()
    print(f"\nwith the SMAP retrieval_qual_flag 'recommended' filter: pairs per sensor {n_rec}"
          + (" (no SMAP point nearest a sensor has a recommended retrieval on a matched date)"
             if not any(n_rec) else ""))
    dist = {p: res.table.loc[res.table['product'] == p, 'distance_km'] for p in dict.fromkeys(res.table['product'])}
    print("limits: " + "; ".join(f"{p} point {d.min():.1f}-{d.max():.1f} km from the sensors" for p, d in dist.items())
          + "; SMAP 36 km cells over a small, steep island and its coast; Kainaliu (Kona coast) has 2 AM "
          "retrievals in 2017-2018; ERA5-Land layer 1 is 0-7 cm, the sensors at 5.08 cm; 9 sensors on one "
          "island, two of them at one station (Kainaliu A/B).")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default="runs/demo_insitu")
    p.add_argument("--config", default="src/smfusion/configs/demo.yaml")
    p.add_argument("--prediction", default=None, help="prediction file over 2015-04-01..2017-03-31 (site layout)")
    p.add_argument("--skip-a", action="store_true", help="only part (b)")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    from smfusion.settings import data_dir

    data = data_dir()
    if data is None:
        raise SystemExit("no real data: set SMFUSION_DATA_DIR or place ../shared/data")
    if not args.skip_a:
        part_a(args, data)
    part_b(data)


if __name__ == "__main__":
    main()
