"""Streaming fusion examples from TFRecord shards into minibatches, without holding the data set.

The order of the examples is a function of the shard index, the seed and the
epoch only (:func:`lane_plan`, :func:`shuffled`): the shards holding wanted
records (labelled, of the split's sensors) are permuted by ``(seed, epoch)``
and dealt round-robin to ``L`` lanes; each lane reads its shards one after
another, again and again, through its own bounded shuffle buffer
(``fusion.shuffle_buffer`` examples, generator ``(seed, epoch, lane)``).
Minibatch ``b`` is the next ``batch_size / L`` examples of every lane, in
lane order. Each example is decoded once, cropped to ``fusion.patch_size``
(the full image is dropped at once) and normalised in the process that reads
it: DataLoader workers (``training.loader_workers``) each take a contiguous
block of the lanes and hand over one stacked piece per minibatch, the training
process joins the pieces in lane order, so the minibatches are the same for
any number of workers; under ``--nproc N`` each process reads the lanes of its
own rows of the global minibatch. Records not wanted are skipped unread (:func:`smfusion.io.tfrecord.iter_frames`).

Memory per reading process: ``lanes it reads x shuffle_buffer`` cropped
examples, one full example being decoded, and the DataLoader's prefetch
(each worker's pieces of two minibatches); nothing grows with the number of
shards or examples.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from smfusion.data import points as P
from smfusion.data.adapters.base import Batches
from smfusion.data.normalize import Scaler
from smfusion.errors import ConfigError, DataError
from smfusion.io.shard_index import ShardIndex, index_shards
from smfusion.io.tfrecord import decode_record, iter_frames, list_shards

__all__ = ["ShardSet", "open_shards", "lane_plan", "effective_lanes", "shuffled", "lane_rows", "stream_pieces",
           "emitted", "batch_rows", "check_batch", "iterations", "StreamBatches", "point_batches"]


@dataclass
class ShardSet:
    """TFRecord shards and their index: what the points adapter loads when it streams."""

    index: ShardIndex
    groups: list[str]
    patch: int
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        """The number of labelled examples."""
        return int(self.index.labelled.sum())

    @property
    def sensor(self) -> np.ndarray:
        """Sensor of every labelled example (what a split by sensor needs)."""
        return self.index.sensor[self.index.labelled]

    @property
    def lat(self) -> np.ndarray:
        return self.index.lat[self.index.labelled]

    @property
    def lon(self) -> np.ndarray:
        return self.index.lon[self.index.labelled]

    def with_groups(self, groups: Sequence[str]) -> "ShardSet":
        """The same shards read for other input groups (the index is shared)."""
        return ShardSet(self.index, list(groups), self.patch, self.stats)

    def rows(self, sensors: Optional[np.ndarray] = None, period=None, labelled: bool = True) -> np.ndarray:
        """Index rows of ``sensors`` (None: all) with a timestamp inside ``period`` (None: any)."""
        rows = self.index.rows(sensors, labelled)
        if period is not None:
            t0 = np.datetime64(period[0], "ms").astype(np.int64)
            t1 = (np.datetime64(period[1], "D") + np.timedelta64(1, "D")).astype("datetime64[ms]").astype(np.int64)
            t = self.index.timestamp[rows]
            rows = rows[(t >= t0) & (t < t1)]
        return rows

    def load(self, rows: np.ndarray, groups: Optional[Sequence[str]] = None, labelled: bool = True) -> P.PointSet:
        """The examples of index ``rows`` in memory (rows in index order; ``groups`` None: the set's)."""
        groups = self.groups if groups is None else list(groups)
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        parts = [P.concat(list(_examples(self.index, int(k), self.index.record[rows[self.index.shard[rows] == k]],
                                         groups, self.patch, labelled)))
                 for k in np.unique(self.index.shard[rows])]
        if not parts:
            return P.points_from_examples([], groups, self.patch)
        return P.concat(parts)

    def of_sensors(self, sensors: np.ndarray, groups: Optional[Sequence[str]] = None) -> P.PointSet:
        """The labelled examples of ``sensors`` in memory (``groups=[]``: baselines and label only, no image
        decoded)."""
        return self.load(self.rows(sensors), groups)


def open_shards(root: str | Path, groups: Sequence[str], patch: int, index_dir: Optional[str] = None,
                progress: bool = False) -> ShardSet:
    """The shards under ``root`` (file, folder or glob) with their index (built once, then reused)."""
    stats: dict = {}
    index = index_shards(list_shards(root), "default" if index_dir is None else index_dir, progress, stats)
    if not index.labelled.any():
        raise DataError(f"no example carries a label ({P.LABEL} or {P.LABEL_FALLBACK}); merge ISMN labels first "
                        "(smfusion merge-labels)", path=root, field=P.LABEL)
    return ShardSet(index, list(groups), patch, stats)


def _examples(index: ShardIndex, k: int, records: np.ndarray, groups, patch: int, labelled: bool = True
              ) -> Iterator[P.PointSet]:
    """One single-example PointSet per wanted record of shard ``k`` (file order); the others are not read."""
    path = index.shards[k]
    need, keys = P.required_fields(groups), P.decode_keys(groups)
    want = set(int(r) for r in records)
    if not want:
        return
    last = max(want)
    for i, _, data in iter_frames(path, want=want):
        ex = decode_record(data, path, i, need, keys, P.LAZY)
        pts = P.points_from_examples([ex], groups, patch, path, require_label=labelled, start_index=i)
        if len(pts) == 0:
            raise DataError(f"record {i}: the shard index says labelled, the record has no label (shard changed "
                            "while in use?)", path=path, field=P.LABEL)
        yield pts
        if i == last:
            return  # the rest of the file is not read


def point_batches(pts: P.PointSet, scaler: Scaler, chunk: int, first: int = 0) -> Batches:
    """Points in memory as prediction :class:`Batches` (rows ``first ..``): normalised inputs and label;
    input noise perturbs every source but the categorical ones (the one-hot land cover stays clean)."""
    arrays = P.model_inputs(pts, scaler)
    y = arrays.pop("y")
    noisy = tuple(s.name for s in pts.sources if not s.categorical)
    return Batches(inputs=arrays, y=y, rows=np.arange(first, first + len(pts)), time=None, noisy=noisy,
                   chunk=chunk, meta={"points": pts})


class StreamBatches(Batches):
    """Rows of the shards read at each pass, ``chunk`` examples at a time; only the normalised label ``y``,
    the baselines' values and the coordinates are held (``meta["points"]``, no image). What every forward
    pass of a split of any size reads: :func:`smfusion.runs.passes.predict_batches` (validation at each
    epoch) through :meth:`chunks`, :meth:`smfusion.runs.Run.forward` (evaluation, the recalibration fit)
    through :meth:`pieces`."""

    def __init__(self, shards: ShardSet, rows: np.ndarray, scaler: Scaler, chunk: int):
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        light = shards.load(rows, groups=[])  # labels, baselines, coordinates: no image decoded
        y = ((light.y - scaler.mean[P.LABEL]) / scaler.std[P.LABEL]).astype(np.float32).reshape(-1, 1, 1)
        super().__init__(inputs={}, y=y, rows=np.arange(rows.size), chunk=chunk, meta={"points": light})
        self.shards, self.index_rows, self.scaler = shards, rows, scaler

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        """Never held: read them piece by piece (:meth:`pieces`, :meth:`chunks`)."""
        raise TypeError("streamed batches hold no model inputs; read them with pieces() or chunks()")

    @inputs.setter
    def inputs(self, value: dict) -> None:
        if value:
            raise TypeError("streamed batches hold no model inputs")

    def pieces(self, size: Optional[int] = None) -> Iterator[Batches]:
        step, n = size or self.chunk, self.index_rows.size
        for a in range(0, max(n, 1), step):
            yield point_batches(self.shards.load(self.index_rows[a:a + step]), self.scaler, self.chunk, a)

    def chunks(self, size: Optional[int] = None):
        for piece in self.pieces(size):
            if len(piece):
                a = int(piece.rows[0])
                yield slice(a, a + len(piece)), piece.inputs


# --------------------------------------------------------------------------- the order


def effective_lanes(lanes: int, n_shards: int) -> int:
    """The largest divisor of ``lanes`` not above ``n_shards`` (so every lane has a shard)."""
    return max(d for d in range(1, lanes + 1) if lanes % d == 0 and d <= max(1, n_shards))


def lane_plan(index: ShardIndex, rows: np.ndarray, lanes: int, seed: int, epoch: int) -> list[list[int]]:
    """Shards of each lane for ``epoch``: the shards holding ``rows``, permuted by ``(seed, epoch)``, dealt
    round-robin to :func:`effective_lanes` lanes."""
    shards = np.unique(index.shard[rows])
    if shards.size == 0:
        raise DataError("no training examples to stream")
    perm = np.random.default_rng([seed, epoch, 1]).permutation(shards)
    n = effective_lanes(lanes, shards.size)
    return [perm[lane::n].tolist() for lane in range(n)]


def lane_rows(index: ShardIndex, rows: np.ndarray, shards: Sequence[int]) -> Iterator[int]:
    """The lane's index rows, shard after shard in lane order (records in file order), again and again."""
    by_shard = {int(k): np.sort(rows[index.shard[rows] == k]) for k in shards}
    while True:
        for k in shards:
            yield from by_shard[int(k)].tolist()


def shuffled(items: Iterator, size: int, rng: np.random.Generator) -> Iterator:
    """A bounded shuffle buffer: hold ``size`` items, emit a random one as each new one comes (then drain)."""
    buf: list = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = int(rng.integers(size))
        out, buf[j] = buf[j], item
        yield out
    while buf:
        j = int(rng.integers(len(buf)))
        buf[j], buf[-1] = buf[-1], buf[j]
        yield buf.pop()


def _lane_rng(seed: int, epoch: int, lane: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, 2, lane])


def _buffer(index: ShardIndex, rows: np.ndarray, shards: Sequence[int], size: int) -> int:
    """The lane's shuffle buffer: ``size``, at most the lane's examples (it fills within one pass)."""
    return max(1, min(size, int(np.isin(index.shard[rows], shards).sum())))


def batch_rows(index: ShardIndex, rows: np.ndarray, lanes: int, buffer: int, seed: int, epoch: int,
               n_batches: int, batch_size: int) -> np.ndarray:
    """The index rows of every minibatch of ``epoch`` (n_batches, batch_size), computed from the index
    alone: what the stream yields, for tests and in-memory comparisons."""
    plan = lane_plan(index, rows, lanes, seed, epoch)
    per = batch_size // len(plan)
    gens = [shuffled(lane_rows(index, rows, sh), _buffer(index, rows, sh, buffer), _lane_rng(seed, epoch, lane))
            for lane, sh in enumerate(plan)]
    return np.asarray([[next(g) for g in gens for _ in range(per)] for _ in range(n_batches)], dtype=np.int64)


def emitted(size: int, rng: np.random.Generator, n_out: int) -> np.ndarray:
    """Which lane positions :func:`shuffled` (buffer ``size``, generator ``rng``) hands out among its first
    ``n_out`` items: a boolean per position read (``size + n_out`` of them). The others are still in the
    buffer when the epoch ends; the order depends on the positions only, never on the items."""
    out = np.zeros(size + n_out, dtype=bool)
    out[list(itertools.islice(shuffled(itertools.count(), size, rng), n_out))] = True
    return out


def _lane_points(shards: ShardSet, rows: np.ndarray, plan: list[int], used: np.ndarray
                 ) -> Iterator[Optional[P.PointSet]]:
    """The lane's examples, decoded and cropped, in :func:`lane_rows` order, for the positions ``used``
    (:func:`emitted`); None in place of the others, which are skipped undecoded (they would stay in the
    shuffle buffer when the epoch ends)."""
    ix, pos = shards.index, 0
    while pos < used.size:
        for k in plan:
            recs = np.sort(ix.record[rows[ix.shard[rows] == k]])  # file order, as lane_rows
            mask = used[pos:pos + recs.size]
            got = _examples(ix, int(k), recs[:mask.size][mask], shards.groups, shards.patch)
            for m in mask:
                yield next(got) if m else None
            pos += mask.size
            if pos >= used.size:
                return


def stream_pieces(shards: ShardSet, rows: np.ndarray, scaler: Scaler, lanes: int, buffer: int, seed: int,
                  epoch: int, n_batches: int, batch_size: int, mine: Sequence[int]
                  ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(minibatch, normalised model arrays) for minibatches ``0..n_batches-1``: the rows of lanes ``mine``
    (lane after lane, in the order given), stacked into one piece per minibatch."""
    plan = lane_plan(shards.index, rows, lanes, seed, epoch)
    per = batch_size // len(plan)
    gens = {}
    for lane in mine:
        size = _buffer(shards.index, rows, plan[lane], buffer)
        used = emitted(size, _lane_rng(seed, epoch, lane), per * n_batches)
        gens[lane] = shuffled(_lane_points(shards, rows, plan[lane], used), size, _lane_rng(seed, epoch, lane))
    for b in range(n_batches):
        pts = P.concat([next(gens[lane]) for lane in mine for _ in range(per)])
        yield b, P.model_inputs(pts, scaler)


def check_batch(batch_size: int, n_lanes: int, world: int = 1) -> None:
    """A minibatch takes the same number of examples from every lane; processes split the lanes."""
    if batch_size % n_lanes:
        raise ConfigError(f"training.batch_size {batch_size} must be a multiple of the {n_lanes} lanes of the stream "
                          "(fusion.lanes, at most the number of shards holding training examples)")
    if n_lanes % world:
        raise ConfigError(f"--nproc {world}: the {n_lanes} lanes of the stream (fusion.lanes) must be a multiple of "
                          "the number of processes")


def iterations(n_rows: int, batch_size: int) -> int:
    return max(1, math.ceil(n_rows / batch_size))

