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
* ``predictions/test.nc``: (site, time) ``<target>`` with ``lat``/``lon``; the
  distribution layers ``<target>_std`` (total), ``_epistemic_std``,
  ``_aleatoric_std`` and quantiles ``_qNN`` (docs/uncertainty.md) when the run
  has a spread (older files: ``_ensemble_std`` and the noise runs'
  ``_aleatoric_std``); the observations as ``<target>_obs``;
* ``metrics/calibration.json`` (``smfusion evaluate``): per target ``rows``
  (distribution label -> scores of :func:`smfusion.evaluation.calibration.calibration_scores`)
  and ``recalibration`` (how the recalibration was fitted, or why not);
* spatial CV (``smfusion cv`` run dirs): ``folds.json`` (``folds``: fold,
  test, train, buffer; ``meta``: the cv config), ``summary.json``
  (``protocol``, ``periods`` -> period -> row label -> ``per_fold`` /
  ``pooled`` medians, ``ubrmse_ratio`` and ``ubrmse_ratio_pooled``),
  ``metrics.csv`` (fold, period, row, site, lat, lon, R, RMSE, ubRMSE, bias,
  n_obs), ``calibration.json`` (target -> label -> scores, held-out units of
  all folds pooled; only when the runs have a spread) and ``report.txt``;
* ``metrics/nowcast.json`` (data-integration runs; ``smfusion evaluate``, benchmarks/nowcast.py): ``protocol``
  and ``leads`` -> lead -> row -> ``R``, ``ubRMSE``, ``RMSE`` (the DI row also ``raw_cov68`` ...);
* a station validation table (``smfusion validate``): TABLE.csv and, beside
  it, TABLE.summary.csv and TABLE.json.

Observations not in ``predictions/test.nc`` are read, for ``data.reader:
hydrodl`` runs only, from the database the config names (io reader, not the
pipeline) and the report says where they came from.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from smfusion.errors import DataError
from smfusion.io.layer_names import ALEATORIC_STD, ENSEMBLE_STD, OBSERVED, STD, layer, quantile_suffix

log = logging.getLogger(__name__)

__all__ = ["RunFiles", "load_run_files", "load_validation", "load_land_points", "why_no_spread"]


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
    nowcast: dict | None = None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def spread_layers(self) -> list[str]:
        """Names of the target's spread and quantile layers in ``predictions/test.nc``."""
        if self.predictions is None or self.target is None:
            return []
        return [str(v) for v in self.predictions.data_vars if _LAYER.fullmatch(str(v)[len(self.target):] or "")
                and str(v).startswith(self.target)]

    @property
    def spread(self) -> np.ndarray | None:
        """Total predictive std: the ``<target>_std`` layer, else (older files) sqrt(ensemble_std^2 +
        aleatoric_std^2) from the layers present, else None."""
        if self.predictions is None or self.target is None:
            return None
        if layer(self.target, STD) in self.predictions:
            return self.predictions[layer(self.target, STD)].values.astype(float)
        parts = [self.predictions[layer(self.target, k)].values.astype(float) ** 2
                 for k in (ENSEMBLE_STD, ALEATORIC_STD) if layer(self.target, k) in self.predictions]
        return np.sqrt(sum(parts)) if parts else None

    @property
    def spread_source(self) -> str:
        """Which layers :attr:`spread` comes from, in words."""
        t, p = self.target, self.predictions
        std = layer(t, STD)
        if p is not None and std in p:
            return f"{std} (total predictive std" + (f"; {p[std].attrs['comment']})" if p[std].attrs.get("comment")
                                                      else ")")
        return "sqrt(" + " + ".join(f"{layer(t, k)}^2" for k in (ENSEMBLE_STD, ALEATORIC_STD)
                                    if p is not None and layer(t, k) in p) + ")"

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(lower, upper, how) of the central ``level`` interval: the quantile layers when the file has
        them, else the Gaussian mean +- z std of :attr:`spread`; None without any spread."""
        from statistics import NormalDist

        p, t = self.predictions, self.target
        if p is None or t is None:
            return None
        lo, hi = (layer(t, quantile_suffix(q)) for q in ((1 - level) / 2, (1 + level) / 2))
        if lo in p and hi in p:
            return p[lo].values.astype(float), p[hi].values.astype(float), f"quantile layers {lo} .. {hi}"
        std = self.spread
        if std is None:
            return None
        z = NormalDist().inv_cdf(0.5 + level / 2)
        mean = p[t].values.astype(float)
        return mean - z * std, mean + z * std, f"prediction +- {z:.3f} x {self.spread_source}"


_LAYER = re.compile(r"_(std|epistemic_std|aleatoric_std|ensemble_std|q\d+(p\d+)?)")


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
    """Read every report input of ``run_dir`` (see the module doc); raises only when the folder is missing or
    is not a run (a ``config.yaml`` beside ``member_*/``, ``metrics/`` or a CV ``summary.json``): the sections it lacks say so."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError("run directory not found", path=run_dir)
    made = any(run_dir.glob("member_*")) or (run_dir / "metrics").is_dir() or (run_dir / "summary.json").is_file()
    if not (run_dir / "config.yaml").is_file() or not made:
        raise DataError("not a run directory: no config.yaml beside member_*/, metrics/ or a CV summary.json",
                        path=run_dir, hint="give the folder smfusion train (or cv) wrote")
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
        names = [v for v in f.predictions.data_vars if not re.search(r"_(std|obs|q\d+(p\d+)?)$", str(v))
                 and v != "crs"]
        f.target = names[0] if names else None
    _observations(f)
    f.calibration = _read(run_dir / "metrics" / "calibration.json", "calibration", f, _evaluate_calibration)
    if f.config.get("data_integration"):
        f.nowcast = _read(run_dir / "metrics" / "nowcast.json", "nowcast", f, lambda p: json.loads(p.read_text()))
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
    if layer(t, OBSERVED) in pred:
        f.observations = pred[layer(t, OBSERVED)]
        f.observations_source = f"predictions/test.nc variable {layer(t, OBSERVED)}"
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


def _evaluate_calibration(path: Path) -> dict:
    """``metrics/calibration.json`` of ``smfusion evaluate`` as target -> {rows: label -> scores, note}."""
    out = {}
    for var, entry in json.loads(path.read_text()).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("rows"), dict):
            raise ValueError(f"entry {var!r} has no 'rows' (an older layout: run smfusion evaluate again)")
        out[var] = {"rows": _check_rows(entry["rows"], var), "note": str(entry.get("recalibration", ""))}
    return out


def _cv_calibration(path: Path) -> dict:
    """``calibration.json`` of ``smfusion cv`` (target -> label -> scores) in the layout above."""
    return {var: {"rows": _check_rows(rows, var), "note": "held-out cells of every fold pooled, each fold's "
                  "distribution recalibrated as its run's config says (on its own validation data)"}
            for var, rows in json.loads(path.read_text()).items()}


def _check_rows(rows, var: str) -> dict:
    bad = [k for k, v in rows.items() if not isinstance(v, dict) or "coverage_68" not in v or "crps" not in v]
    if bad or not rows:
        raise ValueError(f"{var}: rows {bad or '(none)'} lack coverage_68 / crps")
    return rows


def why_no_spread(config: dict) -> str:
    """Why a run of ``config`` has no predictive spread (one point-head member, no noise runs); '' if it has."""
    model, training = config.get("model") or {}, config.get("training") or {}
    variants = config.get("variants") or []
    n = int(training.get("ensemble", 1)) * max(1, len(variants))
    heads = {model.get("head", "regression")} | {(v.get("model") or {}).get("head", model.get("head", "regression"))
                                                 for v in variants}
    noise = int((config.get("uncertainty") or {}).get("noise_runs", 0))
    if n > 1 or noise > 0 or heads - {"regression"}:
        return ""
    return (f"the config has {n} member (training.ensemble), a point head (model.head regression) and no "
            "input-noise runs (uncertainty.noise_runs 0), so the run predicts no spread; an ensemble, "
            "model.head gaussian / gmm or noise runs give one (docs/uncertainty.md)")


def _cv_summary(path: Path) -> dict:
    """``summary.json`` of ``smfusion cv``; an older layout (``per_fold_median`` only) as the model's rows."""
    doc = json.loads(path.read_text())
    if "periods" not in doc and "per_fold_median" in doc:
        doc["periods"] = {"scored period (not recorded)": {"model": {
            "per_fold": doc["per_fold_median"], "pooled": doc.get("pooled_median") or {}}}}
    if not isinstance(doc.get("periods"), dict):
        raise ValueError("no 'periods' table")
    return doc


def _cv(f: RunFiles) -> None:
    d = f.run_dir
    if not (d / "folds.json").is_file():
        f.missing["cv"] = "no folds.json: not a spatial cross-validation run (smfusion cv)"
        return
    doc = _read(d / "folds.json", "cv folds", f, lambda p: json.loads(p.read_text()))
    if not doc or not isinstance(doc.get("folds"), list):
        f.missing.setdefault("cv", f.missing.get("cv folds", "folds.json has no 'folds' list"))
        return
    f.cv = {"folds": doc["folds"], "meta": doc.get("meta") or {},
            "summary": _read(d / "summary.json", "cv summary", f, _cv_summary),
            "metrics": _read(d / "metrics.csv", "cv metrics", f, pd.read_csv),
            "calibration": _read(d / "calibration.json", "cv calibration", f, _cv_calibration),
            "report": _read(d / "report.txt", "cv report", f, lambda p: p.read_text())}


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
