"""Multiscale learning from coarse satellite cells and point stations (Liu et al. 2022, GRL 49).

The model predicts at fine cells. A minibatch holds the fine cells of a few
coarse cells (each with its own time window) plus a few station cells::

    loss = w_coarse * loss(agg_{fine cells of c}(y_hat), satellite_c)     over coarse cells c
         + w_site   * loss(y_hat at station cell s, station_s)            over stations s

``agg`` is the mask-aware mean (or median) over the fine cells present; a coarse
cell with fewer than ``min_coverage`` of its fine cells present is left out of
the first term. Either weight may be 0: single-scale training is the special
case with one term. Any registered model works (it only sees fine cells).
With ``coarse_target: anomaly`` both sides of the first term are taken minus
their mean over the window (days with a satellite value), so a biased
satellite shapes the dynamics but not the level (docs/multiscale.md).

The training data are the canonical ``(site, time)`` Dataset of fine cells
with a ``coarse`` coordinate (parent cell), the satellite variable repeated on
the fine cells of each coarse cell, and the station variable (NaN off
stations); attrs ``fine_grid``/``coarse_grid`` give the nesting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import xarray as xr

from smfusion.config import MultiscaleConfig, RunConfig
from smfusion.data.loading import SiteSplit, resolve_split, span
from smfusion.data.normalize import Scaler
from smfusion.data.sampling import Arrays, to_arrays
from smfusion.data.splits import select_period
from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import nest_factor
from smfusion.io.atomic import write_text
from smfusion.training.losses import get_loss
from smfusion.training.run import build, warmed_arrays, write_run_config
from smfusion.training.trainer import Trainer, ValidationSet

__all__ = [
    "aggregate_groups",
    "multiscale_loss",
    "MultiscaleObjective",
    "MultiscaleArrays",
    "build_multiscale_arrays",
    "MultiscaleSampler",
    "station_sites",
    "fit_multiscale_scaler",
    "train_multiscale",
]


# --------------------------------------------------------------------------- loss


def aggregate_groups(y_hat: torch.Tensor, index: torch.Tensor, mask: torch.Tensor, op: str = "mean") -> torch.Tensor:
    """Aggregate rows of ``y_hat`` (B, T, F) into groups: ``index`` (G, K) row numbers, ``mask`` (G, K)
    which of them count. mean: sum(mask * y) / sum(mask); median: median of the masked rows.
    Groups without a counted row give NaN. Returns (G, T, F)."""
    g, k = index.shape
    rows = y_hat[index.reshape(-1).long()].reshape(g, k, *y_hat.shape[1:])  # (G, K, T, F)
    m = mask.to(torch.bool).reshape(g, k, *([1] * (y_hat.dim() - 1)))
    if op == "mean":
        n = m.sum(dim=1).to(y_hat.dtype)
        total = torch.where(m, rows, torch.zeros_like(rows)).sum(dim=1)
        return torch.where(n > 0, total / n.clamp(min=1), torch.full_like(total, float("nan")))
    if op == "median":
        return torch.nanmedian(torch.where(m, rows, torch.full_like(rows, float("nan"))), dim=1).values
    raise ConfigError(f"unknown aggregation {op!r}; use mean or median")


def multiscale_loss(
    y_hat: torch.Tensor,
    batch: dict[str, torch.Tensor],
    w_coarse: float = 1.0,
    w_site: float = 1.0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = get_loss("rmse"),
    aggregation: str = "mean",
    min_coverage: float = 0.0,
    burn_in: int = 0,
    coarse_target: str = "absolute",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the coarse-cell and station terms (see the module doc) and the terms' values.

    ``batch``: ``group_index``/``group_mask`` (G, K), ``group_coverage`` (G,), ``y_coarse`` (G, T, F),
    ``site_index`` (S,), ``y_site`` (S, T, F). NaN targets are masked; a term with weight 0 is skipped.
    ``coarse_target='anomaly'``: both sides of the coarse term minus their mean over the window's
    days with a satellite value (after ``burn_in``), so the satellite's level (bias) is not learned.
    """
    total = y_hat.sum() * 0.0
    terms = {}
    t0 = min(burn_in, y_hat.shape[1] - 1)
    if w_coarse > 0 and batch["group_index"].shape[0] > 0:
        agg = aggregate_groups(y_hat, batch["group_index"], batch["group_mask"], aggregation)
        y = batch["y_coarse"]
        covered = (batch["group_coverage"] >= min_coverage).reshape(-1, *([1] * (y.dim() - 1)))
        y = torch.where(covered, y, torch.full_like(y, float("nan")))
        agg = torch.nan_to_num(agg)  # groups with no fine cell: their target is masked below
        y = torch.where(batch["group_mask"].any(dim=1).reshape(covered.shape), y, torch.full_like(y, float("nan")))
        agg, y = agg[:, t0:], y[:, t0:]
        if coarse_target == "anomaly":
            seen = torch.isfinite(y)
            n = seen.sum(dim=1, keepdim=True).clamp(min=1)
            agg = agg - torch.where(seen, agg, torch.zeros_like(agg)).sum(dim=1, keepdim=True) / n
            y = y - torch.nansum(y, dim=1, keepdim=True) / n
        elif coarse_target != "absolute":
            raise ConfigError(f"unknown coarse_target {coarse_target!r}; use absolute or anomaly")
        term = loss_fn(agg, y)
        terms["coarse"] = float(term.detach())
        total = total + w_coarse * term
    if w_site > 0 and batch["site_index"].shape[0] > 0:
        term = loss_fn(y_hat[batch["site_index"].long()][:, t0:], batch["y_site"][:, t0:])
        terms["site"] = float(term.detach())
        total = total + w_site * term
    return total, terms


class MultiscaleObjective:
    """``objective(out, batch)`` for :class:`~smfusion.training.trainer.Trainer`; ``last`` holds the terms."""

    def __init__(self, ms: MultiscaleConfig, loss: str = "rmse"):
        self.ms = ms
        self.loss_fn = get_loss(loss)
        self.last: dict[str, float] = {}

    def __call__(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ms = self.ms
        total, self.last = multiscale_loss(out["y_hat"], batch, ms.w_coarse, ms.w_site, self.loss_fn,
                                           ms.aggregation, ms.min_coverage, ms.burn_in,
                                           ms.coarse_target)
        return total


# --------------------------------------------------------------------------- arrays and sampler


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
    coarse = np.asarray(sub["coarse"].values)
    ids, inverse = np.unique(coarse, return_inverse=True)
    kk = fine_per_coarse(ds)
    groups = [np.nonzero(inverse == c)[0] for c in range(ids.size)]
    width = max(len(g) for g in groups)
    members = np.full((ids.size, width), -1, dtype=np.int64)
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


class MultiscaleSampler:
    """``batch_fn(arrays, rng)``: ``groups_per_batch`` coarse cells (all their fine cells, one
    window each) + ``stations_per_batch`` station cells (one window each); a term with weight 0
    draws nothing. Returns numpy arrays (the Trainer makes tensors)."""

    def __init__(self, ms: MultiscaleConfig, seq_len: int):
        self.ms = ms
        self.seq_len = seq_len

    def __call__(self, arr: MultiscaleArrays, rng: np.random.Generator) -> dict[str, np.ndarray]:
        ms = self.ms
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
        return {
            "x_dynamic": arr.x_dynamic[rows[:, None], t_idx],
            "x_static": arr.x_static[rows],
            "group_index": np.arange(n_g * k, dtype=np.int64).reshape(n_g, k),
            "group_mask": mask,
            "group_coverage": arr.coverage[g].astype(np.float32),
            "y_coarse": arr.coarse_y[g[:, None], gt],
            "site_index": np.arange(n_g * k, n_g * k + n_s, dtype=np.int64),
            "y_site": arr.y[s[:, None], st],
        }


# --------------------------------------------------------------------------- run


def fit_multiscale_scaler(cfg: RunConfig, ds: xr.Dataset) -> Scaler:
    """Scaler on the training period over all fine cells (inputs and satellite); the station target
    uses the satellite's statistics, so both terms compare in one unit and aggregation commutes."""
    ms = cfg.multiscale
    sub = select_period(ds, cfg.periods.train.as_tuple())
    scaler = Scaler.fit(sub, [*cfg.data.dynamic, *cfg.data.static, ms.satellite], log1p=cfg.normalization.log1p)
    target = cfg.data.target[0]
    scaler.mean[target], scaler.std[target] = scaler.mean[ms.satellite], scaler.std[ms.satellite]
    return scaler


def _members(cfg: RunConfig):
    return [(m.index, m.model, m.training) for m in cfg.members()]


def train_multiscale(cfg: RunConfig, run_dir: Optional[str | Path] = None, ds: Optional[xr.Dataset] = None,
                     resume: bool = True) -> Path:
    """Train every member of a multiscale config into ``run_dir`` (the layout of
    :mod:`smfusion.training.run`, so :class:`~smfusion.training.run.TrainedRun` loads it).

    Stations are split by ``cfg.split`` (``sites`` lists are station site ids); the
    satellite term uses every fine cell.
    """
    from smfusion.data.gridded import load_multiscale_dataset

    if cfg.multiscale is None:
        raise ConfigError("train_multiscale needs a multiscale section in the config")
    run_dir = Path(run_dir) if run_dir is not None else (Path(cfg.run_dir) if cfg.run_dir else Path("runs") / cfg.name)
    cfg.run_dir = str(run_dir)
    if ds is None:
        ds = load_multiscale_dataset(cfg.data, *span(cfg))
    target = cfg.data.target[0]
    if target not in ds:
        raise DataError("station target not in the data", field=target)
    write_run_config(cfg, run_dir, resume)
    stations = station_sites(ds, target, cfg.periods.train.as_tuple())
    split = resolve_split(cfg, stations) if stations.size else SiteSplit(stations, stations, stations)
    write_text(run_dir / "split.json", json.dumps(split.to_dict()))
    scaler = fit_multiscale_scaler(cfg, ds)
    scaler.save(run_dir / "scaler.yaml")
    arrays = build_multiscale_arrays(ds, scaler, cfg, split.train, cfg.periods.train.as_tuple())
    validation = None
    if split.validation.size:
        v_period = cfg.periods.validation or cfg.periods.train
        validation = ValidationSet(*warmed_arrays(ds, scaler, cfg, split.validation, v_period.as_tuple()))
    sampler = MultiscaleSampler(cfg.multiscale, cfg.training.seq_len)
    members = _members(cfg)
    for index, model_cfg, train_cfg in members:
        torch.manual_seed(train_cfg.seed)
        model = build(cfg, scaler, model_cfg) if model_cfg is not cfg.model else build(cfg, scaler)
        objective = MultiscaleObjective(cfg.multiscale, train_cfg.loss)
        Trainer(model, train_cfg, out_dir=run_dir / f"member_{index}", batch_fn=sampler, objective=objective,
                desc=f"multiscale member {index + 1}/{len(members)}").fit(arrays, validation, resume=resume)
    return run_dir


def write_fine_product(run_dir: str | Path, ds: xr.Dataset, start: str, end: str, path: str | Path) -> Path:
    """Predict every fine cell of ``ds`` over ``start..end`` with the trained run and write a gridded
    CF NetCDF (time, y, x) on the fine EASE-2 grid (``soil_moisture``, plus the member spread when N > 1)."""
    from smfusion.data.gridded import to_grid
    from smfusion.io.cf import write_netcdf
    from smfusion.training.run import TrainedRun

    run = TrainedRun.load(run_dir)
    target = run.cfg.data.target[0]
    pred = run.predict(start, end, ds=ds)
    pred = pred.rename({v: v.replace(target, "soil_moisture") for v in pred.data_vars})
    pred["soil_moisture"].attrs.update(long_name="multiscale model soil moisture at fine cells (0-5 cm)",
                                       units="m3 m-3", standard_name="volume_fraction_of_condensed_water_in_soil")
    cube = to_grid(pred, ds["row"].sel(site=pred["site"]).values, ds["col"].sel(site=pred["site"]).values,
                   ds.attrs["fine_grid"])
    return write_netcdf(cube, path, grid=ds.attrs["fine_grid"], title="smfusion multiscale fine-scale soil moisture",
                        config=run.cfg.to_dict(), inputs=[str(ds.attrs.get("source", ""))])
