"""Transfer: weights copied, input layer re-mapped by variable name, only unfrozen parts train."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smfusion.config import TrainingConfig
from smfusion.data.sampling import Arrays
from smfusion.errors import ConfigError
from smfusion.models.registry import build_model
from smfusion.data.adapters.sequence import SequenceSampler
from smfusion.training.trainer import Trainer
from smfusion.training.transfer import freeze, transfer_weights

SRC = ["P", "T", "Q", "S1", "S2"]
DST = ["T", "NEW", "P", "S1", "S2"]


def _pair(name):
    torch.manual_seed(0)
    src = build_model(name, n_dynamic=3, n_static=2, n_target=1, hidden_size=6, dropout=0.0, num_layers=2)
    torch.manual_seed(1)
    dst = build_model(name, n_dynamic=3, n_static=2, n_target=1, hidden_size=6, dropout=0.0, num_layers=2)
    return src, dst


@pytest.mark.parametrize("name", ["lstm", "mlp"])
def test_remap_copies_by_variable_name(name):
    src, dst = _pair(name)
    transfer_weights(src, dst, SRC, DST)
    ws, wd = src.input_layer[0].weight, dst.input_layer[0].weight
    for j, v in enumerate(DST):
        if v in SRC:
            torch.testing.assert_close(wd[:, j], ws[:, SRC.index(v)])
        else:
            assert torch.count_nonzero(wd[:, j]) == 0  # new input starts with no influence
    torch.testing.assert_close(dst.input_layer[0].bias, src.input_layer[0].bias)
    s, d = src.state_dict(), dst.state_dict()
    for k in s:
        if not k.startswith("input_layer"):
            torch.testing.assert_close(d[k], s[k])
    # same outputs when the new input (NEW) and the dropped one (Q) are zero, shared ones permuted
    x = torch.randn(4, 7, 3)
    x[..., 2] = 0.0
    xs = torch.randn(4, 2)
    x_dst = torch.stack([x[..., 1], torch.zeros(4, 7), x[..., 0]], -1)
    src.eval(), dst.eval()
    torch.testing.assert_close(src({"x_dynamic": x, "x_static": xs})["y_hat"],
                               dst({"x_dynamic": x_dst, "x_static": xs})["y_hat"])


def test_reinit_and_input_layer_reinit_keep_target_init():
    src, dst = _pair("lstm")
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    transfer_weights(src, dst, SRC, DST, reinit=["head"], input_layer="reinit")
    after = dst.state_dict()
    torch.testing.assert_close(after["head.weight"], before["head.weight"])
    torch.testing.assert_close(after["input_layer.0.weight"], before["input_layer.0.weight"])
    torch.testing.assert_close(after["lstm.weight_hh_l0"], src.state_dict()["lstm.weight_hh_l0"])
    with pytest.raises(ConfigError):
        transfer_weights(src, dst, SRC, DST, reinit=["nope"])


@pytest.mark.parametrize("name,frozen", [("lstm", ["lstm", "head"]), ("mlp", ["input_layer", "hidden"])])
def test_only_unfrozen_parts_train(name, frozen):
    src, dst = _pair(name)
    transfer_weights(src, dst, SRC, DST)
    start = {k: v.clone() for k, v in dst.state_dict().items()}
    params = freeze(dst, frozen)
    rng = np.random.default_rng(0)
    arr = Arrays(rng.normal(size=(5, 40, 3)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32),
                 rng.normal(size=(5, 40, 1)).astype(np.float32), np.arange(5), np.arange(40))
    cfg = TrainingConfig(epochs=2, batch_size=4, seq_len=10, iterations_per_epoch=5, progress=False, lr=0.01)
    Trainer(dst, cfg, parameters=params).fit(SequenceSampler(arr, cfg.batch_size, cfg.seq_len))
    for k, v in dst.state_dict().items():
        if k.split(".")[0] in frozen:
            torch.testing.assert_close(v, start[k])
        elif v.is_floating_point():
            assert not torch.equal(v, start[k]), k
    with pytest.raises(ConfigError, match="nothing to train"):
        freeze(dst, list(dst.parts))


def test_input_map_starts_new_columns_from_their_analogue_split_among_them():
    torch.manual_seed(0)
    src = build_model("mlp", n_dynamic=3, n_static=0, n_target=1, hidden_size=6, dropout=0.0, num_layers=2)
    dst = build_model("mlp", n_dynamic=4, n_static=0, n_target=1, hidden_size=6, dropout=0.0, num_layers=2)
    s_in, d_in = ["tb_h_smos", "tb_v_smos", "pr_smos"], ["tb_h_a06", "tb_h_a10", "tb_v_a06", "other"]
    transfer_weights(src, dst, s_in, d_in, input_map={"tb_h_a06": "tb_h_smos", "tb_h_a10": "tb_h_smos",
                                                     "tb_v_a06": "tb_v_smos"})
    ws, wd = src.input_layer[0].weight.detach(), dst.input_layer[0].weight.detach()
    np.testing.assert_allclose(wd[:, 0], ws[:, 0] / 2)  # H shared by two new columns
    np.testing.assert_allclose(wd[:, 1], ws[:, 0] / 2)
    np.testing.assert_allclose(wd[:, 2], ws[:, 1])
    assert (wd[:, 3] == 0).all()
    np.testing.assert_allclose(dst.head.weight.detach(), src.head.weight.detach())
    with pytest.raises(ConfigError, match="input_map"):
        transfer_weights(src, dst, s_in, d_in, input_map={"tb_h_a06": "nope"})


def test_input_map_carries_over_to_derived_columns():
    """A mapped input's antecedent means, lags and climatology start from the source's same derived columns."""
    torch.manual_seed(0)
    src = build_model("mlp", n_dynamic=4, n_static=0, n_target=1, hidden_size=6, dropout=0.0, num_layers=2)
    dst = build_model("mlp", n_dynamic=5, n_static=0, n_target=1, hidden_size=6, dropout=0.0, num_layers=2)
    s_in = ["tb_h_smos", "tb_h_smos_mean3", "tb_h_smos_clim", "tb_h_smos_lag1"]
    d_in = ["tb_h_a06", "tb_h_a06_mean3", "tb_h_a06_clim", "tb_h_a06_mean7", "tb_h_a06x"]
    transfer_weights(src, dst, s_in, d_in, input_map={"tb_h_a06": "tb_h_smos"})
    ws, wd = src.input_layer[0].weight.detach(), dst.input_layer[0].weight.detach()
    for j, i in ((0, 0), (1, 1), (2, 2)):
        np.testing.assert_allclose(wd[:, j], ws[:, i])
    assert (wd[:, 3] == 0).all() and (wd[:, 4] == 0).all()  # no source mean7; not a derived suffix
