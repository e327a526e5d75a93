"""Output heads: every registered model takes each head; the mixture's moments by hand; head/objective checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smfusion.config import ModelConfig, TrainingConfig
from smfusion.errors import ConfigError
from smfusion.models.heads import VAR_FLOOR, available_heads, build_head, is_probabilistic
from smfusion.models.registry import build_model
from smfusion.training.objectives import check_head

BATCH = {"x_dynamic": torch.randn(4, 6, 3), "x_static": torch.randn(4, 2)}
FUSION = dict(sources=[{"name": "a", "kind": "scalar", "channels": 2, "timed": True}])
FUSION_BATCH = {"a": torch.randn(4, 2), "a_dt": torch.randn(4, 1)}


@pytest.mark.parametrize("head", ["regression", "gaussian", "gmm"])
@pytest.mark.parametrize("model", ["lstm", "mlp", "fusion"])
def test_every_model_takes_every_head(model, head):
    torch.manual_seed(0)
    if model == "fusion":
        m = build_model("fusion", 0, 0, 1, hidden_size=8, head=head, components=3, **FUSION)
        out, t = m(FUSION_BATCH), 1
    else:
        m = build_model(model, 3, 2, 2, hidden_size=8, head=head, components=3)
        out, t = m(BATCH), 6
    n_target = 1 if model == "fusion" else 2
    assert out["y_hat"].shape == (4, t, n_target)
    if head == "regression":
        assert "log_var" not in out
    else:
        assert out["log_var"].shape == (4, t, n_target) and torch.isfinite(out["log_var"]).all()
        assert (out["log_var"] >= np.log(VAR_FLOOR) - 1e-6).all()
    if head == "gmm":
        assert out["mix_loc"].shape == (4, t, n_target, 3)
        torch.testing.assert_close(out["mix_log_weight"].exp().sum(-1), torch.ones(4, t, n_target))
    # the head is one linear layer: a regression head keeps the old state_dict keys
    keys = [k for k in m.state_dict() if k.startswith("head")]
    assert keys == (["head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"] if model == "fusion"
                    else ["head.weight", "head.bias"])


def test_regression_head_is_bit_identical_to_a_linear_layer():
    torch.manual_seed(1)
    head = build_head("regression", 5, 2)
    torch.manual_seed(1)
    lin = torch.nn.Linear(5, 2)
    h = torch.randn(3, 5)
    torch.testing.assert_close(head(h)["y_hat"], lin(h), rtol=0, atol=0)


def test_mixture_moments_by_hand():
    torch.manual_seed(2)
    head = build_head("gmm", 4, 1, components=3)
    with torch.no_grad():
        out = head(torch.randn(7, 4))
    loc, var, w = out["mix_loc"][:, 0], out["mix_log_var"][:, 0].exp(), out["mix_log_weight"][:, 0].exp()
    for i in range(7):  # mean = sum w m; var = sum w (s^2 + m^2) - mean^2
        mean = sum(float(w[i, k] * loc[i, k]) for k in range(3))
        second = sum(float(w[i, k] * (var[i, k] + loc[i, k] ** 2)) for k in range(3))
        assert float(out["y_hat"][i, 0]) == pytest.approx(mean, rel=1e-5, abs=1e-6)
        assert float(out["log_var"][i, 0].exp()) == pytest.approx(second - mean**2, rel=1e-4)


def test_head_and_objective_checks():
    assert {"regression", "gaussian", "gmm"} <= set(available_heads())
    assert is_probabilistic("gaussian") and not is_probabilistic("regression")
    check_head(ModelConfig(head="gaussian"), TrainingConfig(loss="gaussian_nll"))
    check_head(ModelConfig(head="gmm"), TrainingConfig(loss="mixture_nll"))
    with pytest.raises(ConfigError, match="unknown head"):
        check_head(ModelConfig(head="cmal"), TrainingConfig())
    with pytest.raises(ConfigError, match="gaussian_nll"):
        check_head(ModelConfig(head="gaussian"), TrainingConfig(loss="rmse"))
    with pytest.raises(ConfigError, match="needs model.head"):
        check_head(ModelConfig(head="regression"), TrainingConfig(loss="gaussian_nll"))
    with pytest.raises(ConfigError, match="needs model.head"):
        check_head(ModelConfig(head="gmm"), TrainingConfig(loss="gaussian_nll"))
