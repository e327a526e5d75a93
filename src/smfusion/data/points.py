"""Point examples (one per sensor and time) for the fusion model: loading, splitting, scaling.

A :class:`PointSet` holds raw (physical-unit) inputs per source, image
``(N, C, P, P)`` or scalar ``(N, C)``, time deltas in days ``(N, 1)``, the
label, and the two raw values the baselines use (SMAP, model soil moisture).
Two readers fill it: TFRecord shards in the fusion schema
(:func:`points_from_shards`) and the CONUS SMAP + NLDAS sample as a point
table (:func:`conus_points`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from smfusion.config import SplitConfig
from smfusion.data.loading import SiteSplit
from smfusion.data.normalize import Scaler
from smfusion.data.splits import holdout_sites, kfold_split
from smfusion.errors import ConfigError, DataError
from smfusion.io.fusion_schema import LABEL, LANDCOVER_CODES, SOURCES, Source, example_fields, sources_for
from smfusion.io.tfrecord import list_shards, read_examples

DAY_MS = 86_400_000

#: The CONUS point table's sources, named after the fusion groups they stand in for.
CONUS_SOURCES: dict[str, Source] = {
    "smap": Source("smap", ("sm",), kind="scalar"),  # latest earlier SMAP_AM retrieval, dt < 0
    "gldas": Source("gldas", ("api", "APCP_FORA", "TMP_2_FORA", "SPFH_2_FORA", "DSWRF_FORA", "DLWRF_FORA"),
                    kind="scalar", timed=False),  # NLDAS-2 forcing of the day + antecedent precipitation index
    "soilgrids": Source("soilgrids", ("Bulk", "Clay", "Sand", "Silt", "Capa"), kind="scalar", timed=False),
    "modis": Source("modis", ("NDVI",), kind="scalar", timed=False),
}
API_DECAY = 0.9  # antecedent precipitation index: api_t = 0.9 * api_{t-1} + P_t (mm/day)


def source_table(reader: str) -> dict[str, Source]:
    return CONUS_SOURCES if reader == "points" else SOURCES


def channel_names(src: Source) -> list[str]:
    if src.categorical:
        return [f"{src.name}_{src.bands[0]}_{code}" for code in LANDCOVER_CODES]
    return src.fields()


def model_sources(reader: str, groups: Sequence[str]) -> list[dict]:
    """Source specs for ``build_model("fusion", ..., sources=...)``."""
    table = source_table(reader)
    unknown = [g for g in groups if g not in table]
    if unknown:
        raise ConfigError(f"fusion.groups: unknown group(s) {unknown} for reader '{reader}'; known: {list(table)}")
    return [{"name": s.name, "kind": s.kind, "channels": len(channel_names(s)), "timed": s.timed}
            for s in table.values() if s.name in groups]


@dataclass
class PointSet:
    """Raw point examples; see the module docstring."""

    x: dict[str, np.ndarray]
    dt: dict[str, np.ndarray]
    y: np.ndarray
    sensor: np.ndarray
    timestamp: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    smap: np.ndarray  # raw SMAP value (baseline "SMAP alone")
    model_sm: np.ndarray  # raw model soil moisture (baseline "GLDAS alone", rescaled)
    sources: list[Source] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: np.ndarray) -> "PointSet":
        return replace(
            self,
            x={k: v[idx] for k, v in self.x.items()},
            dt={k: v[idx] for k, v in self.dt.items()},
            **{k: getattr(self, k)[idx] for k in ("y", "sensor", "timestamp", "lat", "lon", "smap", "model_sm")},
        )

    def with_groups(self, groups: Sequence[str]) -> "PointSet":
        """The same points with only the sources of ``groups`` (baseline values kept)."""
        missing = [g for g in groups if g not in self.x]
        if missing:
            raise DataError(f"point set was loaded without group(s) {missing}")
        srcs = [s for s in self.sources if s.name in groups]
        return replace(self, x={s.name: self.x[s.name] for s in srcs},
                       dt={k: v for k, v in self.dt.items() if k in groups}, sources=srcs)

    def of_sensors(self, sensors: np.ndarray) -> "PointSet":
        return self.subset(np.flatnonzero(np.isin(self.sensor, sensors)))


# --------------------------------------------------------------------------- TFRecord shards


def _scalar(ex: dict, name: str, dtype=float):
    v = ex[name]
    if isinstance(v, list):
        return v[0].decode() if v else ""
    return dtype(v[0]) if len(v) else np.nan


def points_from_examples(
    examples: Iterable[dict], groups: Sequence[str], patch: int, path: str | Path = "<memory>",
    require_label: bool = True, start_index: int = 0,
) -> PointSet:
    """Examples decoded from fusion-schema shards -> :class:`PointSet` (centre crop ``patch``)."""
    srcs = sources_for(groups)
    imgs: dict[str, list] = {s.name: [] for s in srcs}
    dts: dict[str, list] = {s.name: [] for s in srcs if s.timed}
    cols: dict[str, list] = {k: [] for k in ("y", "sensor", "timestamp", "lat", "lon", "smap", "model_sm")}
    for i, ex in enumerate(examples, start=start_index):
        size = int(_scalar(ex, "size", int))
        if size < patch:
            raise DataError(f"record {i}: patch size {size} smaller than fusion.patch_size {patch}", path=path,
                            field="size")
        o = (size - patch) // 2
        c = size // 2
        valid = np.asarray(ex["mask"]).reshape(size, size)[o : o + patch, o : o + patch] > 0

        def band(name: str) -> np.ndarray:
            a = np.asarray(ex[name], dtype=np.float32)
            if a.size != size * size:
                raise DataError(f"record {i}: {a.size} values, expected size*size = {size * size}", path=path,
                                field=name)
            return a.reshape(size, size)

        for s in srcs:
            if s.kind == "scalar":
                imgs[s.name].append(np.asarray([band(f)[c, c] for f in s.fields()], dtype=np.float32))
            elif s.categorical:
                codes = band(s.fields()[0])[o : o + patch, o : o + patch]
                onehot = (codes[None] == np.asarray(LANDCOVER_CODES, dtype=np.float32)[:, None, None])
                imgs[s.name].append(onehot.astype(np.float32))
            else:
                stack = np.stack([band(f)[o : o + patch, o : o + patch] for f in s.fields()])
                imgs[s.name].append(np.where(valid[None], stack, np.nan).astype(np.float32))
            if s.timed:
                dts[s.name].append([_scalar(ex, f"{s.name}_time_millis_diff", int) / DAY_MS])
        cols["y"].append(_scalar(ex, LABEL) if LABEL in ex else np.nan)
        if require_label and LABEL not in ex:
            raise DataError(f"record {i}: missing field", path=path, field=LABEL)
        cols["sensor"].append(int(_scalar(ex, "sensor_id", int)))
        cols["timestamp"].append(int(_scalar(ex, "timestamp", int)))
        cols["lat"].append(_scalar(ex, "center_lat"))
        cols["lon"].append(_scalar(ex, "center_long"))
        cols["smap"].append(band("smap_sm")[c, c])
        cols["model_sm"].append(band("gldas_soil_moisture")[c, c])
    n = len(cols["y"])
    out_x = {}
    for s in srcs:
        shape = (0, len(channel_names(s))) + ((patch, patch) if s.kind == "image" else ())
        out_x[s.name] = np.stack(imgs[s.name]).astype(np.float32) if n else np.zeros(shape, np.float32)
    return PointSet(
        x=out_x,
        dt={k: np.asarray(v, dtype=np.float32).reshape(-1, 1) for k, v in dts.items()},
        y=np.asarray(cols["y"], dtype=np.float32),
        sensor=np.asarray(cols["sensor"], dtype=np.int64),
        timestamp=np.asarray(cols["timestamp"], dtype=np.int64),
        lat=np.asarray(cols["lat"], dtype=np.float32),
        lon=np.asarray(cols["lon"], dtype=np.float32),
        smap=np.asarray(cols["smap"], dtype=np.float32),
        model_sm=np.asarray(cols["model_sm"], dtype=np.float32),
        sources=srcs,
    )


def required_fields(groups: Sequence[str], label: bool = True) -> list[str]:
    """Fields the loader needs: the groups' fields plus SMAP and GLDAS soil moisture (baselines)."""
    need = example_fields(groups, label=label)
    return need + [f for f in ("smap_sm", "gldas_soil_moisture") if f not in need]


def points_from_shards(
    paths: str | Path | Sequence[str | Path], groups: Sequence[str], patch: int, require_label: bool = True
) -> PointSet:
    """Read every example of the shards into one :class:`PointSet`."""
    files = list_shards(paths) if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    need = required_fields(groups, label=require_label)
    parts = [points_from_examples(read_examples(f, need), groups, patch, f, require_label) for f in files]
    return concat(parts)


def concat(parts: list[PointSet]) -> PointSet:
    if not parts:
        raise DataError("no examples")
    p0 = parts[0]
    return replace(
        p0,
        x={k: np.concatenate([p.x[k] for p in parts]) for k in p0.x},
        dt={k: np.concatenate([p.dt[k] for p in parts]) for k in p0.dt},
        **{k: np.concatenate([getattr(p, k) for p in parts])
           for k in ("y", "sensor", "timestamp", "lat", "lon", "smap", "model_sm")},
    )


# --------------------------------------------------------------------------- CONUS point table


API_WARMUP_DAYS = 60  # the antecedent precipitation index needs this many days before the first point


def conus_points(root: str | Path | None, start: str, end: str, groups: Sequence[str], max_lag_days: int = 7,
                 subset: str = "CONUSv4f1", sites: Sequence[int] | None = None) -> PointSet:
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

    table = CONUS_SOURCES
    forcing = list(table["gldas"].bands[1:])
    statics = list(table["soilgrids"].bands) + list(table["modis"].bands)
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
    dyn = {v: ds[v].transpose("site", "time").values[s_idx, t_idx] for v in forcing}
    sta = {v: ds[v].values[s_idx] for v in statics}
    cols = {"api": api[s_idx, t_idx], **dyn, **sta, "sm": prev_val}
    srcs = [s for s in table.values() if s.name in groups]
    x = {s.name: np.stack([cols[b] for b in s.bands], axis=1).astype(np.float32) for s in srcs}
    dt = {"smap": (-lag[s_idx, t_idx]).astype(np.float32).reshape(-1, 1)} if "smap" in groups else {}
    times = ds["time"].values[t_idx].astype("datetime64[ms]").astype(np.int64)
    return PointSet(
        x=x, dt=dt, y=sm[s_idx, t_idx].astype(np.float32), sensor=ds["site"].values[s_idx].astype(np.int64),
        timestamp=times, lat=ds["lat"].values[s_idx].astype(np.float32), lon=ds["lon"].values[s_idx].astype(np.float32),
        smap=prev_val.astype(np.float32), model_sm=api[s_idx, t_idx].astype(np.float32), sources=srcs,
    )


# --------------------------------------------------------------------------- split, scaling


SensorSplit = SiteSplit  # train / validation / test sensor ids


def split_by_sensor(sensors: np.ndarray, sp: SplitConfig) -> SensorSplit:
    """Train / validation / test sensors; no sensor in two of them.

    ``kfold``: fold ``sp.fold`` of ``sp.k`` is the test set; ``sites``: the
    explicit lists. ``validation_fraction`` of the training sensors validate.
    """
    ids = np.unique(np.asarray(sensors))
    if sp.kind == "kfold":
        train, test = kfold_split(ids, sp.k, sp.fold, sp.seed)
    elif sp.kind == "sites":
        train, test = np.sort(np.asarray(sp.train_sites)), np.sort(np.asarray(sp.test_sites))
        if set(train.tolist()) & set(test.tolist()):
            raise ConfigError("split.train_sites and split.test_sites overlap")
    else:
        raise ConfigError("point examples are split by sensor: use split.kind 'kfold' or 'sites', not 'temporal'")
    train, val = holdout_sites(train, sp.validation_fraction, sp.seed + 1)
    return SensorSplit(train=train, validation=val, test=test)


def _std(v: np.ndarray) -> float:
    """Standard deviation; 1 for a (numerically) constant channel, so new values are not blown up."""
    v = v.astype(np.float64)
    sd = float(v.std())
    return sd if sd > 1e-6 * max(1.0, float(np.abs(v).max())) else 1.0


def fit_scaler(train: PointSet) -> Scaler:
    """Per-channel mean/std over the training points (pixels pooled); one-hot channels stay 0/1."""
    sc = Scaler()
    for s in train.sources:
        arr = train.x[s.name]
        for j, ch in enumerate(channel_names(s)):
            v = arr[:, j].ravel()
            v = v[np.isfinite(v)]
            if s.categorical:
                sc.mean[ch], sc.std[ch] = 0.0, 1.0
                continue
            if v.size == 0:
                raise DataError("all values missing in the training points: cannot normalise", field=ch)
            sc.mean[ch], sc.std[ch] = float(v.mean()), _std(v)
        if s.timed:
            d = train.dt[s.name].ravel()
            sc.mean[f"{s.name}_dt"], sc.std[f"{s.name}_dt"] = float(d.mean()), _std(d)
    y = train.y[np.isfinite(train.y)]
    if y.size == 0:
        raise DataError("no labelled training points", field=LABEL)
    sc.mean[LABEL], sc.std[LABEL] = float(y.mean()), float(y.std()) or 1.0
    return sc


def model_inputs(points: PointSet, scaler: Scaler) -> dict[str, np.ndarray]:
    """Normalised model batch arrays (missing values -> 0, the training mean) and ``y`` (N, 1, 1)."""
    out = {}
    for s in points.sources:
        arr = points.x[s.name].astype(np.float32, copy=True)
        for j, ch in enumerate(channel_names(s)):
            arr[:, j] = (arr[:, j] - scaler.mean[ch]) / scaler.std[ch]
        out[s.name] = np.nan_to_num(arr, nan=0.0)
        if s.timed:
            k = f"{s.name}_dt"
            out[k] = ((points.dt[s.name] - scaler.mean[k]) / scaler.std[k]).astype(np.float32)
    out["y"] = ((points.y - scaler.mean[LABEL]) / scaler.std[LABEL]).astype(np.float32).reshape(-1, 1, 1)
    return out
