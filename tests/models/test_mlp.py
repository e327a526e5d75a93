"""MLP: the model contract, per-day mapping, registry."""

from __future__ import annotations

import torch

from smfusion.models.registry import available, build_model


def test_mlp_contract_and_per_day_mapping():
    assert "mlp" in available()
    torch.manual_seed(0)
    m = build_model("mlp", n_dynamic=3, n_static=2, n_target=2, hidden_size=8, dropout=0.0, num_layers=3).eval()
    assert set(m.parts) <= {n for n, _ in m.named_children()}
    x, s = torch.randn(4, 10, 3), torch.randn(4, 2)
    y = m({"x_dynamic": x, "x_static": s})["y_hat"]
    assert y.shape == (4, 10, 2)
    x2 = x.clone()
    x2[:, 5] += 1.0  # change one day only
    y2 = m({"x_dynamic": x2, "x_static": s})["y_hat"]
    changed = (y2 - y).abs().amax(dim=(0, 2)) > 0
    assert changed.tolist() == [i == 5 for i in range(10)]
    # a day's output is the MLP of that day's inputs and the statics, by hand
    h = torch.relu(m.input_layer[0](torch.cat([x[:, 3], s], -1)))
    for layer in m.hidden:
        h = layer(h)
    torch.testing.assert_close(y[:, 3], m.head(h)["y_hat"])


def test_mlp_without_statics():
    m = build_model("mlp", n_dynamic=2, n_static=0, n_target=1, hidden_size=4, dropout=0.0, num_layers=1)
    assert m({"x_dynamic": torch.randn(2, 5, 2), "x_static": torch.zeros(2, 0)})["y_hat"].shape == (2, 5, 1)
