"""``smfusion train --nproc 2`` (DistributedDataParallel, gloo) reproduces the one-process loss curve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from smfusion.config import dump_config
from smfusion.training.run import train

sys.path.insert(0, str(Path(__file__).parents[1] / "products"))
from engine_setup import config, write_domain  # noqa: E402


def _cfg(tmp_path, batch_size=8):
    store, cells = write_domain(tmp_path)
    cfg = config(store, cells, "lstm", training={"epochs": 3, "batch_size": batch_size, "seq_len": 20,
                                                 "iterations_per_epoch": 4, "progress": False, "threads": 1,
                                                 "lr": 0.01, "clip_grad_norm": 1.0, "ensemble": 2})
    cfg.uncertainty.noise_runs = 0
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(cfg))
    return cfg, path


def _cli(path, run_dir, nproc):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "smfusion.cli", "train", str(path), "--run-dir", str(run_dir),
                           "--nproc", str(nproc), "--no-evaluate"], env=env, capture_output=True, text=True,
                          timeout=600)


def test_two_processes_reproduce_one(tmp_path):
    cfg, path = _cfg(tmp_path)
    one = train(cfg, tmp_path / "one")
    res = _cli(path, tmp_path / "two", 2)
    assert res.returncode == 0, res.stderr[-3000:]
    for m in range(cfg.n_members):
        h1 = json.loads((one / f"member_{m}" / "history.json").read_text())
        h2 = json.loads((tmp_path / "two" / f"member_{m}" / "history.json").read_text())
        l1, l2 = [r["train_loss"] for r in h1], [r["train_loss"] for r in h2]
        assert len(l1) == len(l2) == 3
        np.testing.assert_allclose(l2, l1, rtol=1e-4)
        w1 = torch.load(one / f"member_{m}" / "model.pt", weights_only=True)
        w2 = torch.load(tmp_path / "two" / f"member_{m}" / "model.pt", weights_only=True)
        for k in w1:
            np.testing.assert_allclose(w2[k].numpy(), w1[k].numpy(), rtol=1e-4, atol=1e-5, err_msg=k)


def test_batch_must_split_evenly(tmp_path):
    _, path = _cfg(tmp_path, batch_size=7)
    res = _cli(path, tmp_path / "odd", 2)
    assert res.returncode != 0 and "multiple of the 2 processes" in res.stdout + res.stderr
