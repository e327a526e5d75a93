"""CASM on REAL sensor records over Hawaii (issue 26): SMOS, ASCAT, ESA CCI mapped to SMAP, chained 2002 -> 2024.

RETRIEVAL to retrieval: every input is a soil-moisture retrieval read from the TU Wien cell files of
../shared/data/hawaii_multisensor with its producer's filters (reader ``sensor_cells``), not a brightness
temperature. Protocol (printed with the tables):

* sites: the 13 SMAP L3 v9 36 km points of cells 0165/0166; target SMAP L3 v9 AM (retrieval successful,
  ``quality: success``: island pixels are never "recommended"); each product's nearest point with data
  within 30 km;
* runs (``configs/casm_hawaii_{smos,ascat,cci}.yaml``, ``smfusion train``): per-day MLP on seasonal residuals
  (91-day day-of-year climatologies removed from input and target), SMOS L3 -> SMAP AM trained
  2015-04-01 .. 2019-12-31 (test 2020-01-01 .. 2022-05-07); ASCAT and ESA CCI passive fine-tuned from it
  (transfer) on their overlap with SMAP;
* chain (``predict_chain``): ESA CCI run 2002-06-19 .. 2010-01-11 | SMOS run 2010-01-12 .. 2022-05-07 |
  ESA CCI run 2022-05-08 .. 2024-12-31, daily (DIR/product.nc) and in CASM's 3-day windows
  (DIR/product_3day.nc), layers sm, sm_std, sm_epistemic_std, sm_aleatoric_std, source;
* sensors (DIR/sensors/<name>.nc, site layout, ``sm``): the filtered daily retrievals at the same sites;
* stations (``smfusion validate``'s code, daily matching, ISMN flag G, nearest point with data within 50 km):
  Silver Sword COSMOS probe (0-0.17 m; values 2010-06-15 .. 2019-06) per era, the chain and the ASCAT and
  CCI runs over the probe years, the 9 SCAN sensors (0.05 m) 2017-2018; R, ubRMSE, bias,
  n; medians over stations; baseline rows: the sensors themselves;
* homogeneity (:mod:`smfusion.evaluation.homogeneity`): trend of product minus station (Silver Sword) and of
  product minus ESA CCI (every site with both), jumps over 365-day windows at every era boundary and at the
  SMAP start 2015-04-01, CASM's stability criterion |trend| <= 0.01 m3/m3/yr.

Usage: ``SMFUSION_DATA_DIR=../shared/data python benchmarks/casm_hawaii.py --out DIR [--members 3] [--seed 0]``
(about 5-10 minutes on one busy core; trained runs in DIR/runs are reused).
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAIN = [("cci", "2002-06-19", "2010-01-11", "esa_cci_amsre"), ("smos", "2010-01-12", "2022-05-07", "smos"),
         ("cci", "2022-05-08", "2024-12-31", "esa_cci_amsr2")]
BOUNDARIES = ["2010-01-12", "2015-04-01", "2022-05-08"]
SENSORS = {
    "smap_am": {"sensor": "smap_l3", "overpass": "am", "quality": "success", "path": "hawaii_multisensor/SMAP_L3/SMAP_V9_AM_PM/netcdf"},
    "smap_pm": {"sensor": "smap_l3", "overpass": "pm", "quality": "success", "path": "hawaii_multisensor/SMAP_L3/SMAP_V9_AM_PM/netcdf"},
    "smos": {"sensor": "smos_l3", "path": "hawaii_multisensor/SMOS_L3/SMOSL3_v339_ASC"},
    "smos_ic": {"sensor": "smos_ic", "path": "hawaii_multisensor/SMOS_IC/SMOS_105_ASC"},
    "ascat": {"sensor": "ascat", "path": "hawaii_multisensor/ASCAT/ASCAT_H119/data"},
    "cci": {"sensor": "esa_cci", "path": "hawaii_multisensor/ESA_CCI_SM_passive/ESA_CCI_SM_P_V09_2"},
}
# the probe's values (flag G) run 2010-06-15 .. 2019-06: the SMAP era at the probe ends there
PROBE_PERIODS = {"before SMAP": ("2010-06-15", "2015-03-31"), "SMAP era": ("2015-04-01", "2019-12-31"),
                 "year before 2015-04": ("2014-04-01", "2015-03-31"), "year from 2015-04": ("2015-04-01", "2016-03-31")}
RUN_YEARS = ("2010-06-15", "2019-12-31")  # each transferred run predicted over the probe's years
SCAN_PERIOD = ("2017-01-01", "2018-12-31")


def train_runs(out: Path, members: int, seed: int) -> dict[str, Path]:
    from smfusion.config import parse_config
    from smfusion.training.run import train

    runs = {}
    for name in ("smos", "ascat", "cci"):
        raw = yaml.safe_load((ROOT / "configs" / f"casm_hawaii_{name}.yaml").read_text())
        raw["training"].update(ensemble=members, progress=False, seed=seed)
        if "transfer" in raw:
            raw["transfer"]["from_run"] = str(runs["smos"])
        run_dir = out / "runs" / name
        runs[name] = run_dir if (run_dir / "metrics").is_dir() else train(parse_config(raw), run_dir)
    return runs


def sensor_products(out: Path) -> dict[str, Path]:
    """The filtered daily retrievals at the sites, one site-layout file each (variable ``sm``)."""
    from smfusion.config import DataConfig
    from smfusion.data.sensor_cells import read_sensor_cells
    from smfusion.io.cf import write_netcdf

    cfg = DataConfig.model_validate({"reader": "sensor_cells", "target": ["sm_smap_am"], "sensor_cells": {
        "points": "smap_am", "max_distance_km": 30, "products": SENSORS}})
    ds = read_sensor_cells(cfg, "2002-01-01", "2024-12-31")
    paths = {}
    (out / "sensors").mkdir(parents=True, exist_ok=True)
    for name in SENSORS:
        one = ds[[f"sm_{name}"]].rename({f"sm_{name}": "sm"}).drop_vars([c for c in ds.coords if c.endswith("_gpi")
                                                                         or c.endswith("_distance_km")])
        one["sm"].attrs = dict(ds[f"sm_{name}"].attrs)
        paths[name] = write_netcdf(one, out / "sensors" / f"{name}.nc", title=f"{name} filtered daily retrievals",
                                   overwrite=True)
    return paths


def chain(out: Path, runs: dict[str, Path]) -> dict[int, Path]:
    from smfusion.products.chain import predict_chain

    eras = [(runs[r], a, b, n) for r, a, b, n in CHAIN]
    paths = {1: out / "product.nc", 3: out / "product_3day.nc"}
    for days, path in paths.items():
        if not path.exists():
            predict_chain(eras, path, composite_days=days, progress=False)
    return paths


def run_products(out: Path, runs: dict[str, Path]) -> dict[str, Path]:
    """The ASCAT and ESA CCI runs over the probe's years (the chain uses the CCI run only where the probe has no
    value, and the ASCAT run nowhere): how the transferred runs fare against the station."""
    from smfusion.products.longterm import predict_product

    paths = {}
    for name in ("ascat", "cci"):
        paths[name] = out / f"run_{name}_{RUN_YEARS[0][:4]}_{RUN_YEARS[1][:4]}.nc"
        if not paths[name].exists():
            predict_product(runs[name], *RUN_YEARS, paths[name], progress=False)
    return paths


def station_table(stations, products: list[tuple], periods: dict, depth) -> pd.DataFrame:
    """Medians over stations per period and product; ``products``: (label, path[, variable])."""
    from smfusion.evaluation.validation import ValidationOptions, validate_series

    rows = []
    variables = [p[2] if len(p) > 2 else None for p in products]
    for label, (a, b) in periods.items():
        opts = ValidationOptions(depth=depth, start=a, end=b, matching="daily", n_boot=200, min_samples=20)
        res = validate_series(stations, [p[:2] for p in products], opts, variables=variables)
        t = res.table
        for name in [p[0] for p in products]:
            sub = t[t["product"] == name]
            rows.append({"period": f"{label} {a} .. {b}", "product": name, "stations": int(sub["R"].notna().sum()),
                         "n (median)": float(sub["n"].median()), "R": float(sub["R"].median()),
                         "ubRMSE": float(sub["ubRMSE"].median()), "bias": float(sub["bias"].median())})
    return pd.DataFrame(rows)


def homogeneity_tables(product: Path, sensors: dict[str, Path], stations) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(product - station at Silver Sword, product - ESA CCI at every site): trend, jumps, stability."""
    import xarray as xr

    from smfusion.data.extract import product_at_stations
    from smfusion.evaluation.homogeneity import homogeneity, summarize_homogeneity

    p = xr.open_dataset(product)
    t = pd.DatetimeIndex(p.time.values)
    daily = stations["soil_moisture"].resample(time="1D").mean().reindex(time=t)
    cnt = stations["soil_moisture"].notnull().resample(time="1D").sum().reindex(time=t)
    obs = np.where(cnt.values >= 12, daily.values, np.nan)
    at = product_at_stations(p, stations, max_distance_km=50.0)
    sim = at["sm"].reindex(time=t).values if "sm" in at else at[list(at.data_vars)[0]].reindex(time=t).values
    h_station = homogeneity(sim, obs, t, BOUNDARIES[1:2])
    cci = xr.open_dataset(sensors["cci"])["sm"].reindex(time=t).values
    h_cci = homogeneity(p["sm"].values, cci, t, BOUNDARIES)
    def with_data(h):  # sites without both series have no trend: left out of the summary (and the stable share)
        ok = np.isfinite(np.atleast_1d(h["trend"]))
        return {k: np.atleast_1d(v)[ok] for k, v in h.items()}

    return summarize_homogeneity(with_data(h_station)), summarize_homogeneity(with_data(h_cci))


def overlap_cadence(product: dict[int, Path], sensors: dict[str, Path]) -> pd.DataFrame:
    """R of the product vs SMAP AM in the SMOS run's test years, daily and in 3-day windows (SMAP composited)."""
    import xarray as xr

    from smfusion.data.composite import composite_windows
    from smfusion.evaluation.metrics import pearson_r

    smap = xr.open_dataset(sensors["smap_am"])[["sm"]]
    rows = []
    for days, path in product.items():
        p = xr.open_dataset(path)
        ref = smap if days == 1 else composite_windows(smap, days, pd.Timestamp(CHAIN[0][1]))
        ref = ref.reindex(time=p.time.values)
        t = pd.DatetimeIndex(p.time.values)
        s = np.asarray((t >= "2020-01-01") & (t <= "2022-05-07"))
        r = pearson_r(ref["sm"].values[:, s], p["sm"].values[:, s])
        n = np.sum(np.isfinite(ref["sm"].values[:, s]) & np.isfinite(p["sm"].values[:, s]), axis=1)
        rows.append({"cadence": f"{days} day", "sites": int(np.sum(np.isfinite(r))), "R vs SMAP AM (median)":
                     float(np.nanmedian(r)), "pairs (median)": float(np.median(n[np.isfinite(r)]))})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="training seed of every run (members: seed + index)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    from smfusion.io.stations import read_stations
    from smfusion.settings import data_dir

    root = data_dir()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = train_runs(args.out, args.members, args.seed)
    sensors = sensor_products(args.out)
    products = chain(args.out, runs)
    pd.set_option("display.width", 200, "display.max_columns", 20)
    print(f"\nCASM on real RETRIEVALS over Hawaii (not brightness temperatures); product: {products[1]}")
    cadence = overlap_cadence(products, sensors)
    print("\nOverlap R vs the target (SMAP AM), SMOS run's test years 2020-01-01 .. 2022-05-07, 13 SMAP points:")
    print(cadence.to_string(index=False, float_format="%.3f"))
    transferred = run_products(args.out, runs)
    labelled = [("CASM chain", products[1]), ("CASM chain 3-day", products[3]),
                ("CASM ASCAT run", transferred["ascat"]), ("CASM CCI run", transferred["cci"]),
                ("baseline: SMAP AM climatology", products[1], "sm_climatology")] + \
        [(n, sensors[n]) for n in ("smap_am", "smap_pm", "smos", "smos_ic", "ascat", "cci")]
    probe = read_stations(root / "hawaii_multisensor/ISMN/ISMN_V20250617", depth=(0.0, 0.17))
    tab = station_table(probe, labelled, PROBE_PERIODS, (0.0, 0.17))
    print("\nSilver Sword COSMOS probe (0-0.17 m, ISMN flag G, daily means; its values run 2010-06-15 .. 2019-06, so "
          "the chain's ESA CCI eras 2002-06-19 .. 2010-01-11 and 2022-05-08 .. 2024-12-31 have no station: the CCI "
          f"run's own product over {RUN_YEARS[0]} .. {RUN_YEARS[1]} stands in for them):")
    print(tab.to_string(index=False, float_format="%.3f"))
    year = tab[tab.period.str.startswith("year")].pivot(index="product", columns="period", values="bias")
    print("\nMean bias jump at 2015-04-01 (bias in the year from minus the year before, vs the probe):")
    print((year.iloc[:, 1] - year.iloc[:, 0]).rename("jump").to_string(float_format="%.3f"))
    scan = read_stations(root / "insitu_hawaii_scan/ISMN_TESTDATA_HAWAII", depth=(0.0, 0.1))
    print("\nSCAN sensors (0.05 m, 9 sensors, 2017-2018; medians over sensors):")
    print(station_table(scan, labelled, {"SCAN": SCAN_PERIOD}, (0.0, 0.1)).to_string(index=False,
                                                                                  float_format="%.3f"))
    h_st, h_cci = homogeneity_tables(products[1], sensors, probe)
    print("\nHomogeneity, daily product - Silver Sword probe (jump at the SMAP start 2015-04-01, 365-day windows):")
    print(h_st.to_string(float_format="%.4f"))
    print("\nHomogeneity, daily product - ESA CCI passive (sites with both; jumps at every era boundary):")
    print(h_cci.to_string(float_format="%.4f"))


if __name__ == "__main__":
    main()
