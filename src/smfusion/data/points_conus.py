"""REAL data point table: the CONUS SMAP + NLDAS-2 sample as fusion points (reader ``points``).

Not the paper's task (the label is a satellite product, not in-situ): it
exercises the scalar-source part of the fusion model on real data. Groups are
named after the fusion groups they stand in for (:data:`CONUS_GROUPS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from smfusion.data.point_set import PointSet
from smfusion.io.fusion_schema import Group

#: The CONUS point table's groups (channel names double as scaler keys).
CONUS_GROUPS: dict[str, Group] = {g.name: g for g in (
    Group("smap", "scalar", ("smap_sm",), "smap"),  # latest earlier SMAP_AM retrieval, dt = -lag (days)
    Group("gldas", "scalar", ("gldas_api", "gldas_APCP_FORA", "gldas_TMP_2_FORA", "gldas_SPFH_2_FORA",
                              "gldas_DSWRF_FORA", "gldas_DLWRF_FORA")),  # NLDAS-2 forcing of the day + API
    Group("soilgrids", "scalar", ("soilgrids_Bulk", "soilgrids_Clay", "soilgrids_Sand", "soilgrids_Silt",
                                  "soilgrids_Capa")),
    Group("modis", "scalar", ("modis_NDVI",)),
)}
API_DECAY = 0.9  # antecedent precipitation index: api_t = 0.9 * api_{t-1} + P_t (mm/day)
API_WARMUP_DAYS = 60  # the index needs this many days before the first point


def _var(channel: str) -> str:
    return channel.split("_", 1)[1]


def conus_points(root: str | Path | None, start: str, end: str, groups: Sequence[str], max_lag_days: int = 7,
                 subset: str = "CONUSv4f1", sites: Sequence[int] | None = None):
    """REAL data: one point per cell-day with a SMAP_AM retrieval and an earlier one within ``max_lag_days``.

    Label: SMAP_AM of the day. Inputs (by group): ``smap`` the latest earlier
    SMAP_AM retrieval and its (negative) lag in days; ``gldas`` NLDAS-2 forcing
    of the day and an antecedent precipitation index (stands in for the land
    model, also the "GLDAS alone" baseline); ``soilgrids`` soil statics;
    ``modis`` the NDVI static. Warm-up for the index: the period's first
    ``API_WARMUP_DAYS`` days give no points. ``sites``: cells to use (None: all).
    """
    from smfusion.config import DataConfig
    from smfusion.data.loading import load_dataset

    table = CONUS_GROUPS
    forcing = [_var(c) for c in table["gldas"].channels[1:]]
    statics = [_var(c) for c in table["soilgrids"].channels + table["modis"].channels]
    cfg = DataConfig(reader="hydrodl", root=None if root is None else str(root), subset=subset, dynamic=forcing,
                     static=statics, target=["SMAP_AM"], sites=None if sites is None else list(sites))
    ds = load_dataset(cfg, start, end)
    sm = ds["SMAP_AM"].transpose("site", "time").values.astype(np.float64)
    n_site, n_time = sm.shape
    valid = np.isfinite(sm)
    idx = np.where(valid, np.arange(n_time)[None, :], -1)
    last = np.maximum.accumulate(idx, axis=1)
    prev = np.full_like(last, -1)
    prev[:, 1:] = last[:, :-1]  # latest retrieval strictly before t
    lag = np.arange(n_time)[None, :] - prev
    rain = np.nan_to_num(ds["APCP_FORA"].transpose("site", "time").values.astype(np.float64)) * 24.0  # mm/day
    api = np.zeros_like(rain)
    for t in range(n_time):
        api[:, t] = (API_DECAY * api[:, t - 1] if t else 0.0) + rain[:, t]
    ok = valid & (prev >= 0) & (lag <= max_lag_days) & (np.arange(n_time)[None, :] >= API_WARMUP_DAYS)
    s_idx, t_idx = np.nonzero(ok)
    prev_val = sm[s_idx, prev[s_idx, t_idx]]
    cols = {"gldas_api": api[s_idx, t_idx], "smap_sm": prev_val}
    cols.update({f"gldas_{v}": ds[v].transpose("site", "time").values[s_idx, t_idx] for v in forcing})
    cols.update({c: ds[_var(c)].values[s_idx] for c in table["soilgrids"].channels + table["modis"].channels})
    srcs = [g for g in table.values() if g.name in groups]
    x = {g.name: np.stack([cols[c] for c in g.channels], axis=1).astype(np.float32) for g in srcs}
    dt = {"smap": (-lag[s_idx, t_idx]).astype(np.float32).reshape(-1, 1)} if "smap" in groups else {}
    times = ds["time"].values[t_idx].astype("datetime64[ms]").astype(np.int64)
    return PointSet(
        x=x, dt=dt, y=sm[s_idx, t_idx].astype(np.float32), sensor=ds["site"].values[s_idx].astype(np.int64),
        timestamp=times, lat=ds["lat"].values[s_idx].astype(np.float32), lon=ds["lon"].values[s_idx].astype(np.float32),
        smap=prev_val.astype(np.float32), model_sm=api[s_idx, t_idx].astype(np.float32), sources=srcs,
    )
