"""Merge ISMN 0-5 cm readings into fusion examples as the label ``sm_0_5``.

For every example: the ISMN sensors (0-5 cm by default) within
``max_distance_m`` of (``center_lat``, ``center_long``), the nearest of them,
and its raw reading nearest to ``timestamp``.

* ``lookup_failure``: no sensor within the distance, or no reading within
  ``tolerance_hours`` of the example time;
* ``value_failure``: the nearest reading has an ISMN flag outside
  ``good_flags`` or a value outside [0, 1] m3/m3 (or NaN);
* ``success``: the example is written with ``sm_0_5`` set.

Each input shard gives one output shard of the same name holding the
successful examples only; the output folder is written as a whole (temp +
rename) and replaces nothing smfusion did not write.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from smfusion.errors import DataError
from smfusion.io.atomic import atomic_path
from smfusion.io.fusion_schema import LABEL
from smfusion.io.ownership import check_output
from smfusion.io.ismn import DEFAULT_DEPTH, find_ismn_files, read_ismn_file
from smfusion.io.tfrecord import list_shards, read_examples, write_examples

log = logging.getLogger(__name__)
EARTH_RADIUS_M = 6_371_000.0


@dataclass
class MergeCounts:
    success: int = 0
    lookup_failure: int = 0
    value_failure: int = 0

    def __str__(self) -> str:
        return f"success={self.success} lookup_failure={self.lookup_failure} value_failure={self.value_failure}"


@dataclass
class _Sensor:
    lat: float
    lon: float
    times_ms: np.ndarray  # sorted
    values: np.ndarray
    flags: np.ndarray


def load_sensors(ismn_dir: str | Path, depth: tuple[float, float] = DEFAULT_DEPTH) -> list[_Sensor]:
    """Raw soil-moisture readings of every ISMN sensor whose depth lies within ``depth`` (m)."""
    sensors = []
    for f in find_ismn_files(ismn_dir):
        try:
            records = read_ismn_file(f)
        except DataError as exc:
            log.warning("skipping ISMN file: %s", exc)
            continue
        for rec in records:
            m = rec.meta
            if m["variable"] != "soil_moisture" or not (depth[0] <= m["depth_from"] and m["depth_to"] <= depth[1]):
                continue
            if rec.data.empty:
                continue
            t = rec.data.index.values.astype("datetime64[ms]").astype(np.int64)
            order = np.argsort(t, kind="stable")
            sensors.append(_Sensor(float(m["latitude"]), float(m["longitude"]), t[order],
                                   rec.data["value"].to_numpy(float)[order],
                                   rec.data["flag"].astype(str).to_numpy()[order]))
    return sensors


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance (m): 2 R asin(sqrt(sin^2(dlat/2) + cos lat1 cos lat2 sin^2(dlon/2)))."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def lookup(sensors: list[_Sensor], lat: float, lon: float, t_ms: int, max_distance_m: float,
           tolerance_ms: int, good_flags: Sequence[str]) -> tuple[str, float]:
    """("success", value) | ("lookup_failure", nan) | ("value_failure", nan) for one example."""
    if not sensors:
        return "lookup_failure", np.nan
    lats = np.array([s.lat for s in sensors])
    lons = np.array([s.lon for s in sensors])
    d = haversine_m(lat, lon, lats, lons)
    near = np.flatnonzero(d <= max_distance_m)
    if near.size == 0:
        return "lookup_failure", np.nan
    near = near[d[near] <= d[near].min() + 1.0]  # co-located sensors: the reading nearest in time wins
    best = None
    for k in near:
        s = sensors[k]
        i = int(np.searchsorted(s.times_ms, t_ms))
        for j in (i - 1, i):
            if 0 <= j < s.times_ms.size:
                gap = abs(int(s.times_ms[j]) - t_ms)
                if gap <= tolerance_ms and (best is None or gap < best[0]):
                    best = (gap, s.values[j], s.flags[j])
    if best is None:
        return "lookup_failure", np.nan
    _, value, flag = best
    if flag not in good_flags or not np.isfinite(value) or not 0.0 <= value <= 1.0:
        return "value_failure", np.nan
    return "success", float(value)


def merge_labels(
    examples: str | Path, ismn: str | Path, out: str | Path, tolerance_hours: float = 12.0,
    max_distance_m: float = 1000.0, depth: tuple[float, float] = DEFAULT_DEPTH,
    good_flags: Sequence[str] = ("G",), progress: bool = True, overwrite: bool = False,
) -> MergeCounts:
    """Label the shards under ``examples`` from ISMN files under ``ismn`` into the folder ``out``; returns the counts.

    ``out`` is written as a whole (temp + rename): an existing one is replaced
    only with ``overwrite``, only if smfusion wrote it, and never when it is or
    holds an input.
    """
    out = Path(out)
    check_output(out, overwrite=overwrite, protect=[examples, ismn], kind="dir")
    shards = list_shards(examples)
    sensors = load_sensors(ismn, depth)
    counts = MergeCounts()
    tol = int(tolerance_hours * 3_600_000)
    bar = tqdm(desc="merge-labels", unit="example", disable=not progress)
    with atomic_path(out, overwrite=overwrite, protect=[examples, ismn]) as tmp:
        tmp.mkdir()
        for shard in shards:
            kept = []
            for ex in read_examples(shard, ("center_lat", "center_long", "timestamp")):
                status, value = lookup(sensors, float(ex["center_lat"][0]), float(ex["center_long"][0]),
                                       int(ex["timestamp"][0]), max_distance_m, tol, good_flags)
                setattr(counts, status, getattr(counts, status) + 1)
                if status == "success":
                    ex[LABEL] = np.float32([value])
                    kept.append(ex)
                bar.update(1)
            write_examples(tmp / shard.name, kept)
    bar.close()
    return counts


def counts_dict(c: MergeCounts) -> dict:
    return asdict(c)
