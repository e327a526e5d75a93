"""Lazy training reads for the ``sequence`` adapter (``data.lazy``): the data set is never loaded whole.

With ``data.lazy`` the adapter's ``load()`` for training returns a *skeleton*
(coords ``site``, ``lat``, ``lon``, ``time``; no data, attribute
``smfusion_lazy``), read from one day of the reader. Then, blocks of
``block_sites`` sites at a time over the training period (``load_sites`` of
the adapter: readers that honour ``data.sites``, such as ``grid_inputs`` on
a Zarr store, read only those cells):

* :func:`fit_lazy`: climatologies fitted per block and joined (they are per
  site; each block read from the first day the config needs), then the scaler's statistics accumulated block by block (counts,
  means and squared deviations combined exactly; Chan et al.), giving what
  :meth:`smfusion.data.normalize.Scaler.fit` gives on the whole set up to
  rounding;
* :class:`LazySequenceSampler`: the same random draws as the in-memory
  :class:`~smfusion.data.adapters.sequence.SequenceSampler` (so the same
  minibatches for the same seed), each site's window read from its block's
  normalised arrays, which an LRU cache of ``cache_mb`` keeps.

Memory is bounded by the cache, one block being read and the minibatch, plus
the fitted state (scaler; climatologies: 2 x 365 values per site and variable).
Validation sites are read whole (keep them few); evaluation and products read
by period or by cell block as usual.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.data.adapters.base import Sampler
from smfusion.data.climatology import Climatology
from smfusion.data.loading import SiteSplit, span
from smfusion.data.normalize import MIN_SITE_COUNT, SITE_STD_FLOOR, Scaler
from smfusion.data.sampling import Arrays, iterations_per_epoch
from smfusion.data.seasonal import Seasonal, anomaly_vars, dynamic_inputs, fit_seasonal, prepare
from smfusion.data.splits import select_period
from smfusion.errors import DataError

__all__ = ["skeleton", "is_skeleton", "fit_lazy", "LazySequenceSampler"]

FLAG = "smfusion_lazy"


def skeleton(adapter) -> xr.Dataset:
    """Coords of every site and of every day the config needs (warm-up included), no data."""
    start, end = span(adapter.cfg)
    head = adapter.load_sites(None, start, start)
    return xr.Dataset(coords={"site": head["site"].values, "lat": ("site", head["lat"].values),
                              "lon": ("site", head["lon"].values),
                              "time": pd.date_range(start, end, freq="D").values}, attrs={FLAG: 1, **head.attrs})


def is_skeleton(ds) -> bool:
    return isinstance(ds, xr.Dataset) and bool(ds.attrs.get(FLAG))


def _blocks(ids: np.ndarray, size: int):
    for a in range(0, ids.size, size):
        yield ids[a:a + size]


def _join(parts: list[Climatology]) -> Climatology:
    out = Climatology()
    out.__dict__.update(parts[0].__dict__)
    out.values = np.concatenate([p.values for p in parts])
    out.counts = np.concatenate([p.counts for p in parts])
    out.site_mean = np.concatenate([p.site_mean for p in parts])
    out.site_coords = {k: np.concatenate([p.site_coords[k] for p in parts]) for k in parts[0].site_coords}
    return out


class _Moments:
    """Count, mean and sum of squared deviations of a stream of value sets (exact merge)."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:
        x = x[np.isfinite(x)]
        if x.size == 0:
            return
        n, mean, m2 = x.size, float(x.mean()), float(((x - x.mean()) ** 2).sum())
        d, tot = mean - self.mean, self.n + n
        self.mean += d * n / tot
        self.m2 += m2 + d * d * self.n * n / tot
        self.n = tot

    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else 0.0


class _Stats:
    """The scaler's statistics accumulated block by block (global moments; per-site rows)."""

    def __init__(self, cfg):
        self.names = [*dynamic_inputs(cfg), *cfg.data.static, *cfg.data.target]
        self.per_site = cfg.data.target if cfg.normalization.target == "site" else []
        self.pre = Scaler(log1p=list(cfg.normalization.log1p))
        self.moments = {v: _Moments() for v in self.names}
        self.site_rows: dict[str, list] = {v: [] for v in self.per_site}

    def add(self, ds: xr.Dataset) -> None:
        for v in self.names:
            if v not in ds:
                raise DataError("variable not in dataset", field=v)
            self.moments[v].add(self.pre._pre(v, np.asarray(ds[v].values, dtype=np.float64)).ravel())
        for v in self.per_site:
            vals = self.pre._pre(v, np.asarray(ds[v].transpose("site", "time").values, dtype=np.float64))
            ok = np.isfinite(vals)
            n = ok.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = np.where(ok, vals, 0.0).sum(axis=1) / n
                sd = np.sqrt(np.where(ok, (vals - m[:, None]) ** 2, 0.0).sum(axis=1) / n)
            self.site_rows[v].append((ds["site"].values, n, m, sd))

    def scaler(self) -> Scaler:
        """As :meth:`Scaler.fit` (population std, 0 -> 1; per-site rules of ``normalize``)."""
        sc = Scaler(log1p=list(self.pre.log1p))
        for v, mo in self.moments.items():
            if mo.n == 0:
                raise DataError("all values missing in the training period: cannot normalise", field=v)
            sc.mean[v], sc.std[v] = mo.mean, (mo.std() or 1.0)
        for v, rows in self.site_rows.items():
            site, n, m, sd = (np.concatenate(c) for c in zip(*rows))
            enough = n >= MIN_SITE_COUNT
            m = np.where(enough, m, sc.mean[v])
            sd = np.where(enough, np.maximum(sd, SITE_STD_FLOOR * sc.std[v]), sc.std[v])
            sc.site_stats[v] = {"site": [int(s) for s in site], "mean": [float(x) for x in m],
                                "std": [float(x) for x in sd]}
        return sc


def fit_lazy(adapter, skel: xr.Dataset, split: SiteSplit, given=None) -> tuple[Seasonal, Scaler]:
    """Climatologies and scaler from the training period, block by block (module docstring).

    Without anomalies one pass (the target's climatology and the statistics from the same blocks);
    with anomalies a first pass reads only what the climatologies need, a second the training sites.
    """
    cfg, lz = adapter.cfg, adapter.cfg.data.lazy
    train = cfg.periods.train.as_tuple()
    first = span(cfg)[0]  # as in memory: features of the training period see the days before it
    need = {*(cfg.seasonal.inputs or cfg.data.dynamic), *cfg.features.lags, *cfg.features.antecedent,
            *(cfg.features.bucket.variables if cfg.features.bucket is not None else [])}
    one_pass = not anomaly_vars(cfg)
    stats = _Stats(cfg)
    parts: dict[str, list[Climatology]] = {}
    anomalies: list[str] = []
    for b in _blocks(np.asarray(skel["site"].values), lz.block_sites):
        ds = adapter.load_sites(b, first, train[1], target=True, only=None if one_pass else sorted(need))
        sub = SiteSplit(train=np.intersect1d(b, split.train), validation=np.array([], int), test=np.array([], int))
        sea = fit_seasonal(cfg, ds, sub, given=given)
        anomalies = sea.anomalies
        for var, clim in sea.clims.items():
            parts.setdefault(var, []).append(clim)
        if one_pass and sub.train.size:
            keep = np.asarray(split.train)[np.isin(split.train, b)]
            stats.add(prepare(select_period(ds.sel(site=keep), train), cfg, sea))
    seasonal = Seasonal({v: (p[0] if given and v in given else _join(p)) for v, p in parts.items()}, anomalies)
    if not one_pass:
        for b in _blocks(np.asarray(split.train), lz.block_sites):
            stats.add(prepare(adapter.load_sites(b, *train, target=True), cfg, seasonal))
    return seasonal, stats.scaler()


class _BlockCache:
    """Normalised :class:`Arrays` of site blocks, least recently used dropped beyond ``max_bytes``."""

    def __init__(self, load, max_bytes: float):
        self.load, self.max_bytes = load, max_bytes
        self.items: OrderedDict[int, Arrays] = OrderedDict()
        self.bytes = 0
        self.reads = 0

    def get(self, i: int) -> Arrays:
        if i in self.items:
            self.items.move_to_end(i)
            return self.items[i]
        arr = self.load(i)
        self.reads += 1
        size = arr.x_dynamic.nbytes + arr.x_static.nbytes + arr.y.nbytes
        while self.items and self.bytes + size > self.max_bytes:
            _, old = self.items.popitem(last=False)
            self.bytes -= old.x_dynamic.nbytes + old.x_static.nbytes + old.y.nbytes
        self.items[i] = arr
        self.bytes += size
        return arr


class LazySequenceSampler(Sampler):
    """``batch_size`` random training sites, each a random ``seq_len``-day window, read through the cache.

    Draws exactly as :func:`smfusion.data.sampling.sample_batch` on the in-memory arrays of
    the same sites (in ``ids`` order) and period.
    """

    def __init__(self, adapter, ids: np.ndarray, period: tuple[str, str], batch_size: int, seq_len: int,
                 block_sites: int, cache_mb: float):
        self.adapter, self.ids, self.period = adapter, np.asarray(ids), period
        self.batch_size, self.seq_len, self.block = batch_size, seq_len, block_sites
        self.n_time = pd.date_range(*period, freq="D").size
        self.cache = _BlockCache(self._load, cache_mb * 2**20)

    def _load(self, i: int) -> Arrays:
        ids = self.ids[i * self.block:(i + 1) * self.block]
        ds = self.adapter.load_sites(ids, *self.period, target=True)
        return self.adapter.arrays(prepare(ds, self.adapter.cfg, self.adapter.seasonal))

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        seq_len = min(self.seq_len, self.n_time)
        site = rng.integers(0, self.ids.size, size=self.batch_size)
        start = rng.integers(0, self.n_time - seq_len + 1, size=self.batch_size)
        out: Optional[dict[str, np.ndarray]] = None
        t_idx = start[:, None] + np.arange(seq_len)[None, :]
        for blk in np.unique(site // self.block):
            rows = np.flatnonzero(site // self.block == blk)
            arr = self.cache.get(int(blk))
            local = site[rows] - blk * self.block
            piece = {"x_dynamic": arr.x_dynamic[local[:, None], t_idx[rows]], "x_static": arr.x_static[local],
                     "y": arr.y[local[:, None], t_idx[rows]]}
            if out is None:
                out = {k: np.empty((self.batch_size,) + v.shape[1:], dtype=v.dtype) for k, v in piece.items()}
            for k, v in piece.items():
                out[k][rows] = v
        return out

    def iterations_per_epoch(self, batch_size: int, seq_len: int) -> int:
        return iterations_per_epoch(self.ids.size, self.n_time, batch_size, seq_len)
