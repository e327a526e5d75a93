"""Fusion training streamed from SYNTHETIC shards: loader workers do not change the result, a killed run resumes
to the same weights (same data order from the checkpoint), and --nproc 2 reproduces one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from smfusion.config import parse_config
from smfusion.data.stream_loader import StreamSampler
from smfusion.synthetic.fusion_shards import write_shard_series
from smfusion.training.run import train


def _cfg(root, workers=0, epochs=2, dropout=0.0):
    return parse_config({
        "name": "s",
        "data": {"reader": "tfrecord", "root": str(root / "s"), "target": ["sm_0_5"]},
        "split": {"kind": "kfold", "k": 4, "fold": 0, "seed": 0, "validation_fraction": 0.25},
        "model": {"name": "fusion", "hidden_size": 16, "dropout": dropout},
        "fusion": {"groups": ["dem", "smap", "gldas"], "patch_size": 4, "cnn_channels": 4, "embed_size": 4,
                   "lanes": 2, "shuffle_buffer": 8, "index_dir": str(root / "index")},
        "training": {"epochs": epochs, "iterations_per_epoch": 3, "batch_size": 8, "lr": 0.003, "loss": "mse",
                     "seed": 0, "threads": 1, "progress": False, "checkpoint_every": 1, "loader_workers": workers},
    })


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("fstream")
    write_shard_series(root / "s", n_shards=4, sensors_per_shard=4, n_times=5, size=4, seed=0)
    return root


def _weights(run):
    return torch.load(run / "member_0" / "model.pt", weights_only=True)


def _same(a, b, **tol):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k].numpy(), a[k].numpy(), err_msg=k, **tol)


class _Killed(Exception):
    pass


def test_workers_and_resume_give_the_same_weights(shards, tmp_path, monkeypatch):
    ref = train(_cfg(shards), tmp_path / "ref")
    _same(_weights(ref), _weights(train(_cfg(shards, workers=2), tmp_path / "w2")), rtol=0, atol=0)
    real, calls = StreamSampler.sample, {"n": 0}

    def dies(self, rng=None):
        calls["n"] += 1
        if calls["n"] == 5:  # second minibatch of epoch 2: the epoch-1 checkpoint exists
            raise _Killed()
        return real(self, rng)

    monkeypatch.setattr(StreamSampler, "sample", dies)
    with pytest.raises(_Killed):
        train(_cfg(shards), tmp_path / "killed")
    monkeypatch.setattr(StreamSampler, "sample", real)
    assert (tmp_path / "killed" / "member_0" / "checkpoints" / "epoch_0001.pt").is_file()
    train(_cfg(shards), tmp_path / "killed")  # resumes at epoch 2
    _same(_weights(ref), _weights(tmp_path / "killed"), rtol=0, atol=0)


@pytest.mark.slow
def test_resume_with_dropout_gives_the_same_weights(shards, tmp_path):
    """The loader serves consecutive epochs with one iterator, a resumed run starts one at its first epoch:
    neither draws from torch's global RNG, so the dropout masks (and the weights) are those of one run."""
    ref = train(_cfg(shards, epochs=3, dropout=0.3), tmp_path / "ref")
    again = tmp_path / "again"
    shutil.copytree(ref, again)
    member = again / "member_0"
    (member / "model.pt").unlink()
    (member / "checkpoints" / "epoch_0003.pt").unlink()  # as if killed during epoch 3
    train(_cfg(shards, epochs=3, dropout=0.3), again)  # resumes at epoch 3
    _same(_weights(ref), _weights(again), rtol=0, atol=0)


def test_two_processes_reproduce_one_streamed(shards, tmp_path):
    cfg = _cfg(shards)
    one = train(cfg, tmp_path / "one")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    res = subprocess.run([sys.executable, "-m", "smfusion.cli", "train", str(path), "--run-dir", str(tmp_path / "two"),
                          "--nproc", "2", "--no-evaluate"], env=dict(os.environ, OMP_NUM_THREADS="1"),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    h1 = [r["train_loss"] for r in json.loads((one / "member_0" / "history.json").read_text())]
    h2 = [r["train_loss"] for r in json.loads((tmp_path / "two" / "member_0" / "history.json").read_text())]
    np.testing.assert_allclose(h2, h1, rtol=1e-4)
    _same(_weights(one), _weights(tmp_path / "two"), rtol=1e-4, atol=1e-5)


def test_streamed_evaluation_in_pieces_scores_the_same(shards, tmp_path, monkeypatch):
    from smfusion.evaluation import points as EP
    from smfusion.evaluation.report import evaluate

    cfg = _cfg(shards, epochs=1)
    cfg.model.head, cfg.training.loss = "gaussian", "gaussian_nll"  # a predictive distribution to calibrate
    run = train(cfg, tmp_path / "run")
    text = evaluate(run).text
    assert "Calibration of the predictive distribution" in text
    whole = json.loads((run / "metrics" / "metrics.json").read_text())
    monkeypatch.setattr(EP, "EVAL_CHUNK", 7)
    assert evaluate(run).text == text  # the report (metrics, and calibration where the head gives one) alike
    pieces = json.loads((run / "metrics" / "metrics.json").read_text())
    for split in ("validation", "test"):
        assert whole[split].keys() == pieces[split].keys()
        for row in whole[split]:
            for k, v in whole[split][row].items():
                assert pieces[split][row][k] == pytest.approx(v, rel=1e-5), (split, row, k)


def test_batch_not_a_multiple_of_the_lanes_is_refused_before_reading(shards, tmp_path):
    from smfusion.errors import ConfigError

    cfg = _cfg(shards)
    cfg.training.batch_size = 9
    cfg.fusion.index_dir = str(tmp_path / "never")
    with pytest.raises(ConfigError, match="multiple of the 2 lanes"):
        train(cfg, tmp_path / "r")
    assert not (tmp_path / "never").exists()


def test_recalibration_fit_streams_and_equals_the_in_memory_fit(tmp_path, monkeypatch):
    """The recalibration is fitted from the validation split read piece by piece (no piece holds more than
    STREAM_CHUNK examples, the split's inputs are never all in memory) and equals the fit on the same
    examples loaded into memory."""
    from smfusion.data.adapters import points as AP
    from smfusion.data.points_stream import ShardSet
    from smfusion.runs import Run

    write_shard_series(tmp_path / "s", n_shards=4, sensors_per_shard=4, n_times=12, size=4, seed=1)
    cfg = _cfg(tmp_path, epochs=1)
    cfg.model.head, cfg.training.loss = "gaussian", "gaussian_nll"  # an aleatoric spread to recalibrate
    run = Run.load(train(cfg, tmp_path / "run"))
    streamed = run.adapter.load()
    assert isinstance(streamed, ShardSet)
    monkeypatch.setattr(AP, "STREAM_CHUNK", 7)
    sizes = []
    real = run.forward

    def forward(b, *a, **k):
        sizes.extend(len(p) for p in b.pieces())
        return real(b, *a, **k)

    monkeypatch.setattr(run, "forward", forward)
    got = run.recalibration("isotonic", refit=True, data=streamed)
    assert "sm_0_5" in got, run.recalibration_note
    got = got["sm_0_5"]
    n_val = int(streamed.rows(run.split.validation).size)
    assert n_val > 20 and max(sizes) == 7 and sum(sizes) == n_val  # read 7 examples at a time
    run.cfg.fusion.stream = False
    in_memory = run.adapter.load()
    assert not isinstance(in_memory, ShardSet)
    ref = run.recalibration("isotonic", refit=True, data=in_memory)["sm_0_5"]
    assert got.info["n_points"] == ref.info["n_points"] == n_val
    assert got.aleatoric_factor == pytest.approx(ref.aleatoric_factor, rel=1e-5)
    assert got.epistemic_factor == ref.epistemic_factor == 1.0  # one member: no epistemic part
    np.testing.assert_allclose(got.pit_x, ref.pit_x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.pit_y, ref.pit_y)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_streamed_training_on_cuda_pins_its_minibatches_and_matches_the_cpu(shards, tmp_path, monkeypatch):
    """On a GPU machine (``pytest -m gpu``): minibatches come in pinned memory with 2 workers, the weights
    equal the CPU run's (TF32 off, no dropout in this config)."""
    pinned, real = [], StreamSampler.sample

    def sample(self, rng=None):
        batch = real(self, rng)
        pinned.append(all(t.is_pinned() for t in batch.values()))
        return batch

    monkeypatch.setattr(StreamSampler, "sample", sample)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        cpu = train(_cfg(shards), tmp_path / "cpu")
        cfg = _cfg(shards, workers=2)
        cfg.training.device = "cuda"
        gpu = train(cfg, tmp_path / "gpu")
    finally:
        torch.set_float32_matmul_precision(precision)
    assert pinned == [False] * 6 + [True] * 6  # 2 epochs x 3 minibatches each run
    load = lambda run: torch.load(run / "member_0" / "model.pt", map_location="cpu", weights_only=True)  # noqa: E731
    _same(load(cpu), load(gpu), rtol=1e-4, atol=1e-5)
