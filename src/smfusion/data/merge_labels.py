"""Merge ISMN in-situ readings into the published fusion shards as the label ``sm_0_5``.

Follows the published ``combine_ismn_data.py`` (google-research,
``soil_moisture_retrieval/``). The ISMN download (the CEOP-format zip, or the
folder it extracts to) is opened with TU Wien's ``ismn`` package
(``ISMN_Interface``), as the published script does, so network, station and
sensor names are the same. Per example:

1. an example already carrying ``sm_0_5`` or ``sm_5_5`` is kept unchanged
   (counted as a success);
2. ``sensor_id`` is split on ``"__"`` into network, station, sensor type; not
   exactly three parts is a ``value_failure`` (the published script's unpacking
   raises ValueError there); the sensor type is not used;
3. the network must be an ISMN network name, else ``lookup_failure``;
4. the station is the *first* station of that network (ISMN's order) for which
   every ``"_"``-separated part of the station part is a substring of the
   station name or of the station name without ``"-"``, else ``lookup_failure``;
5. the sensor is the station's first sensor whose name (``<instrument>_<variable>_
   <depth_from>_<depth_to>``, depths with 6 decimals) contains both ``"0.05"``
   and ``"soil_moisture"``, else ``lookup_failure``;
6. its readings between ``timestamp - 3 min`` and ``timestamp + 3 min``
   (``timestamp``: float32 ms; each bound cut to whole seconds; the upper one
   covers that whole second, both inclusive -- pandas' string slicing): none is a
   ``lookup_failure``, more than one a ``value_failure``, exactly one a
   ``success`` whose value becomes ``sm_0_5`` (no flag or range check, as published).

Failed examples are left out of the output. Each input shard gives
``<out>/<name up to its first ".">.tfrecord.gz`` (gzip), the label appended to
the example's original bytes. Shards are processed in parallel (``num_workers``
processes, each with its own ``ISMN_Interface``). The folder ``out`` is written
as a whole (temp + rename): an existing one is replaced only with ``overwrite``,
only if smfusion wrote it, and never when it is or holds an input.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import tempfile
import warnings
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from smfusion.errors import DataError
from smfusion.io.atomic import atomic_path
from smfusion.io.ownership import check_output
from smfusion.io.fusion_schema import LABEL, LABEL_FALLBACK, field_values
from smfusion.io.tfrecord import append_features, decode_record, iter_records, list_shards, write_records

log = logging.getLogger(__name__)
WINDOW_MS = 3 * 60 * 1000


@dataclass
class MergeCounts:
    success: int = 0
    lookup_failure: int = 0
    value_failure: int = 0

    def __add__(self, other: "MergeCounts") -> "MergeCounts":
        return MergeCounts(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))

    def __str__(self) -> str:
        return f"success={self.success} lookup_failure={self.lookup_failure} value_failure={self.value_failure}"


def window_ms(t_ms: int) -> tuple[int, int]:
    """Inclusive [lo, hi] (ms) of the readings matched to an example time, as the published slice."""
    lo = (t_ms - WINDOW_MS) // 1000 * 1000
    hi = (t_ms + WINDOW_MS) // 1000 * 1000 + 999
    return lo, hi


@contextlib.contextmanager
def _quiet():
    """The ismn package's pandas deprecation warnings are not ours to show."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"ismn(\..*)?$")
        yield


def open_ismn(path: str | Path, meta_dir: str | Path, parallel: bool = False):
    """``ismn.interface.ISMN_Interface`` on an ISMN zip or folder; its metadata goes to ``meta_dir``."""
    from ismn.interface import ISMN_Interface

    path = Path(path)
    if not path.exists():
        raise DataError("ISMN download (zip or folder) not found", path=path)
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text), _quiet():
            iface = ISMN_Interface(str(path), meta_path=str(meta_dir), parallel=parallel)
    except Exception as exc:
        raise DataError(f"not an ISMN download the ismn package can index ({exc.__class__.__name__}: {exc})",
                        path=path) from None
    log.debug("ismn: %s", text.getvalue().strip())
    if not list(iface.networks):
        raise DataError("no ISMN network found (expected <network>/<station>/*.stm inside)", path=path)
    return iface


class IsmnLookup:
    """The published ``get_ismn_sm_5cm`` rule over an ``ISMN_Interface``, with a per-sensor series cache."""

    def __init__(self, iface, cache_size: int = 64):
        self.iface = iface
        self.networks = set(iface.networks)
        self.cache_size = cache_size
        self._stations: dict[tuple[str, str], object] = {}
        self._series: OrderedDict[tuple[str, str], tuple] = OrderedDict()

    def _station(self, network: str, part: str):
        key = (network, part)
        if key not in self._stations:
            net = self.iface[network]
            found = None
            for name in net.stations:
                if all(p in name or p in name.replace("-", "") for p in part.split("_")):
                    found = net[name]
                    break
            self._stations[key] = found
        return self._stations[key]

    def _sensor_series(self, network: str, station) -> Optional[tuple[np.ndarray, np.ndarray]]:
        key = (network, station.name)
        if key in self._series:
            self._series.move_to_end(key)
            return self._series[key]
        series = None
        for name in station.sensors:
            if "0.05" in name and "soil_moisture" in name:
                with _quiet():
                    frame = station[name].read_data()
                t = frame.index.values.astype("datetime64[ms]").astype(np.int64)
                order = np.argsort(t, kind="stable")
                series = (t[order], frame["soil_moisture"].to_numpy(dtype=float)[order])
                break
        self._series[key] = series
        if len(self._series) > self.cache_size:
            self._series.popitem(last=False)
        return series

    def sm_5cm(self, sensor_id: str, timestamp_ms: float) -> float:
        """The reading for one example; LookupError or ValueError as the published function raises them."""
        network, part, _ = sensor_id.split("__")  # ValueError unless exactly three parts, as published
        if network not in self.networks:
            raise LookupError(f"Unable to find sensor network for {sensor_id}")
        station = self._station(network, part)
        if station is None:
            raise LookupError(f"Unable to find in-situ station for sensor {sensor_id}")
        series = self._sensor_series(network, station)
        if series is None:
            raise LookupError(f"Unable to find soil moisture timeseries at 5cm depth for sensor {sensor_id}")
        t, values = series
        lo, hi = window_ms(int(timestamp_ms))
        a, b = np.searchsorted(t, lo, side="left"), np.searchsorted(t, hi, side="right")
        if b <= a:
            raise LookupError(f"Unable to find SM reading {int(timestamp_ms)} for sensor {sensor_id}")
        if b - a > 1:
            raise ValueError(f"Multiple soil moisture readings around {int(timestamp_ms)} for sensor {sensor_id}")
        return float(values[a])


def output_name(shard: Path) -> str:
    return shard.name.split(".")[0] + ".tfrecord.gz"


def merge_shard(shard: str | Path, out_dir: str | Path, lookup: IsmnLookup) -> MergeCounts:
    """Label one shard into ``out_dir``; returns its counts."""
    shard, counts, kept = Path(shard), MergeCounts(), []
    for i, raw in enumerate(iter_records(shard)):
        ex = decode_record(raw, shard, i, required=("sensor_id", "timestamp"), keys=(LABEL, LABEL_FALLBACK))
        if LABEL in ex or LABEL_FALLBACK in ex:
            kept.append(raw)
            counts.success += 1
            continue
        sensor_id = field_values(ex, "sensor_id", 0, shard, i)[0].decode("utf-8", "replace")
        t_ms = float(field_values(ex, "timestamp", 0, shard, i)[0])
        try:
            value = lookup.sm_5cm(sensor_id, t_ms)
        except LookupError as exc:
            log.debug("%s record %d: %s", shard.name, i, exc)
            counts.lookup_failure += 1
            continue
        except ValueError as exc:
            log.debug("%s record %d: %s", shard.name, i, exc)
            counts.value_failure += 1
            continue
        kept.append(append_features(raw, {LABEL: np.float32([value])}))
        counts.success += 1
    write_records(Path(out_dir) / output_name(shard), kept, compress=True)
    return counts


_WORKER: dict = {}


def _init_worker(ismn: str, meta_dir: str) -> None:
    _WORKER["lookup"] = IsmnLookup(open_ismn(ismn, meta_dir))


def _merge_in_worker(shard: str, out_dir: str) -> MergeCounts:
    return merge_shard(shard, out_dir, _WORKER["lookup"])


def _check_outputs(shards: list[Path], examples, out: Path) -> None:
    src = {p.resolve().parent for p in shards} | ({Path(examples).resolve()} if Path(examples).is_dir() else set())
    if out.resolve() in src:
        raise DataError("--out must differ from the folder of the input shards (inputs are not overwritten)",
                        path=out)
    names = [output_name(p) for p in shards]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"two input shards would write the same output {dup[0]}", path=examples)


def merge_labels(
    examples: str | Path, ismn: str | Path, out: str | Path, num_workers: int = 1,
    meta_dir: str | Path | None = None, progress: bool = True, overwrite: bool = False,
) -> MergeCounts:
    """Label the shards ``examples`` (file, folder or glob) from an ISMN zip/folder into ``out``; total counts.

    ``meta_dir``: where the ``ismn`` package keeps its metadata index (reuse it
    for a large download); default a temporary folder removed afterwards.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    shards = list_shards(examples)
    _check_outputs(shards, examples, out)
    inputs = [p for p in (examples, ismn, meta_dir) if p is not None and "*" not in str(p)]
    check_output(out, overwrite=overwrite, protect=inputs, kind="dir")
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(atomic_path(out, overwrite=overwrite, protect=inputs))  # the temp folder
        out.mkdir()
        if meta_dir is None:
            meta_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="smfusion-ismn-"))
        iface = open_ismn(ismn, meta_dir, parallel=num_workers > 1)  # builds the index once
        total = MergeCounts()
        bar = stack.enter_context(tqdm(total=len(shards), desc="merge-labels", unit="shard", disable=not progress))
        if num_workers <= 1:
            lookup = IsmnLookup(iface)
            for shard in shards:
                total = total + merge_shard(shard, out, lookup)
                bar.update(1)
            return total
        pool = stack.enter_context(ProcessPoolExecutor(
            max_workers=num_workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(str(ismn), str(meta_dir))))
        for fut in as_completed([pool.submit(_merge_in_worker, str(s), str(out)) for s in shards]):
            total = total + fut.result()
            bar.update(1)
        return total


def counts_dict(c: MergeCounts) -> dict:
    return asdict(c)
