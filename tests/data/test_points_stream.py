"""Streaming fusion examples: the shard index and its cache, the data order, streamed == in-memory minibatches,
a corrupt shard mid-epoch, and memory that does not grow with the data (issue 28)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from smfusion.config import SplitConfig
from smfusion.data import points as P
from smfusion.data import points_stream as S
from smfusion.data import stream_loader as L
from smfusion.data.stream_loader import StreamSampler, moments_stream
from smfusion.errors import DataError
from smfusion.io.shard_index import index_shards
from smfusion.io.tfrecord import list_shards
from smfusion.synthetic.fusion_shards import write_shard_series

GROUPS = ["s1", "dem", "s2", "smap", "gldas", "aster"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    write_shard_series(root / "s", n_shards=3, sensors_per_shard=4, n_times=6, size=8, seed=3, label_fraction=0.75,
                       compress=False)
    return root


def _cfg(lanes=2, buffer=5, batch=8, seed=1, workers=0, device="cpu"):
    return (SimpleNamespace(lanes=lanes, shuffle_buffer=buffer),
            SimpleNamespace(seed=seed, batch_size=batch, loader_workers=workers, device=device))


def _setup(root):
    ss = S.open_shards(root / "s", GROUPS, 6, index_dir=str(root / "index"))
    split = P.split_by_sensor(ss.sensor, SplitConfig(kind="kfold", k=3, fold=0, seed=0, validation_fraction=0.0))
    return ss, ss.rows(split.train)


def test_index_columns_cache_and_invalidation(shards, tmp_path):
    files = list_shards(shards / "s")
    stats: dict = {}
    ix = index_shards(files, tmp_path / "ix", stats=stats)
    assert stats == {"built": 3} and len(ix) == 3 * 4 * 6
    assert ix.labelled.sum() < len(ix) and ix.labelled.any()  # 75% of sensors labelled
    mem = P.points_from_shards(files, [], 6)  # labelled examples, file order
    np.testing.assert_array_equal(ix.sensor[ix.labelled], mem.sensor)
    np.testing.assert_array_equal(ix.timestamp[ix.labelled], mem.timestamp)
    assert ix.offset[1] > 0 and np.all(np.diff(ix.offset[ix.of_shard(0)]) > 0)
    stats = {}
    index_shards(files, tmp_path / "ix", stats=stats)
    assert stats == {"reused": 3}
    # a shard rewritten (other content, other size/mtime): that shard alone is indexed again
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in files:
        (copy / f.name).write_bytes(f.read_bytes())
    stats = {}
    index_shards(list_shards(copy), tmp_path / "ix", stats=stats)
    assert stats == {"built": 3}  # another path: its own cache entries
    target = list_shards(copy)[1]
    target.write_bytes(files[0].read_bytes())
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    stats = {}
    ix2 = index_shards(list_shards(copy), tmp_path / "ix", stats=stats)
    assert stats == {"built": 1, "reused": 2}
    np.testing.assert_array_equal(ix2.sensor[ix2.of_shard(1)], ix.sensor[ix.of_shard(0)])
    assert not any(p.suffix == ".npz" for p in (shards / "s").iterdir())  # nothing written beside the data


def test_shuffle_reproducible_and_bounded(shards):
    ss, rows = _setup(shards)
    a = S.batch_rows(ss.index, rows, 2, 5, seed=1, epoch=1, n_batches=6, batch_size=8)
    assert a.shape == (6, 8) and np.isin(a, rows).all()
    np.testing.assert_array_equal(a, S.batch_rows(ss.index, rows, 2, 5, seed=1, epoch=1, n_batches=6, batch_size=8))
    assert not np.array_equal(a, S.batch_rows(ss.index, rows, 2, 5, seed=2, epoch=1, n_batches=6, batch_size=8))
    assert not np.array_equal(a, S.batch_rows(ss.index, rows, 2, 5, seed=1, epoch=2, n_batches=6, batch_size=8))
    # a buffer of 1 keeps each lane in shard order: the rows come out of the lane's shards in file order
    plan = S.lane_plan(ss.index, rows, 2, 1, 1)
    flat = S.batch_rows(ss.index, rows, 2, 1, seed=1, epoch=1, n_batches=2, batch_size=8)[:, :4].ravel()
    expect = [r for k in plan[0] for r in np.sort(rows[ss.index.shard[rows] == k])][:8]
    np.testing.assert_array_equal(flat, expect)
    items = list(S.shuffled(iter(range(50)), 7, np.random.default_rng(0)))
    assert sorted(items) == list(range(50)) and items != list(range(50))
    assert max(i - k for k, i in enumerate(items)) <= 7  # an item leaves at most 7 places early


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_in_memory_batches(shards, workers):
    ss, rows = _setup(shards)
    train = ss.load(rows)
    scaler = P.fit_scaler(train)
    streamed = P.scaler_from(moments_stream(ss, rows, workers), train.sources)
    for ch in scaler.mean:
        assert streamed.mean[ch] == pytest.approx(scaler.mean[ch], rel=1e-9, abs=1e-12)
        assert streamed.std[ch] == pytest.approx(scaler.std[ch], rel=1e-9)
    fusion, training = _cfg(workers=workers)
    sampler = StreamSampler(ss, rows, scaler, fusion, training)
    n = 5
    sampler.start_epoch(2, n)
    got = [sampler.sample() for _ in range(n)]
    sampler.close()
    _same_as_in_memory(got, ss, rows, train, scaler, epoch=2)


def _same_as_in_memory(got, ss, rows, train, scaler, epoch):
    """``got`` are the minibatches of ``epoch`` that batch_rows names, read from ``train`` in memory."""
    order = S.batch_rows(ss.index, rows, 2, 5, seed=1, epoch=epoch, n_batches=len(got), batch_size=8)
    pos = {int(r): i for i, r in enumerate(np.sort(rows))}  # ss.load keeps index order
    for b in range(len(got)):
        ref = P.model_inputs(train.subset(np.asarray([pos[int(r)] for r in order[b]])), scaler)
        assert set(got[b]) == set(ref)
        for k in ref:
            np.testing.assert_array_equal(got[b][k].numpy(), ref[k], err_msg=k)


@pytest.mark.parametrize("workers", [0, 2])
def test_one_loader_serves_consecutive_epochs(shards, workers):
    """The loader (and its workers) starts once and runs on from one epoch into the next; each epoch's
    minibatches are still that epoch's order. A skipped epoch or another epoch length starts a new one."""
    ss, rows = _setup(shards)
    train = ss.load(rows)
    scaler = P.fit_scaler(train)
    sampler = StreamSampler(ss, rows, scaler, *_cfg(workers=workers))
    n, loaders, pids = 2, set(), set()
    for epoch in (1, 2, 3):
        sampler.start_epoch(epoch, n)
        loaders.add(id(sampler._it))
        pids.update(p.pid for p in getattr(sampler._it, "_workers", []))
        _same_as_in_memory([sampler.sample() for _ in range(n)], ss, rows, train, scaler, epoch)
    assert len(loaders) == 1 and len(pids) == workers
    got = [sampler.sample() for _ in range(n)]  # no start_epoch: the next epoch goes on
    _same_as_in_memory(got, ss, rows, train, scaler, 4)
    first = sampler._it
    sampler.start_epoch(6, n)  # epoch 5 skipped: a new loader, from epoch 6
    assert sampler._it is not first
    _same_as_in_memory([sampler.sample() for _ in range(n)], ss, rows, train, scaler, 6)
    second = sampler._it
    sampler.start_epoch(7, n + 1)
    assert sampler._it is not second
    _same_as_in_memory([sampler.sample() for _ in range(n + 1)], ss, rows, train, scaler, 7)
    sampler.close()
    assert sampler._it is None


def test_records_left_in_the_shuffle_buffer_are_not_decoded(shards, monkeypatch):
    rng = lambda: np.random.default_rng([1, 2, 3])  # noqa: E731
    used = S.emitted(5, rng(), 12)
    out = list(itertools.islice(S.shuffled(itertools.count(), 5, rng()), 12))
    assert used.size == 17 and np.flatnonzero(used).tolist() == sorted(out)
    ss, rows = _setup(shards)
    train = ss.load(rows)
    scaler = P.fit_scaler(train)
    seen = []
    real = S.decode_record
    monkeypatch.setattr(S, "decode_record", lambda *a, **k: seen.append(a[2]) or real(*a, **k))
    sampler = StreamSampler(ss, rows, scaler, *_cfg())
    sampler.start_epoch(3, 2)
    got = [sampler.sample() for _ in range(2)]
    sampler.close()
    assert len(seen) == 2 * 8  # the examples used, not the 2 x 5 still in the lanes' buffers
    _same_as_in_memory(got, ss, rows, train, scaler, 3)


def test_workers_read_contiguous_lane_blocks():
    assert [L.worker_lanes([0, 1, 2, 3], 2, w) for w in (0, 1)] == [[0, 1], [2, 3]]
    assert [L.worker_lanes([4, 5, 6], 2, w) for w in (0, 1)] == [[4, 5], [6]]  # joined in worker order = lane order


def test_pinned_memory_only_for_a_cuda_device(shards, monkeypatch):
    """No GPU needed: the sampler asks for pinned memory exactly when it trains on a CUDA device that exists."""
    ss, rows = _setup(shards)
    scaler = P.fit_scaler(ss.load(rows))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not L.pins("cpu") and not L.pins("cuda") and not StreamSampler(ss, rows, scaler, *_cfg(device="cuda")).pin
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert L.pins("cuda") and L.pins("cuda:1") and not L.pins("cpu")
    assert StreamSampler(ss, rows, scaler, *_cfg(device="cuda:0")).pin
    assert not StreamSampler(ss, rows, scaler, *_cfg(device="cpu", workers=2)).pin
    asked, real = [], torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, pin_memory=False, **k: asked.append(pin_memory) or real(*a, **k))
    pieces = [{"x": np.arange(6, dtype=np.float32).reshape(3, 2) + i, "m": np.ones((3, 1), np.float32)} for i in (0, 9)]
    for pin in (False, True):
        asked.clear()
        out = L.join_pieces(pieces, pin)
        assert asked == [pin, pin]  # one buffer per array, pinned exactly when asked
        np.testing.assert_array_equal(out["x"].numpy(), np.concatenate([p["x"] for p in pieces]))
    one = L.join_pieces(pieces[:1])
    assert np.shares_memory(one["x"].numpy(), pieces[0]["x"])  # one worker (or none), on the CPU: no copy


def test_unlabelled_records_are_not_decoded(shards, monkeypatch):
    ss, _ = _setup(shards)
    seen = []
    real = S.decode_record
    monkeypatch.setattr(S, "decode_record",
                        lambda data, path, i, *a, **k: seen.append(i) or real(data, path, i, *a, **k))
    ix = ss.index
    k = int(np.argmin([ix.labelled[ix.of_shard(j)].sum() for j in range(len(ix.shards))]))  # has unlabelled ones
    pts = ss.load(ss.rows()[ix.shard[ss.rows()] == k])
    labelled = ix.record[ix.of_shard(k)][ix.labelled[ix.of_shard(k)]]
    assert seen == labelled.tolist() and len(pts) == labelled.size < ix.of_shard(k).stop - ix.of_shard(k).start


def test_corrupt_shard_mid_epoch_names_shard_and_record(shards, tmp_path):
    ss, rows = _setup(shards)
    ix = ss.index
    k = int(ix.shard[rows[-1]])
    bad = tmp_path / ix.shards[k].name
    data = bytearray(ix.shards[k].read_bytes())
    r = int(rows[ix.shard[rows] == k][-1])  # the last wanted record of that shard
    data[int(ix.offset[r]) + 40] ^= 0xFF  # inside its payload: the data CRC fails
    bad.write_bytes(bytes(data))
    ix.shards[k] = bad  # as if the file went bad after it was indexed
    fusion, training = _cfg()
    sampler = StreamSampler(ss, rows, P.fit_scaler(ss.load(rows[ix.shard[rows] != k])), fusion, training)
    sampler.start_epoch(1, 50)
    with pytest.raises(DataError) as exc:
        for _ in range(50):
            sampler.sample()
    msg = str(exc.value)
    assert "\n" not in msg and bad.name in msg and f"record {int(ix.record[r])}" in msg and "CRC" in msg


CHILD = r"""
import json, resource, sys
import numpy as np
from types import SimpleNamespace
from smfusion.config import SplitConfig
from smfusion.data import points as P, points_stream as S
from smfusion.data.stream_loader import StreamSampler
root, mode = sys.argv[1], sys.argv[2]
ss = S.open_shards(root + "/s", ["s1", "s2", "dem", "aster"], 96, index_dir=root + "/index")
rows = ss.rows()
first = ss.load(rows[:4])
scaler = P.fit_scaler(first)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "stream":
    s = StreamSampler(ss, rows, scaler, SimpleNamespace(lanes=2, shuffle_buffer=2), SimpleNamespace(
        seed=0, batch_size=2, loader_workers=0, device="cpu"))
    n = len(rows) // 2
    s.start_epoch(1, n)
    total = sum(float(s.sample()["y"].sum()) for _ in range(n))
else:
    arrays = P.model_inputs(ss.load(rows), scaler)
per = sum(v.nbytes for v in P.model_inputs(first, scaler).values()) / 4
print(json.dumps({"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "base_kb": base,
                  "full_mb": per * len(rows) / 2**20}))
"""


def _peak(root: Path, mode: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), mode], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_bounded_while_a_full_load_is_not(tmp_path):
    """Peak resident memory of a streamed pass stays far below what loading the same examples takes."""
    write_shard_series(tmp_path / "s", n_shards=4, sensors_per_shard=2, n_times=8, size=96, seed=0)
    stream, full = _peak(tmp_path, "stream"), _peak(tmp_path, "load")
    grew_stream = (stream["peak_kb"] - stream["base_kb"]) / 1024
    grew_full = (full["peak_kb"] - full["base_kb"]) / 1024
    assert full["full_mb"] > 100 and grew_full > 0.8 * full["full_mb"]  # the full load holds every example
    assert grew_stream < 0.35 * grew_full, (grew_stream, grew_full)


def test_stream_batches_read_validation_in_chunks(shards):
    ss, rows = _setup(shards)
    scaler = P.fit_scaler(ss.load(rows))
    ref = P.model_inputs(ss.load(rows), scaler)
    b = S.StreamBatches(ss, rows, scaler, chunk=7)
    assert len(b) == rows.size
    np.testing.assert_array_equal(b.y, ref["y"])
    got = list(b.chunks())
    assert len(got) == -(-rows.size // 7) and [sl.start for sl, _ in got] == list(range(0, rows.size, 7))
    pieces = list(b.pieces())
    assert [len(p) for p in pieces] == [len(range(a, min(a + 7, rows.size))) for a in range(0, rows.size, 7)]
    assert pieces[0].noisy and all(p.chunk == 7 for p in pieces)
    for k in ref:
        if k != "y":
            np.testing.assert_array_equal(np.concatenate([c[k] for _, c in got]), ref[k])
            np.testing.assert_array_equal(np.concatenate([p.inputs[k] for p in pieces]), ref[k])
    np.testing.assert_array_equal(np.concatenate([p.y for p in pieces]), b.y)
    with pytest.raises(TypeError, match="hold no model inputs"):  # nothing read into memory behind one's back
        b.inputs
