"""Forward passes of a trained run over a :class:`~smfusion.data.adapters.Batches`: every member's clean
pass (head outputs) and its noisy passes, with the recurrent state carried in and out.

:func:`predict_passes` is the one forward loop of :class:`smfusion.runs.Run` (``predict_members``,
``predict_distribution``, ``predict_block``); :func:`predict_block` is its form for product blocks, and
:mod:`smfusion.products.blocks` says which past each block needs (warm-up, features' history or a
carried state).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from smfusion.data.adapters import Batches

__all__ = ["predict_passes", "predict_block", "predict_batches", "to_tensors", "HEAD_KEYS"]

HEAD_KEYS = ("y_hat", "log_var", "mix_loc", "mix_log_var", "mix_log_weight")


def to_tensors(batch: dict, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Arrays (or tensors, pinned ones copied without blocking) on ``device``."""
    return {k: (v.to(device, non_blocking=v.is_pinned()) if torch.is_tensor(v)
                else torch.from_numpy(np.ascontiguousarray(v)).to(device)) for k, v in batch.items()}


@torch.no_grad()
def predict_batches(model: torch.nn.Module, batches: Batches, chunk: Optional[int] = None, device: str = "cpu") -> np.ndarray:
    """Model output ``y_hat`` (rows, time, target) for every row of ``batches`` (normalised units)."""
    model.eval()
    out = [model(to_tensors(b, device))["y_hat"].cpu().numpy() for _, b in batches.chunks(chunk)]
    if not out:
        return np.zeros((0,) + batches.y.shape[1:], dtype=np.float32)
    return np.concatenate(out, axis=0)


State = dict  # batch key -> (member, pass, row, ...) array of the carried recurrent state


def _trim(b: Batches) -> tuple[dict[str, np.ndarray], int]:
    """Inputs without the days before ``score_from`` (the carried state already holds them)."""
    k, n_t = b.score_from, b.y.shape[1]
    return {key: (v[:, k:] if v.ndim >= 3 and v.shape[1] == n_t else v) for key, v in b.inputs.items()}, 0


STATE_CHUNK_DAYS = 64  # days per forward call of a model that carries its state (the gates stay in cache)
STATE_CHUNK_ROWS = 64  # rows per forward call of such a model


def _forward(model, feed: dict, keys: tuple[str, ...], n_time: int) -> dict:
    """One forward over ``feed``; with ``keys`` (the state the model carries) ``STATE_CHUNK_DAYS`` days at
    a time, handing its state on (the same result as one call: its recurrence is exact)."""
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
def _passes(model, inputs: dict, b: Batches, k: int, noise_runs: int, noise: np.float32, rng: np.random.Generator,
            state_in: Optional[State], keep: tuple[str, ...], tiles: bool, heads: tuple[str, ...],
            noisy_out: np.ndarray) -> tuple[dict, Optional[State]]:
    """The clean pass and ``noise_runs`` noisy passes of one member over every row, chunk by chunk.

    Returns the clean pass's y_hat and other outputs named in ``heads`` (key -> (rows, scored time, ...))
    and the state after the last day (key -> (pass, rows, ...); None when ``keep`` is empty); writes the
    noisy passes' y_hat into ``noisy_out`` (runs, rows, scored time, target). ``state_in``: key -> (pass,
    rows, ...).
    """
    n = len(b)
    step = getattr(model, "predict_chunk_sites", b.chunk)
    tile = tuple(getattr(model, "carries_state", None) or ()) if tiles else ()
    if tile:
        step = max(step, STATE_CHUNK_ROWS)
    n_time = next((v.shape[1] for v in inputs.values() if v.ndim >= 3), 0)
    clean = {"y_hat": np.empty(noisy_out.shape[1:], dtype=np.float32)}  # (rows, scored time, target)
    state_out: State = {}
    for a in range(0, n, step):
        sl = slice(a, min(a + step, n))
        chunk = {key: v[sl] for key, v in inputs.items()}
        for r in range(1 + noise_runs):
            feed = dict(chunk)
            if r:
                for key in b.noisy:
                    x = chunk[key]
                    feed[key] = x + noise * rng.standard_normal(x.shape, dtype=np.float32)
            for key, v in (state_in or {}).items():
                feed[key] = v[r, sl]
            res = _forward(model, feed, tile, n_time)
            if r:
                noisy_out[r - 1, sl] = res["y_hat"][:, k:].numpy()
            else:
                for key in heads:
                    if key in res:
                        v = res[key][:, k:].numpy()
                        clean.setdefault(key, np.empty((n,) + v.shape[1:], dtype=np.float32))[sl] = v
            for key in keep:
                v = res[key].numpy()
                state_out.setdefault(key, np.empty((1 + noise_runs, n) + v.shape[1:], dtype=np.float32))[r, sl] = v
    return clean, (state_out if keep else None)


def predict_passes(run, b: Batches, noise_runs: int, noise: float, rng: np.random.Generator,
                   carry: Optional[State] = None, keep_state: bool = False, heads: tuple[str, ...] = HEAD_KEYS,
                   tiles: bool = False) -> tuple[list[dict], Optional[np.ndarray], Optional[State]]:
    """Each member's clean y_hat and outputs named in ``heads`` (normalised; key -> (rows, time, ...)), the
    noisy runs (member, runs, rows, time, target; None without runs) in physical units over the scored days
    of ``b``, and the state after its last day.

    Rows go in chunks of the model's ``predict_chunk_sites`` (default ``b.chunk``); within a chunk the
    clean pass runs first, then noisy runs 1..``noise_runs``, each adding Gaussian noise of std ``noise``
    drawn from ``rng`` to every input of ``b.noisy`` (warm-up included). ``tiles``: a model that carries
    its state runs ``STATE_CHUNK_DAYS`` days of at least ``STATE_CHUNK_ROWS`` rows at a time (the same
    values; the noise draws differ from untiled passes only when a chunk grows).
    ``carry`` (from the previous block) replaces the warm-up: the inputs before ``score_from`` are
    dropped and every member and noisy pass starts from its own carried state.
    ``keep_state``: return the state after the last day (models that carry their state; else None).
    """
    members = run.members
    keys = tuple(getattr(members[0], "carries_state", None) or ()) if (carry is not None or keep_state) else ()
    inputs, k = _trim(b) if carry is not None else (b.inputs, b.score_from)
    shape = (len(b), b.y.shape[1] - b.score_from, b.y.shape[2])
    z = np.empty((len(members), noise_runs) + shape, dtype=np.float32)
    new: State = {}
    outs: list[dict] = []
    for i, model in enumerate(members):
        model.eval()
        s_in = {key: carry[key][i] for key in keys} if carry is not None else None
        clean, s_out = _passes(model, inputs, b, k, noise_runs, np.float32(noise), rng, s_in,
                               keys if keep_state else (), tiles, heads, z[i])
        outs.append(clean)
        for key in (s_out or {}):
            new.setdefault(key, np.empty((len(members),) + s_out[key].shape, dtype=np.float32))[i] = s_out[key]
    noisy = None
    if noise_runs:
        noisy = np.stack([np.stack([run.adapter.to_physical(z[i, r], b) for r in range(noise_runs)])
                          for i in range(len(members))])
    return outs, noisy, (new if keep_state and keys else None)


def predict_block(run, b: Batches, noise_runs: int, noise: float, rng: np.random.Generator,
                  carry: Optional[State] = None, keep_state: bool = False
                  ) -> tuple[list[dict], Optional[np.ndarray], Optional[State]]:
    """:func:`predict_passes` over one block of a product: every head output, tiled."""
    return predict_passes(run, b, noise_runs, noise, rng, carry=carry, keep_state=keep_state, tiles=True)
