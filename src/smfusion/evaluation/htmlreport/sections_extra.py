"""Report sections built from optional side files: the spatial CV folds and the station validation table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from smfusion.evaluation.htmlreport import figures
from smfusion.evaluation.htmlreport.page import Section, dict_html, figure_html, note_html, table_html

__all__ = ["cv_section", "stations_section"]


def _fold_coords(ctx, sites: np.ndarray):
    """lat/lon of CV stations: metrics.csv columns when present, else the hydroDL database the config names."""
    f = ctx.files
    m = f.cv.get("metrics")
    if m is not None and {"lat", "lon", "site"} <= set(m.columns):
        t = m.drop_duplicates("site").set_index("site")
        return t["lat"].reindex(sites).to_numpy(float), t["lon"].reindex(sites).to_numpy(float), "metrics.csv"
    data = f.config.get("data") or {}
    if data.get("reader", "hydrodl") != "hydrodl":
        return None
    try:
        from pathlib import Path

        from smfusion.io.hydrodl import read_coords
        from smfusion.settings import conus_dir

        root = Path(data["root"]).expanduser() if data.get("root") else conus_dir()
        lat, lon = read_coords(root, data.get("subset", "CONUSv4f1"))
        idx = sites.astype(int)
        return lat[idx], lon[idx], f"crd.csv of {root}"
    except Exception:
        return None


def cv_section(ctx) -> Section:
    """Fold map (test stations coloured by fold) and per-fold medians."""
    f = ctx.files
    s = Section("cv", "Spatial cross-validation")
    if f.cv is None:
        return s.add(note_html(f"No spatial CV: {f.missing.get('cv')}."))
    folds = f.cv["folds"]
    summary = f.cv.get("summary") or {}
    if summary.get("protocol"):
        s.add(f"<p>{summary['protocol']}</p>")
    sites = np.concatenate([np.asarray(fd["test"]) for fd in folds])
    fold_of = np.concatenate([np.full(len(fd["test"]), fd["fold"]) for fd in folds]).astype(float)
    where = _fold_coords(ctx, sites)
    if where is None:
        s.add(note_html("No fold map: station coordinates are neither in metrics.csv nor in a hydroDL database."))
    else:
        lat, lon, source = where
        path, src = ctx.png("cv_folds")
        import matplotlib

        k = int(np.nanmax(fold_of)) + 1
        cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"].resampled(k)
        figures.map_points(lat, lon, fold_of, "Held-out fold of each station", path, land=ctx.land_for(lat, lon),
                           cmap=cmap, label="fold", vmin=-0.5, vmax=k - 0.5)
        s.add(figure_html(src, f"Each station coloured by the fold that holds it out (coordinates: {source})"))
    per_fold = summary.get("per_fold_median")
    if per_fold:
        tab = pd.DataFrame.from_dict(per_fold, orient="index")
        tab.index.name = "fold"
        tab["test stations"] = [len(fd["test"]) for fd in folds][: len(tab)]
        if summary.get("pooled_median"):
            tab.loc["pooled"] = {**summary["pooled_median"], "test stations": int(sum(len(fd["test"]) for fd in folds))}
        s.add("<h3>Median over held-out stations, per fold</h3>").add(table_html(tab, digits=3))
    else:
        s.add(note_html(f"No per-fold table: {f.missing.get('cv summary', 'summary.json has no per_fold_median')}."))
    return s


def stations_section(ctx) -> Section:
    """The validation table, the medians with bootstrap intervals, and a map per product."""
    f = ctx.files
    s = Section("stations", "Validation against in-situ stations")
    v = f.validation
    if v is None:
        return s.add(note_html(f"No station validation: {f.missing.get('validation')}."))
    s.add(f"<p>Table: {v['path']}</p>")
    if v.get("protocol"):
        s.add(dict_html({k: val for k, val in v["protocol"].items() if k not in ("options", "products")}))
    if v.get("summary") is not None:
        sm = v["summary"].copy()
        s.add("<h3>Median over stations [bootstrap interval]</h3>")
        s.add(table_html(sm, digits=3, index=False))
    t = v["table"]
    panels = []
    for product, g in t.groupby("product", sort=False):
        panels.append(dict(lat=g["lat"], lon=g["lon"], values=g["R"], title=f"R: {product}", cmap="viridis",
                           label="R", vmin=-0.2, vmax=1.0, size=40))
    path, src = ctx.png("stations_map")
    figures.map_panels(panels, path, land=ctx.land_for(t["lat"], t["lon"]))
    s.add(figure_html(src, "Per-station R of each product (hollow: not scored, see status)"))
    cols = [c for c in ("product", "station", "distance_km", "n", "R", "R_lower", "R_upper", "anomaly_R", "ubRMSE",
                        "RMSE", "bias", "status") if c in t.columns]
    return s.add("<h3>Per station</h3>").add(table_html(t[cols], digits=3, index=False, scroll=True))
