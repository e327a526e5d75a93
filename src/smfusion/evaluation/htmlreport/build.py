"""Build the static HTML report of a run: ``index.html`` plus ``img/*.png`` in one folder.

Sections: run and protocol (config), metrics beside the baselines, maps of
per-cell R / ubRMSE / bias and of interval coverage, time series at chosen and
best/median/worst cells with observations and the uncertainty band, scatter
density, calibration (coverage, CRPS, reliability diagram, PIT histogram,
spread-skill of the run's predictive distribution; ``sections_calibration``),
spatial / regional CV (``sections_extra``), station validation. Every section
whose inputs are missing says which and why. Inputs are the run's files only
(:mod:`smfusion.evaluation.htmlreport.runfiles`).
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from smfusion import __version__
import smfusion.evaluation.htmlreport.figures as figures
from smfusion.evaluation.htmlreport.page import Section, figure, heading, kv, note, para, pre, render_page, table
from smfusion.evaluation.htmlreport.runfiles import (RunFiles, load_land_points, load_run_files,
                                                     why_no_spread)
from smfusion.evaluation.htmlreport.sections_calibration import calibration_section
from smfusion.evaluation.htmlreport.sections_extra import cv_section, nowcast_section, stations_section
from smfusion.io.atomic import atomic_path

log = logging.getLogger(__name__)

__all__ = ["build_report", "SECTION_IDS"]

#: Section anchors in page order (the browser test checks each).
SECTION_IDS = ("protocol", "metrics", "maps", "timeseries", "scatter", "calibration", "cv", "stations")
_COVERAGE_LEVEL = 0.9


class _Ctx:
    """Shared state while building: the files, the output folder, the land background."""

    def __init__(self, files: RunFiles, out: Path, sites: Sequence[str]):
        self.files, self.out, self.sites = files, out, list(sites)
        self.img = out / "img"
        self.img.mkdir(parents=True, exist_ok=True)
        self._land = None

    def land_for(self, lat, lon):
        lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
        if not np.isfinite(lat).any():
            return None
        return load_land_points((np.nanmin(lat), np.nanmax(lat)), (np.nanmin(lon), np.nanmax(lon)))

    def png(self, name: str) -> tuple[Path, str]:
        return self.img / f"{name}.png", f"img/{name}.png"


def _own_table(f: RunFiles) -> tuple[str, pd.DataFrame] | None:
    return next(iter(f.sites.items())) if f.sites else None


def _protocol(ctx: _Ctx) -> Section:
    f = ctx.files
    s = Section("protocol", "Run and protocol")
    s.add(kv({"run directory": f.run_dir.resolve(), "run name": f.config.get("name", "?"),
                     "target": f.target or "?", "report built": _dt.datetime.now().isoformat(timespec="seconds"),
                     "smfusion": __version__}))
    if f.metrics and f.metrics.get("protocol"):
        s.add(heading("Protocol of the test metrics"), kv(f.metrics["protocol"]))
    else:
        s.add(note(f"No protocol: {f.missing.get('metrics', 'metrics.json has no protocol')}."))
    if f.config_text:
        s.add(heading("config.yaml"), pre(f.config_text))
    else:
        s.add(note(f"No config: {f.missing.get('config')}."))
    return s


def _metrics(ctx: _Ctx) -> Section:
    f = ctx.files
    s = Section("metrics", "Test metrics beside the baselines")
    pooled = _pooled_table(f.metrics)
    if f.summary is None and pooled is not None:  # a point run: metrics pooled over each split's examples
        s.add(para("Pooled over every example of the split (sensors split into train / validation / test); "
                   "the model's rows beside its baselines (protocol above)."))
        return s.add(table(pooled))
    if f.summary is None:
        s.add(note(f"No metrics table: {f.missing.get('summary')}."))
        return s.add(_cv_pointer(f))
    s.add(para("Median over test sites of each per-site metric; first row: this run's model, then the baselines "
               "and reference rows the evaluation wrote (protocol above)."))
    return s.add(table(f.summary))


def _cv_pointer(f: RunFiles):
    """For a CV run dir: where its held-out scores are (None for other runs)."""
    return (para("This folder is a cross-validation run (smfusion cv): its scores on held-out cells, baselines, "
                 "held-out calibration and fold maps are in ", ("a", "Spatial cross-validation", "#cv"), ".")
            if f.cv is not None else None)


def _pooled_table(metrics: dict | None) -> pd.DataFrame | None:
    """The (split, row) table of a point run's ``metrics.json`` (None for other runs)."""
    if not metrics or not any(k in metrics for k in ("validation", "test")):
        return None
    rows = {(split, name): vals for split in ("validation", "test") for name, vals in metrics.get(split, {}).items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = ["split", "row"]
    return table.rename(columns={"ubrmse": "ubRMSE", "rmse": "RMSE", "r": "R"})


def _maps(ctx: _Ctx) -> Section:
    f = ctx.files
    s = Section("maps", "Maps of per-cell skill and uncertainty coverage")
    own = _own_table(f)
    if own is None:
        return s.add(note(f"No per-site metrics: {f.missing.get('sites')}."))
    label, t = own
    land = ctx.land_for(t["lat"], t["lon"])
    if land is None:
        s.add(note("No land background: ease2/ease36land.nc not found (SMFUSION_DATA_DIR)."))
    panels = [dict(lat=t["lat"], lon=t["lon"], values=t[c], title=f"{name} ({label})", cmap=cm, label=name, **kw)
              for c, name, cm, kw in (("pearson_r", "R", "viridis", {}), ("ubrmse", "ubRMSE", "magma_r", {}),
                                      ("bias", "bias", "RdBu_r", _sym(t.get("bias"))))
              if c in t]
    path, src = ctx.png("map_skill")
    figures.map_panels(panels, path, land=land)
    s.add(figure(src, f"Per-cell R, ubRMSE and bias of {label} over the test period (grey: EASE-2 36 km "
                           "land cells; hollow: no value)"))
    band = f.interval(_COVERAGE_LEVEL)
    if f.predictions is None or band is None or f.observations is None:
        why = (f"no predictions ({f.missing.get('predictions')})" if f.predictions is None else
               _no_band(f) if band is None else f"no observations ({f.missing.get('observations')})")
        return s.add(note(f"No coverage map: {why}."))
    obs = f.observations.values
    lo, hi, how = band
    ok = np.isfinite(obs) & np.isfinite(lo) & np.isfinite(hi)
    inside = np.where(ok, (obs >= lo) & (obs <= hi), 0).sum(axis=1)
    n = ok.sum(axis=1)
    cov = np.where(n > 0, inside / np.maximum(n, 1), np.nan)
    path, src = ctx.png("map_coverage")
    figures.map_points(f.predictions["lat"].values, f.predictions["lon"].values, cov,
                       f"Coverage of the central {_COVERAGE_LEVEL:.0%} interval per cell", path, land=land,
                       cmap="coolwarm_r", label="fraction of obs inside", vmin=0.0, vmax=1.0)
    return s.add(figure(src, f"Fraction of observed days inside the central {_COVERAGE_LEVEL:.0%} interval per "
                                  f"cell (nominal {_COVERAGE_LEVEL}); interval: {how}"))


def _no_band(f: RunFiles) -> str:
    why = why_no_spread(f.config)
    return f"this run has no predictive spread ({why})" if why else "predictions/test.nc carries no spread layer"


def _sym(values) -> dict:
    if values is None:
        return {}
    m = float(np.nanmax(np.abs(np.asarray(values, dtype=float)))) if np.isfinite(values).any() else 1.0
    return {"vmin": -m, "vmax": m}


def _pick_sites(ctx: _Ctx) -> list[tuple[str, str]]:
    """(site label, reason) for the chosen sites, then best / median / worst by R."""
    f = ctx.files
    ids = [str(v) for v in f.predictions["site"].values]
    out = [(str(sv), "chosen") for sv in ctx.sites if str(sv) in ids]
    for sv in ctx.sites:
        if str(sv) not in ids:
            log.warning("report: chosen site %s is not among the test sites", sv)
    own = _own_table(f)
    if own is not None and "pearson_r" in own[1]:
        t = own[1].dropna(subset=["pearson_r"]).sort_values("pearson_r")
        if len(t):
            for reason, row in (("best R", t.iloc[-1]), ("median R", t.iloc[len(t) // 2]), ("worst R", t.iloc[0])):
                out.append((str(row["site"]), f"{reason} {row['pearson_r']:.3f}"))
    elif not out:
        out = [(ids[0], "first test site")]
    return out


def _timeseries(ctx: _Ctx) -> Section:
    f = ctx.files
    s = Section("timeseries", "Time series at chosen and best / median / worst cells")
    if f.predictions is None or f.target is None:
        return s.add(note(f"No predictions: {f.missing.get('predictions')}."))
    picks = _pick_sites(ctx)
    ids = [str(v) for v in f.predictions["site"].values]
    rows = [ids.index(p) for p, _ in picks]
    pred = f.predictions[f.target].values[rows]
    obs = f.observations.values[rows] if f.observations is not None else None
    band = f.interval(_COVERAGE_LEVEL)
    lohi = (band[0][rows], band[1][rows]) if band is not None else None
    titles = [f"site {p} ({why})" for p, why in picks]
    path, src = ctx.png("timeseries")
    figures.series_with_band(f.predictions["time"].values, obs, pred, lohi, titles, path, level=_COVERAGE_LEVEL)
    s.add(figure(src, "Prediction (line), observations (dots)" + (
        f" and the central {_COVERAGE_LEVEL:.0%} interval ({band[2]})" if band else "") + " over the test period"))
    lat, lon = f.predictions["lat"].values[rows], f.predictions["lon"].values[rows]
    s.add(table(pd.DataFrame({"panel": titles, "lat": lat, "lon": lon}), digits=3, index=False))
    if obs is None:
        s.add(note(f"No observations: {f.missing.get('observations')}."))
    else:
        s.add(para(f"Observations: {f.observations_source}."))
    if band is None:
        s.add(note(f"No uncertainty band: {_no_band(f)}."))
    return s


def _scatter(ctx: _Ctx) -> Section:
    f = ctx.files
    s = Section("scatter", "Scatter density")
    if f.predictions is None or f.observations is None:
        return s.add(note(f"No scatter: {f.missing.get('predictions') or f.missing.get('observations')}."))
    path, src = ctx.png("scatter_density")
    figures.density_scatter(f.observations.values, f.predictions[f.target].values, path,
                            title="test period, all test sites and days with an observation")
    return s.add(figure(src, "Predicted against observed, density of site-days (log colour); dashed: 1:1"))


_BUILDERS = (_protocol, _metrics, _maps, _timeseries, _scatter, calibration_section, nowcast_section, cv_section,
             stations_section)


def build_report(run_dir: str | Path, out: str | Path, *, validation: str | Path | None = None,
                 sites: Sequence[str] = (), progress: bool = True, overwrite: bool = False) -> Path:
    """Write the folder ``out`` (``index.html``, ``img/``) for the run; return the index path.

    The folder is built beside ``out`` and renamed into place when complete
    (:func:`smfusion.io.atomic.atomic_path`): an existing ``out`` is refused
    unless ``overwrite``, and then replaced only when smfusion wrote it.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    files = load_run_files(run_dir, validation)
    with atomic_path(out, overwrite=overwrite, protect=[run_dir] + ([validation] if validation else [])) as tmp:
        ctx = _Ctx(files, tmp, sites)
        sections = [build(ctx) for build in tqdm(_BUILDERS, desc="report", unit="section", disable=not progress)]
        sections = [s for s in sections if s is not None]  # sections of other kinds of run
        title = f"smfusion run report: {files.config.get('name', Path(run_dir).name)}"
        subtitle = f"{Path(run_dir).resolve()} - target {files.target or '?'} - built by smfusion {__version__}"
        (tmp / "index.html").write_text(render_page(title, subtitle, sections))
    return out / "index.html"
