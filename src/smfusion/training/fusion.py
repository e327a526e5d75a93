"""Train, evaluate and apply the fusion point model (readers ``tfrecord`` and ``points``).

Run directory (like the LSTM runs)::

    config.yaml     the resolved config
    scaler.yaml     per-channel statistics of the training points
    split.json      train / validation / test sensors (no sensor in two)
    member_<i>/     Trainer output: checkpoints/, model.pt, history.json
    metrics.json    ubRMSE, RMSE, R on validation and test, model and baselines

Metrics pool every example of a split (not per sensor). Baselines scored
beside the model: SMAP alone (raw value) and GLDAS alone with a linear
rescaling ``a * gldas + b`` fitted on the training points.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from smfusion.config import RunConfig, dump_config, load_config
from smfusion.data.normalize import Scaler
from smfusion.data import points as P
from smfusion.errors import ConfigError, DataError
from smfusion.evaluation.metrics import pearson_r, rmse, ubrmse
from smfusion.io.atomic import atomic_path, write_text
from smfusion.io.fusion_schema import LABEL
from smfusion.models.registry import build_model
from smfusion.training.trainer import Trainer, masked_rmse_np, to_tensors


def load_points(cfg: RunConfig) -> P.PointSet:
    """Every labelled point of the config's data (all sensors; split later)."""
    f = cfg.fusion
    if cfg.data.reader == "tfrecord":
        if not cfg.data.root:
            raise ConfigError("data.root: the folder of labelled TFRecord shards is required for reader 'tfrecord'")
        return P.points_from_shards(cfg.data.root, f.groups, f.patch_size)
    if cfg.data.reader == "points":
        start, end = cfg.periods.train.as_tuple() if cfg.periods else ("2015-04-01", "2017-03-31")
        return P.conus_points(cfg.data.root, start, end, f.groups, f.max_lag_days, cfg.data.subset)
    raise ConfigError(f"data.reader '{cfg.data.reader}' is not a point reader (use tfrecord or points)")


def build_fusion(cfg: RunConfig, member_model=None) -> torch.nn.Module:
    m = member_model or cfg.model
    return build_model(
        m.name, n_dynamic=0, n_static=0, n_target=1,
        sources=P.model_sources(cfg.data.reader, cfg.fusion.groups),
        cnn_channels=cfg.fusion.cnn_channels, embed_size=cfg.fusion.embed_size,
        hidden_size=m.hidden_size, dropout=m.dropout,
    )


@torch.no_grad()
def predict_normalised(model: torch.nn.Module, arrays: dict[str, np.ndarray], chunk: int = 1024) -> np.ndarray:
    model.eval()
    n = arrays["y"].shape[0]
    out = []
    for i in range(0, n, chunk):
        batch = to_tensors({k: v[i : i + chunk] for k, v in arrays.items() if k != "y"})
        out.append(model(batch)["y_hat"][:, 0, 0].numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


@dataclass
class PointValidation:
    """Validation points for the Trainer: RMSE in normalised units (lower is better)."""

    arrays: dict[str, np.ndarray]

    def score(self, model: torch.nn.Module, device: str = "cpu") -> float:
        return masked_rmse_np(predict_normalised(model, self.arrays), self.arrays["y"][:, 0, 0])


def _batch_fn(batch_size: int):
    def fn(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = rng.integers(0, arrays["y"].shape[0], batch_size)
        return {k: v[idx] for k, v in arrays.items()}

    return fn


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
        raise DataError("too few training points to fit the GLDAS rescaling", field="gldas_soil_moisture")
    a, b = np.polyfit(train.model_sm[ok].astype(float), train.y[ok].astype(float), 1)
    return {"SMAP alone": points.smap.astype(float), "GLDAS alone (rescaled)": a * points.model_sm.astype(float) + b}


def train_points(cfg: RunConfig, run_dir: str | Path, points: Optional[P.PointSet] = None, resume: bool = False) -> Path:
    """Train every member of ``cfg`` on point examples, score validation and test; returns the run dir."""
    if cfg.model.name != "fusion":
        raise ConfigError(f"model.name: point readers train the 'fusion' model, got '{cfg.model.name}'")
    run_dir = Path(run_dir)
    cfg.run_dir = str(run_dir)
    points = load_points(cfg) if points is None else points
    split = P.split_by_sensor(points.sensor, cfg.split)
    train_p = points.of_sensors(split.train)
    if len(train_p) == 0:
        raise DataError("no training points after the sensor split")
    scaler = P.fit_scaler(train_p)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", dump_config(cfg))
    write_text(run_dir / "split.json", json.dumps(split.to_dict()))
    scaler.save(run_dir / "scaler.yaml")
    train_arr = P.model_inputs(train_p, scaler)
    val_p = points.of_sensors(split.validation)
    validation = PointValidation(P.model_inputs(val_p, scaler)) if len(val_p) else None
    members = cfg.members()
    for m in members:
        tcfg = m.training
        if tcfg.iterations_per_epoch is None:
            tcfg = tcfg.model_copy(update={"iterations_per_epoch": max(1, math.ceil(len(train_p) / tcfg.batch_size))})
        torch.manual_seed(tcfg.seed)
        model = build_fusion(cfg, m.model)
        Trainer(model, tcfg, out_dir=run_dir / f"member_{m.index}", batch_fn=_batch_fn(tcfg.batch_size),
                desc=f"member {m.index + 1}/{len(members)}").fit(train_arr, validation, resume=resume)
    run = PointRun.load(run_dir)
    metrics = run.evaluate(points, split)
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=1))
    return run_dir


@dataclass
class PointRun:
    """A trained point run loaded from its directory."""

    run_dir: Path
    cfg: RunConfig
    scaler: Scaler
    split: P.SensorSplit
    members: list[torch.nn.Module]

    @classmethod
    def load(cls, run_dir: str | Path) -> "PointRun":
        run_dir = Path(run_dir)
        for name in ("config.yaml", "scaler.yaml", "split.json"):
            if not (run_dir / name).is_file():
                raise DataError("not a trained point run directory (missing file)", path=run_dir / name)
        cfg = load_config(run_dir / "config.yaml")
        if cfg.data.reader not in ("tfrecord", "points"):
            raise DataError(f"run was trained with reader '{cfg.data.reader}', not a point reader",
                            path=run_dir / "config.yaml", field="data.reader")
        members = []
        for m in cfg.members():
            path = run_dir / f"member_{m.index}" / "model.pt"
            if not path.is_file():
                raise DataError("ensemble member has no trained weights", path=path)
            model = build_fusion(cfg, m.model)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            model.eval()
            members.append(model)
        split = P.SensorSplit.from_dict(json.loads((run_dir / "split.json").read_text()))
        return cls(run_dir, cfg, Scaler.load(run_dir / "scaler.yaml"), split, members)

    def predict(self, points: P.PointSet) -> np.ndarray:
        """Ensemble-mean soil moisture (m3/m3) for every point."""
        arrays = P.model_inputs(points, self.scaler)
        z = np.mean([predict_normalised(m, arrays) for m in self.members], axis=0)
        return z * self.scaler.std[LABEL] + self.scaler.mean[LABEL]

    def evaluate(self, points: P.PointSet, split: Optional[P.SensorSplit] = None) -> dict:
        """{"validation"|"test": {"model"|baseline: {ubrmse, rmse, r, n}}} plus the protocol."""
        split = split or self.split
        train_p = points.of_sensors(split.train)
        out = {"protocol": {"reader": self.cfg.data.reader, "groups": self.cfg.fusion.groups,
                            "split": "by sensor", "n_sensors": {k: len(v) for k, v in split.to_dict().items()},
                            "metrics": "pooled over every example of the split"}}
        for name, sensors in (("validation", split.validation), ("test", split.test)):
            sub = points.of_sensors(sensors)
            if len(sub) == 0:
                continue
            row = {"model": scores(sub.y, self.predict(sub))}
            for bname, pred in baseline_predictions(train_p, sub).items():
                row[bname] = scores(sub.y, pred)
            out[name] = row
        return out


def predict_points_file(
    input_path: str | Path, run_dir: str | Path, out: str | Path, chunk: int = 256, progress: bool = True
) -> tuple[Path, int]:
    """Predict every example of a TFRecord file (labels not needed) into a CSV (atomic); returns (path, n)."""
    from smfusion.io.tfrecord import read_examples

    run = PointRun.load(run_dir)
    if run.cfg.data.reader != "tfrecord":
        raise DataError("predict-points needs a run trained on TFRecord shards", path=run_dir, field="data.reader")
    groups, patch = run.cfg.fusion.groups, run.cfg.fusion.patch_size
    need = P.required_fields(groups, label=False)
    out = Path(out)
    n = 0
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sensor_id", "timestamp_ms", "time_utc", "center_lat", "center_long", "sm_0_5_pred", "sm_0_5"])
        bar = tqdm(desc="predict-points", unit="example", disable=not progress)
        buf: list[dict] = []

        def flush():
            nonlocal n
            pts = P.points_from_examples(buf, groups, patch, input_path, require_label=False, start_index=n)
            pred = run.predict(pts)
            times = pts.timestamp.astype("datetime64[ms]").astype(str)
            for k in range(len(pts)):
                w.writerow([pts.sensor[k], int(pts.timestamp[k]), times[k], f"{pts.lat[k]:.5f}",
                            f"{pts.lon[k]:.5f}", f"{pred[k]:.5f}", "" if not np.isfinite(pts.y[k]) else f"{pts.y[k]:.5f}"])
            n += len(pts)
            bar.update(len(pts))
            buf.clear()

        for ex in read_examples(input_path, need):
            buf.append(ex)
            if len(buf) >= chunk:
                flush()
        if buf:
            flush()
        bar.close()
    return out, n


def format_metrics(run_dir: str | Path) -> str:
    """The run's metrics.json as a small text table (pooled over examples, split by sensor)."""
    m = json.loads((Path(run_dir) / "metrics.json").read_text())
    pr = m["protocol"]
    lines = [f"reader {pr['reader']}, groups {pr['groups']}, split by sensor {pr['n_sensors']}, {pr['metrics']}",
             f"{'split':<11}{'':<24}{'ubRMSE':>8}{'RMSE':>8}{'R':>7}{'n':>7}"]
    for split in ("validation", "test"):
        for name, s in m.get(split, {}).items():
            lines.append(f"{split:<11}{name:<24}{s['ubrmse']:8.4f}{s['rmse']:8.4f}{s['r']:7.3f}{s['n']:7d}")
    return "\n".join(lines)
