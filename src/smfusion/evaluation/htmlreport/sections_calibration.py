"""Report section on the calibration of the predictive distribution, and the blocks the CV section reuses.

The tables and the reliability / PIT / spread-skill figures are drawn from the
scores ``smfusion evaluate`` (``metrics/calibration.json``) or ``smfusion cv``
(``calibration.json``) computed on the run's full distribution (mixture over
members, recalibration, isotonic PIT map included;
:mod:`smfusion.evaluation.calibration`). The spread layers of
``predictions/test.nc`` add what a user of ``mean +- std`` gets: the reliability
and PIT of the Gaussian N(mean, total std).
"""

from __future__ import annotations

import re

import pandas as pd

from smfusion.evaluation.calibration import plot_reliability
import smfusion.evaluation.htmlreport.figures as figures
from smfusion.evaluation.htmlreport.page import Block, Section, figure, heading, kv, note, para, table
from smfusion.evaluation.htmlreport.runfiles import why_no_spread

__all__ = ["calibration_section", "calibration_blocks"]

LEVELS = (50, 68, 90, 95)
SCORES = {"crps": "CRPS", "crps_cell_median": "CRPS, median over cells", "log_score": "log score",
          "spread_skill_r": "spread-skill r", "rmse_over_rms_std": "RMSE / rms std",
          "mean_epistemic_std": "mean epistemic std", "mean_aleatoric_std": "mean aleatoric std"}


def _coverage_table(rows: dict) -> pd.DataFrame:
    data = {label: {"recalibration": r.get("recalibration", "?"), "n": r.get("n"),
                    **{f"{lv}% {how}": r.get(f"coverage_{lv}{suffix}")
                       for lv in LEVELS for how, suffix in (("pooled", ""), ("cells", "_cell_median"))}}
            for label, r in rows.items()}
    tab = pd.DataFrame.from_dict(data, orient="index")
    tab.index.name = "distribution"
    return tab


def _scores_table(rows: dict) -> pd.DataFrame:
    tab = pd.DataFrame.from_dict({label: {name: r.get(key) for key, name in SCORES.items()}
                                  for label, r in rows.items()}, orient="index").dropna(axis=1, how="all")
    tab.index.name = "distribution"
    return tab


def _bins_table(row: dict) -> pd.DataFrame:
    ss = row["spread_skill"]
    return pd.DataFrame({"bin": range(1, len(ss["rms_std"]) + 1), "rms predicted std": ss["rms_std"],
                         "RMSE of the mean": ss["rmse"], "cell-days": ss.get("count")})


def calibration_blocks(ctx, cal: dict, stem: str, where: str) -> list[Block]:
    """Blocks per target of ``cal`` (target -> {rows, note}): coverage and score tables with each row's
    recalibration, the reliability diagram with PIT histograms, the spread-skill bins. Images ``img/<stem>_*``."""
    out = []
    for i, (var, entry) in enumerate(cal.items()):
        rows = entry["rows"]
        n = next(iter(rows.values())).get("n", "?")
        tag = f"{stem}_{re.sub(r'[^A-Za-z0-9]+', '_', var)}"
        out.append(heading(f"{var}: {where}, {n} cell-days with an observation"))
        out.append(kv({"recalibration": entry["note"] or "not recorded"}))
        out.append(para("Coverage of the central intervals: the fraction of observations inside (pooled over "
                        "cell-days; cells: median over cells with at least 10 observations). Nominal 0.50, 0.68, "
                        "0.90, 0.95."))
        out.append(table(_coverage_table(rows), digits=3))
        out.append(para("CRPS in target units, mean over cell-days (lower is better); log score: mean negative log "
                        "density (absent after an isotonic PIT map); spread-skill r: correlation of RMSE with the "
                        "predicted std over 10 equal-count bins; RMSE / rms std: 1 when the spread matches the "
                        "error."))
        out.append(table(_scores_table(rows), digits=4))
        path, src = ctx.png(f"{tag}_reliability")
        plot_reliability(rows, path)
        out.append(figure(src, f"{var}: reliability diagram (observed frequency of obs <= the predicted "
                                    "tau-quantile against tau; on the diagonal when calibrated) and PIT histograms "
                                    "(flat at 1 when calibrated; U-shaped: spread too small, hump: too large), "
                                    "one line per distribution of the tables"))
        path, src = ctx.png(f"{tag}_spread_skill")
        figures.spread_skill_plot(rows, path, title=f"Spread-skill, {var}")
        out.append(figure(src, f"{var}: RMSE of the mean against the rms predicted std in 10 equal-count bins "
                                    "of predicted std; on the dashed line when the spread is calibrated"))
        last = list(rows)[-1]
        out.append(para("Spread-skill bins of ", ("em", last), ":"))
        out.append(table(_bins_table(rows[last]), digits=4, index=False))
    return out


def calibration_section(ctx) -> Section:
    """The run's calibration scores (metrics/calibration.json), then its spread layers read as a Gaussian."""
    f = ctx.files
    s = Section("calibration", "Calibration of the predictive distribution")
    no_spread = why_no_spread(f.config) if f.config else ""
    if f.calibration is not None:
        s.add(para("Scores of the run's predictive distribution at every test (cell, day) with an observation, as ",
                   ("code", "smfusion evaluate"), " wrote them (metrics/calibration.json, docs/uncertainty.md): the "
                   "distribution raw and recalibrated, beside the Gaussian of the ensemble spread alone when the run "
                   "has more than that."))
        s.add(*calibration_blocks(ctx, f.calibration, "calibration", "test period"))
    elif no_spread:
        return s.add(note(f"This run has no predictive spread, so there is nothing to calibrate: {no_spread}."))
    elif f.cv is not None:
        return s.add(note(f"No calibration of the run's own test predictions: {f.missing.get('calibration')} "
                               "(a cross-validation run: the held-out calibration is in the spatial CV section)."))
    else:
        s.add(note(f"No calibration scores: {f.missing.get('calibration')} (smfusion evaluate writes them "
                        "for every run with a spread)."))
    return _layers(ctx, s)


def _layers(ctx, s: Section) -> Section:
    """Reliability and PIT of N(mean, total std) from the ``_std`` layer of predictions/test.nc."""
    f = ctx.files
    s.add(heading("The spread layers of predictions/test.nc read as a Gaussian"))
    if f.predictions is None:
        return s.add(note(f"No predictions: {f.missing.get('predictions')}."))
    if f.spread is None:
        return s.add(note("predictions/test.nc carries no spread layer; smfusion evaluate of this version "
                               f"writes {f.target}_std and the other layers of smfusion predict: run it again."))
    s.add(para(f"Layers in the file: {', '.join(f.spread_layers)}. Total std: {f.spread_source}."))
    if f.observations is None:
        return s.add(note(f"No observations: {f.missing.get('observations')}."))
    obs, mean = f.observations.values, f.predictions[f.target].values
    p1, s1 = ctx.png("reliability")
    figures.reliability_diagram(obs, mean, f.spread, p1, title=f"Central intervals of N({f.target}, {f.target}_std)")
    p2, s2 = ctx.png("pit")
    figures.pit_histogram(obs, mean, f.spread, p2, title=f"PIT of N({f.target}, {f.target}_std)")
    s.add(figure(s1, "Observed coverage of the central Gaussian intervals mean +- z x total std against their "
                          "nominal probability, pooled over site-days: what a user reading the product as "
                          "mean +- std gets (the scores above use the full distribution)"))
    return s.add(figure(s2, "Probability integral transform of the observations under N(mean, total std); "
                                 "U-shaped: spread too small, hump: too large"))
