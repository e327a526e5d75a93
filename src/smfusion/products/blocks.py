"""How each (cell block x time block) of a product gets its past: a carried state, feature history or a warm-up.

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

The prediction with a carried state is :meth:`smfusion.runs.Run.predict_block`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from smfusion.data.water_balance import SPINUP_DAYS

__all__ = ["time_mode", "history_days", "load_from_days", "composite"]


def time_mode(members: list) -> str:
    """``state``, ``per_day`` or ``warmup`` (module docstring), the same for every member."""
    if all(getattr(m, "carries_state", None) for m in members):
        return "state"
    if all(getattr(m, "per_day", False) for m in members):
        return "per_day"
    return "warmup"


def history_days(cfg, lead: Optional[int] = None) -> int:
    """Days before a day that its input features read: max lag k, max antecedent window w - 1, the
    buckets' spin-up (data/water_balance.py), with data integration ``lead + max_age`` (the retrievals;
    ``lead`` None: the config's longest)."""
    f = cfg.features
    lags = [k for ks in f.lags.values() for k in ks]
    means = [w - 1 for ws in f.antecedent.values() for w in ws]
    spin = [SPINUP_DAYS] if f.bucket is not None else []
    di = [cfg.data_integration.history_days(lead)] if getattr(cfg, "data_integration", None) is not None else []
    return max([0, *lags, *means, *spin, *di])


def load_from_days(cfg, mode: str, first: bool, lead: Optional[int] = None) -> int:
    """Days of forcing read before a block: warm-up for the first block (and every block in ``warmup``
    mode), the features' history otherwise (``per_day``: never more than the warm-up; ``lead``: the data
    integration lead of the product)."""
    warm, hist = cfg.periods.warmup_days, history_days(cfg, lead)
    if mode == "warmup" or (mode == "state" and first):
        return warm
    if mode == "per_day":
        return min(warm, hist)
    return hist


def composite(x: np.ndarray, days: int, axis: int = -1) -> np.ndarray:
    """Mean over consecutive blocks of ``days`` along ``axis`` (the last block may be shorter)."""
    if days == 1:
        return x
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    nb = -(-n // days)
    pad = nb * days - n
    if pad:
        x = np.concatenate([x, np.full(x.shape[:-1] + (pad,), np.nan, dtype=x.dtype)], axis=-1)
    xb = x.reshape(x.shape[:-1] + (nb, days))
    with np.errstate(invalid="ignore"):
        cnt = np.isfinite(xb).sum(-1)
        s = np.where(np.isfinite(xb), xb, 0.0).sum(-1)
        out = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan).astype(np.float32)
    return np.moveaxis(out, -1, axis)
