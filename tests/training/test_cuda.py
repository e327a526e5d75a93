"""Training on a CUDA device: the same results as on the CPU, exact resume, runs that load on the CPU.

Skipped where torch sees no CUDA device (the CI machine); run on a GPU machine with ``pytest -m gpu``.
TF32 is switched off in the comparisons with the CPU so that they can be tight (float32 on both sides).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from smfusion.config import dump_config
from smfusion.runs import Run
from smfusion.training.run import train
from smfusion.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parents[1] / "products"))
from engine_setup import config, write_domain  # noqa: E402
from test_trainer import _cfg, _Dying, _Killed, _model, _sampler, _toy  # noqa: E402

GPU = "cuda"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


@pytest.fixture
def no_tf32():
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    yield
    torch.backends.cudnn.allow_tf32 = cudnn
    torch.set_float32_matmul_precision(matmul)


def _weights(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def test_trainer_on_cuda_matches_cpu(no_tf32):
    runs = {}
    for device in ("cpu", GPU):
        model = _model()
        model.dropout.p = 0.0  # dropout masks come from each device's own generator: compare without
        res = Trainer(model, _cfg(device=device)).fit(_sampler())
        assert next(model.parameters()).device.type == device
        runs[device] = ([r["train_loss"] for r in res.history], _weights(model))
    np.testing.assert_allclose(runs[GPU][0], runs["cpu"][0], rtol=1e-4)
    for k, w in runs["cpu"][1].items():
        np.testing.assert_allclose(runs[GPU][1][k], w, rtol=1e-4, atol=1e-5, err_msg=k)


def test_resume_on_cuda_after_kill_gives_same_weights(tmp_path):
    """With dropout: the CUDA generator's state travels in the checkpoint (its CPU state too)."""
    ref = _model()
    Trainer(ref, _cfg(device=GPU), out_dir=tmp_path / "ref").fit(_sampler())
    with pytest.raises(_Killed):
        Trainer(_model(), _cfg(device=GPU), out_dir=tmp_path / "run").fit(_Dying(_toy(), 8, 20))
    resumed = _model(seed=123)  # fresh weights: everything must come from the checkpoint
    res = Trainer(resumed, _cfg(device=GPU), out_dir=tmp_path / "run").fit(_sampler())
    assert res.epochs_run == 4
    for (k, va), (_, vb) in zip(ref.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(vb, va, rtol=0, atol=1e-6, msg=k)


def test_cuda_checkpoint_resumes_on_cpu(tmp_path):
    """A run killed on the GPU goes on on the CPU (the device is a runtime-only setting)."""
    with pytest.raises(_Killed):
        Trainer(_model(), _cfg(device=GPU), out_dir=tmp_path / "run").fit(_Dying(_toy(), 8, 20))
    model = _model(seed=123)
    res = Trainer(model, _cfg(device="cpu"), out_dir=tmp_path / "run").fit(_sampler())
    assert res.epochs_run == 4 and len(res.history) == 4
    assert next(model.parameters()).device.type == "cpu"


def test_run_trained_on_cuda_predicts_on_cpu_as_a_cpu_run(tmp_path, no_tf32):
    """The whole pipeline (train -> run directory -> runs.Run on the CPU): same predictions as a CPU run."""
    store, cells = write_domain(tmp_path)
    preds = {}
    for device in ("cpu", GPU):
        cfg = config(store, cells, "lstm")
        cfg.training.device = device
        preds[device] = Run.load(train(cfg, tmp_path / device)).predict("2015-08-01", "2015-10-31")["sm"].values
    assert np.isfinite(preds[GPU]).mean() > 0.9
    np.testing.assert_allclose(preds[GPU], preds["cpu"], rtol=1e-4, atol=1e-4)


def test_more_processes_than_gpus_is_refused(tmp_path):
    store, cells = write_domain(tmp_path)
    cfg = config(store, cells, "lstm")
    cfg.training.device = GPU
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(cfg))
    n = torch.cuda.device_count() + 1
    res = subprocess.run([sys.executable, "-m", "smfusion.cli", "train", str(path), "--run-dir", str(tmp_path / "r"),
                          "--nproc", str(n), "--no-evaluate"], env=dict(os.environ, OMP_NUM_THREADS="1"),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 2
    assert "no CUDA device of its own" in res.stderr + res.stdout
    assert not (tmp_path / "r").exists()


def test_regional_cv_trains_its_folds_on_cuda(tmp_path):
    """``smfusion cv`` with ``training.device: cuda``: every fold trains there, is scored on the CPU."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "evaluation"))
    from test_regional_cv import _cfg as cv_cfg

    from smfusion.config import load_config
    from smfusion.experiments.cv import MODEL, run_cv

    cfg = cv_cfg(training={"device": GPU}, cv={"baselines": [], "temporal_reference": False, "buffer_km": 0.0})
    res = run_cv(cfg, tmp_path / "cv")
    assert load_config(tmp_path / "cv" / "fold_0" / "config.yaml").training.device == GPU
    scored = res.table[(res.table["row"] == MODEL) & (res.table["period"] == "test")]
    assert scored["fold"].nunique() == cfg.cv.k and np.isfinite(scored["R"]).mean() > 0.9
