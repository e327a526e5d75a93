"""Train a run from its config; load a trained run and predict with it.

Run directory::

    config.yaml        the resolved config
    scaler.yaml        normalisation statistics (training period and sites)
    split.json         train / validation / test sites
    climatology/<var>.nc   day-of-year climatologies (training period): the target's
                       (training sites) and, under seasonal.input_mode anomaly, each
                       anomaly input's (all sites); see docs/casm.md
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
from smfusion.data.climatology import Climatology
from smfusion.data.features import add_features, feature_names
from smfusion.data.loading import SiteSplit, load_dataset, resolve_split, span
from smfusion.data.normalize import Scaler
from smfusion.data.sampling import Arrays, to_arrays
from smfusion.data.splits import select_period
from smfusion.errors import ConfigError, DataError
from smfusion.io.atomic import atomic_path, write_text
from smfusion.models.registry import build_model
from smfusion.training.trainer import Trainer, ValidationSet, predict_arrays


PREDICT_CHUNK_SITES = 32  # default sites per forward pass at prediction (fastest for the LSTM here)


def default_run_dir(cfg: RunConfig) -> Path:
    return Path(cfg.run_dir) if cfg.run_dir else Path("runs") / cfg.name


def dynamic_inputs(cfg: RunConfig) -> list[str]:
    """The model's dynamic input columns: ``data.dynamic`` then the derived ``features``."""
    return [*cfg.data.dynamic, *feature_names(cfg.features)]


def input_names(cfg: RunConfig) -> list[str]:
    """Columns of the model's input layer, in order: dynamic inputs, then statics."""
    return [*dynamic_inputs(cfg), *cfg.data.static]


def _inputs(cfg: RunConfig) -> list[str]:
    return [*dynamic_inputs(cfg), *cfg.data.static, *cfg.data.target]


def anomaly_inputs(cfg: RunConfig) -> list[str]:
    """Dynamic input columns taken as anomalies (derived features follow their base variable)."""
    if cfg.seasonal.input_mode != "anomaly":
        return []
    base = cfg.seasonal.inputs if cfg.seasonal.inputs is not None else cfg.data.dynamic
    return [*base, *feature_names(cfg.features, of=base)]


@dataclass
class Seasonal:
    """Climatologies of a run (see :mod:`smfusion.data.climatology`).

    ``clims`` holds the target's (fitted on the training period and sites,
    slots short of ``min_count`` filled with the site mean) and each anomaly
    input's (training period, all sites: forcing only). ``anomalies`` names the
    variables the model sees as ``value - climatology``.
    """

    clims: dict[str, Climatology]
    anomalies: list[str]

    def save(self, run_dir: Path) -> None:
        for var, clim in self.clims.items():
            with atomic_path(Path(run_dir) / "climatology" / f"{var}.nc") as tmp:
                clim.to_dataset().to_netcdf(tmp)

    @classmethod
    def load(cls, run_dir: Path, cfg: RunConfig) -> "Seasonal":
        clims = {}
        for var in [*cfg.data.target, *anomaly_inputs(cfg)]:
            path = Path(run_dir) / "climatology" / f"{var}.nc"
            if path.is_file():
                with xr.open_dataset(path) as f:
                    clims[var] = Climatology.from_dataset(f.load())
        anomalies = _anomaly_vars(cfg)
        missing = [v for v in anomalies if v not in clims]
        if missing:
            raise DataError(f"run is trained on anomalies of {missing} but has no climatology for them",
                            path=Path(run_dir) / "climatology")
        return cls(clims, anomalies)


def _anomaly_vars(cfg: RunConfig) -> list[str]:
    target = list(cfg.data.target) if cfg.seasonal.target_mode == "anomaly" else []
    return [*anomaly_inputs(cfg), *target]


def fit_seasonal(cfg: RunConfig, ds: xr.Dataset, split: SiteSplit, given: Optional[dict] = None) -> Seasonal:
    """Climatologies on the training period: target on the training sites, anomaly inputs on all sites.

    ``given`` (variable -> Climatology) are used as they are (transfer from a source run).
    """
    given = dict(given or {})
    sea = cfg.seasonal
    ds = add_features(ds, cfg.features)
    clims = {}
    train_p = cfg.periods.train.as_tuple()
    for var in [*cfg.data.target, *anomaly_inputs(cfg)]:
        if var in given:
            clims[var] = given[var]
            continue
        if var not in ds:
            continue
        da = ds[var].sel(site=split.train) if var in cfg.data.target else ds[var]
        if not np.isfinite(select_period(da.to_dataset(), train_p)[var].values).any():
            if var in _anomaly_vars(cfg):
                raise DataError("no valid value in the training period to fit a climatology", field=var)
            continue
        clims[var] = Climatology().fit(da, window=sea.window, min_count=sea.min_count, period=train_p).filled()
    return Seasonal(clims, _anomaly_vars(cfg))


def prepare(ds: xr.Dataset, cfg: RunConfig, seasonal: Optional[Seasonal] = None) -> xr.Dataset:
    """Add the derived input features, then replace anomaly variables by ``value - climatology``."""
    anomalies = _anomaly_vars(cfg)
    if anomalies and seasonal is None:
        raise ConfigError("the config trains on anomalies (seasonal section): pass the run's climatologies")
    out = add_features(ds, cfg.features)
    if not anomalies:
        return out
    out = out.copy()
    for var in anomalies:
        if var in out:
            try:
                out[var] = seasonal.clims[var].transform(out[var]).astype(np.float32)
            except ValueError as exc:
                raise DataError(f"cannot take anomalies: {exc}", field=var) from None
    return out


def warmed_arrays(
    ds: xr.Dataset,
    scaler: Scaler,
    cfg: RunConfig,
    sites: np.ndarray,
    period: tuple[str, str],
    seasonal: Optional[Seasonal] = None,
) -> tuple[Arrays, int]:
    """Arrays for ``period`` preceded by up to ``warmup_days`` of forcing; returns (arrays, first scored index).

    ``ds`` holds raw values; features and anomalies (``seasonal``) are applied here.
    """
    t0 = pd.Timestamp(period[0])
    w0 = max(t0 - pd.Timedelta(days=cfg.periods.warmup_days), pd.Timestamp(ds.time.values[0]))
    sub = select_period(ds.sel(site=sites), (w0.strftime("%Y-%m-%d"), period[1]))
    sub = prepare(sub, cfg, seasonal)
    arr = to_arrays(sub, scaler, dynamic_inputs(cfg), cfg.data.static, cfg.data.target)
    score_from = int(np.searchsorted(arr.time, np.datetime64(t0, "ns")))
    return arr, score_from


def build(cfg: RunConfig, scaler: Scaler, model: Optional[ModelConfig] = None) -> torch.nn.Module:
    """The model of ``cfg`` (or of one member's ``model`` settings), untrained."""
    m = model or cfg.model
    return build_model(
        m.name,
        n_dynamic=len(dynamic_inputs(cfg)),
        n_static=len(cfg.data.static),
        n_target=len(cfg.data.target),
        hidden_size=m.hidden_size,
        dropout=m.dropout,
        num_layers=m.num_layers,
    )


def fit_scaler(
    cfg: RunConfig, ds: xr.Dataset, split: SiteSplit, seasonal: Optional[Seasonal] = None,
    source: Optional[Scaler] = None,
) -> tuple[Scaler, Arrays]:
    """Scaler fitted on the training period and sites, and the normalised training arrays.

    ``ds`` holds raw values (features and anomalies are applied here; the
    climatologies are fitted when ``seasonal`` is None and the config needs
    them). Variables that ``source`` (a transfer source's scaler) knows keep
    its statistics.
    """
    if seasonal is None and _anomaly_vars(cfg):
        seasonal = fit_seasonal(cfg, ds, split)
    train_ds = select_period(ds.sel(site=split.train), cfg.periods.train.as_tuple())
    train_ds = prepare(train_ds, cfg, seasonal)
    per_site = cfg.data.target if cfg.normalization.target == "site" else []
    scaler = Scaler.fit(train_ds, _inputs(cfg), log1p=cfg.normalization.log1p, per_site=per_site)
    if source is not None:
        for var in list(scaler.mean):
            if var in source.mean:
                scaler.mean[var], scaler.std[var] = source.mean[var], source.std[var]
                if var in source.site_stats:
                    scaler.site_stats[var] = source.site_stats[var]
                elif var in scaler.site_stats:
                    del scaler.site_stats[var]
    return scaler, to_arrays(train_ds, scaler, dynamic_inputs(cfg), cfg.data.static, cfg.data.target)


RUNTIME_ONLY = ("threads", "progress", "device")  # training fields that do not change the result


def write_run_config(cfg: RunConfig, run_dir: Path, resume: bool) -> None:
    """Write ``config.yaml``; when resuming, refuse a run dir trained with a different config.

    Runtime-only fields (threads, progress bar, device) may differ between sessions.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "config.yaml"
    if cfg_path.exists() and resume:
        old = load_config(cfg_path)
        old.run_dir = cfg.run_dir

        def key(c: RunConfig) -> dict:
            d = c.to_dict()
            d["training"] = {k: v for k, v in d["training"].items() if k not in RUNTIME_ONLY}
            return d

        if key(old) != key(cfg):
            raise ConfigError(f"run dir '{run_dir}' holds a different config; use a new run dir")
    write_text(cfg_path, dump_config(cfg))


def train(
    cfg: RunConfig, run_dir: Optional[str | Path] = None, resume: bool = True, ds: Optional[xr.Dataset] = None
) -> Path:
    """Train every ensemble member of ``cfg``; returns the run directory.

    ``ds`` (optional) is the canonical Dataset to train on instead of reading ``cfg.data``.
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    cfg.run_dir = str(run_dir)
    if ds is None:
        ds = load_dataset(cfg.data, *span(cfg))  # bad input fails here, before anything is written
    write_run_config(cfg, run_dir, resume)
    split = resolve_split(cfg, ds["site"].values)
    write_text(run_dir / "split.json", json.dumps(split.to_dict()))
    source = TrainedRun.load(cfg.transfer.from_run) if cfg.transfer is not None else None
    if source is not None and source.cfg.model.name != cfg.model.name:
        raise ConfigError(f"transfer.from_run is a '{source.cfg.model.name}' run; this config builds '{cfg.model.name}'")
    seasonal = fit_seasonal(cfg, ds, split, given=source.seasonal.clims if source is not None else None)
    seasonal.save(run_dir)
    src_scaler = source.scaler if source is not None and cfg.transfer.source_scaler else None
    scaler, train_arr = fit_scaler(cfg, ds, split, seasonal, source=src_scaler)
    scaler.save(run_dir / "scaler.yaml")

    validation = None
    if cfg.periods.validation is not None or split.validation.size:
        v_sites = split.validation if split.validation.size else split.train
        v_period = cfg.periods.validation or cfg.periods.train
        validation = ValidationSet(*warmed_arrays(ds, scaler, cfg, v_sites, v_period.as_tuple(), seasonal))

    members = cfg.members()
    for m in members:
        torch.manual_seed(m.training.seed)
        model = build(cfg, scaler, m.model)
        parameters = None
        if source is not None:
            from smfusion.training.transfer import freeze, transfer_weights

            t = cfg.transfer
            transfer_weights(source.members[m.index % len(source.members)], model, input_names(source.cfg),
                             input_names(cfg), reinit=t.reinit, input_layer=t.input_layer)
            parameters = freeze(model, t.freeze)
        desc = f"member {m.index + 1}/{len(members)}"
        Trainer(model, m.training, out_dir=run_dir / f"member_{m.index}", desc=desc, parameters=parameters).fit(
            train_arr, validation, resume=resume
        )
    return run_dir


@dataclass
class TrainedRun:
    """A trained run loaded from its directory."""

    run_dir: Path
    cfg: RunConfig
    scaler: Scaler
    split: SiteSplit
    members: list[torch.nn.Module]
    seasonal: Optional[Seasonal] = None

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
        return cls(run_dir, cfg, scaler, split, members, Seasonal.load(run_dir, cfg))

    def _climatologies(self, sites: np.ndarray, times: np.ndarray) -> dict[str, np.ndarray]:
        """The target climatologies to add back (anomaly targets only), (site, time) each."""
        if self.seasonal is None:
            return {}
        return {v: self.seasonal.clims[v].climatology_for(times, site=sites).values.astype(np.float32)
                for v in self.cfg.data.target if v in self.seasonal.anomalies}

    def _physical(self, z: np.ndarray, sites: np.ndarray, times: np.ndarray, clims: Optional[dict] = None) -> np.ndarray:
        """Normalised model output (site, time, target) -> physical units, climatology added back."""
        clims = self._climatologies(sites, times) if clims is None else clims
        out = []
        for i, v in enumerate(self.cfg.data.target):
            x = self.scaler.inverse(v, z[..., i], sites=sites)
            out.append(x + clims[v] if v in clims else x)
        return np.stack(out, -1)

    def predict_members(
        self, ds: xr.Dataset, sites: np.ndarray, period: tuple[str, str], noise_runs: int = 0,
        noise: Optional[float] = None, seed: Optional[int] = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Physical-unit predictions of every member: (member, site, time, target) over ``period``.

        With ``noise_runs`` M > 0 also returns the noisy runs (member, M, site, time, target):
        each adds Gaussian noise of std ``noise`` (default ``uncertainty.noise``) to the
        normalised dynamic inputs (= ``noise`` x their training std, of the residual under
        input_mode anomaly), warm-up included.
        """
        arr, k = warmed_arrays(ds, self.scaler, self.cfg, sites, period, self.seasonal)
        unc = self.cfg.uncertainty
        noise = unc.noise if noise is None else float(noise)
        rng = np.random.default_rng(unc.seed if seed is None else seed)
        times = arr.time[k:]
        n_s, n_t, n_y = arr.n_site, arr.n_time - k, len(self.cfg.data.target)
        z = np.empty((len(self.members), n_s, n_t, n_y), dtype=np.float32)
        zn = np.empty((len(self.members), noise_runs, n_s, n_t, n_y), dtype=np.float32) if noise_runs else None
        for i, model in enumerate(self.members):
            # sites per forward pass: small blocks keep activations in cache and noise arrays small
            # (benchmarks/product_throughput.py)
            step = getattr(model, "predict_chunk_sites", PREDICT_CHUNK_SITES)
            z[i] = predict_arrays(model, arr, chunk_sites=step)[:, k:]
            if not noise_runs:
                continue
            with torch.no_grad():
                for a in range(0, n_s, step):
                    xd = arr.x_dynamic[a : a + step]
                    xs = torch.from_numpy(np.ascontiguousarray(arr.x_static[a : a + step]))
                    for r in range(noise_runs):
                        xn = xd + np.float32(noise) * rng.standard_normal(xd.shape, dtype=np.float32)
                        zn[i, r, a : a + step] = model({"x_dynamic": torch.from_numpy(xn), "x_static": xs})["y_hat"][:, k:]
        clims = self._climatologies(sites, times)
        out = np.stack([self._physical(z[i], sites, times, clims) for i in range(len(self.members))])
        if noise_runs:
            noisy = np.stack([np.stack([self._physical(zn[i, r], sites, times, clims) for r in range(noise_runs)])
                              for i in range(len(self.members))])
            return out, noisy
        return out

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
        self, pred: np.ndarray, ds: xr.Dataset, sites: np.ndarray, period: tuple[str, str],
        noisy: Optional[np.ndarray] = None,
    ) -> xr.Dataset:
        """Member predictions (member, site, time, target) -> Dataset of the mean (and member std when N > 1).

        With ``noisy`` runs (member, M, site, time, target) adds ``<var>_aleatoric_std``.
        """
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
            if noisy is not None:
                from smfusion.evaluation.uncertainty import aleatoric_std

                out[f"{var}_aleatoric_std"] = (
                    ("site", "time"),
                    aleatoric_std(noisy[..., i]),
                    {"units": attrs.get("units", ""), "long_name": f"aleatoric (input-noise) standard deviation of {var}"},
                )
        out.attrs.update(
            {"model": cfg.model.name, "ensemble": len(self.members), "config_hash": cfg.hash(), "run_dir": str(self.run_dir)}
        )
        return out
