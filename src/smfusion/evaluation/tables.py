"""Per-site metric tables, per-model summaries, and their printed form.

Every printed summary starts with its protocol (target, period, split, number
of sites), so a figure never appears without the conditions it was measured
under.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np
import pandas as pd

from smfusion.evaluation.metrics import compute_all

__all__ = ["Report", "site_table", "summary", "format_protocol", "format_summary", "PROTOCOL_KEYS"]

#: Protocol keys every printed summary must state, with their printed labels.
PROTOCOL_KEYS = {"target": "Target", "period": "Period", "split": "Split", "n_sites": "Sites"}

_NON_METRIC = ("lat", "lon", "n")


@dataclass
class Report:
    """What ``evaluate`` returns: the printed ``text`` (protocol lines above the table), the ``summary`` of
    the model and baseline rows (None for point runs), the ``protocol`` and the per-site ``tables``."""

    text: str
    summary: Optional[pd.DataFrame]
    protocol: dict
    tables: dict[str, pd.DataFrame]


def site_table(obs, sim, sites, lat, lon, metrics=None, clim_obs=None, clim_sim=None) -> pd.DataFrame:
    """One row per site: ``lat``, ``lon``, ``n`` (valid pairs) and a column per metric.

    ``obs``/``sim`` are (site, time) arrays; the metrics are those of
    :func:`smfusion.evaluation.metrics.compute_all` (same arguments).
    """
    obs = np.asarray(obs, dtype=float)
    sim = np.asarray(sim, dtype=float)
    if obs.ndim != 2 or obs.shape != sim.shape:
        raise ValueError(f"obs and sim must be (site, time) arrays of one shape, got {obs.shape} and {sim.shape}")
    sites = np.asarray(sites)
    if not (len(sites) == len(lat) == len(lon) == obs.shape[0]):
        raise ValueError("sites, lat and lon must each have one entry per row of obs")
    res = compute_all(obs, sim, axis=-1, metrics=metrics, clim_obs=clim_obs, clim_sim=clim_sim)
    data = {"lat": np.asarray(lat, dtype=float), "lon": np.asarray(lon, dtype=float)}
    data.update(res)
    return pd.DataFrame(data, index=pd.Index(sites, name="site"))


def summary(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per model: the median over sites of each metric, and ``n_sites``.

    Medians skip sites where that metric is NaN; ``n_sites`` counts the sites
    with at least one finite metric value.
    """
    rows = {}
    for model, table in tables.items():
        metric_cols = [c for c in table.columns if c not in _NON_METRIC]
        m = table[metric_cols].astype(float)
        row = m.median(axis=0, skipna=True).to_dict()
        row["n_sites"] = int(np.isfinite(m.to_numpy()).any(axis=1).sum())
        rows[model] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "model"
    if "n_sites" in out:
        out["n_sites"] = out["n_sites"].astype(int)
    return out


def _fmt_value(v) -> str:
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, str) for x in v):
        return f"{v[0]} .. {v[1]}"
    return str(v)


def format_protocol(protocol: Mapping) -> str:
    """Protocol lines ``Label: value``: target, period, split, sites, then any other keys.

    Raises ``KeyError`` if one of :data:`PROTOCOL_KEYS` is missing. A
    (start, end) pair prints as ``start .. end``.
    """
    missing = [k for k in PROTOCOL_KEYS if k not in protocol]
    if missing:
        raise KeyError(f"protocol lacks {missing}; every summary must state {list(PROTOCOL_KEYS)}")
    lines = [f"{label}: {_fmt_value(protocol[key])}" for key, label in PROTOCOL_KEYS.items()]
    lines += [f"{key}: {_fmt_value(v)}" for key, v in protocol.items() if key not in PROTOCOL_KEYS]
    return "\n".join(lines)


def format_summary(summary: pd.DataFrame, protocol: Mapping, digits: int = 4) -> str:
    """The protocol lines, a blank line, then the model table (floats to ``digits`` decimals)."""
    table = summary.to_string(float_format=lambda v: f"{v:.{digits}f}")
    return format_protocol(protocol) + "\n\n" + table
