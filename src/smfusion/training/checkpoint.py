"""Checkpoints as data: tensors for weights, optimiser and random states, JSON-able values for the rest.

A checkpoint ``member_<i>/checkpoints/epoch_NNNN.pt`` is written by
``torch.save`` and read back only by ``torch.load(..., weights_only=True)``,
whose unpickler builds tensors, dicts, lists, tuples, numbers, strings and
``None`` and refuses everything else: a file that would call any function when
unpickled (a pickle whose ``__reduce__`` runs a command) is refused before that
call, with one line and a hint (docs/security.md). What it holds::

    format       2
    epoch        int
    config_key   str or None (a resume refuses another config's checkpoint)
    model        state_dict (tensors)
    optimizer    the optimiser's state_dict (tensors, numbers, lists)
    rng_numpy    the NumPy generator's state (a JSON-able dict of ints and strings)
    rng_torch    torch's CPU generator state (uint8 tensor)
    rng_cuda     the CUDA generator's state (uint8 tensor) or None
    history      list of {column: number} rows
    best         {"score", "epoch", "bad", "state": state_dict or None}
    swa          {"n", "state": state_dict or None}

Checkpoints of earlier versions (no ``format``) load as long as they pass the
same data-only reader; one that does not is refused (never executed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smfusion.errors import DataError
from smfusion.runs.load import HINT_RESTART, NotData, read_data_only

__all__ = ["CKPT_KEYS", "FORMAT", "NotData", "load_checkpoint", "save_payload"]

FORMAT = 2
CKPT_KEYS = ("epoch", "model", "optimizer", "rng_numpy", "rng_torch", "history", "best")


def plain(value: Any, where: str = "value") -> Any:
    """``value`` as JSON-able Python (NumPy scalars and arrays to numbers and lists); a TypeError naming
    ``where`` for anything else (a checkpoint's metadata must be data)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"checkpoint metadata {where} is a {type(value).__name__}, not JSON-able data")


def _states(value: dict, where: str) -> dict:
    """``{"state": state_dict or None, ...}`` with the rest made JSON-able."""
    out = {k: plain(v, f"{where}.{k}") for k, v in value.items() if k != "state"}
    out["state"] = value.get("state")
    return out


def save_payload(epoch: int, model: dict, optimizer: dict, rng: np.random.Generator, rng_cuda, config_key,
                 history: list, best: dict, swa: dict) -> dict:
    """The checkpoint's content (module docstring); raises TypeError when metadata is not JSON-able."""
    payload = {
        "format": FORMAT,
        "epoch": int(epoch),
        "config_key": config_key,
        "model": model,
        "optimizer": optimizer,
        "rng_numpy": plain(rng.bit_generator.state, "rng_numpy"),
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": rng_cuda,
        "history": plain(history, "history"),
        "best": _states(best, "best"),
        "swa": _states(swa, "swa"),
    }
    meta = {k: v for k, v in payload.items() if k in ("epoch", "config_key", "rng_numpy", "history")}
    json.dumps(meta)  # metadata must survive JSON (numbers, strings, lists, dicts)
    return payload


def _check(payload: Any, path: Path) -> dict:
    if not isinstance(payload, dict):
        raise DataError(f"not a checkpoint (a {type(payload).__name__})", path=path, hint=HINT_RESTART)
    missing = [k for k in CKPT_KEYS if k not in payload]
    if missing:
        raise DataError(f"checkpoint lacks '{missing[0]}'", path=path, hint=HINT_RESTART)
    epoch = payload["epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise DataError("checkpoint epoch is not a whole number >= 0", path=path, hint=HINT_RESTART)
    if not isinstance(payload["rng_torch"], torch.Tensor) or not isinstance(payload["rng_numpy"], dict):
        raise DataError("checkpoint random states are not a tensor and a dict", path=path, hint=HINT_RESTART)
    if not isinstance(payload["history"], list) or not isinstance(payload["best"], dict):
        raise DataError("checkpoint history is not a list, or best not a dict", path=path, hint=HINT_RESTART)
    best = payload["best"]
    if not isinstance(best.get("score"), (int, float)) or math.isnan(float(best["score"])):
        raise DataError("checkpoint best score is not a number", path=path, hint=HINT_RESTART)
    return payload


def load_checkpoint(path: str | Path, device: str = "cpu") -> dict:
    """A checkpoint written by :class:`~smfusion.training.trainer.Trainer`, read as data only.

    :class:`NotData` when the file would build anything but data (never
    executed); :class:`DataError` naming the file when it is truncated,
    garbage or lacks a key.
    """
    path = Path(path)
    payload = read_data_only(path, device, "checkpoint")
    return _check(payload, path)
