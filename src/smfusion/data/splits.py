"""Splits: temporal periods, explicit site lists, seeded spatial k-fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.config import RunConfig


def select_period(ds: xr.Dataset, period: tuple[str, str]) -> xr.Dataset:
    """The inclusive time slice ``period = (start, end)``."""
    return ds.sel(time=slice(period[0], period[1]))


def kfold_sites(sites: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Partition ``sites`` into ``k`` disjoint folds of near-equal size (seeded shuffle)."""
    sites = np.asarray(sites)
    if k < 2 or k > sites.size:
        raise ValueError(f"k must be in 2..{sites.size}, got {k}")
    perm = np.random.default_rng(seed).permutation(sites.size)
    return [np.sort(sites[idx]) for idx in np.array_split(perm, k)]


def kfold_split(sites: np.ndarray, k: int, fold: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train_sites, test_sites)`` for one fold of :func:`kfold_sites`."""
    folds = kfold_sites(sites, k, seed)
    test = folds[fold]
    train = np.sort(np.concatenate([f for i, f in enumerate(folds) if i != fold]))
    return train, test


def holdout_sites(sites: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``sites`` into ``(kept, held_out)`` with ``round(fraction * n)`` held out."""
    sites = np.asarray(sites)
    n_out = int(round(fraction * sites.size))
    if n_out == 0:
        return np.sort(sites), sites[:0]
    perm = np.random.default_rng(seed).permutation(sites.size)
    return np.sort(sites[perm[n_out:]]), np.sort(sites[perm[:n_out]])


def span(cfg: RunConfig) -> tuple[str, str]:
    """First and last day any period of ``cfg`` needs (input climatology period too), warm-up included."""
    periods = [p for p in (cfg.periods.train, cfg.periods.validation, cfg.periods.test, cfg.seasonal.input_period)
               if p is not None]
    t0 = min(pd.Timestamp(p.start) for p in periods) - pd.Timedelta(days=cfg.periods.warmup_days)
    t1 = max(pd.Timestamp(p.end) for p in periods)
    return t0.strftime("%Y-%m-%d"), t1.strftime("%Y-%m-%d")
