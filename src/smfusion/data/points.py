"""Point examples (one per sensor and time) for the fusion model: loading, splitting, scaling.

A :class:`PointSet` holds per input group (:data:`smfusion.io.fusion_schema.GROUPS`)
the model values (stored value / the field's divisor), image ``(N, C, P, P)``
or scalar ``(N, C)``, the group's time delta in days ``(N, 1)``, whether the
group is present in each example, the label, and the raw values the baselines
use (SMAP, GLDAS soil moisture, both / 255). Two readers fill it: TFRecord
shards in the published layout (:func:`points_from_shards`) and the CONUS
SMAP + NLDAS sample as a point table (:func:`conus_points`, REAL data).

Reading rules: the required fields (``sensor_id``, ``timestamp``,
``center_lat``, ``center_long``, and ``size`` when an image group is asked)
missing raise a one-line DataError naming the field and shard; a group with
any field missing in an example is *masked* there (values NaN, ``present``
False; the model zeroes its embedding); fields no group uses are not decoded.
The label is ``sm_0_5``, or ``sm_5_5`` where ``sm_0_5`` is absent or 0 (the
published no-data value); unlabelled examples are skipped when training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from smfusion.config import SplitConfig
from smfusion.data.normalize import Scaler
from smfusion.data.point_set import _VECTORS, PointSet
from smfusion.data.points_conus import API_WARMUP_DAYS, CONUS_GROUPS, conus_points
from smfusion.data.splits import holdout_sites, kfold_split
from smfusion.errors import ConfigError, DataError
from smfusion.io.fusion_schema import (BYTES, FIELDS, GROUPS, IMAGE, LABEL, LABEL_FALLBACK, LANDCOVER_CODES,
                                       REQUIRED, Group, channel_names, decode_codes, field_values, groups_for,
                                       image_fields, label_value)
from smfusion.io.tfrecord import list_shards, read_examples

__all__ = ["PointSet", "SensorSplit", "API_WARMUP_DAYS", "CONUS_GROUPS", "CONUS_SOURCES", "conus_points", "channel_names",
           "model_sources", "points_from_examples", "points_from_shards", "required_fields", "decode_keys",
           "split_by_sensor", "fit_scaler", "model_inputs", "concat", "Moments", "point_moments", "scaler_from"]

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
CONUS_SOURCES = CONUS_GROUPS  # former name


def group_table(reader: str) -> dict[str, Group]:
    return CONUS_GROUPS if reader == "points" else GROUPS


def model_sources(reader: str, groups: Sequence[str]) -> list[dict]:
    """Source specs for ``build_model("fusion", ..., sources=...)``, in schema order."""
    table = group_table(reader)
    unknown = [g for g in groups if g not in table]
    if unknown:
        raise ConfigError(f"fusion.groups: unknown group(s) {unknown} for reader '{reader}'; known: {list(table)}")
    return [{"name": g.name, "kind": g.kind, "channels": len(channel_names(g)), "timed": g.timed}
            for g in table.values() if g.name in groups]


# --------------------------------------------------------------------------- TFRecord shards


def _text(ex: dict, name: str) -> str:
    v = ex[name]
    return v[0].decode("utf-8", "replace") if isinstance(v, list) and v else str(v)


class _Crop:
    """Reads one example's fields as model values: centre crop of images, scalars, codes."""

    def __init__(self, ex: dict, size: int, patch: int, path, index: int):
        self.ex, self.size, self.patch, self.path, self.i = ex, size, patch, path, index
        self.o, self.c = (size - patch) // 2, size // 2
        rows = np.arange(self.o, self.o + patch)
        self.take = (rows[:, None] * size + rows[None, :]).ravel()  # positions of the centre crop
        self.valid = None
        if "mask" in ex and size:
            self.valid = field_values(ex, "mask", size, path, index, self.take).reshape(patch, patch) > 0

    def value(self, name: str) -> np.ndarray | float:
        """Image field -> (P, P) crop; scalar numeric -> float; bytes with codes -> float."""
        fld = FIELDS[name]
        if fld.dtype == BYTES:
            return decode_codes(name, field_values(self.ex, name, self.size, self.path, self.i))
        if fld.shape == IMAGE:  # only the crop is decoded
            return field_values(self.ex, name, self.size, self.path, self.i, self.take).reshape(self.patch, self.patch)
        return float(field_values(self.ex, name, self.size, self.path, self.i)[0])

    def image(self, g: Group) -> np.ndarray:
        planes = []
        for ch in g.channels:
            v = self.value(ch)
            if ch in g.categorical:
                codes = np.asarray(LANDCOVER_CODES, dtype=np.float64)[:, None, None]
                planes.extend((np.broadcast_to(v, (self.patch, self.patch))[None] == codes).astype(np.float32))
                continue
            plane = np.broadcast_to(np.asarray(v, dtype=np.float64), (self.patch, self.patch))
            planes.append(np.where(self.valid, plane, np.nan) if self.valid is not None else plane)
        return np.stack(planes).astype(np.float32)

    def scalars(self, g: Group) -> np.ndarray:
        out = []
        for ch in g.channels:
            v = self.value(ch)
            out.append(v[self.patch // 2, self.patch // 2] if np.ndim(v) == 2 else v)
        return np.asarray(out, dtype=np.float32)


def _empty(g: Group, patch: int) -> np.ndarray:
    shape = (len(channel_names(g)),) + ((patch, patch) if g.kind == "image" else ())
    return np.full(shape, np.nan, dtype=np.float32)


def points_from_examples(
    examples: Iterable[dict], groups: Sequence[str], patch: int, path: str | Path = "<memory>",
    require_label: bool = True, start_index: int = 0, stats: dict | None = None,
) -> PointSet:
    """Decoded examples in the published layout -> :class:`PointSet` (centre crop ``patch``).

    ``require_label``: keep only labelled examples (their number skipped is added
    to ``stats["unlabelled"]``); see the module docstring.
    """
    srcs = groups_for(groups)
    need = required_fields(groups, label=False)
    xs: dict[str, list] = {g.name: [] for g in srcs}
    dts: dict[str, list] = {g.name: [] for g in srcs if g.timed}
    pres: dict[str, list] = {g.name: [] for g in srcs}
    cols: dict[str, list] = {k: [] for k in _VECTORS}
    for i, ex in enumerate(examples, start=start_index):
        for name in need:
            if name not in ex:
                raise DataError(f"record {i}: missing required field", path=path, field=name)
        y = label_value(ex, path, i)
        if require_label and not np.isfinite(y):
            if stats is not None:
                stats["unlabelled"] = stats.get("unlabelled", 0) + 1
            continue
        size = int(field_values(ex, "size", 0, path, i)[0]) if "size" in ex else 0
        if size < patch and any(g.kind == "image" for g in srcs):
            raise DataError(f"record {i}: image size {size} smaller than fusion.patch_size {patch}", path=path,
                            field="size")
        crop = _Crop(ex, size, patch, path, i)
        for g in srcs:
            ok = all(f in ex for f in g.fields())
            pres[g.name].append(ok)
            xs[g.name].append((crop.image(g) if g.kind == "image" else crop.scalars(g)) if ok else _empty(g, patch))
            if g.timed:
                dts[g.name].append(crop.value(g.time_field()) / DAY_MS if ok else np.nan)
        cols["y"].append(y)
        cols["sensor"].append(_text(ex, "sensor_id"))
        cols["timestamp"].append(int(field_values(ex, "timestamp", 0, path, i)[0]))
        cols["lat"].append(float(field_values(ex, "center_lat", 0, path, i)[0]))
        cols["lon"].append(float(field_values(ex, "center_long", 0, path, i)[0]))
        for key, name in (("smap", "smap_sm"), ("model_sm", "gldas_sm")):
            cols[key].append(float(field_values(ex, name, 0, path, i)[0]) if name in ex else np.nan)
    return _assemble(srcs, xs, dts, pres, cols, patch)


def _assemble(srcs, xs, dts, pres, cols, patch) -> PointSet:
    n = len(cols["y"])
    x = {g.name: np.stack(xs[g.name]) if n else _empty(g, patch)[None][:0] for g in srcs}
    return PointSet(
        x=x, dt={k: np.asarray(v, dtype=np.float32).reshape(-1, 1) for k, v in dts.items()},
        y=np.asarray(cols["y"], dtype=np.float32), sensor=np.asarray(cols["sensor"], dtype=str),
        timestamp=np.asarray(cols["timestamp"], dtype=np.int64), lat=np.asarray(cols["lat"], dtype=np.float32),
        lon=np.asarray(cols["lon"], dtype=np.float32), smap=np.asarray(cols["smap"], dtype=np.float32),
        model_sm=np.asarray(cols["model_sm"], dtype=np.float32), sources=srcs,
        present={k: np.asarray(v, dtype=bool) for k, v in pres.items()},
    )


def required_fields(groups: Sequence[str], label: bool = False) -> list[str]:
    """Fields every example must carry: sensor_id, timestamp, position, and size for image groups.

    ``label`` is accepted for compatibility: labels are never required per example
    (unlabelled examples are skipped when training).
    """
    images = any(g.kind == "image" for g in groups_for(groups))
    return list(REQUIRED) + (["size"] if images else [])


LAZY = tuple(image_fields())  # image fields stay packed when decoded: only their crop is read


def decode_keys(groups: Sequence[str]) -> set[str]:
    """Every field the loader reads for ``groups`` (the rest of an example is not decoded)."""
    keys = set(REQUIRED) | {"size", "mask", LABEL, LABEL_FALLBACK, "smap_sm", "gldas_sm"}
    for g in groups_for(groups):
        keys |= set(g.fields())
    return keys


def points_from_shards(
    paths: str | Path | Sequence[str | Path], groups: Sequence[str], patch: int, require_label: bool = True
) -> PointSet:
    """Read every example of the shards into one :class:`PointSet` (labelled ones when ``require_label``)."""
    files = list_shards(paths) if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    need, keys = required_fields(groups), decode_keys(groups)
    stats = {"unlabelled": 0}
    parts = [points_from_examples(read_examples(f, need, keys=keys, lazy=LAZY), groups, patch, f, require_label,
                                  stats=stats)
             for f in files]
    if require_label and sum(len(p) for p in parts) == 0:
        raise DataError(f"no example carries a label ({LABEL} or {LABEL_FALLBACK}); merge ISMN labels first "
                        "(smfusion merge-labels)", path=files[0], field=LABEL)
    if stats["unlabelled"]:
        log.info("skipped %d unlabelled examples in %d shards", stats["unlabelled"], len(files))
    return concat(parts)


def concat(parts: list[PointSet]) -> PointSet:
    if not parts:
        raise DataError("no examples")
    p0 = parts[0]
    return replace(
        p0, x={k: np.concatenate([p.x[k] for p in parts]) for k in p0.x},
        dt={k: np.concatenate([p.dt[k] for p in parts]) for k in p0.dt},
        present={k: np.concatenate([p.is_present(k) for p in parts]) for k in p0.present},
        **{k: np.concatenate([getattr(p, k) for p in parts]) for k in _VECTORS},
    )


# --------------------------------------------------------------------------- split, scaling


@dataclass
class SensorSplit:
    """Train / validation / test sensor ids (str or int); no sensor in two of them."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def to_dict(self) -> dict:
        return {k: np.asarray(getattr(self, k)).tolist() for k in ("train", "validation", "test")}

    @classmethod
    def from_dict(cls, d: dict) -> "SensorSplit":
        return cls(*(np.asarray(d[k]) if d[k] else np.zeros(0, dtype=str) for k in ("train", "validation", "test")))


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


class Moments:
    """Count, mean, sum of squared deviations and largest magnitude per key, merged exactly across chunks
    (Chan et al.'s pairwise update), so statistics of a stream equal those of the whole set up to rounding."""

    def __init__(self):
        self.s: dict[str, list[float]] = {}

    def add(self, key: str, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if v.size == 0:
            self.s.setdefault(key, [0, 0.0, 0.0, 0.0])
            return
        mu = float(v.mean())
        self._merge(key, [v.size, mu, float(((v - mu) ** 2).sum()), float(np.abs(v).max())])

    def _merge(self, key: str, b: list) -> None:
        a = self.s.get(key)
        if a is None or a[0] == 0:
            self.s[key] = list(b)
            return
        if b[0] == 0:
            return
        n = a[0] + b[0]
        d = b[1] - a[1]
        self.s[key] = [n, a[1] + d * b[0] / n, a[2] + b[2] + d * d * a[0] * b[0] / n, max(a[3], b[3])]

    def merge(self, other: "Moments") -> "Moments":
        for k, b in other.s.items():
            self._merge(k, b)
        return self

    def count(self, key: str) -> int:
        return int(self.s.get(key, [0])[0])

    def mean(self, key: str) -> float:
        return float(self.s[key][1])

    def std(self, key: str) -> float:
        """Standard deviation; 1 for a (numerically) constant key, so new values are not blown up."""
        n, _, m2, big = self.s[key]
        sd = float(np.sqrt(m2 / n))
        return sd if sd > 1e-6 * max(1.0, big) else 1.0


def point_moments(points: PointSet) -> Moments:
    """The :class:`Moments` :func:`scaler_from` needs: per channel over the points where present (pixels
    pooled), the time deltas and the label."""
    mo = Moments()
    for s in points.sources:
        arr = points.x[s.name][points.is_present(s.name)]
        for j, ch in enumerate(channel_names(s)):
            mo.add(ch, arr[:, j])
        if s.timed:
            mo.add(f"{s.name}_dt", points.dt[s.name])
    mo.add(LABEL, points.y)
    return mo


def scaler_from(mo: Moments, sources: Sequence[Group]) -> Scaler:
    """Per-channel mean/std of the training points from their moments; one-hot channels stay 0/1."""
    sc = Scaler()
    for s in sources:
        names = channel_names(s)
        onehot = {n for ch in s.categorical for n in names if n.startswith(ch + "_")}
        for ch in names:
            if ch in onehot:
                sc.mean[ch], sc.std[ch] = 0.0, 1.0
            elif mo.count(ch) == 0:
                raise DataError(f"all values missing in the training points (group '{s.name}'): cannot normalise",
                                field=ch)
            else:
                sc.mean[ch], sc.std[ch] = mo.mean(ch), mo.std(ch)
        if s.timed:
            k = f"{s.name}_dt"
            sc.mean[k], sc.std[k] = (mo.mean(k), mo.std(k)) if mo.count(k) else (0.0, 1.0)
    if mo.count(LABEL) == 0:
        raise DataError("no labelled training points", field=LABEL)
    n, _, m2, _ = mo.s[LABEL]
    sc.mean[LABEL], sc.std[LABEL] = mo.mean(LABEL), float(np.sqrt(m2 / n)) or 1.0
    return sc


def fit_scaler(train: PointSet) -> Scaler:
    """Per-channel mean/std over the training points where present (pixels pooled); one-hot stays 0/1."""
    return scaler_from(point_moments(train), train.sources)


def model_inputs(points: PointSet, scaler: Scaler) -> dict[str, np.ndarray]:
    """Normalised model batch arrays: per group values (missing -> 0, the training mean), ``<g>_dt``,
    ``<g>_mask`` (N, 1) 1 where the group is present, and ``y`` (N, 1, 1)."""
    out = {}
    for s in points.sources:
        arr = points.x[s.name].astype(np.float32, copy=True)
        for j, ch in enumerate(channel_names(s)):
            arr[:, j] = (arr[:, j] - scaler.mean[ch]) / scaler.std[ch]
        present = points.is_present(s.name)
        arr[~present] = 0.0
        out[s.name] = np.nan_to_num(arr, nan=0.0)
        out[f"{s.name}_mask"] = present.astype(np.float32).reshape(-1, 1)
        if s.timed:
            k = f"{s.name}_dt"
            out[k] = np.nan_to_num((points.dt[s.name] - scaler.mean[k]) / scaler.std[k], nan=0.0).astype(np.float32)
    out["y"] = ((points.y - scaler.mean[LABEL]) / scaler.std[LABEL]).astype(np.float32).reshape(-1, 1, 1)
    return out

