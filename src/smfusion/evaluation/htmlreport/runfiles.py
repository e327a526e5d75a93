"""What a report reads from a run directory: files only, never the model or the training code.

Files and fields relied on (each optional; a missing one is recorded in
``RunFiles.missing`` with the reason, and its section says so):

* ``config.yaml``: shown as text; fields ``name``, ``data.target[0]``,
  ``data.reader``, ``data.root``, ``data.subset``;
* ``metrics/metrics.json``: ``protocol`` (key -> text) and ``summary``;
* ``metrics/summary.csv``: index column ``model``, one column per metric;
* ``metrics/sites_<i>.csv``: columns ``site``, ``lat``, ``lon``, ``n`` and the
  metrics (``pearson_r``, ``ubrmse``, ``rmse``, ``bias``, ``anomaly_r``...), and
  ``row`` (the model label); ``sites_0.csv`` is the run's own model;
* ``predictions/test.nc``: (site, time) ``<target>`` with ``lat``/``lon``,
  optional ``<target>_ensemble_std`` and ``<target>_aleatoric_std``, and the
  observations as ``<target>_obs`` when the evaluation stored them;
* ``metrics/calibration.json``: coverages and the spread-skill table;
* spatial CV (``smfusion cv`` run dirs): ``folds.json`` (``folds``: fold,
  train, test), ``summary.json`` (``protocol``, ``per_fold_median``,
  ``pooled_median``), ``metrics.csv`` (fold, site, R, RMSE, ubRMSE, bias, n_obs);
* a station validation table (``smfusion validate``): TABLE.csv and, beside
  it, TABLE.summary.csv and TABLE.json.

Observations not in ``predictions/test.nc`` are read, for ``data.reader:
hydrodl`` runs only, from the database the config names (io reader, not the
pipeline) and the report says where they came from.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from smfusion.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["RunFiles", "load_run_files", "load_validation", "load_land_points"]


@dataclass
class RunFiles:
    run_dir: Path
    config_text: str | None = None
    config: dict = field(default_factory=dict)
    metrics: dict | None = None
    summary: pd.DataFrame | None = None
    sites: dict[str, pd.DataFrame] = field(default_factory=dict)
    predictions: xr.Dataset | None = None
    target: str | None = None
    observations: xr.DataArray | None = None
    observations_source: str | None = None
    calibration: dict | None = None
    cv: dict | None = None
    validation: dict | None = None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def spread(self) -> np.ndarray | None:
        """Total predictive std: sqrt(ensemble_std^2 + aleatoric_std^2) from the layers present, else None."""
        if self.predictions is None or self.target is None:
            return None
        parts = [self.predictions[f"{self.target}_{k}"].values.astype(float) ** 2
                 for k in ("ensemble_std", "aleatoric_std") if f"{self.target}_{k}" in self.predictions]
        return np.sqrt(sum(parts)) if parts else None


def _read(path: Path, what: str, files: RunFiles, reader):
    if not path.is_file():
        files.missing[what] = f"{path.relative_to(files.run_dir) if path.is_relative_to(files.run_dir) else path} " \
                              "not found"
        return None
    try:
        return reader(path)
    except Exception as exc:  # one unreadable file must not stop the report: say why instead
        files.missing[what] = f"{path.name} unreadable: {exc.__class__.__name__}: {exc}"
        log.warning("report: %s", files.missing[what])
        return None


def load_run_files(run_dir: str | Path, validation: str | Path | None = None) -> RunFiles:
    """Read every report input of ``run_dir`` (see the module doc); raises only when the folder is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError("run directory not found", path=run_dir)
    f = RunFiles(run_dir=run_dir)
    f.config_text = _read(run_dir / "config.yaml", "config", f, lambda p: p.read_text())
    if f.config_text:
        try:
            f.config = yaml.safe_load(f.config_text) or {}
        except yaml.YAMLError as exc:
            f.missing["config"] = f"config.yaml is not YAML: {exc}"
    f.target = ((f.config.get("data") or {}).get("target") or [None])[0]
    f.metrics = _read(run_dir / "metrics" / "metrics.json", "metrics", f, lambda p: json.loads(p.read_text()))
    f.summary = _read(run_dir / "metrics" / "summary.csv", "summary", f, lambda p: pd.read_csv(p, index_col=0))
    for p in sorted((run_dir / "metrics").glob("sites_*.csv"), key=lambda q: int(q.stem.split("_")[1])
                    if q.stem.split("_")[1].isdigit() else 10**6):
        tab = _read(p, p.name, f, lambda q: pd.read_csv(q))
        if tab is not None:
            f.sites[str(tab["row"].iloc[0]) if "row" in tab and len(tab) else p.stem] = tab
    if not f.sites:
        f.missing.setdefault("sites", "metrics/sites_*.csv not found")
    f.predictions = _read(run_dir / "predictions" / "test.nc", "predictions", f,
                          lambda p: xr.open_dataset(p).load())
    if f.predictions is not None and (f.target is None or f.target not in f.predictions):
        names = [v for v in f.predictions.data_vars if not str(v).endswith(("_std", "_obs")) and v != "crs"]
        f.target = names[0] if names else None
    _observations(f)
    f.calibration = _read(run_dir / "metrics" / "calibration.json", "calibration", f,
                          lambda p: json.loads(p.read_text()))
    _cv(f)
    if validation is not None:
        f.validation = load_validation(validation)
    else:
        f.missing["validation"] = "no station validation table given (smfusion report --validation TABLE.csv)"
    return f


def _observations(f: RunFiles) -> None:
    pred, t = f.predictions, f.target
    if pred is None or t is None:
        return
    if f"{t}_obs" in pred:
        f.observations, f.observations_source = pred[f"{t}_obs"], f"predictions/test.nc variable {t}_obs"
        return
    data = f.config.get("data") or {}
    if data.get("reader", "hydrodl") != "hydrodl":
        f.missing["observations"] = (f"predictions/test.nc has no {t}_obs and reader {data.get('reader')!r} "
                                     "has no file-level fallback")
        return
    try:
        from smfusion.io.hydrodl import read_hydrodl
        from smfusion.settings import conus_dir

        root = Path(data["root"]).expanduser() if data.get("root") else conus_dir()
        if root is None:
            raise DataError("no local CONUS database (SMFUSION_DATA_DIR)")
        times = pd.DatetimeIndex(pred["time"].values)
        sites = [int(s) for s in pred["site"].values]
        ds = read_hydrodl(root, dynamic=[], static=[], target=[t], start=str(times[0].date()),
                          end=str(times[-1].date()), subset=data.get("subset", "CONUSv4f1"), sites=sites)
        f.observations = ds[t].sel(site=sites).transpose("site", "time").reindex(time=pred["time"].values)
        f.observations_source = f"{t} read from the hydroDL database {root} named by config.yaml"
    except Exception as exc:
        f.missing["observations"] = f"predictions/test.nc has no {t}_obs and the database read failed: {exc}"


def _cv(f: RunFiles) -> None:
    d = f.run_dir
    if not (d / "folds.json").is_file():
        f.missing["cv"] = "no folds.json: not a spatial cross-validation run (smfusion cv)"
        return
    cv = {"folds": _read(d / "folds.json", "cv folds", f, lambda p: json.loads(p.read_text())["folds"]),
          "summary": _read(d / "summary.json", "cv summary", f, lambda p: json.loads(p.read_text())),
          "metrics": _read(d / "metrics.csv", "cv metrics", f, lambda p: pd.read_csv(p))}
    f.cv = cv if cv["folds"] is not None else None


def load_validation(path: str | Path) -> dict:
    """A validation table (and its .summary.csv / .json siblings when present)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("validation table not found", path=path)
    try:
        table = pd.read_csv(path)
    except Exception as exc:
        raise DataError(f"cannot read validation table: {exc}", path=path) from None
    need = ["station", "lat", "lon", "distance_km", "n", "R", "ubRMSE", "RMSE", "bias", "product"]
    lacking = [c for c in need if c not in table.columns]
    if lacking:
        raise DataError(f"validation table lacks columns {lacking}", path=path, field=lacking[0])
    out = {"path": path, "table": table, "summary": None, "protocol": None}
    if path.with_suffix(".summary.csv").is_file():
        out["summary"] = pd.read_csv(path.with_suffix(".summary.csv"))
    if path.with_suffix(".json").is_file():
        out["protocol"] = json.loads(path.with_suffix(".json").read_text()).get("protocol")
    return out


def load_land_points(lat_range, lon_range, margin: float = 2.0):
    """(lat, lon) of the EASE-2 M36 land cells inside the box (+margin), or None when the file is absent."""
    from smfusion.grids.ease2 import read_land_cells

    try:
        cells = read_land_cells()
    except DataError as exc:
        log.info("report: no land background: %s", exc)
        return None
    keep = ((cells.lat >= lat_range[0] - margin) & (cells.lat <= lat_range[1] + margin)
            & (cells.lon >= lon_range[0] - margin) & (cells.lon <= lon_range[1] + margin))
    return cells.lat[keep], cells.lon[keep]
