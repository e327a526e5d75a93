"""Load any trained run and predict with it (evaluation and products use this, never ``training``).

:class:`Run` wraps a run directory (:func:`smfusion.training.run.load_trained`):
its config, its adapter with the fitted state (scaler, climatologies), its split
and its ensemble members. Predictions come back in physical units, per member
(:meth:`Run.predict_members`) or as an ``xarray.Dataset`` of the ensemble mean
with its spread (:meth:`Run.predict`): ``(site, time)`` for sequence and
multiscale runs, ``(example,)`` for point runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch
import xarray as xr

from smfusion.data.adapters import Batches
from smfusion.training.ensembles import aleatoric_std
from smfusion.training.run import Trained, load_trained
from smfusion.training.trainer import predict_batches, to_tensors

__all__ = ["Run"]


@dataclass
class Run(Trained):
    """A trained run (any adapter); see the module docstring."""

    @classmethod
    def load(cls, run_dir: str | Path) -> "Run":
        t = load_trained(run_dir)
        return cls(t.run_dir, t.cfg, t.adapter, t.split, t.members)

    @property
    def layout(self) -> str:
        """``site``: (site, time) series; ``points``: independent examples."""
        return self.adapter.layout

    def load_data(self, start: Optional[str] = None, end: Optional[str] = None) -> Any:
        """The run's data over ``start..end`` (target not required), with the warm-up before ``start``
        for series; both None: every period of the config."""
        if start is not None and self.layout == "site":
            start = (pd.Timestamp(start) - pd.Timedelta(days=self.cfg.periods.warmup_days)).strftime("%Y-%m-%d")
        return self.adapter.load(start, end, require_target=False)

    def predict_members(
        self, data: Any, ids: Optional[np.ndarray], period: Optional[tuple[str, str]], noise_runs: int = 0,
        noise: Optional[float] = None, seed: Optional[int] = None, batches: Optional[Batches] = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Physical-unit predictions of every member, (member, row, time, target), over ``period``.

        With ``noise_runs`` M > 0 also returns the noisy runs (member, M, row, time, target): each
        adds Gaussian noise of std ``noise`` (default ``uncertainty.noise``) to the adapter's noisy
        normalised inputs (= ``noise`` x their training std; of the residual under input_mode
        anomaly), warm-up included.
        """
        b = batches if batches is not None else self.adapter.eval_batches(data, ids, period)
        k = b.score_from
        unc = self.cfg.uncertainty
        noise = unc.noise if noise is None else float(noise)
        rng = np.random.default_rng(unc.seed if seed is None else seed)
        shape = (len(b), b.y.shape[1] - k, b.y.shape[2])
        z = np.empty((len(self.members),) + shape, dtype=np.float32)
        zn = np.empty((len(self.members), noise_runs) + shape, dtype=np.float32) if noise_runs else None
        for i, model in enumerate(self.members):
            step = getattr(model, "predict_chunk_sites", b.chunk)
            z[i] = predict_batches(model, b, chunk=step)[:, k:]
            if noise_runs:
                _noisy_runs(model, b, step, noise_runs, np.float32(noise), rng, zn[i])
        out = np.stack([self._physical(z[i], b) for i in range(len(self.members))])
        if noise_runs:
            noisy = np.stack([np.stack([self._physical(zn[i, r], b) for r in range(noise_runs)])
                              for i in range(len(self.members))])
            return out, noisy
        return out

    def predict_block(self, batches: Batches, noise_runs: int, noise: float, rng: np.random.Generator,
                      carry: Optional[dict] = None, keep_state: bool = False):
        """:meth:`predict_members` for one block of a product, with the recurrent state carried in and out
        (models that declare ``carries_state``): returns members (member, row, time, target), noisy runs
        (member, runs, row, time, target; None without) and the state after the last day (``keep_state``).

        ``carry`` (the state a previous block ended with) replaces the warm-up: the inputs before
        ``score_from`` are dropped and each member and noisy pass starts from its own state.
        """
        return _predict_block(self, batches, noise_runs, noise, rng, carry=carry, keep_state=keep_state)

    def _physical(self, z: np.ndarray, b: Batches) -> np.ndarray:
        return self.adapter.to_physical(z, b)

    def predict(self, start: Optional[str] = None, end: Optional[str] = None, ids: Optional[np.ndarray] = None,
                data: Any = None) -> xr.Dataset:
        """Ensemble-mean prediction (and member std when N > 1) over ``start..end`` as a Dataset."""
        data = self.load_data(start, end) if data is None else data
        period = (start, end) if start is not None and end is not None else None
        b = self.adapter.eval_batches(data, ids if ids is not None else self.adapter.all_ids(data), period)
        return self.to_dataset(self.predict_members(data, None, None, batches=b), data, b)

    def to_dataset(self, pred: np.ndarray, data: Any, batches: Batches, noisy: Optional[np.ndarray] = None
                   ) -> xr.Dataset:
        """Member predictions (member, row, time, target) -> Dataset of the mean, ``<var>_ensemble_std``
        (N > 1) and, with noisy runs (member, M, row, time, target), ``<var>_aleatoric_std``."""
        dims, coords = self.adapter.coords(data, batches)
        if len(dims) == 1:  # point examples: one value per row
            pred = pred[:, :, 0]
            noisy = noisy[:, :, :, 0] if noisy is not None else None
        out = xr.Dataset(coords=coords)
        for i, var in enumerate(self.cfg.data.target):
            attrs = self.adapter.variable_attrs(data, var)
            units = attrs.get("units", "")
            out[var] = (dims, pred[..., i].mean(0), attrs)
            if len(self.members) > 1:
                out[f"{var}_ensemble_std"] = (dims, pred[..., i].std(0),
                                              {"units": units, "long_name": f"ensemble standard deviation of {var}"})
            if noisy is not None:
                out[f"{var}_aleatoric_std"] = (dims, aleatoric_std(noisy[..., i]), {
                    "units": units, "long_name": f"aleatoric (input-noise) standard deviation of {var}"})
        out.attrs.update({"model": self.cfg.model.name, "adapter": self.adapter.name, "ensemble": len(self.members),
                          "config_hash": self.cfg.hash(), "run_dir": str(self.run_dir)})
        return out


@torch.no_grad()
def _noisy_runs(model, b: Batches, step: int, runs: int, noise: np.float32, rng: np.random.Generator,
                out: np.ndarray) -> None:
    """``runs`` forward passes with Gaussian noise on the noisy inputs; writes (runs, row, time, target)."""
    k = b.score_from
    for sl, chunk in b.chunks(step):
        for r in range(runs):
            noisy = dict(chunk)
            for key in b.noisy:
                x = chunk[key]
                noisy[key] = x + noise * rng.standard_normal(x.shape, dtype=np.float32)
            out[r, sl] = model(to_tensors(noisy))["y_hat"][:, k:].numpy()


State = dict  # batch key -> (member, pass, row, ...) array of the carried recurrent state


def _trim(b: Batches) -> tuple[dict[str, np.ndarray], int]:
    """Inputs without the days before ``score_from`` (the carried state already holds them)."""
    k, n_t = b.score_from, b.y.shape[1]
    return {key: (v[:, k:] if v.ndim >= 3 and v.shape[1] == n_t else v) for key, v in b.inputs.items()}, 0


STATE_CHUNK_DAYS = 64  # days per forward call of a model that carries its state (the gates stay in cache)
STATE_CHUNK_ROWS = 64  # rows per forward call of such a model


def _forward(model, feed: dict, keys: tuple[str, ...], n_time: int) -> dict:
    """One forward over ``feed``; a model that carries its state runs ``STATE_CHUNK_DAYS`` days at a time,
    handing its state on (the same result as one call: its recurrence is exact)."""
    if not keys or n_time <= STATE_CHUNK_DAYS:
        return model(to_tensors(feed))
    timed = [key for key, v in feed.items() if v.ndim >= 3 and v.shape[1] == n_time]
    ys, state = [], {key: feed[key] for key in keys if key in feed}
    for t0 in range(0, n_time, STATE_CHUNK_DAYS):
        part = {key: (v[:, t0:t0 + STATE_CHUNK_DAYS] if key in timed else v) for key, v in feed.items()
                if key not in keys}
        res = model({**to_tensors(part), **{key: torch.as_tensor(v) for key, v in state.items()}})
        ys.append(res["y_hat"])
        state = {key: res[key] for key in keys}
    return {"y_hat": torch.cat(ys, dim=1), **state}


@torch.no_grad()
def _passes(model, inputs: dict, b: Batches, k: int, step: int, noise_runs: int, noise: np.float32,
            rng: np.random.Generator, state_in: Optional[State], keep: tuple[str, ...], out: np.ndarray,
            state_out: Optional[State]) -> None:
    """The clean pass and ``noise_runs`` noisy passes of one member over every row (chunks of ``step``).

    ``out``: (1 + noise_runs, rows, time, target); ``state_in``/``state_out``: key -> (pass, rows, ...).
    """
    n = len(b)
    keys = tuple(getattr(model, "carries_state", None) or ())
    n_time = next((v.shape[1] for v in inputs.values() if v.ndim >= 3), 0)
    if keys:
        step = max(step, STATE_CHUNK_ROWS)
    for a in range(0, n, step):
        sl = slice(a, min(a + step, n))
        chunk = {key: v[sl] for key, v in inputs.items()}
        for r in range(1 + noise_runs):
            feed = dict(chunk)
            if r:
                for key in b.noisy:
                    x = chunk[key]
                    feed[key] = x + noise * rng.standard_normal(x.shape, dtype=np.float32)
            if state_in is not None:
                for key in keep:
                    feed[key] = state_in[key][r, sl]
            res = _forward(model, feed, keys, n_time)
            out[r, sl] = res["y_hat"][:, k:].numpy()
            if state_out is not None:
                for key in keep:
                    v = res[key].numpy()
                    if key not in state_out:
                        state_out[key] = np.empty((1 + noise_runs, n) + v.shape[1:], dtype=np.float32)
                    state_out[key][r, sl] = v


def _predict_block(run, b: Batches, noise_runs: int, noise: float, rng: np.random.Generator,
                   carry: Optional[State] = None, keep_state: bool = False
                   ) -> tuple[np.ndarray, Optional[np.ndarray], Optional[State]]:
    """Members (member, rows, time, target) and noisy runs (member, runs, rows, time, target; None without
    runs) in physical units over the scored days of ``b``, and the state after its last day.

    ``carry`` (from the previous block; ``state`` mode) replaces the warm-up: the inputs before
    ``score_from`` are dropped and every member and noisy pass starts from its own carried state.
    ``keep_state``: return the state after the last day (``state`` mode only).
    """
    members = run.members
    keys = tuple(getattr(members[0], "carries_state", None) or ()) if (carry is not None or keep_state) else ()
    inputs, k = _trim(b) if carry is not None else (b.inputs, b.score_from)
    n_pass = 1 + noise_runs
    shape = (len(b), b.y.shape[1] - b.score_from, b.y.shape[2])
    z = np.empty((len(members), n_pass) + shape, dtype=np.float32)
    new: State = {}
    for i, model in enumerate(members):
        model.eval()
        step = getattr(model, "predict_chunk_sites", b.chunk)
        s_in = {key: carry[key][i] for key in keys} if carry is not None else None
        s_out = {} if keep_state and keys else None
        _passes(model, inputs, b, k, step, noise_runs, np.float32(noise), rng, s_in, keys, z[i], s_out)
        if s_out is not None:
            for key in keys:
                new.setdefault(key, np.empty((len(members),) + s_out[key].shape, dtype=np.float32))[i] = s_out[key]
    phys = np.stack([np.stack([run.adapter.to_physical(z[i, r], b) for r in range(n_pass)])
                     for i in range(len(members))])
    noisy = phys[:, 1:] if noise_runs else None
    return phys[:, 0], noisy, (new if keep_state and keys else None)
