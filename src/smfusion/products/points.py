"""Point predictions to CSV: a run's own examples, or every example of a TFRecord file (predict-points)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from smfusion.data import points as P
from smfusion.errors import DataError
from smfusion.io.atomic import atomic_path
from smfusion.runs import Run

__all__ = ["write_points_csv", "predict_points_file"]

HEADER = ["sensor_id", "timestamp_ms", "time_utc", "center_lat", "center_long", "sm_0_5_pred", "sm_0_5"]


def _row(sensor, timestamp_ms, lat, lon, pred, obs) -> list:
    time = np.datetime64(int(timestamp_ms), "ms").astype(str)
    return [sensor, int(timestamp_ms), time, f"{lat:.5f}", f"{lon:.5f}", f"{pred:.5f}",
            "" if not np.isfinite(obs) else f"{obs:.5f}"]


def write_points_csv(pred: xr.Dataset, target: str, out: str | Path, obs: np.ndarray | None = None,
                     overwrite: bool = False, protect=()) -> Path:
    """A point run's prediction Dataset (dim ``example``) as CSV (atomic; ``overwrite``/``protect`` as in
    :func:`smfusion.io.atomic.atomic_path`)."""
    out = Path(out)
    t_ms = pred["time"].values.astype("datetime64[ms]").astype(np.int64)
    obs = np.full(pred.sizes["example"], np.nan) if obs is None else obs
    with atomic_path(out, overwrite=overwrite, protect=protect) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for k in range(pred.sizes["example"]):
            w.writerow(_row(pred["sensor"].values[k], t_ms[k], pred["lat"].values[k], pred["lon"].values[k],
                            float(pred[target].values[k]), obs[k]))
    return out


def predict_points_file(
    input_path: str | Path, run_dir: str | Path, out: str | Path, chunk: int = 256, progress: bool = True,
    overwrite: bool = False,
) -> tuple[Path, int]:
    """Predict every example of a TFRecord file (labels not needed) into a CSV (atomic; an existing ``out``
    needs ``overwrite``); returns (path, n)."""
    from smfusion.io.tfrecord import read_examples

    run = Run.load(run_dir)
    if run.cfg.data.reader != "tfrecord":
        raise DataError("predict-points needs a run trained on TFRecord shards", path=run_dir, field="data.reader")
    groups, patch = run.cfg.fusion.groups, run.cfg.fusion.patch_size
    need = P.required_fields(groups, label=False)
    out = Path(out)
    n = 0
    protect = [run_dir, input_path]
    with atomic_path(out, overwrite=overwrite, protect=protect) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        bar = tqdm(desc="predict-points", unit="example", disable=not progress)
        buf: list[dict] = []

        def flush():
            nonlocal n
            pts = P.points_from_examples(buf, groups, patch, input_path, require_label=False, start_index=n)
            b = run.adapter.eval_batches(pts, None, None)
            pred = run.predict_members(pts, None, None, batches=b).mean(axis=0)[:, 0, 0]
            for k in range(len(pts)):
                w.writerow(_row(pts.sensor[k], pts.timestamp[k], pts.lat[k], pts.lon[k], pred[k], pts.y[k]))
            n += len(pts)
            bar.update(len(pts))
            buf.clear()

        for ex in read_examples(input_path, need, keys=P.decode_keys(groups), lazy=P.LAZY):
            buf.append(ex)
            if len(buf) >= chunk:
                flush()
        if buf:
            flush()
        bar.close()
    return out, n
