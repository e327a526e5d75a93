"""The paper's ablation of the fusion point model: its rows in its order, and its table.

Rows (:data:`smfusion.io.fusion_schema.PAPER_ABLATION`): the baselines SMAP
alone, GLDAS alone (linearly rescaled on the training sensors) and the
SMAP+GLDAS NN, then S1+DEM, +S2, +SoilGrids, +SMAP+GLDAS, each one training of
the fusion model with those input groups, all on one split by sensor into
train / validation / test. Percentage change relative to the SMAP+GLDAS NN in
the paper's sign convention: ``+`` is an improvement, i.e. a higher R or a
lower ubRMSE / RMSE (:func:`pct_change`).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from smfusion.config import RunConfig
from smfusion.data.points import PointSet
from smfusion.io.fusion_schema import BASELINE_ROWS, ablation_rows
from smfusion.evaluation.points import evaluate_points
from smfusion.runs import Run
from smfusion.training.run import train

REFERENCE = "SMAP+GLDAS NN"
METRICS = ("ubrmse", "rmse", "r")
SPLITS = ("validation", "test")


def pct_change(value: float, ref: float, metric: str) -> float:
    """Change relative to ``ref`` in %, + = better: ``100 (ref - v) / ref`` for errors, ``100 (v - ref) / ref`` for R."""
    if metric == "r":
        return 100.0 * (value - ref) / abs(ref)
    return 100.0 * (ref - value) / ref


def row_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name.replace("+", "_plus_")).strip("_")


def run_ablation(
    cfg: RunConfig, points: PointSet, out_dir: str | Path, rows: Optional[Sequence[tuple[str, list[str]]]] = None,
    baselines: Sequence[str] = BASELINE_ROWS, log: Callable[[str], None] = print,
) -> list[tuple[str, dict]]:
    """Train each row's groups on ``points`` (split by ``cfg.split``); [(row, {split: {metric: value}})].

    The first row (the SMAP+GLDAS NN) also gives the baseline rows, which come
    first in the result, as in the paper's table.
    """
    rows = list(rows or ablation_rows())
    out_dir = Path(out_dir)
    base: list[tuple[str, dict]] = []
    trained: list[tuple[str, dict]] = []
    for name, groups in rows:
        c = cfg.model_copy(deep=True)
        c.fusion.groups = list(groups)
        t0 = time.time()
        sub = points.with_groups(groups)
        run = train(c, out_dir / row_slug(name), resume=False, data=sub)
        evaluate_points(Run.load(run), sub)
        m = json.loads((run / "metrics" / "metrics.json").read_text())
        log(f"  trained {name:<34} in {time.time() - t0:6.1f} s")
        if not base:
            base = [(b, {s: m[s][b] for s in SPLITS}) for b in baselines]
        trained.append((name, {s: m[s]["model"] for s in SPLITS}))
    return base + trained


def _cell(s: dict, ref: dict, metric: str, digits: int) -> str:
    return f"{s[metric]:.{digits}f} ({pct_change(s[metric], ref[metric], metric):+5.1f}%)"


def format_table(rows: list[tuple[str, dict]], title: str, protocol: str, reference: str = REFERENCE) -> str:
    """The ablation as text: validation and test ubRMSE, RMSE, R, each with its % change vs ``reference``."""
    ref = dict(rows)[reference]
    w = 18
    label = {"ubrmse": "ubRMSE", "rmse": "RMSE", "r": "R"}
    top = f"{'':<34}" + "".join(f"{s:^{3 * w}}" for s in SPLITS)
    head = f"{'row':<34}" + "".join(f"{label[m]:>{w}}" for _ in SPLITS for m in METRICS)
    lines = [title, protocol, top.rstrip(), head, "-" * len(head)]
    for name, m in rows:
        cells = "".join(f"{_cell(m[s], ref[s], k, 3 if k == 'r' else 4):>{w}}" for s in SPLITS for k in METRICS)
        lines.append(f"{name:<34}{cells}")
    lines.append(f"(% change vs {reference}: + = better, i.e. lower ubRMSE/RMSE or higher R, as in the paper)")
    return "\n".join(lines)
