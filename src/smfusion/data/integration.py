"""Data-integration inputs: the most recent retrieval available ``lead`` days before each day (issue 29).

For a target series ``y[s, t]`` (daily steps, NaN where there is no retrieval), a lead ``L >= 1`` and a
maximum age ``A``, day ``d`` of site ``s`` gets:

* ``t*(d) = max {t <= d - L : y[s, t] finite}`` (the last retrieval known ``L`` days before ``d``);
* ``age(d) = d - t*(d)`` days; the input is *present* when ``t*`` exists and ``age <= A``;
* three channels: ``y[s, t*]``, ``age / A`` and 1 when present; 0, 0, 0 when not.

With ``K`` retrievals (config ``retrievals``) the same three channels follow for the retrieval before
``t*``, and so on back to the ``K``-th last one at or before ``d - L`` (each masked beyond ``A`` days): the
model then sees how the retrievals moved, not only where the last one stands.

Day ``d``'s channels read only ``y[s, :d - L + 1]``: no value depends on a retrieval after ``d - L``
(``tests/data/test_integration.py`` scrambles the later ones). Training inputs are thinned
(:func:`thin`): each retrieval is dropped with a per-row probability, so that the model learns the
irregular schedule and longer gaps than the satellite's 2-3 day revisit.
"""

from __future__ import annotations

from typing import Union

import numpy as np

__all__ = ["CHANNELS", "channel_names", "last_retrieval", "last_retrievals", "di_channels", "thin"]

CHANNELS = ("", "_age", "_present")  # per target: value, age / max_age, presence


def channel_names(targets: list[str], retrievals: int = 1) -> list[str]:
    """Input column names of the channels, target by target (``di_<target>``, ``..._age``, ``..._present``;
    ``di_<target>_<k>...`` for the ``k``-th last retrieval, ``k >= 2``)."""
    return [f"di_{v}{'' if k == 1 else f'_{k}'}{c}" for v in targets for k in range(1, retrievals + 1)
            for c in CHANNELS]


def last_retrieval(y: np.ndarray, lead: Union[int, np.ndarray], max_age: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``y`` (rows, time) with NaN gaps: the value, the age in days and the presence (bool) of the last
    retrieval at or before ``d - lead`` for every day ``d`` (module docstring); ``lead`` an int or one per row."""
    return last_retrievals(y, lead, max_age, 1)[0]


def last_retrievals(y: np.ndarray, lead: Union[int, np.ndarray], max_age: int, k: int
                    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`last_retrieval` for the last ``k`` retrievals at or before ``d - lead``, the latest first."""
    n_row, n_time = y.shape
    t = np.arange(n_time)
    idx = np.where(np.isfinite(y), t[None, :], -1)
    last = np.maximum.accumulate(idx, axis=1)  # last retrieval at or before each day
    lead = np.broadcast_to(np.asarray(lead, dtype=np.int64).reshape(-1, 1) if np.ndim(lead) else
                           np.int64(lead), (n_row, 1))
    src = t[None, :] - lead  # the last day whose retrieval may be used
    out = []
    for _ in range(k):
        known = np.where(src >= 0, np.take_along_axis(last, np.clip(src, 0, None), axis=1), -1)
        age = t[None, :] - known
        present = (known >= 0) & (age <= max_age)
        value = np.where(present, np.take_along_axis(y, np.clip(known, 0, None), axis=1), 0.0)
        out.append((value, np.where(present, age, 0), present))
        src = known - 1  # the next one is before this one (none: stays < 0)
    return out


def di_channels(y: np.ndarray, lead: Union[int, np.ndarray], max_age: int, retrievals: int = 1) -> np.ndarray:
    """The input channels (rows, time, 3 * retrievals * n_target) float32 of normalised targets ``y`` (rows,
    time, n_target) at ``lead`` (int or one per row), in :func:`channel_names` order."""
    n = len(CHANNELS)
    out = np.zeros(y.shape[:2] + (n * retrievals * y.shape[2],), dtype=np.float32)
    for i in range(y.shape[2]):
        for k, (value, age, present) in enumerate(last_retrievals(y[:, :, i], lead, max_age, retrievals)):
            j = n * (i * retrievals + k)
            out[:, :, j] = value
            out[:, :, j + 1] = age / np.float32(max_age)
            out[:, :, j + 2] = present
    return out


def thin(y: np.ndarray, rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``y`` (rows, time, ...) with each value dropped (NaN) with probability ``rate[row]``."""
    drop = rng.random(y.shape) < np.asarray(rate, dtype=np.float64).reshape((-1,) + (1,) * (y.ndim - 1))
    return np.where(drop, np.nan, y).astype(y.dtype, copy=False)


def window_channels(arr, site: np.ndarray, t_idx: np.ndarray, di, rng: np.random.Generator) -> np.ndarray:
    """Training channels of the windows ``t_idx`` (batch, seq_len) of rows ``site`` of ``arr``
    (:class:`~smfusion.data.sampling.Arrays`): the retrievals of the ``di.history_days()`` days before each
    window too (NaN before the period), thinned at a rate drawn from ``[0, di.thin]`` per window, at a lead
    drawn from ``di.leads`` per window (``di``: :class:`~smfusion.config.DataIntegrationConfig`)."""
    hist = di.history_days()
    h_idx = t_idx[:, :1] - hist + np.arange(hist + t_idx.shape[1])[None, :]
    y = arr.y[site[:, None], np.clip(h_idx, 0, None)]
    y[h_idx < 0] = np.nan
    lo, hi = di.leads
    lead = rng.integers(lo, hi + 1, size=site.size)
    y = thin(y, rng.uniform(0.0, di.thin, size=site.size), rng) if di.thin > 0 else y
    return di_channels(y, lead, di.max_age, di.retrievals)[:, hist:]
