"""Streamed fusion minibatches through a torch DataLoader: lanes decoded in worker processes, joined in
order in the training process (:mod:`smfusion.data.points_stream` defines the order).

``training.loader_workers`` worker processes each read a contiguous block of
this process's lanes and hand over, per minibatch, one piece: the numpy arrays
of its lanes' rows, stacked in the worker. The pieces travel pickled through
the DataLoader's pipe (``collate_fn`` keeps them numpy): one transfer per worker
and minibatch, not one shared-memory segment per tensor, which on a 2-core
machine cost more than the pickled copy (``benchmarks/fusion_stream.py``). The
training process joins the pieces in lane order with one copy; with a CUDA
device that copy lands in pinned memory (the trainer then copies to the GPU
without blocking), on the CPU it does not pin. Under ``torchrun``
(``WORLD_SIZE`` > 1) process ``r`` reads lanes ``r L/N .. (r+1) L/N - 1``,
i.e. rows ``r B/N .. (r+1) B/N - 1`` of the global minibatch, and hands the
trainer only those rows (``local_rows``).
"""

from __future__ import annotations

import itertools
import os
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from smfusion.data import points_stream as S
from smfusion.data.adapters.base import Sampler
from smfusion.data.normalize import Scaler

__all__ = ["StreamSampler", "moments_stream", "rank_world", "join_pieces", "worker_lanes", "pins"]


def rank_world() -> tuple[int, int]:
    """This process's rank and the number of processes (torchrun's environment; 0, 1 alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


def _keep(piece):
    """The DataLoader's ``collate_fn``: the piece as the worker made it (numpy arrays, pickled through the
    pipe; the default would move every array into a shared-memory tensor of its own)."""
    return piece


def worker_lanes(mine: list[int], workers: int, worker: int) -> list[int]:
    """The contiguous block of ``mine`` that worker ``worker`` of ``workers`` reads (its pieces then join in
    worker order = lane order)."""
    return [int(x) for x in np.array_split(np.asarray(mine, dtype=np.int64), workers)[worker]]


class _Pieces(IterableDataset):
    """(epoch, minibatch, worker, arrays) of this process's lanes, epoch after epoch from ``epoch`` on, each of
    ``n_batches`` minibatches; each worker takes a block of lanes. One iterator serves every epoch, so the
    workers start once and run on into the next epoch while the training process ends this one."""

    def __init__(self, sampler: "StreamSampler", epoch: int, n_batches: int):
        super().__init__()
        self.s, self.epoch, self.n_batches = sampler, epoch, n_batches

    def __iter__(self):
        s = self.s
        info = get_worker_info()
        w = 0 if info is None else info.id
        mine = s.mine if info is None else worker_lanes(s.mine, info.num_workers, w)
        for e in itertools.count(self.epoch):
            for b, arrays in S.stream_pieces(s.shards, s.rows, s.scaler, s.lanes, s.buffer, s.seed, e,
                                             self.n_batches, s.batch_size, mine):
                yield e, b, w, arrays


def join_pieces(pieces: list[dict[str, np.ndarray]], pin: bool = False) -> dict[str, torch.Tensor]:
    """One minibatch from the workers' pieces (in order): one copy per array, into pinned memory when
    ``pin``; a single unpinned piece is wrapped without a copy."""
    out = {}
    for k in pieces[0]:
        parts = [p[k] for p in pieces]
        if len(parts) == 1 and not pin:
            out[k] = torch.from_numpy(parts[0])
            continue
        shape = (sum(a.shape[0] for a in parts),) + parts[0].shape[1:]
        t = torch.empty(shape, dtype=torch.from_numpy(parts[0][:0]).dtype, pin_memory=pin)
        np.concatenate(parts, out=t.numpy())
        out[k] = t
    return out


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
        self.pin = pins(training.device)
        self._it, self._pending, self._at, self._n_iter = None, {}, (0, 0), 0

    def iterations_per_epoch(self, batch_size: int, seq_len: int) -> int:
        return S.iterations(len(self.rows), batch_size)

    def start_epoch(self, epoch: int, n_iter: int) -> None:
        """Epoch ``epoch`` of ``n_iter`` minibatches. Where the last epoch of the same length was read to its
        end, the running iterator (and its workers) goes on into this one; otherwise a new one starts here."""
        if self._it is not None and self._at == (epoch, 0) and self._n_iter == n_iter:
            return
        self.close()
        # its own generator: starting an iterator draws its base seed from it, not from torch's global RNG (the
        # dropout stream), so a run resumed at an epoch, which starts one there, trains as one never stopped
        loader = DataLoader(_Pieces(self, epoch, n_iter), batch_size=None, num_workers=self.workers,
                            collate_fn=_keep, prefetch_factor=2 if self.workers else None,  # two minibatches ahead
                            generator=torch.Generator())
        self._it, self._pending, self._at, self._n_iter = iter(loader), {}, (epoch, 0), n_iter

    def sample(self, rng: Optional[np.random.Generator] = None) -> dict[str, torch.Tensor]:
        """The next minibatch (its order is fixed by the seed and the epoch, not by ``rng``); after an epoch's
        last one, the next epoch's first."""
        if self._it is None:
            self.start_epoch(1, self.iterations_per_epoch(self.batch_size, 0))
        at, n = self._at, max(1, self.workers)
        while len(self._pending.get(at, {})) < n:
            e, b, w, arrays = next(self._it)
            self._pending.setdefault((int(e), int(b)), {})[int(w)] = arrays
        pieces = self._pending.pop(at)
        e, b = at
        self._at = (e, b + 1) if b + 1 < self._n_iter else (e + 1, 0)
        return join_pieces([pieces[w] for w in range(n)], self.pin)

    def close(self) -> None:
        """End the iterator: its workers finish the piece they are on and exit."""
        self._it, self._pending = None, {}


def pins(device: str) -> bool:
    """Whether minibatches for ``device`` go to pinned memory: only for a CUDA device that exists."""
    return str(device).startswith("cuda") and torch.cuda.is_available()


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
