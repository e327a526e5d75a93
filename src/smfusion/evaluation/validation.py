"""Validation of products against in-situ stations: per-station metrics and medians with bootstrap intervals.

Steps (``validate``): open and check every product (coordinates in range, a time axis;
:mod:`smfusion.evaluation.validation_checks`), read the stations (:mod:`smfusion.io.stations`: ISMN
folder/zip with quality flags, station table, long CSV; depth selection; values outside [0, 1] m3/m3
dropped with a count), find
each product's point for each station (:mod:`smfusion.data.extract`: nearest
point with data within ``max_distance_km``, or the containing EASE-2 cell),
match in time (:mod:`smfusion.data.station_match`; a product without a station within the distance, or
without a date in the stations' period, is refused), keep the period, and score
each station with :func:`smfusion.evaluation.metrics.compute_all` (n, R,
anomaly R, ubRMSE, RMSE, bias = mean(product - station)) plus the p-value and
Fisher-z interval of R (:mod:`smfusion.evaluation.inference`). Stations with
fewer than ``min_samples`` pairs keep their row with n and NaN metrics
(``status``). Per product: the median over stations of each metric with a
seeded percentile-bootstrap interval.

Outputs (:func:`write_validation`): ``TABLE.csv`` (one row per station and
product), ``TABLE.summary.csv`` (medians) and ``TABLE.json`` (protocol and
summary), written atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.data.extract import product_at_stations
from smfusion.data.station_match import Pairs, match_pairs, pair_days, restrict_dates
from smfusion.errors import DataError
from smfusion.evaluation.inference import bootstrap_median_ci, pearson_ci, pearson_p
from smfusion.evaluation.metrics import compute_all
from smfusion.evaluation.validation_checks import check_overlap, check_product, drop_impossible
from smfusion.io.atomic import atomic_path, write_text
from smfusion.io.stations import VARIABLE, read_stations

__all__ = ["ValidationOptions", "ValidationResult", "validate", "validate_series", "summarize", "write_validation",
           "format_validation", "METRIC_COLUMNS"]

#: Metric columns of the station table, in order; their medians form the summary.
METRIC_COLUMNS = ("R", "anomaly_R", "ubRMSE", "RMSE", "bias")


@dataclass
class ValidationOptions:
    """Every choice a validation makes; all of it goes into the protocol."""

    max_distance_km: float | None = 50.0
    spatial: str = "nearest"
    depth: tuple[float, float] = (0.0, 0.1)
    good_flags: tuple[str, ...] = ("G",)
    matching: str = "auto"
    window: str = "1h"
    min_hours: int = 12
    min_samples: int = 20
    start: str | None = None
    end: str | None = None
    common_dates: bool = False
    clim_window: int = 31
    clim_min_count: int = 5
    quality: str = "none"
    variable: str | None = None
    n_boot: int = 1000
    seed: int = 0
    alpha: float = 0.05
    value_column: str | None = None


@dataclass
class ValidationResult:
    table: pd.DataFrame
    summary: pd.DataFrame
    protocol: dict
    pairs: dict[str, Pairs] = field(default_factory=dict)


def _station_rows(stations: xr.Dataset, prod: xr.Dataset, pairs: Pairs, name: str, opts: ValidationOptions):
    res = compute_all(pairs.obs, pairs.sim, metrics=["pearson_r", "ubrmse", "rmse", "bias"],
                      clim_obs=pairs.clim_obs, clim_sim=pairs.clim_sim)
    n = np.asarray(res["n"], dtype=int)
    enough = n >= int(opts.min_samples)
    r = np.where(enough, res["pearson_r"], np.nan)
    lo, hi = pearson_ci(r, n, alpha=opts.alpha)
    found = np.isfinite(np.asarray(prod["distance_km"].values, dtype=float))
    status = np.where(~found, "no product point within max distance",
                      np.where(enough, "ok", f"n < {opts.min_samples}"))
    coord = lambda k, default: (np.asarray(stations[k].values) if k in stations.coords  # noqa: E731
                                else np.full(stations.sizes["site"], default))
    table = pd.DataFrame({
        "product": name, "station": np.asarray(stations["site"].values).astype(str),
        "network": coord("network", "unknown"), "lat": np.asarray(stations["lat"].values, dtype=float),
        "lon": np.asarray(stations["lon"].values, dtype=float),
        "depth_from": coord("depth_from", np.nan), "depth_to": coord("depth_to", np.nan),
        "cell_id": np.asarray(prod["cell_id"].values).astype(str),
        "cell_lat": prod["cell_lat"].values, "cell_lon": prod["cell_lon"].values,
        "distance_km": prod["distance_km"].values, "n": n, "R": r, "R_p": pearson_p(r, n),
        "R_lower": lo, "R_upper": hi, "anomaly_R": np.where(enough, res["anomaly_r"], np.nan),
        "ubRMSE": np.where(enough, res["ubrmse"], np.nan), "RMSE": np.where(enough, res["rmse"], np.nan),
        "bias": np.where(enough, res["bias"], np.nan), "matching": pairs.mode, "status": status,
    })
    return table


def summarize(table: pd.DataFrame, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Per product and metric: median over stations, bootstrap interval (seeded), number of stations."""
    rows = []
    for product, group in table.groupby("product", sort=False):
        for m in METRIC_COLUMNS:
            ci = bootstrap_median_ci(group[m].to_numpy(dtype=float), n_boot=n_boot, alpha=alpha, seed=seed)
            rows.append({"product": product, "metric": m, "median": ci["median"], "ci_lower": ci["lower"],
                         "ci_upper": ci["upper"], "n_stations": ci["n"]})
    return pd.DataFrame(rows)


def _unique_names(products: Sequence) -> list[str]:
    names, seen = [], {}
    for p in products:
        label = p[0] if isinstance(p, tuple) else (Path(p).name if not isinstance(p, xr.Dataset) else "dataset")
        seen[label] = seen.get(label, 0) + 1
        names.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return names


def validate_series(stations: xr.Dataset, products: Sequence, opts: ValidationOptions | None = None,
                    variables: Sequence[str | None] | None = None) -> ValidationResult:
    """Validate each product (a path, a Dataset, or a ``(label, path_or_dataset)`` pair) against ``stations``.

    ``stations`` is a dataset as :func:`smfusion.io.stations.read_stations`
    returns; ``variables`` gives each product's variable (default: detected;
    ``opts.variable`` for the first).
    """
    opts = opts or ValidationOptions()
    if not products:
        raise DataError("no product to validate", field="prediction")
    names = _unique_names(products)
    variables = list(variables) if variables is not None else [opts.variable] + [None] * (len(products) - 1)
    stations = drop_impossible(stations, VARIABLE)
    extracted, all_pairs = {}, {}
    for name, p, var in zip(names, products, variables):
        src = p[1] if isinstance(p, tuple) else p
        prod = product_at_stations(src, stations, variable=var, max_distance_km=opts.max_distance_km,
                                   spatial=opts.spatial, quality=opts.quality, name=name)
        check_overlap(name, prod, stations, VARIABLE, opts.max_distance_km)
        pairs = match_pairs(stations, prod, variable=VARIABLE, mode=opts.matching, window=opts.window,
                            min_hours=opts.min_hours, clim_window=opts.clim_window,
                            clim_min_count=opts.clim_min_count)
        extracted[name], all_pairs[name] = prod, restrict_dates(pairs, opts.start, opts.end)
    if opts.common_dates and len(names) > 1:
        days = [pair_days(all_pairs[n]) for n in names]
        common = [set.intersection(*[d[i] for d in days]) for i in range(stations.sizes["site"])]
        all_pairs = {n: restrict_dates(p, keep_days=common) for n, p in all_pairs.items()}
    table = pd.concat([_station_rows(stations, extracted[n], all_pairs[n], n, opts) for n in names],
                      ignore_index=True)
    summary = summarize(table, n_boot=opts.n_boot, alpha=opts.alpha, seed=opts.seed)
    return ValidationResult(table, summary, _protocol(stations, extracted, all_pairs, opts), all_pairs)


def validate(prediction, stations_path, references: Sequence = (), opts: ValidationOptions | None = None,
             stations: xr.Dataset | None = None) -> ValidationResult:
    """Validate ``prediction`` and each reference against the stations at ``stations_path``: the products are
    opened and checked first (:mod:`smfusion.evaluation.validation_checks`), then the stations are read."""
    opts = opts or ValidationOptions()
    for p, var in zip([prediction, *references], [opts.variable] + [None] * len(references)):
        check_product(p, var)  # every product opens and is sane before any station is read
    if stations is None:
        stations = read_stations(stations_path, depth=opts.depth, good_flags=opts.good_flags,
                                 value_column=opts.value_column)
    return validate_series(stations, [prediction, *references], opts)


def _protocol(stations: xr.Dataset, extracted: dict, pairs: dict, opts: ValidationOptions) -> dict:
    a = stations.attrs
    period = f"{opts.start or 'start of data'} .. {opts.end or 'end of data'} (UTC dates of the product times)"
    products = {}
    for n, prod in extracted.items():
        d = prod["distance_km"].values
        products[n] = {"source": prod.attrs.get("source"), "variable": prod.attrs.get("variable"),
                       "layout": prod.attrs.get("layout"), "matching": pairs[n].mode,
                       "distance_km_range": [float(np.nanmin(d)), float(np.nanmax(d))] if np.isfinite(d).any()
                       else None, "quality": opts.quality}
    return {
        "stations": f"{stations.sizes['site']} from {a.get('station_path', 'dataset')} ({a.get('station_source', '?')}, "
                    f"{a.get('sampling', '?')}); depth {opts.depth[0]}-{opts.depth[1]} m (stations of unknown depth "
                    f"kept); ISMN flags kept {list(opts.good_flags)}",
        "period": period,
        "spatial": f"{opts.spatial} point with data within {opts.max_distance_km} km (cell files: nearest stored point)",
        "temporal": f"product times are the reference; matching {opts.matching} (window {opts.window}, daily means "
                    f"need >= {opts.min_hours} hourly values)" + ("; only dates where every product has a pair"
                                                                if opts.common_dates else ""),
        "min_samples": opts.min_samples,
        "metrics": "R Pearson (p two-sided, Fisher-z CI); anomaly_R on anomalies from each series' own "
                   f"{opts.clim_window}-day day-of-year climatology over its whole record; ubRMSE, RMSE; "
                   "bias = mean(product - station)",
        "summary": f"median over stations with status ok; {round((1 - opts.alpha) * 100)}% percentile bootstrap, "
                   f"{opts.n_boot} resamples, seed {opts.seed}",
        "products": products,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items()},
    }


def write_validation(result: ValidationResult, out: str | Path) -> dict[str, Path]:
    """Write TABLE.csv, TABLE.summary.csv and TABLE.json next to each other (atomically)."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise DataError("validation table must be a .csv path", path=out)
    paths = {"table": out, "summary": out.with_suffix(".summary.csv"), "json": out.with_suffix(".json")}
    with atomic_path(paths["table"]) as tmp:
        result.table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(paths["summary"]) as tmp:
        result.summary.to_csv(tmp, index=False, float_format="%.6g")
    payload = {"protocol": result.protocol, "summary": result.summary.to_dict(orient="records")}
    write_text(paths["json"], json.dumps(payload, indent=1, default=str))
    return paths


def format_validation(result: ValidationResult, digits: int = 3) -> str:
    """Printed form: protocol lines, the per-station table, then the medians with their intervals."""
    lines = [f"{k}: {v}" for k, v in result.protocol.items() if k not in ("products", "options")]
    for n, p in result.protocol["products"].items():
        rng = p["distance_km_range"]
        lines.append(f"product {n}: {p['source']} [{p['variable']}, {p['layout']}, matching {p['matching']}, "
                     f"distance {'none' if rng is None else f'{rng[0]:.1f}-{rng[1]:.1f} km'}]")
    cols = ["product", "station", "distance_km", "n", "R", "R_lower", "R_upper", "anomaly_R", "ubRMSE", "RMSE",
            "bias", "status"]
    t = result.table[cols].copy()
    t["station"] = t["station"].str.slice(0, 40)
    lines += ["", t.to_string(index=False, float_format=lambda v: f"{v:.{digits}f}")]
    s = result.summary.copy()
    s["median [CI]"] = [f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
                        for m, lo, hi in zip(s["median"], s["ci_lower"], s["ci_upper"])]
    wide = s.pivot(index="product", columns="metric", values="median [CI]")[list(METRIC_COLUMNS)]
    wide["stations"] = s.groupby("product")["n_stations"].max()
    lines += ["", "median over stations [bootstrap CI]:", wide.loc[list(dict.fromkeys(s["product"]))].to_string()]
    return "\n".join(lines)
