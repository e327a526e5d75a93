"""Array views of the canonical Dataset for training, and hydroDL-style batch sampling."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
import xarray as xr

from smfusion.data.normalize import Scaler


@dataclass
class Arrays:
    """Normalised model inputs and targets for a set of sites over a period.

    ``x_dynamic`` (site, time, Fd) and ``x_static`` (site, Fs) have NaN replaced
    by 0 (the training mean); ``y`` (site, time, Ft) keeps NaN as the loss mask.
    """

    x_dynamic: np.ndarray
    x_static: np.ndarray
    y: np.ndarray
    sites: np.ndarray
    time: np.ndarray

    @property
    def n_site(self) -> int:
        return self.x_dynamic.shape[0]

    @property
    def n_time(self) -> int:
        return self.x_dynamic.shape[1]


def to_arrays(
    ds: xr.Dataset, scaler: Scaler, dynamic: list[str], static: list[str], target: list[str]
) -> Arrays:
    """Normalise ``ds`` with ``scaler`` into :class:`Arrays`. Targets absent from ``ds`` are NaN."""
    n_site, n_time = ds.sizes["site"], ds.sizes["time"]
    xd = np.zeros((n_site, n_time, len(dynamic)), dtype=np.float32)
    for i, v in enumerate(dynamic):
        xd[:, :, i] = scaler.transform(v, ds[v].values)
    xs = np.zeros((n_site, len(static)), dtype=np.float32)
    for i, v in enumerate(static):
        xs[:, i] = scaler.transform(v, ds[v].values)
    y = np.full((n_site, n_time, len(target)), np.nan, dtype=np.float32)
    for i, v in enumerate(target):
        if v in ds:
            y[:, :, i] = scaler.transform(v, ds[v].transpose("site", "time").values, sites=ds["site"].values)
    np.nan_to_num(xd, copy=False, nan=0.0)
    np.nan_to_num(xs, copy=False, nan=0.0)
    return Arrays(xd, xs, y, np.asarray(ds["site"].values), np.asarray(ds["time"].values))


def iterations_per_epoch(n_site: int, n_time: int, batch_size: int, seq_len: int) -> int:
    """hydroDL's rule: iterations so that each (site, day) is sampled with 99% probability."""
    frac = min(batch_size * seq_len / (n_site * n_time), 0.999999)
    return max(1, math.ceil(math.log(0.01) / math.log(1.0 - frac)))


def draw_windows(arr: Arrays, batch_size: int, seq_len: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` random sites (row indices) and a random window of ``seq_len`` days for each (time
    indices, (batch, seq_len))."""
    seq_len = min(seq_len, arr.n_time)
    site = rng.integers(0, arr.n_site, size=batch_size)
    start = rng.integers(0, arr.n_time - seq_len + 1, size=batch_size)
    return site, start[:, None] + np.arange(seq_len)[None, :]


def sample_batch(
    arr: Arrays, batch_size: int, seq_len: int, rng: np.random.Generator,
    per_site: Optional[dict[str, np.ndarray]] = None,
) -> dict[str, np.ndarray]:
    """Random (site, window) pieces: ``batch_size`` sites, each a random ``seq_len`` window; ``per_site``
    (name -> array whose first axis is ``arr``'s site) adds each drawn site's row under that name."""
    site, t_idx = draw_windows(arr, batch_size, seq_len, rng)
    out = {
        "x_dynamic": arr.x_dynamic[site[:, None], t_idx],
        "x_static": arr.x_static[site],
        "y": arr.y[site[:, None], t_idx],
    }
    for name, v in (per_site or {}).items():
        out[name] = v[site]
    return out


def target_std(arr: Arrays) -> np.ndarray:
    """Std of each site's normalised target over ``arr``'s period (site, target); 1 where fewer than 2 values."""
    n = np.isfinite(arr.y).sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sites without a value: replaced below
        sd = np.nanstd(arr.y, axis=1)
    return np.where(n >= 2, sd, 1.0).astype(np.float32)
