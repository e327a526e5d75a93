"""Evaluation of point runs (fusion model): pooled metrics per split, beside baselines.

Metrics pool every example of a split (not per sensor), as Batchu et al. (2023)
report them. Baselines scored beside the model: SMAP alone (raw value) and
GLDAS alone with a linear rescaling ``a * gldas + b`` fitted on the training
points. Writes ``metrics/metrics.json`` and ``metrics/report.txt``.
"""

from __future__ import annotations

import json

import numpy as np

from smfusion.data import points as P
from smfusion.errors import DataError
from smfusion.evaluation.calibration import calibration_section
from smfusion.evaluation.metrics import pearson_r, rmse, ubrmse
from smfusion.evaluation.tables import Report
from smfusion.io.atomic import write_text

__all__ = ["scores", "baseline_predictions", "evaluate_points", "format_metrics"]


def scores(obs: np.ndarray, sim: np.ndarray) -> dict[str, float]:
    """Pooled ubRMSE, RMSE, R and n over every example."""
    return {
        "ubrmse": float(ubrmse(obs, sim, axis=None)),
        "rmse": float(rmse(obs, sim, axis=None)),
        "r": float(pearson_r(obs, sim, axis=None)),
        "n": int(np.sum(np.isfinite(obs) & np.isfinite(sim))),
    }


def baseline_predictions(train: P.PointSet, points: P.PointSet) -> dict[str, np.ndarray]:
    """SMAP alone (raw) and GLDAS alone, linearly rescaled on ``train``."""
    ok = np.isfinite(train.model_sm) & np.isfinite(train.y)
    if ok.sum() < 2:
        raise DataError("too few training points to fit the GLDAS rescaling", field="gldas_sm")
    a, b = np.polyfit(train.model_sm[ok].astype(float), train.y[ok].astype(float), 1)
    return {"SMAP alone": points.smap.astype(float), "GLDAS alone (rescaled)": a * points.model_sm.astype(float) + b}


def evaluate_points(run, points=None):
    """Score validation and test sensors of a point run (``smfusion.runs.Run``); returns the Report.

    ``points``: a PointSet, or shards read as needed (only each split's examples are held, one split at a
    time); None: the run's data."""
    points = run.adapter.load() if points is None else points
    split, cfg = run.split, run.cfg
    train_p = points.of_sensors(split.train, groups=[])  # the baselines' values only (shards: no image decoded)
    protocol = {"reader": cfg.data.reader, "groups": cfg.fusion.groups, "split": "by sensor",
                "n_sensors": {k: len(v) for k, v in split.to_dict().items()},
                "metrics": "pooled over every example of the split"}
    out = {"protocol": protocol}
    calib = ""
    for name, sensors in (("validation", split.validation), ("test", split.test)):
        sub, pred, passes = _predict_split(run, points, sensors)
        if len(sub) == 0:
            continue
        row = {"model": scores(sub.y, pred)}
        for bname, bpred in baseline_predictions(train_p, sub).items():
            row[bname] = scores(sub.y, bpred)
        out[name] = row
        if name == "test":
            calib = calibration_section(run, run.distribution(passes, "none", data=points),
                                        run.distribution(passes, data=points),
                                        run.adapter.observations(points, passes.batches), run.run_dir,
                                        f"{cfg.model.name} on test sensors", plots=cfg.evaluation.plots)
    text = format_metrics(out) + calib
    write_text(run.run_dir / "metrics" / "metrics.json", json.dumps(out, indent=1))
    write_text(run.run_dir / "metrics" / "report.txt", text + "\n")
    return Report(text=text, summary=None, protocol=protocol, tables={})


EVAL_CHUNK = 1024  # streamed splits larger than this are read and predicted this many examples at a time


def _predict_split(run, points, sensors):
    """(the split's points, ensemble-mean prediction, the members' passes). Shards read as needed (a ShardSet)
    with more than ``EVAL_CHUNK`` examples in the split: a :class:`~smfusion.data.points_stream.StreamBatches`,
    read and predicted piece by piece (:meth:`smfusion.runs.Run.forward` joins the passes; the batches hold
    labels and baselines only, which is all the scores, the predictive distribution and the calibration
    read)."""
    rows = points.rows(sensors) if hasattr(points, "rows") else None
    if rows is None or rows.size <= EVAL_CHUNK:
        b = run.adapter.eval_batches(points, sensors, None)
    else:
        from smfusion.data.points_stream import StreamBatches

        b = StreamBatches(points, rows, run.adapter.scaler, EVAL_CHUNK)
    if len(b) == 0:
        return b.meta["points"], None, None
    passes = run.forward(b)  # one forward pass of every member: the scores and the calibration read it
    return b.meta["points"], run.members_of(passes).mean(axis=0)[:, 0, 0], passes


def format_metrics(m: dict) -> str:
    """A point run's metrics as a small text table (pooled over examples, split by sensor)."""
    pr = m["protocol"]
    lines = [f"reader {pr['reader']}, groups {pr['groups']}, split by sensor {pr['n_sensors']}, {pr['metrics']}",
             f"{'split':<11}{'':<24}{'ubRMSE':>8}{'RMSE':>8}{'R':>7}{'n':>7}"]
    for split in ("validation", "test"):
        for name, s in m.get(split, {}).items():
            lines.append(f"{split:<11}{name:<24}{s['ubrmse']:8.4f}{s['rmse']:8.4f}{s['r']:7.3f}{s['n']:7d}")
    return "\n".join(lines)
