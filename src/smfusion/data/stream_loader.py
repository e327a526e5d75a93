"""Streamed fusion minibatches through a torch DataLoader: lanes decoded in worker processes, put back in
order in the training process (:mod:`smfusion.data.points_stream` defines the order).

``training.loader_workers`` worker processes each read a share of this
process's lanes; with a CUDA device the pieces come in pinned memory. Under
``torchrun`` (``WORLD_SIZE`` > 1) process ``r`` reads lanes ``r L/N .. (r+1) L/N - 1``,
i.e. rows ``r B/N .. (r+1) B/N - 1`` of the global minibatch, and hands the
trainer only those rows (``local_rows``).
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from smfusion.data import points_stream as S
from smfusion.data.adapters.base import Sampler
from smfusion.data.normalize import Scaler

__all__ = ["StreamSampler", "moments_stream", "rank_world"]


def rank_world() -> tuple[int, int]:
    """This process's rank and the number of processes (torchrun's environment; 0, 1 alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


class _Pieces(IterableDataset):
    """(minibatch, lane, arrays) of this process's lanes for one epoch; each worker takes some lanes."""

    def __init__(self, sampler: "StreamSampler", epoch: int, n_batches: int):
        super().__init__()
        self.s, self.epoch, self.n_batches = sampler, epoch, n_batches

    def __iter__(self):
        s = self.s
        info = get_worker_info()
        mine = s.mine if info is None else s.mine[info.id::info.num_workers]
        if not mine:
            return iter(())
        return S.stream_pieces(s.shards, s.rows, s.scaler, s.lanes, s.buffer, s.seed, self.epoch, self.n_batches,
                               s.batch_size, mine)


class StreamSampler(Sampler):
    """Training minibatches streamed from the shards (see the module docstring)."""

    def __init__(self, shards: S.ShardSet, rows: np.ndarray, scaler: Scaler, fusion, training):
        self.shards, self.rows, self.scaler = shards, np.asarray(rows, dtype=np.int64), scaler
        self.lanes, self.buffer, self.seed = fusion.lanes, fusion.shuffle_buffer, training.seed
        self.batch_size = training.batch_size
        n_lanes = len(S.lane_plan(shards.index, self.rows, self.lanes, self.seed, 1))
        rank, world = rank_world()
        S.check_batch(self.batch_size, n_lanes, world)
        per = n_lanes // world
        self.mine = list(range(rank * per, (rank + 1) * per))
        self.local_rows = world > 1
        self.workers = min(training.loader_workers, len(self.mine))
        self.pin = training.device.startswith("cuda") and torch.cuda.is_available()
        self._it, self._pending, self._next = None, {}, 0

    def iterations_per_epoch(self, batch_size: int, seq_len: int) -> int:
        return S.iterations(len(self.rows), batch_size)

    def start_epoch(self, epoch: int, n_iter: int) -> None:
        self.close()
        ahead = 2 * -(-len(self.mine) // max(1, self.workers))  # pieces per worker for two minibatches ahead
        loader = DataLoader(_Pieces(self, epoch, n_iter), batch_size=None, num_workers=self.workers,
                            pin_memory=self.pin, prefetch_factor=ahead if self.workers else None)
        self._it, self._pending, self._next = iter(loader), {}, 0

    def sample(self, rng: Optional[np.random.Generator] = None) -> dict[str, torch.Tensor]:
        """The next minibatch of the epoch (its order is fixed by the seed and the epoch, not by ``rng``)."""
        if self._it is None:
            self.start_epoch(1, 1 << 30)
        b = self._next
        while len(self._pending.get(b, {})) < len(self.mine):
            bb, lane, arrays = next(self._it)
            self._pending.setdefault(int(bb), {})[int(lane)] = arrays
        pieces = self._pending.pop(b)
        self._next += 1
        first = pieces[self.mine[0]]
        return {k: torch.cat([torch.as_tensor(pieces[lane][k]) for lane in self.mine]) for k in first}

    def close(self) -> None:
        self._it = None  # the DataLoader's workers end with their iterator


class _MomentPieces(IterableDataset):
    """Per shard (a worker's share), the :class:`~smfusion.data.points.Moments` of its wanted examples."""

    def __init__(self, shards: S.ShardSet, rows: np.ndarray):
        super().__init__()
        self.shards, self.rows = shards, rows

    def __iter__(self):
        ix = self.shards.index
        ks = np.unique(ix.shard[self.rows]).tolist()
        info = get_worker_info()
        if info is not None:
            ks = ks[info.id::info.num_workers]
        for k in ks:
            mo = S.P.Moments()
            for pts in S._examples(ix, k, ix.record[self.rows[ix.shard[self.rows] == k]], self.shards.groups,
                                   self.shards.patch):
                mo.merge(S.P.point_moments(pts))
            yield k, mo


def moments_stream(shards: S.ShardSet, rows: np.ndarray, workers: int = 0, progress: bool = False):
    """The moments of the examples of ``rows``, merged in shard order (one decoding pass, in workers)."""
    from tqdm.auto import tqdm

    rows = np.asarray(rows, dtype=np.int64)
    loader = DataLoader(_MomentPieces(shards, rows), batch_size=None, num_workers=workers, collate_fn=None)
    got = dict(tqdm(loader, desc="scaler (training examples)", unit="shard", disable=not progress,
                    total=int(np.unique(shards.index.shard[rows]).size)))
    total = S.P.Moments()
    for k in sorted(got):
        total.merge(got[k])
    return total
