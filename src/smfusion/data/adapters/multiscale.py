"""The ``multiscale`` adapter: fine cells, coarse satellite cells and point stations (Liu et al. 2022).

The data are the canonical ``(site, time)`` Dataset of fine cells (readers
``twin`` and ``gridded``) with a ``coarse`` coordinate (parent cell), the
satellite variable repeated on the fine cells of each coarse cell, and the
station variable (NaN off stations); attrs ``fine_grid``/``coarse_grid`` give
the nesting. A minibatch holds every fine cell of a few coarse cells (one
window each) plus a few station cells; the ``multiscale`` objective
(:mod:`smfusion.training.multiscale`) compares the aggregate of the fine
predictions with the satellite and the station cells with the stations.
Stations are split by ``cfg.split`` (``sites`` lists are station ids); the
satellite term uses every fine cell. Prediction, validation and physical units
are the sequence adapter's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.config import MultiscaleConfig, RunConfig
from smfusion.data.adapters import register_adapter
from smfusion.data.adapters.base import Sampler
from smfusion.data.adapters.sequence import SequenceAdapter
from smfusion.data.loading import SiteSplit, resolve_split
from smfusion.data.normalize import Scaler
from smfusion.data.sampling import Arrays, iterations_per_epoch, to_arrays
from smfusion.data.seasonal import anomaly_vars, fit_seasonal
from smfusion.data.splits import select_period
from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import nest_factor

__all__ = ["MultiscaleAdapter", "MultiscaleArrays", "MultiscaleSampler", "build_multiscale_arrays",
           "fit_multiscale_scaler", "operator_features", "station_sites"]


@dataclass
class MultiscaleArrays(Arrays):
    """Normalised fine-cell inputs, station targets and coarse-cell targets over one period.

    ``members`` (C, K): fine rows of each coarse cell, -1 padded; ``coverage`` (C,):
    present fine cells / fine cells per coarse cell; ``station_rows``: rows with a
    (training) station target in ``y``.
    """

    # x_dynamic (N, T, Fd), x_static (N, Fs), y (N, T, 1) station target (NaN off training stations),
    # sites, time: as in Arrays
    coarse_y: np.ndarray = None  # (C, T, 1) satellite target
    members: np.ndarray = None  # (C, K) int
    coverage: np.ndarray = None  # (C,)
    coarse_ids: np.ndarray = None  # (C,)
    station_rows: np.ndarray = None  # (S,)


def fine_per_coarse(ds: xr.Dataset) -> int:
    """Fine cells per coarse cell from the dataset's ``fine_grid``/``coarse_grid`` attrs."""
    try:
        return nest_factor(ds.attrs["fine_grid"], ds.attrs["coarse_grid"]) ** 2
    except KeyError as exc:
        raise DataError("multiscale data need attrs fine_grid and coarse_grid", field=str(exc)) from None


def station_sites(ds: xr.Dataset, target: str, period: Optional[tuple[str, str]] = None) -> np.ndarray:
    """Sites with at least one station value (in ``period`` when given)."""
    sub = select_period(ds, period) if period else ds
    return ds["site"].values[np.isfinite(sub[target].transpose("site", "time").values).any(axis=1)]


def build_multiscale_arrays(ds: xr.Dataset, scaler: Scaler, cfg: RunConfig, stations, period) -> MultiscaleArrays:
    """Arrays over ``period``; station targets only at ``stations`` (site ids)."""
    ms = cfg.multiscale
    target = cfg.data.target[0]
    if "coarse" not in ds.coords:
        raise DataError("multiscale data need a 'coarse' coordinate on site", field="coarse")
    if ms.satellite not in ds:
        raise DataError("satellite variable not in the data", field=ms.satellite)
    sub = select_period(ds, period)
    arr = to_arrays(sub, scaler, cfg.data.dynamic, cfg.data.static, [target])
    keep = np.isin(arr.sites, np.asarray(stations))
    arr.y[~keep] = np.nan
    sat = scaler.transform(ms.satellite, sub[ms.satellite].transpose("site", "time").values)
    ids, inverse = np.unique(np.asarray(sub["coarse"].values), return_inverse=True)
    kk = fine_per_coarse(ds)
    groups = [np.nonzero(inverse == c)[0] for c in range(ids.size)]
    members = np.full((ids.size, max(len(g) for g in groups)), -1, dtype=np.int64)
    coarse_y = np.full((ids.size, arr.n_time, 1), np.nan, dtype=np.float32)
    for c, g in enumerate(groups):
        members[c, : len(g)] = g
        with np.errstate(all="ignore"):
            vals = sat[g]
            n = np.isfinite(vals).sum(axis=0)
            coarse_y[c, :, 0] = np.where(n > 0, np.nansum(vals, axis=0) / np.maximum(n, 1), np.nan)
    coverage = np.asarray([len(g) / kk for g in groups])
    rows = np.nonzero(keep & np.isfinite(arr.y[..., 0]).any(axis=1))[0]
    return MultiscaleArrays(arr.x_dynamic, arr.x_static, arr.y, arr.sites, arr.time, coarse_y=coarse_y,
                            members=members, coverage=coverage, coarse_ids=ids, station_rows=rows)


class MultiscaleSampler(Sampler):
    """``groups_per_batch`` coarse cells (all their fine cells, one window each) + ``stations_per_batch``
    station cells (one window each); a term with weight 0 draws nothing."""

    def __init__(self, arrays: MultiscaleArrays, ms: MultiscaleConfig, seq_len: int):
        self.arrays, self.ms, self.seq_len = arrays, ms, seq_len
        self.doy = pd.DatetimeIndex(arrays.time).day_of_year.values.astype(np.float32)

    def iterations_per_epoch(self, batch_size: int, seq_len: int) -> int:
        return iterations_per_epoch(self.arrays.n_site, self.arrays.n_time, batch_size, seq_len)

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        ms, arr = self.ms, self.arrays
        L = min(self.seq_len, arr.n_time)
        eligible = np.nonzero((arr.coverage >= ms.min_coverage) & np.isfinite(arr.coarse_y[..., 0]).any(axis=1))[0]
        n_g = ms.groups_per_batch if ms.w_coarse > 0 and eligible.size else 0
        n_s = ms.stations_per_batch if ms.w_site > 0 and arr.station_rows.size else 0
        if n_g == 0 and n_s == 0:
            raise DataError("nothing to train on: no coarse cell with coverage and satellite data, and no station")
        g = rng.choice(eligible, size=n_g) if n_g else np.zeros(0, dtype=np.int64)
        s = rng.choice(arr.station_rows, size=n_s) if n_s else np.zeros(0, dtype=np.int64)
        k = arr.members.shape[1]
        mem = arr.members[g]  # (G, K)
        mask = mem >= 0
        rows = np.concatenate([np.where(mask, mem, mem[:, :1]).reshape(-1), s]).astype(np.int64)
        g_start = rng.integers(0, arr.n_time - L + 1, size=n_g)
        s_start = rng.integers(0, arr.n_time - L + 1, size=n_s)
        start = np.concatenate([np.repeat(g_start, k), s_start])
        t_idx = start[:, None] + np.arange(L)[None, :]
        gt = g_start[:, None] + np.arange(L)[None, :]
        st = s_start[:, None] + np.arange(L)[None, :]
        out = {
            "x_dynamic": arr.x_dynamic[rows[:, None], t_idx],
            "x_static": arr.x_static[rows],
            "group_index": np.arange(n_g * k, dtype=np.int64).reshape(n_g, k),
            "group_mask": mask,
            "group_coverage": arr.coverage[g].astype(np.float32),
            "y_coarse": arr.coarse_y[g[:, None], gt],
            "site_index": np.arange(n_g * k, n_g * k + n_s, dtype=np.int64),
            "y_site": arr.y[s[:, None], st],
        }
        if ms.observation is not None:  # the observation operator's cell (row of arrays.coarse_ids) and day
            out["group_cell"] = g.astype(np.int64)
            out["group_doy"] = self.doy[gt]
        return out


def operator_features(arr: MultiscaleArrays, kind: str) -> np.ndarray:
    """Rows of the observation operator's design (one per coarse cell of ``arr``): the identity for ``cell``,
    ``[1, mean normalised statics of the cell's fine cells]`` for ``static``."""
    n = arr.members.shape[0]
    if kind == "cell":
        return np.eye(n, dtype=np.float32)
    mask = arr.members >= 0
    stat = arr.x_static[np.where(mask, arr.members, 0)]  # (C, K, Fs)
    mean = (stat * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)[:, None]
    return np.concatenate([np.ones((n, 1)), mean], axis=1).astype(np.float32)


def fit_multiscale_scaler(cfg: RunConfig, ds: xr.Dataset) -> Scaler:
    """Scaler on the training period over all fine cells (inputs and satellite); the station target
    uses the satellite's statistics, so both terms compare in one unit and aggregation commutes."""
    ms = cfg.multiscale
    sub = select_period(ds, cfg.periods.train.as_tuple())
    scaler = Scaler.fit(sub, [*cfg.data.dynamic, *cfg.data.static, ms.satellite], log1p=cfg.normalization.log1p)
    target = cfg.data.target[0]
    scaler.mean[target], scaler.std[target] = scaler.mean[ms.satellite], scaler.std[ms.satellite]
    return scaler


@register_adapter("multiscale")
class MultiscaleAdapter(SequenceAdapter):
    """See the module docstring."""

    default_objective = "multiscale"

    def check(self) -> None:
        cfg = self.cfg
        if cfg.multiscale is None:
            raise ConfigError("the multiscale adapter needs a multiscale section in the config")
        if anomaly_vars(cfg) or cfg.features.lags or cfg.features.antecedent:
            raise ConfigError("multiscale runs take neither seasonal anomalies nor lag/antecedent features yet")

    def carries_site_std(self) -> bool:
        return False  # its own sampler (coarse cells and stations)

    def load(self, start=None, end=None, require_target: bool = True, inputs_only: bool = False) -> xr.Dataset:
        ds = super().load(start, end, require_target=require_target, inputs_only=inputs_only)
        if require_target and self.cfg.data.target[0] not in ds:
            raise DataError("station target not in the data", field=self.cfg.data.target[0])
        return ds

    def split(self, ds: xr.Dataset) -> SiteSplit:
        stations = station_sites(ds, self.cfg.data.target[0], self.cfg.periods.train.as_tuple())
        return resolve_split(self.cfg, stations) if stations.size else SiteSplit(stations, stations, stations)

    def cv_units(self, ds: xr.Dataset) -> dict[str, np.ndarray]:
        return self._units(ds, station_sites(ds, self.cfg.data.target[0], self.cfg.periods.train.as_tuple()))

    def fit(self, ds: xr.Dataset, split: SiteSplit, source=None) -> None:
        """The scaler of :func:`fit_multiscale_scaler`; the target climatology (training stations) for the
        product's climatology layer."""
        self.check()
        self.seasonal = fit_seasonal(self.cfg, ds, split)
        self.scaler = fit_multiscale_scaler(self.cfg, ds)

    def model_kwargs(self) -> dict:
        """The sequence adapter's, plus ``observation`` (config, features or None) with a learned observation
        operator: features of the training arrays' coarse cells (one-hot for ``kind: cell``; 1 and the mean
        normalised statics of the cell's fine cells for ``kind: static``), None before training arrays exist
        (a run being loaded: the shapes come from its weights)."""
        out = super().model_kwargs()
        obs = self.cfg.multiscale.observation if self.cfg.multiscale is not None else None
        if obs is not None:
            out["observation"] = (obs, None if self._train_arrays is None else operator_features(self._train_arrays,
                                                                                                   obs.kind))
        return out

    def train_batches(self, ds: xr.Dataset, split: SiteSplit, training) -> Sampler:
        if self._train_arrays is None:
            self._train_arrays = build_multiscale_arrays(ds, self.scaler, self.cfg, split.train,
                                                         self.cfg.periods.train.as_tuple())
        return MultiscaleSampler(self._train_arrays, self.cfg.multiscale, training.seq_len)
