"""Train a run from its config; load a trained run and predict with it.

Run directory::

    config.yaml        the resolved config
    scaler.yaml        normalisation statistics (training period and sites)
    split.json         train / validation / test sites
    member_<i>/        one per ensemble member: checkpoints/, model.pt, history.json
    metrics/, predictions/, plots/   written by evaluation
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch
import xarray as xr

from smfusion.config import ModelConfig, RunConfig, dump_config, load_config
from smfusion.data.loading import SiteSplit, load_dataset, resolve_split, span
from smfusion.data.normalize import Scaler
from smfusion.data.sampling import Arrays, to_arrays
from smfusion.data.splits import select_period
from smfusion.errors import ConfigError, DataError
from smfusion.io.atomic import write_text
from smfusion.models.registry import build_model
from smfusion.training.trainer import Trainer, ValidationSet, predict_arrays


def default_run_dir(cfg: RunConfig) -> Path:
    return Path(cfg.run_dir) if cfg.run_dir else Path("runs") / cfg.name


def _inputs(cfg: RunConfig) -> list[str]:
    return [*cfg.data.dynamic, *cfg.data.static, *cfg.data.target]


def warmed_arrays(
    ds: xr.Dataset, scaler: Scaler, cfg: RunConfig, sites: np.ndarray, period: tuple[str, str]
) -> tuple[Arrays, int]:
    """Arrays for ``period`` preceded by up to ``warmup_days`` of forcing; returns (arrays, first scored index)."""
    t0 = pd.Timestamp(period[0])
    w0 = max(t0 - pd.Timedelta(days=cfg.periods.warmup_days), pd.Timestamp(ds.time.values[0]))
    sub = select_period(ds.sel(site=sites), (w0.strftime("%Y-%m-%d"), period[1]))
    arr = to_arrays(sub, scaler, cfg.data.dynamic, cfg.data.static, cfg.data.target)
    score_from = int(np.searchsorted(arr.time, np.datetime64(t0, "ns")))
    return arr, score_from


def build(cfg: RunConfig, scaler: Scaler, model: Optional[ModelConfig] = None) -> torch.nn.Module:
    """The model of ``cfg`` (or of one member's ``model`` settings), untrained."""
    m = model or cfg.model
    return build_model(
        m.name,
        n_dynamic=len(cfg.data.dynamic),
        n_static=len(cfg.data.static),
        n_target=len(cfg.data.target),
        hidden_size=m.hidden_size,
        dropout=m.dropout,
        num_layers=m.num_layers,
    )


def fit_scaler(cfg: RunConfig, ds: xr.Dataset, split: SiteSplit) -> tuple[Scaler, Arrays]:
    """Scaler fitted on the training period and sites, and the normalised training arrays."""
    train_ds = select_period(ds.sel(site=split.train), cfg.periods.train.as_tuple())
    per_site = cfg.data.target if cfg.normalization.target == "site" else []
    scaler = Scaler.fit(train_ds, _inputs(cfg), log1p=cfg.normalization.log1p, per_site=per_site)
    return scaler, to_arrays(train_ds, scaler, cfg.data.dynamic, cfg.data.static, cfg.data.target)


def train(cfg: RunConfig, run_dir: Optional[str | Path] = None, resume: bool = True) -> Path:
    """Train every ensemble member of ``cfg``; returns the run directory."""
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    cfg.run_dir = str(run_dir)
    ds = load_dataset(cfg.data, *span(cfg))  # bad input fails here, before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "config.yaml"
    if cfg_path.exists() and resume:
        old = load_config(cfg_path)
        old.run_dir = cfg.run_dir
        if old.to_dict() != cfg.to_dict():
            raise ConfigError(f"run dir '{run_dir}' holds a different config; use a new run dir")
    write_text(cfg_path, dump_config(cfg))
    split = resolve_split(cfg, ds["site"].values)
    write_text(run_dir / "split.json", json.dumps(split.to_dict()))
    scaler, train_arr = fit_scaler(cfg, ds, split)
    scaler.save(run_dir / "scaler.yaml")

    validation = None
    if cfg.periods.validation is not None or split.validation.size:
        v_sites = split.validation if split.validation.size else split.train
        v_period = cfg.periods.validation or cfg.periods.train
        validation = ValidationSet(*warmed_arrays(ds, scaler, cfg, v_sites, v_period.as_tuple()))

    members = cfg.members()
    for m in members:
        torch.manual_seed(m.training.seed)
        model = build(cfg, scaler, m.model)
        desc = f"member {m.index + 1}/{len(members)}"
        Trainer(model, m.training, out_dir=run_dir / f"member_{m.index}", desc=desc).fit(train_arr, validation, resume=resume)
    return run_dir


@dataclass
class TrainedRun:
    """A trained run loaded from its directory."""

    run_dir: Path
    cfg: RunConfig
    scaler: Scaler
    split: SiteSplit
    members: list[torch.nn.Module]

    @classmethod
    def load(cls, run_dir: str | Path) -> "TrainedRun":
        run_dir = Path(run_dir)
        for name in ("config.yaml", "scaler.yaml", "split.json"):
            if not (run_dir / name).is_file():
                raise DataError("not a trained run directory (missing file)", path=run_dir / name)
        cfg = load_config(run_dir / "config.yaml")
        scaler = Scaler.load(run_dir / "scaler.yaml")
        split = SiteSplit.from_dict(json.loads((run_dir / "split.json").read_text()))
        members = []
        for m in cfg.members():
            path = run_dir / f"member_{m.index}" / "model.pt"
            if not path.is_file():
                raise DataError("ensemble member has no trained weights", path=path)
            model = build(cfg, scaler, m.model)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            model.eval()
            members.append(model)
        return cls(run_dir, cfg, scaler, split, members)

    def predict_members(self, ds: xr.Dataset, sites: np.ndarray, period: tuple[str, str]) -> np.ndarray:
        """Physical-unit predictions of every member: (member, site, time, target) over ``period``."""
        arr, k = warmed_arrays(ds, self.scaler, self.cfg, sites, period)
        out = []
        for model in self.members:
            z = predict_arrays(model, arr)[:, k:]
            out.append(
                np.stack([self.scaler.inverse(v, z[..., i], sites=sites) for i, v in enumerate(self.cfg.data.target)], -1)
            )
        return np.stack(out)

    def predict(
        self, start: str, end: str, sites: Optional[np.ndarray] = None, ds: Optional[xr.Dataset] = None
    ) -> xr.Dataset:
        """Ensemble-mean prediction (and member std when N > 1) in the canonical data model."""
        cfg = self.cfg
        if ds is None:
            w0 = (pd.Timestamp(start) - pd.Timedelta(days=cfg.periods.warmup_days)).strftime("%Y-%m-%d")
            ds = load_dataset(cfg.data, w0, end, require_target=False)
        sites = ds["site"].values if sites is None else np.asarray(sites)
        return self.members_to_dataset(self.predict_members(ds, sites, (start, end)), ds, sites, (start, end))

    def members_to_dataset(
        self, pred: np.ndarray, ds: xr.Dataset, sites: np.ndarray, period: tuple[str, str]
    ) -> xr.Dataset:
        """Member predictions (member, site, time, target) -> Dataset of the mean (and member std when N > 1)."""
        cfg = self.cfg
        sub = select_period(ds.sel(site=sites), period)
        out = xr.Dataset(coords={"site": sub.site, "time": sub.time, "lat": sub.lat, "lon": sub.lon})
        for i, var in enumerate(cfg.data.target):
            attrs = dict(ds[var].attrs) if var in ds else {}
            out[var] = (("site", "time"), pred[..., i].mean(0), attrs)
            if len(self.members) > 1:
                out[f"{var}_ensemble_std"] = (
                    ("site", "time"),
                    pred[..., i].std(0),
                    {"units": attrs.get("units", ""), "long_name": f"ensemble standard deviation of {var}"},
                )
        out.attrs.update(
            {"model": cfg.model.name, "ensemble": len(self.members), "config_hash": cfg.hash(), "run_dir": str(self.run_dir)}
        )
        return out
