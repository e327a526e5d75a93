"""Forward passes of a trained run over one block of a product: every member's clean pass (all head
outputs) and its noisy passes, with the recurrent state carried in and out.

:meth:`smfusion.runs.Run.predict_block` builds the predictive distribution from
what :func:`predict_block` returns; :mod:`smfusion.products.blocks` says which
past each block needs (warm-up, features' history or a carried state).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from smfusion.data.adapters import Batches
from smfusion.training.trainer import to_tensors

__all__ = ["predict_block", "HEAD_KEYS"]

HEAD_KEYS = ("y_hat", "log_var", "mix_loc", "mix_log_var", "mix_log_weight")


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
    parts: dict[str, list] = {}
    state = {key: feed[key] for key in keys if key in feed}
    for t0 in range(0, n_time, STATE_CHUNK_DAYS):
        part = {key: (v[:, t0:t0 + STATE_CHUNK_DAYS] if key in timed else v) for key, v in feed.items()
                if key not in keys}
        res = model({**to_tensors(part), **{key: torch.as_tensor(v) for key, v in state.items()}})
        for key in HEAD_KEYS:
            if key in res:
                parts.setdefault(key, []).append(res[key])
        state = {key: res[key] for key in keys}
    return {**{key: torch.cat(v, dim=1) for key, v in parts.items()}, **state}


@torch.no_grad()
def _passes(model, inputs: dict, b: Batches, k: int, step: int, noise_runs: int, noise: np.float32,
            rng: np.random.Generator, state_in: Optional[State], keep: tuple[str, ...], out: np.ndarray,
            state_out: Optional[State], heads: dict) -> None:
    """The clean pass and ``noise_runs`` noisy passes of one member over every row (chunks of ``step``).

    ``out``: (1 + noise_runs, rows, time, target) y_hat; ``heads``: key -> the clean pass's head outputs
    (rows, time, ...), filled here; ``state_in``/``state_out``: key -> (pass, rows, ...).
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
            if r == 0:
                for key in HEAD_KEYS:
                    if key in res:
                        v = res[key][:, k:].numpy()
                        heads.setdefault(key, np.empty((n,) + v.shape[1:], dtype=np.float32))[sl] = v
            if state_out is not None:
                for key in keep:
                    v = res[key].numpy()
                    if key not in state_out:
                        state_out[key] = np.empty((1 + noise_runs, n) + v.shape[1:], dtype=np.float32)
                    state_out[key][r, sl] = v


def predict_block(run, b: Batches, noise_runs: int, noise: float, rng: np.random.Generator,
                   carry: Optional[State] = None, keep_state: bool = False
                   ) -> tuple[list[dict], Optional[np.ndarray], Optional[State]]:
    """Each member's head outputs (normalised; key -> (rows, time, ...)), the noisy runs (member, runs, rows,
    time, target; None without runs) in physical units over the scored days of ``b``, and the state after
    its last day.

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
    outs: list[dict] = [{} for _ in members]
    for i, model in enumerate(members):
        model.eval()
        step = getattr(model, "predict_chunk_sites", b.chunk)
        s_in = {key: carry[key][i] for key in keys} if carry is not None else None
        s_out = {} if keep_state and keys else None
        _passes(model, inputs, b, k, step, noise_runs, np.float32(noise), rng, s_in, keys, z[i], s_out, outs[i])
        if s_out is not None:
            for key in keys:
                new.setdefault(key, np.empty((len(members),) + s_out[key].shape, dtype=np.float32))[i] = s_out[key]
    noisy = None
    if noise_runs:
        noisy = np.stack([np.stack([run.adapter.to_physical(z[i, r], b) for r in range(1, n_pass)])
                          for i in range(len(members))])
    return outs, noisy, (new if keep_state and keys else None)
