"""A small index of TFRecord shards of the fusion schema: one row per record, written once, reused.

One pass over a shard reads each record's ``sensor_id``, ``timestamp`` and
label fields (the images are skipped undecoded) and keeps, per record: its
number in the shard, the byte offset of its frame in the (uncompressed)
stream, the sensor id, the timestamp (ms) and whether it carries a label
(``sm_0_5``, else ``sm_5_5``, not 0 = no data). A split by sensor, the label
filter and the choice of the records a stream reads need only this table.

Cache: one ``.npz`` per shard (numpy arrays only, read with
``allow_pickle=False``) in ``folder`` (default ``<SMFUSION_CACHE_DIR or the OS
cache>/shard_index``; never the data folder unless asked), named by a hash of
the shard's absolute path. It records the shard's size and mtime (ns) and is
rebuilt when either differs, so a rewritten shard is indexed again. Writes are
atomic (:mod:`smfusion.io.atomic`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from smfusion.errors import DataError
from smfusion.io.atomic import atomic_path
from smfusion.io.fusion_schema import LABEL, LABEL_FALLBACK, label_value
from smfusion.io.tfrecord import decode_record, iter_frames

__all__ = ["ShardIndex", "index_shards", "index_shard", "default_index_dir"]

VERSION = 2
_KEYS = ("sensor_id", "timestamp", "center_lat", "center_long", LABEL, LABEL_FALLBACK)
_COLUMNS = ("shard", "record", "offset", "sensor", "timestamp", "lat", "lon", "labelled")


def default_index_dir() -> Path:
    """``<SMFUSION_CACHE_DIR>/shard_index``, else the OS cache folder of smfusion."""
    env = os.environ.get("SMFUSION_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser().absolute() / "shard_index"
    import pooch

    return Path(pooch.os_cache("smfusion")) / "shard_index"


@dataclass
class ShardIndex:
    """Rows of every record of ``shards``: ``shard`` (position in ``shards``), ``record``, ``offset``,
    ``sensor`` (str), ``timestamp`` (int64 ms), ``lat``, ``lon`` and ``labelled`` (bool)."""

    shards: list[Path]
    shard: np.ndarray
    record: np.ndarray
    offset: np.ndarray
    sensor: np.ndarray
    timestamp: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    labelled: np.ndarray

    def __len__(self) -> int:
        return int(self.shard.shape[0])

    def rows(self, sensors: Optional[np.ndarray] = None, labelled: bool = True) -> np.ndarray:
        """Row numbers of the records of ``sensors`` (None: all), labelled ones only when ``labelled``."""
        keep = self.labelled.copy() if labelled else np.ones(len(self), dtype=bool)
        if sensors is not None:
            keep &= np.isin(self.sensor, np.asarray(sensors).astype(str))
        return np.flatnonzero(keep)

    def of_shard(self, k: int) -> slice:
        """Rows of shard ``k`` (rows are grouped by shard, records in file order)."""
        a, b = np.searchsorted(self.shard, [k, k + 1])
        return slice(int(a), int(b))


def _key(path: Path) -> str:
    return hashlib.sha256(str(path.absolute()).encode("utf-8")).hexdigest()[:24]


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return int(st.st_size), int(st.st_mtime_ns)


def index_shard(path: str | Path) -> dict[str, np.ndarray]:
    """One pass over ``path``: the index columns of its records (see the module docstring)."""
    path = Path(path)
    rec, off, sen, ts, lat, lon, lab = [], [], [], [], [], [], []
    for i, offset, data in iter_frames(path):
        ex = decode_record(data, path, i, required=("sensor_id", "timestamp", "center_lat", "center_long"),
                           keys=_KEYS)
        sid = ex["sensor_id"]
        if not isinstance(sid, list) or not sid:
            raise DataError(f"record {i}: sensor_id is not bytes", path=path, field="sensor_id")
        for name in ("timestamp", "center_lat", "center_long"):
            if isinstance(ex[name], list) or ex[name].size != 1:
                raise DataError(f"record {i}: not one number", path=path, field=name)
        rec.append(i)
        off.append(offset)
        sen.append(sid[0].decode("utf-8", "replace"))
        ts.append(int(ex["timestamp"][0]))
        lat.append(float(ex["center_lat"][0]))
        lon.append(float(ex["center_long"][0]))
        lab.append(bool(np.isfinite(label_value(ex, path, i))))
    return {"record": np.asarray(rec, dtype=np.int64), "offset": np.asarray(off, dtype=np.int64),
            "sensor": np.asarray(sen, dtype=str), "timestamp": np.asarray(ts, dtype=np.int64),
            "lat": np.asarray(lat, dtype=np.float32), "lon": np.asarray(lon, dtype=np.float32),
            "labelled": np.asarray(lab, dtype=bool)}


def _cached(file: Path, path: Path) -> Optional[dict[str, np.ndarray]]:
    """The cached columns of ``path`` when the cache file matches its size and mtime, else None."""
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            meta = z["meta"].tolist()
            if meta != [VERSION, *_stamp(path)] or str(z["path"]) != str(path.absolute()):
                return None
            return {k: z[k] for k in _COLUMNS[1:]}
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: indexed again


def _load_or_build(path: Path, folder: Optional[Path]) -> tuple[dict[str, np.ndarray], bool]:
    if folder is not None:
        file = folder / f"{_key(path)}.npz"
        got = _cached(file, path)
        if got is not None:
            return got, False
    stamp = _stamp(path)
    cols = index_shard(path)
    if folder is not None and _stamp(path) == stamp:  # not rewritten while it was read
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(file, overwrite=True) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, meta=np.asarray([VERSION, *stamp], dtype=np.int64), path=np.asarray(str(path.absolute())),
                     **cols)
    return cols, True


def index_shards(shards: Sequence[str | Path], folder: str | Path | None = "default",
                 progress: bool = False, stats: Optional[dict] = None) -> ShardIndex:
    """The index of ``shards`` (in that order), from the cache in ``folder`` where it is current.

    ``folder``: "default" is :func:`default_index_dir`; None keeps nothing on
    disk. ``stats`` (optional) counts ``built`` and ``reused`` shards.
    """
    from tqdm.auto import tqdm

    paths = [Path(p) for p in shards]
    where = default_index_dir() if folder == "default" else (None if folder is None else Path(folder))
    parts: list[dict[str, np.ndarray]] = []
    for path in tqdm(paths, desc="index shards", unit="shard", disable=not progress):
        cols, built = _load_or_build(path, where)
        parts.append(cols)
        if stats is not None:
            stats["built" if built else "reused"] = stats.get("built" if built else "reused", 0) + 1
    n = [len(p["record"]) for p in parts]
    cat = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in _COLUMNS[1:]}
    return ShardIndex(shards=paths, shard=np.repeat(np.arange(len(paths)), n).astype(np.int64),
                      sensor=cat["sensor"].astype(str), **{k: cat[k] for k in _COLUMNS[1:] if k != "sensor"})


def records_of(index: ShardIndex, rows: Iterable[int]) -> dict[int, np.ndarray]:
    """Shard position -> sorted record numbers of ``rows``."""
    rows = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64)
    out: dict[int, np.ndarray] = {}
    for k in np.unique(index.shard[rows]):
        out[int(k)] = np.sort(index.record[rows[index.shard[rows] == k]])
    return out
