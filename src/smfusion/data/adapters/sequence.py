"""The ``sequence`` adapter: daily series per site (hydroDL CSV and other Dataset readers).

Inputs are the dynamic variables (plus lag/antecedent features) and statics of
the canonical ``(site, time)`` Dataset; training minibatches are random
(site, window) pieces (hydroDL's sampling); prediction runs each site's whole
period after up to ``periods.warmup_days`` of forcing. The scaler is fitted on
the training period and sites (per-site target statistics with
``normalization.target: site``, statistics predicted from the statics with
``predicted``: :mod:`smfusion.data.target_stats`); climatologies as in
:mod:`smfusion.data.seasonal` (CASM residual learning: ``seasonal`` section).
The ``descriptors`` section adds static inputs computed from each site's forcing
over the training period and from its location (:mod:`smfusion.data.climate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.data import lazy
from smfusion.data.adapters import register_adapter
from smfusion.data.adapters.base import Adapter, Batches, Sampler
from smfusion.data.climate import add_descriptors, descriptor_names, static_inputs
from smfusion.data.features import add_features, feature_names
from smfusion.data.integration import channel_names, di_channels, window_channels
from smfusion.data.loading import SiteSplit, load_dataset, resolve_split, span
from smfusion.data.normalize import Scaler
from smfusion.data.sampling import Arrays, draw_windows, iterations_per_epoch, sample_batch, target_std, to_arrays
from smfusion.data.seasonal import Seasonal, dynamic_inputs, fit_seasonal, input_names, prepare
from smfusion.data.splits import select_period
from smfusion.data.target_stats import TargetStatsModel, merge_site_stats

PREDICT_CHUNK_SITES = 32  # sites per forward pass at prediction (fastest for the LSTM here)
VALIDATION_CHUNK_SITES = 512


class SequenceSampler(Sampler):
    """``batch_size`` random sites, each a random ``seq_len``-day window (:func:`sample_batch`)."""

    def __init__(self, arrays: Arrays, batch_size: int, seq_len: int, static_noise: float = 0.0,
                 site_std: bool = False, integration=None):
        self.arrays, self.batch_size, self.seq_len = arrays, batch_size, seq_len
        self.static_noise = static_noise
        self.per_site = {"y_std": target_std(arrays)} if site_std else None
        self.integration = integration  # DataIntegrationConfig: the latest retrieval as input

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A minibatch; with ``static_noise`` > 0 each site's normalised statics get Gaussian noise of that std
        (one draw per site and minibatch: the model cannot key on a training site's exact statics); with
        ``site_std`` it carries ``y_std``, each drawn site's target std over the training period (NSE*); with
        ``integration`` the inputs end with the thinned retrieval channels (:mod:`smfusion.data.integration`)."""
        if self.integration is None:
            batch = sample_batch(self.arrays, self.batch_size, self.seq_len, rng, per_site=self.per_site)
        else:
            batch = self._integrated(rng)
        if self.static_noise > 0:
            xs = batch["x_static"]
            batch["x_static"] = xs + np.float32(self.static_noise) * rng.standard_normal(xs.shape, dtype=np.float32)
        return batch

    def _integrated(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        arr = self.arrays
        site, t_idx = draw_windows(arr, self.batch_size, self.seq_len, rng)
        di = window_channels(arr, site, t_idx, self.integration, rng)
        batch = {"x_dynamic": np.concatenate([arr.x_dynamic[site[:, None], t_idx], di], axis=-1),
                 "x_static": arr.x_static[site], "y": arr.y[site[:, None], t_idx]}
        for name, v in (self.per_site or {}).items():
            batch[name] = v[site]
        return batch

    def iterations_per_epoch(self, batch_size: int, seq_len: int) -> int:
        """hydroDL's rule (:func:`smfusion.data.sampling.iterations_per_epoch`)."""
        return iterations_per_epoch(self.arrays.n_site, self.arrays.n_time, batch_size, seq_len)


@register_adapter("sequence")
class SequenceAdapter(Adapter):
    """See the module docstring. Fitted state: ``scaler`` and ``seasonal``."""

    layout = "site"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.scaler: Optional[Scaler] = None
        self.seasonal: Optional[Seasonal] = None
        self.target_stats: Optional[TargetStatsModel] = None  # normalization.target: predicted
        self._train_arrays: Optional[Arrays] = None  # made by fit, shared by every member's sampler
        di = cfg.data_integration
        self.lead: Optional[int] = di.lead if di is not None else None  # data integration: lead at prediction

    # -- data ------------------------------------------------------------------
    def load(self, start: Optional[str] = None, end: Optional[str] = None, require_target: bool = True,
             inputs_only: bool = False) -> xr.Dataset:
        """The Dataset over ``start..end`` (both None: every period of the config, warm-up included);
        ``inputs_only``: without the target (products beyond the target's availability)."""
        if start is None and end is None:
            if self.cfg.data.lazy is not None:
                return lazy.skeleton(self)  # data.lazy: blocks are read when needed
            start, end = span(self.cfg)
        data = self.cfg.data.model_copy(update={"target": []}) if inputs_only else self.cfg.data
        ds = load_dataset(data, start, end, require_target=require_target and not inputs_only)
        return self._with_descriptors(ds) if self.cfg.descriptors.active else ds

    def _with_descriptors(self, ds: xr.Dataset) -> xr.Dataset:
        """``ds`` with the descriptor statics; the training period's forcing is read when ``ds`` lacks it."""
        cfg = self.cfg
        t0, t1 = (np.datetime64(pd.Timestamp(d), "ns") for d in cfg.periods.train.as_tuple())
        forcing = None
        if cfg.descriptors.climate and (ds.time.values[0] > t0 or ds.time.values[-1] < t1):
            forcing = load_dataset(cfg.data.model_copy(update={"target": [], "sites": [int(s) for s in
                                                               ds["site"].values]}),
                                   *cfg.periods.train.as_tuple(), require_target=False)
        return add_descriptors(ds, cfg, forcing=forcing)

    def load_sites(self, ids: Optional[np.ndarray], start: str, end: str, target: bool = False,
                   only: Optional[list[str]] = None) -> xr.Dataset:
        """Sites ``ids`` (None: all) over ``start..end``, inputs only unless ``target`` (``only``: just these
        inputs; with data integration the target too: the retrievals are inputs): products and lazy training read
        one block at a time; readers that honour ``data.sites`` read no other cell."""
        update: dict = {} if target or self.cfg.data_integration is not None else {"target": []}
        if only is not None:
            update.update(dynamic=[v for v in self.cfg.data.dynamic if v in only],
                          static=[v for v in self.cfg.data.static if v in only])
        if ids is not None:
            update["sites"] = [int(i) for i in ids]
        ds = load_dataset(self.cfg.data.model_copy(update=update), start, end, require_target=False)
        return self._with_descriptors(ds) if self.cfg.descriptors.active and only is None else ds

    def split(self, ds: xr.Dataset) -> SiteSplit:
        return resolve_split(self.cfg, ds["site"].values)

    def all_ids(self, ds: xr.Dataset) -> np.ndarray:
        return ds["site"].values

    def cv_units(self, ds: xr.Dataset) -> dict[str, np.ndarray]:
        return self._units(ds, ds["site"].values)

    @staticmethod
    def _units(ds: xr.Dataset, ids: np.ndarray) -> dict[str, np.ndarray]:
        out = {"ids": np.asarray(ids), "lat": ds["lat"].sel(site=ids).values, "lon": ds["lon"].sel(site=ids).values}
        if "network" in ds.coords:
            out["network"] = ds["network"].sel(site=ids).values
        return out

    # -- fitted state ----------------------------------------------------------
    def fit(self, ds: xr.Dataset, split: SiteSplit, source: Optional[Adapter] = None) -> None:
        """Climatologies, then the scaler, on the training period and sites. Variables that a transfer
        ``source`` knows keep its climatologies (and, with ``transfer.source_scaler``, its statistics)."""
        cfg = self.cfg
        given = getattr(source, "seasonal", None)
        src_scaler = getattr(source, "scaler", None) if source is not None and cfg.transfer.source_scaler else None
        if lazy.is_skeleton(ds):
            self.seasonal, self.scaler = lazy.fit_lazy(self, ds, split, given.clims if given is not None else None)
            if src_scaler is not None:
                _adopt(self.scaler, src_scaler)
            return
        self.seasonal = fit_seasonal(cfg, ds, split, given=given.clims if given is not None else None)
        train_ds = prepare(select_period(ds.sel(site=split.train), cfg.periods.train.as_tuple()), cfg, self.seasonal)
        per_site = cfg.data.target if cfg.normalization.target == "site" else []
        self.scaler = Scaler.fit(train_ds, [*dynamic_inputs(cfg), *static_inputs(cfg), *cfg.data.target],
                                 log1p=cfg.normalization.log1p, per_site=per_site)
        if src_scaler is not None:
            _adopt(self.scaler, src_scaler)
        if cfg.normalization.target == "predicted":
            y = {v: train_ds[v].transpose("site", "time").values for v in cfg.data.target}
            self.target_stats = TargetStatsModel.fit(y, self._static_z(train_ds), cfg.normalization.predicted_ridge)
        self._train_arrays = self.arrays(train_ds)

    def save(self, run_dir: Path) -> None:
        self.scaler.save(Path(run_dir) / "scaler.yaml")
        self.seasonal.save(run_dir)
        if self.target_stats is not None:
            self.target_stats.save(Path(run_dir) / "target_stats.yaml")

    def restore(self, run_dir: Path) -> None:
        self.scaler = Scaler.load(Path(run_dir) / "scaler.yaml")
        self.seasonal = Seasonal.load(run_dir, self.cfg)
        if self.cfg.normalization.target == "predicted":
            self.target_stats = TargetStatsModel.load(Path(run_dir) / "target_stats.yaml")

    # -- model -----------------------------------------------------------------
    def model_kwargs(self) -> dict:
        cfg = self.cfg
        return {"n_dynamic": len(dynamic_inputs(cfg)) + len(self._di_names()), "n_static": len(static_inputs(cfg)),
                "n_target": len(cfg.data.target)}

    def input_names(self) -> list[str]:
        """:func:`~smfusion.data.seasonal.input_names`, the data-integration channels after the dynamic inputs."""
        names = input_names(self.cfg)
        n_dyn = len(dynamic_inputs(self.cfg))
        return [*names[:n_dyn], *self._di_names(), *names[n_dyn:]]

    def _di_names(self) -> list[str]:
        di = self.cfg.data_integration
        return channel_names(self.cfg.data.target, di.retrievals) if di is not None else []

    def derived_inputs(self) -> dict[str, list[str]]:
        return {"derived": feature_names(self.cfg.features), "descriptors": descriptor_names(self.cfg.descriptors),
                "data-integration": self._di_names()}

    def baseline_inputs(self, ds: xr.Dataset) -> tuple[xr.Dataset, list[str], list[str]]:
        """``ds`` with the derived features; the dynamic inputs (forcing and derived features, not the
        climatology columns) and the statics (with the descriptors ``load`` added)."""
        return add_features(ds, self.cfg.features), [*self.cfg.data.dynamic, *feature_names(self.cfg.features)], \
            static_inputs(self.cfg)

    # -- batches ---------------------------------------------------------------
    def train_batches(self, ds: xr.Dataset, split: SiteSplit, training) -> Sampler:
        lz = self.cfg.data.lazy
        if lazy.is_skeleton(ds):
            return lazy.LazySequenceSampler(self, split.train, self.cfg.periods.train.as_tuple(), training.batch_size,
                                            training.seq_len, lz.block_sites, lz.cache_mb)
        if self._train_arrays is None:
            train_ds = select_period(ds.sel(site=split.train), self.cfg.periods.train.as_tuple())
            self._train_arrays = self.arrays(prepare(train_ds, self.cfg, self.seasonal))
        return SequenceSampler(self._train_arrays, training.batch_size, training.seq_len,
                               static_noise=self.cfg.descriptors.static_noise, site_std=training.loss == "nse",
                               integration=self.cfg.data_integration)

    def carries_site_std(self) -> bool:
        """In memory, yes (:class:`SequenceSampler`); the lazy sampler does not carry it yet."""
        return self.cfg.data.lazy is None

    def arrays(self, prepared: xr.Dataset) -> Arrays:
        """Normalised arrays of a Dataset that already went through :func:`prepare` (with predicted target
        statistics, those of its sites are put in the scaler first)."""
        cfg = self.cfg
        if self.target_stats is not None:
            z, sites = self._static_z(prepared), prepared["site"].values
            for v in cfg.data.target:
                self.scaler.site_stats[v] = merge_site_stats(self.scaler.site_stats.get(v),
                                                             self.target_stats.site_stats(v, sites, z))
        return to_arrays(prepared, self.scaler, dynamic_inputs(cfg), static_inputs(cfg), cfg.data.target)

    def _static_z(self, ds: xr.Dataset) -> np.ndarray:
        """Normalised static inputs (site, n_static), NaN as 0 (as the model sees them)."""
        names = static_inputs(self.cfg)
        z = np.zeros((ds.sizes["site"], len(names)), dtype=np.float64)
        for i, v in enumerate(names):
            z[:, i] = self.scaler.transform(v, ds[v].values)
        return np.nan_to_num(z, nan=0.0)

    def validation_batches(self, ds: xr.Dataset, split: SiteSplit) -> Optional[Batches]:
        """The validation sites (or, with only a validation period, the training sites) over the validation
        period (or the training period), with warm-up."""
        cfg = self.cfg
        if cfg.periods.validation is None and not split.validation.size:
            return None
        sites = split.validation if split.validation.size else split.train
        period = (cfg.periods.validation or cfg.periods.train).as_tuple()
        if lazy.is_skeleton(ds):  # data.lazy: the validation sites are read whole
            w0 = (pd.Timestamp(period[0]) - pd.Timedelta(days=cfg.periods.warmup_days)).strftime("%Y-%m-%d")
            ds = self.load_sites(sites, w0, period[1], target=True)
        return self.eval_batches(ds, sites, period, chunk=VALIDATION_CHUNK_SITES)

    def eval_batches(self, ds: xr.Dataset, ids: np.ndarray, period, chunk: Optional[int] = None) -> Batches:
        """Sites ``ids`` over ``period`` preceded by up to ``warmup_days`` of forcing (``score_from`` marks
        the first day of ``period``). ``ds`` holds raw values; features and anomalies are applied here; with
        data integration the inputs end with the retrieval channels at ``self.lead`` from ``ds``'s target."""
        t0 = pd.Timestamp(period[0])
        w0 = max(t0 - pd.Timedelta(days=self.cfg.periods.warmup_days), pd.Timestamp(ds.time.values[0]))
        sub = select_period(ds.sel(site=ids), (w0.strftime("%Y-%m-%d"), period[1]))
        arr = self.arrays(prepare(sub, self.cfg, self.seasonal))
        x_dynamic = arr.x_dynamic
        if self.cfg.data_integration is not None:  # the retrievals known self.lead days before each day
            di_cfg = self.cfg.data_integration
            di = di_channels(arr.y, self.lead, di_cfg.max_age, di_cfg.retrievals)
            x_dynamic = np.concatenate([x_dynamic, di], axis=-1)
        return Batches(inputs={"x_dynamic": x_dynamic, "x_static": arr.x_static}, y=arr.y, rows=arr.sites,
                       time=arr.time, score_from=int(np.searchsorted(arr.time, np.datetime64(t0, "ns"))),
                       noisy=("x_dynamic",), chunk=chunk or PREDICT_CHUNK_SITES)

    # -- back to physical units ------------------------------------------------
    def climatologies(self, sites: np.ndarray, times: np.ndarray) -> dict[str, np.ndarray]:
        """The target climatologies to add back (anomaly targets only), (site, time) each."""
        if self.seasonal is None:
            return {}
        return {v: self.seasonal.clims[v].climatology_for(times, site=sites).values.astype(np.float32)
                for v in self.cfg.data.target if v in self.seasonal.anomalies}

    def to_physical(self, z: np.ndarray, batches: Batches) -> np.ndarray:
        """Normalised output (site, scored time, target) -> physical units, climatology added back
        (computed once per ``batches`` and kept in its ``meta``)."""
        sites, times = batches.rows, batches.time[batches.score_from:]
        if "clims" not in batches.meta:
            batches.meta["clims"] = self.climatologies(sites, times)
        clims = batches.meta["clims"]
        out = []
        for i, v in enumerate(self.cfg.data.target):
            x = self.scaler.inverse(v, z[..., i], sites=sites)
            out.append(x + clims[v] if v in clims else x)
        return np.stack(out, -1)

    def observations(self, ds: xr.Dataset, batches: Batches) -> np.ndarray:
        times = batches.time[batches.score_from:]
        sub = ds.sel(site=batches.rows).sel(time=times)
        return np.stack([sub[v].transpose("site", "time").values if v in sub else
                         np.full((len(batches), times.size), np.nan, np.float32) for v in self.cfg.data.target], -1)

    def coords(self, ds: xr.Dataset, batches: Batches) -> tuple[tuple[str, ...], dict]:
        sub = ds.sel(site=batches.rows)
        return ("site", "time"), {"site": sub.site, "time": batches.time[batches.score_from:], "lat": sub.lat,
                                  "lon": sub.lon}

    def variable_attrs(self, ds: xr.Dataset, var: str) -> dict:
        return dict(ds[var].attrs) if var in ds else {}


def _adopt(scaler: Scaler, source: Scaler) -> None:
    """Variables ``source`` (a transfer source's scaler) knows keep its statistics."""
    for var in list(scaler.mean):
        if var in source.mean:
            scaler.mean[var], scaler.std[var] = source.mean[var], source.std[var]
            if var in source.site_stats:
                scaler.site_stats[var] = source.site_stats[var]
            elif var in scaler.site_stats:
                del scaler.site_stats[var]
