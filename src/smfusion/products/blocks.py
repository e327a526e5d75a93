"""Prediction of one (cell block x time block) of a product, with the model state carried along time.

How a time block gets its past (:func:`time_mode`):

* ``state``: models that declare ``carries_state`` (the LSTM: keys of the
  recurrent state in and out of ``forward``) run the first block after the
  run's ``warmup_days`` of forcing, then every later block starts from the
  state the previous block ended with. Only the input features' history
  (lags, antecedent means) is read again, so no day is predicted twice.
* ``per_day``: models that declare ``per_day`` (the MLP) map each day on its
  own; a block reads the features' history only.
* ``warmup``: any other model re-reads ``warmup_days`` before every block
  (the overlap along time is recomputed).

:func:`predict_block` returns what :meth:`smfusion.runs.Run.predict_members`
returns for the block's period (members and noisy runs, physical units) plus
the state to hand to the next block.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from smfusion.data.adapters.base import Batches
from smfusion.training.trainer import to_tensors

__all__ = ["time_mode", "history_days", "load_from_days", "predict_block"]

State = dict[str, np.ndarray]  # key -> (member, pass, rows, ...) arrays


def time_mode(members: list) -> str:
    """``state``, ``per_day`` or ``warmup`` (module docstring), the same for every member."""
    if all(getattr(m, "carries_state", None) for m in members):
        return "state"
    if all(getattr(m, "per_day", False) for m in members):
        return "per_day"
    return "warmup"


def history_days(cfg) -> int:
    """Days before a day that its input features read: max lag k, max antecedent window w - 1."""
    f = cfg.features
    lags = [k for ks in f.lags.values() for k in ks]
    means = [w - 1 for ws in f.antecedent.values() for w in ws]
    return max([0, *lags, *means])


def load_from_days(cfg, mode: str, first: bool) -> int:
    """Days of forcing read before a block: warm-up for the first block (and every block in ``warmup``
    mode), the features' history otherwise (``per_day``: never more than the warm-up)."""
    warm, hist = cfg.periods.warmup_days, history_days(cfg)
    if mode == "warmup" or (mode == "state" and first):
        return warm
    if mode == "per_day":
        return min(warm, hist)
    return hist


def _trim(b: Batches) -> tuple[dict[str, np.ndarray], int]:
    """Inputs without the days before ``score_from`` (the carried state already holds them)."""
    k, n_t = b.score_from, b.y.shape[1]
    return {key: (v[:, k:] if v.ndim >= 3 and v.shape[1] == n_t else v) for key, v in b.inputs.items()}, 0


@torch.no_grad()
def _passes(model, inputs: dict, b: Batches, k: int, step: int, noise_runs: int, noise: np.float32,
            rng: np.random.Generator, state_in: Optional[State], keep: tuple[str, ...], out: np.ndarray,
            state_out: Optional[State]) -> None:
    """The clean pass and ``noise_runs`` noisy passes of one member over every row (chunks of ``step``).

    ``out``: (1 + noise_runs, rows, time, target); ``state_in``/``state_out``: key -> (pass, rows, ...).
    """
    n = len(b)
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
            res = model(to_tensors(feed))
            out[r, sl] = res["y_hat"][:, k:].numpy()
            if state_out is not None:
                for key in keep:
                    v = res[key].numpy()
                    if key not in state_out:
                        state_out[key] = np.empty((1 + noise_runs, n) + v.shape[1:], dtype=np.float32)
                    state_out[key][r, sl] = v


def predict_block(run, b: Batches, noise_runs: int, noise: float, rng: np.random.Generator,
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
