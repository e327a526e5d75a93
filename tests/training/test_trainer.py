import numpy as np
import pytest
import torch

from smfusion.config import EarlyStopping, TrainingConfig
from smfusion.data.adapters import Batches
from smfusion.data.adapters.sequence import SequenceSampler
from smfusion.data.sampling import Arrays, iterations_per_epoch, sample_batch
from smfusion.models.registry import build_model
from smfusion.training.losses import masked_mse, masked_rmse
from smfusion.training.trainer import Trainer, Validation


def _toy(n_site=12, n_time=80, seed=0):
    rng = np.random.default_rng(seed)
    xd = rng.normal(size=(n_site, n_time, 3)).astype(np.float32)
    xs = rng.normal(size=(n_site, 2)).astype(np.float32)
    y = (0.5 * xd[..., :1] + 0.3 * np.cumsum(xd[..., 1:2], axis=1) / 10 + 0.2 * xs[:, None, :1]).astype(np.float32)
    y[rng.random(y.shape) < 0.5] = np.nan
    return Arrays(xd, xs, y, np.arange(n_site), np.arange(n_time))


def _sampler(arr=None):
    return SequenceSampler(_toy() if arr is None else arr, 8, 20)


def _cfg(**kw):
    base = dict(epochs=4, batch_size=8, seq_len=20, iterations_per_epoch=5, lr=0.01, checkpoint_every=2,
                seed=7, progress=False)
    base.update(kw)
    return TrainingConfig(**base)


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model("lstm", n_dynamic=3, n_static=2, n_target=1, hidden_size=8, dropout=0.2)


def test_losses_against_hand_computation():
    y = torch.tensor([[[1.0], [float("nan")], [3.0]]])
    y_hat = torch.tensor([[[2.0], [100.0], [1.0]]])
    # valid errors: 1 and -2 -> mse = (1 + 4) / 2 = 2.5
    assert masked_mse(y_hat, y).item() == pytest.approx(2.5)
    assert masked_rmse(y_hat, y).item() == pytest.approx(np.sqrt(2.5), rel=1e-6)
    # two targets are summed; a target with no valid value adds 0
    y2 = torch.tensor([[[1.0, float("nan")], [3.0, float("nan")]]])
    p2 = torch.tensor([[[1.0, 5.0], [5.0, 5.0]]])
    assert masked_rmse(p2, y2).item() == pytest.approx(np.sqrt(2.0), rel=1e-6)
    # gradient flows only through valid values
    p = y_hat.clone().requires_grad_(True)
    masked_mse(p, y).backward()
    assert p.grad[0, 1, 0].item() == 0.0 and p.grad[0, 0, 0].item() != 0.0


def test_sampler_shapes_and_rule():
    arr = _toy()
    b = sample_batch(arr, 5, 20, np.random.default_rng(0))
    assert b["x_dynamic"].shape == (5, 20, 3) and b["x_static"].shape == (5, 2) and b["y"].shape == (5, 20, 1)
    # hydroDL's rule for its CONUS example: 412 cells x 366 days, batch 100, rho 30
    assert iterations_per_epoch(412, 366, 100, 30) == 230


def test_training_reduces_loss_and_is_deterministic(tmp_path):
    arr = _sampler()
    r1 = Trainer(_model(), _cfg(epochs=6)).fit(arr)
    assert r1.history[-1]["train_loss"] < r1.history[0]["train_loss"]
    m_a, m_b = _model(), _model()
    Trainer(m_a, _cfg()).fit(arr)
    Trainer(m_b, _cfg()).fit(arr)
    for (ka, va), (kb, vb) in zip(m_a.state_dict().items(), m_b.state_dict().items()):
        assert torch.equal(va, vb), ka


class _Killed(Exception):
    pass


class _Dying(SequenceSampler):
    """Stands for a kill: raises at the 13th minibatch (epoch 3, after the epoch-2 checkpoint)."""

    def __init__(self, *a):
        super().__init__(*a)
        self.calls = 0

    def sample(self, rng):
        self.calls += 1
        if self.calls == 13:
            raise _Killed()
        return super().sample(rng)


def test_resume_after_kill_gives_same_weights(tmp_path):
    arr = _sampler()
    ref = _model()
    Trainer(ref, _cfg(), out_dir=tmp_path / "ref").fit(arr)

    killed = _model()
    with pytest.raises(_Killed):
        Trainer(killed, _cfg(), out_dir=tmp_path / "run").fit(_Dying(_toy(), 8, 20))
    assert (tmp_path / "run/checkpoints/epoch_0002.pt").exists()
    resumed = _model(seed=123)  # fresh weights: everything must come from the checkpoint
    res = Trainer(resumed, _cfg(), out_dir=tmp_path / "run").fit(arr)
    assert res.epochs_run == 4 and len(res.history) == 4
    for (k, va), (_, vb) in zip(ref.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(va, vb), k
    assert (tmp_path / "run/model.pt").exists()


def test_early_stopping_restores_best(tmp_path):
    arr = _sampler()
    v = _toy(seed=1)
    val = Validation(Batches({"x_dynamic": v.x_dynamic, "x_static": v.x_static}, v.y, v.sites, v.time, score_from=10))
    cfg = _cfg(epochs=50, lr=0.3, early_stopping=EarlyStopping(patience=2))
    res = Trainer(_model(), cfg).fit(arr, val)
    assert res.stopped_early and res.epochs_run < 50
    scores = [h["val_rmse"] for h in res.history]
    assert res.best_epoch == int(np.argmin(scores)) + 1


def test_swa_averages_the_last_epochs(tmp_path):
    arr = _sampler()
    snaps = []

    # reference: record weights after each epoch by training epoch by epoch with checkpoints
    ref = _model()
    Trainer(ref, _cfg(epochs=4, checkpoint_every=1), out_dir=tmp_path / "plain").fit(arr)
    for e in (3, 4):
        snaps.append(torch.load(tmp_path / f"plain/checkpoints/epoch_{e:04d}.pt", weights_only=True)["model"])
    swa_model = _model()
    Trainer(swa_model, _cfg(epochs=4, checkpoint_every=1, swa_epochs=2)).fit(arr)
    for k, v in swa_model.state_dict().items():
        torch.testing.assert_close(v, (snaps[0][k] + snaps[1][k]) / 2)
    with pytest.raises(Exception, match="exclude each other"):
        _cfg(swa_epochs=2, early_stopping=EarlyStopping(patience=2))


def test_cosine_schedule_by_hand_and_resume(tmp_path):
    from smfusion.training.trainer import learning_rate

    cfg = _cfg(epochs=4, lr=0.01, lr_schedule="cosine", lr_warmup_epochs=1, lr_min_factor=0.1)
    # n_iter 5: warm-up steps 0..4 rise linearly to lr, then cosine from lr (step 5) to 0.1 lr (step 19)
    assert learning_rate(cfg, 0, 5) == pytest.approx(0.002) and learning_rate(cfg, 4, 5) == pytest.approx(0.01)
    assert learning_rate(cfg, 5, 5) == pytest.approx(0.01)
    assert learning_rate(cfg, 12, 5) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 7 / 14))))
    assert learning_rate(cfg, 19, 5) == pytest.approx(0.001)
    assert learning_rate(_cfg(), 7, 5) == 0.01  # constant
    with pytest.raises(Exception, match="lr_warmup_epochs"):
        _cfg(epochs=2, lr_schedule="cosine", lr_warmup_epochs=2)
    # resuming mid-schedule ends with the weights of an uninterrupted run (the rate is a function of the step)
    cfg = _cfg(lr_schedule="cosine", clip_grad_norm=0.5)
    ref = _model()
    Trainer(ref, cfg, out_dir=tmp_path / "ref").fit(_sampler())
    with pytest.raises(_Killed):
        Trainer(_model(), cfg, out_dir=tmp_path / "run").fit(_Dying(_toy(), 8, 20))
    resumed = _model(seed=5)
    Trainer(resumed, cfg, out_dir=tmp_path / "run").fit(_sampler())
    for (k, va), (_, vb) in zip(ref.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(va, vb), k


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    from smfusion.errors import SmfusionWarning

    ref = _model()
    Trainer(ref, _cfg(epochs=6), out_dir=tmp_path / "ref").fit(_sampler())
    # the same run stopped after epoch 4, with its epoch-4 checkpoint damaged (epoch 2 intact)
    Trainer(_model(), _cfg(epochs=4), out_dir=tmp_path / "run").fit(_sampler())
    ckpt = tmp_path / "run/checkpoints/epoch_0004.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    resumed = _model(seed=5)
    with pytest.warns(SmfusionWarning, match=r"epoch_0004\.pt.*corrupt checkpoint.*renamed to epoch_0004\.pt\.corrupt"):
        res = Trainer(resumed, _cfg(epochs=6), out_dir=tmp_path / "run").fit(_sampler())
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4, 5, 6]
    for (k, va), (_, vb) in zip(ref.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(va, vb), k  # resumed from epoch 2: same weights as an uninterrupted run
    assert (tmp_path / "run/checkpoints/epoch_0004.pt.corrupt").is_file()


def test_unreadable_weights_and_checkpoints_name_the_file(tmp_path):
    from smfusion.errors import DataError
    from smfusion.runs.load import load_weights
    from smfusion.training.trainer import load_checkpoint

    bad = tmp_path / "model.pt"
    for content in (b"", b"garbage", b"PK\x03\x04truncated zip"):
        bad.write_bytes(content)
        with pytest.raises(DataError, match=r"model\.pt: corrupt weights file.*--restart"):
            load_weights(bad)
        with pytest.raises(DataError, match=r"model\.pt: corrupt checkpoint"):
            load_checkpoint(bad)
    torch.save({"w": "not a tensor"}, bad)
    with pytest.raises(DataError, match="corrupt weights file|not a weights file"):
        load_weights(bad)
    torch.save({"epoch": 1}, bad)
    with pytest.raises(DataError, match="checkpoint lacks 'model'"):
        load_checkpoint(bad)
    with pytest.raises(DataError, match="trained weights missing"):
        load_weights(tmp_path / "none.pt")
