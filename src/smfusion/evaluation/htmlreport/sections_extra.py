"""Report sections built from optional side files: a spatial / regional CV run dir (``smfusion cv``), the
station validation table, and the skill against lead of a data-integration run (``metrics/nowcast.json``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import smfusion.evaluation.htmlreport.figures as figures
from smfusion.evaluation.htmlreport.page import Section, details, figure, heading, kv, note, para, pre, table
from smfusion.evaluation.htmlreport.runfiles import why_no_spread
from smfusion.evaluation.htmlreport.sections_calibration import calibration_blocks

__all__ = ["cv_section", "stations_section", "nowcast_section"]


#: The scored periods of ``smfusion cv`` (as ``smfusion.experiments.cv.PERIOD_TEXT``; not imported: the report
#: reads files and stays clear of the training code).
PERIOD_TEXT = {"test": "unseen cells AND unseen year", "train": "unseen cells, training year"}
MODEL = "model"
_META = ("kind", "k", "seed", "buffer_km", "periods", "baselines", "temporal_reference")
_META_OF = {"block": ("block_deg",), "ease2": ("block_cells", "grid"), "regions": ("regions", "regions_file")}


def _meta(meta: dict) -> dict:
    """The cv settings that matter for this kind of folds, as text."""
    keys = _META + _META_OF.get(meta.get("kind"), ())
    if any(str(b).startswith("idw") for b in meta.get("baselines") or []):
        keys += ("idw_neighbours", "idw_power")
    return {f"cv.{k}": ", ".join(map(str, meta[k])) if isinstance(meta[k], list) else meta[k]
            for k in keys if meta.get(k) not in (None, [], "")}


def cv_section(ctx) -> Section:
    """Protocol, folds with the held-out / temporal ubRMSE ratio, per period a rows x folds table of median
    R and ubRMSE, maps of the held-out cells by fold and by R, and the held-out calibration."""
    f = ctx.files
    s = Section("cv", "Spatial cross-validation")
    if f.cv is None:
        return s.add(note(f"No spatial CV: {f.missing.get('cv')}."))
    cv = f.cv
    summary, folds, meta = cv["summary"] or {}, cv["folds"], cv["meta"]
    protocol = summary.get("protocol") or f"(no protocol: {f.missing.get('cv summary', 'not in summary.json')})"
    s.add(heading("Protocol"), para(protocol))
    if meta:
        s.add(kv(_meta(meta)))
    s.add(heading("Folds"), table(_fold_table(folds, summary), digits=3))
    if "ubrmse_ratio" in summary:
        s.add(para("held-out / temporal: the model's median ubRMSE over the fold's held-out cells (test period, "
                   "unseen cells and unseen year) over that of the same recipe trained on every cell with the "
                   "temporal split (seen cells, unseen year), on the same cells."))
    else:
        s.add(note("No held-out / temporal ubRMSE ratio: the CV ran without the temporal reference "
                        "(cv.temporal_reference false) or without a test period."))
    periods = summary.get("periods") or {}
    if not periods:
        s.add(note(f"No per-fold tables: {f.missing.get('cv summary', 'summary.json has no periods')}."))
    for period, rows in periods.items():
        s.add(heading(f"[{period}] {PERIOD_TEXT.get(period, period)}: median over each fold's held-out cells"),
              table(_period_table(rows, folds), digits=4))
    _cv_maps(ctx, s, next(iter(periods), None))
    _cv_calibration(ctx, s, list(periods))
    if cv.get("report"):
        s.add(details("report.txt as smfusion cv printed it", pre(cv["report"])))
    return s


def _fold_table(folds: list[dict], summary: dict) -> pd.DataFrame:
    ratio = {str(k): v for k, v in (summary.get("ubrmse_ratio") or {}).items()}
    rows = {str(fd["fold"]): {"held-out cells": len(fd["test"]), "training cells": len(fd.get("train", [])),
                              "buffer cells (left out)": len(fd.get("buffer", [])),
                              "held-out / temporal ubRMSE": ratio.get(str(fd["fold"]), np.nan)} for fd in folds}
    tab = pd.DataFrame.from_dict(rows, orient="index")
    tab = tab.astype({c: object for c in ("training cells", "buffer cells (left out)")})
    tab.loc["all"] = [int(tab["held-out cells"].sum()), "-", "-", summary.get("ubrmse_ratio_pooled", np.nan)]
    tab.index.name = "fold"
    return tab.astype({"held-out cells": int, "held-out / temporal ubRMSE": float})


def _period_table(rows: dict, folds: list[dict]) -> pd.DataFrame:
    """Row label x (fold, metric): median R and ubRMSE over each fold's held-out cells, then over all."""
    n = {str(fd["fold"]): len(fd["test"]) for fd in folds}
    data = {}
    for label, r in rows.items():
        cells = {(f"fold {k} ({n.get(str(k), '?')} cells)", m): v.get(m) for k, v in r["per_fold"].items()
                 for m in ("R", "ubRMSE")}
        cells.update({(f"all ({r['pooled'].get('n_sites', '?')} cells)", m): r["pooled"].get(m)
                      for m in ("R", "ubRMSE")})
        data[label] = cells
    tab = pd.DataFrame.from_dict(data, orient="index")
    tab.columns = pd.MultiIndex.from_tuples(tab.columns)
    tab.index.name = "row"
    return tab


def _cv_maps(ctx, s: Section, period: str | None) -> None:
    """Held-out cells coloured by fold, and by the model's R and ubRMSE over ``period`` (metrics.csv)."""
    import matplotlib

    m = ctx.files.cv.get("metrics")
    if m is None or not {"lat", "lon", "site", "fold"} <= set(m.columns):
        s.add(note(f"No fold map: {ctx.files.missing.get('cv metrics', 'metrics.csv has no lat / lon')}."))
        return
    if "row" in m:
        m = m[m["row"] == MODEL]
    if "period" in m and period in set(m["period"]):
        m = m[m["period"] == period]
    m = m.drop_duplicates("site")
    k = int(m["fold"].max()) + 1 if len(m) else 1
    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"].resampled(k)
    panels = [dict(lat=m["lat"], lon=m["lon"], values=m["fold"].astype(float), title="held-out fold", cmap=cmap,
                   label="fold", vmin=-0.5, vmax=k - 0.5, size=30, ticks=list(range(k)))]
    panels += [dict(lat=m["lat"], lon=m["lon"], values=m[c], title=f"{c} of the model on held-out cells", cmap=cm,
                    label=c, size=30, **kw)
               for c, cm, kw in (("R", "viridis", {"vmin": -0.2, "vmax": 1.0}), ("ubRMSE", "magma_r", {}))
               if c in m]
    path, src = ctx.png("cv_folds")
    figures.map_panels(panels, path, land=ctx.land_for(m["lat"], m["lon"]))
    s.add(figure(src, f"Each cell coloured by the fold that holds it out, then by the model's R and ubRMSE "
                           f"there when held out ({period or 'scored period'}; metrics.csv; grey: EASE-2 36 km land "
                           "cells)"))


def _cv_calibration(ctx, s: Section, periods: list[str]) -> None:
    f = ctx.files
    cal = f.cv.get("calibration")
    s.add(heading("Calibration on held-out cells"))
    if cal is None:
        why = why_no_spread(f.config) if f.config else ""
        s.add(note(f"No held-out calibration: {why or f.missing.get('cv calibration')}."))
        return
    last = (f.cv["meta"].get("periods") or periods or ["?"])[-1]
    s.add(*calibration_blocks(ctx, cal, "cv_calibration",
                              f"held-out cells of all folds, {last} period ({PERIOD_TEXT.get(last, last)})"))


def stations_section(ctx) -> Section:
    """The validation table, the medians with bootstrap intervals, and a map per product."""
    f = ctx.files
    s = Section("stations", "Validation against in-situ stations")
    v = f.validation
    if v is None:
        return s.add(note(f"No station validation: {f.missing.get('validation')}."))
    s.add(para(f"Table: {v['path']}"))
    if v.get("protocol"):
        s.add(kv({k: val for k, val in v["protocol"].items() if k not in ("options", "products")}))
    if v.get("summary") is not None:
        sm = v["summary"].copy()
        s.add(heading("Median over stations [bootstrap interval]"))
        s.add(table(sm, digits=3, index=False))
    t = v["table"]
    panels = []
    for product, g in t.groupby("product", sort=False):
        panels.append(dict(lat=g["lat"], lon=g["lon"], values=g["R"], title=f"R: {product}", cmap="viridis",
                           label="R", vmin=-0.2, vmax=1.0, size=40))
    path, src = ctx.png("stations_map")
    figures.map_panels(panels, path, land=ctx.land_for(t["lat"], t["lon"]))
    s.add(figure(src, "Per-station R of each product (hollow: not scored, see status)"))
    cols = [c for c in ("product", "station", "distance_km", "n", "R", "R_lower", "R_upper", "anomaly_R", "ubRMSE",
                        "RMSE", "bias", "status") if c in t.columns]
    return s.add(heading("Per station"), table(t[cols], digits=3, index=False, scroll=True))


def nowcast_section(ctx) -> Section | None:
    """Data-integration runs only: the table of skill against lead beside the baselines, and ubRMSE / R
    against lead."""
    f = ctx.files
    if not f.config.get("data_integration"):
        return None
    s = Section("nowcast", "Skill against lead (data integration)")
    if f.nowcast is None:
        return s.add(note(f"No skill against lead: {f.missing.get('nowcast')} (smfusion evaluate writes it)."))
    p = f.nowcast["protocol"]
    s.add(kv({"train": " .. ".join(p["train"]), "test": " .. ".join(p["test"]), "cells": p["cells"],
              "members": p["members"], "data_integration": p["di"], "scored": "median over cells, test days "
              "with a retrieval; coverage pooled over those cell-days"}))
    rows = [{"lead": int(k), "row": name, **{m: v for m, v in sc.items()}}
            for k, r in f.nowcast["leads"].items() for name, sc in r.items() if not name.startswith("_")]
    s.add(table(pd.DataFrame(rows), digits=4, index=False))
    for metric, label in (("ubRMSE", "ubRMSE (m3/m3)"), ("R", "R")):
        by = {}
        for k, r in f.nowcast["leads"].items():
            for name, sc in r.items():
                if not name.startswith("_"):
                    by.setdefault(name, {})[int(k)] = sc[metric]
        path, src = ctx.png(f"nowcast_{metric.lower()}")
        figures.by_lead(by, path, title=f"median {metric} against lead", ylabel=label)
        s.add(figure(src, f"Median {metric} over cells against lead"))
    return s
