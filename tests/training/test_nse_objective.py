"""NSE* objective against hand computation, and the per-site target std the sequence sampler adds for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smfusion.data.adapters.sequence import SequenceSampler
from smfusion.data.sampling import Arrays, target_std
from smfusion.errors import ConfigError
from smfusion.training.losses import NSE_EPS
from smfusion.training.objectives import build_objective, NSEObjective


def test_nse_star_by_hand():
    y = np.array([[[1.0], [np.nan], [3.0]], [[0.5], [0.7], [np.nan]]])  # (batch 2, time 3, target 1)
    y_hat = np.array([[[1.5], [9.0], [2.0]], [[0.5], [0.4], [5.0]]])
    s = np.array([[0.4], [0.9]])
    terms = [((1.5 - 1.0) / (0.4 + NSE_EPS)) ** 2, ((2.0 - 3.0) / (0.4 + NSE_EPS)) ** 2,
             0.0, ((0.4 - 0.7) / (0.9 + NSE_EPS)) ** 2]
    loss, info = NSEObjective()({"y_hat": torch.tensor(y_hat)}, {"y": torch.tensor(y), "y_std": torch.tensor(s)})
    assert float(loss) == pytest.approx(np.mean(terms), rel=1e-12)
    assert info["nse"] == pytest.approx(np.mean(terms))
    with pytest.raises(ConfigError, match="target std"):
        NSEObjective()({"y_hat": torch.tensor(y_hat)}, {"y": torch.tensor(y)})


def test_sampler_carries_each_drawn_sites_training_std():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, (5, 40, 1)).astype(np.float32) * np.arange(1, 6, dtype=np.float32)[:, None, None]
    y[0, :39] = np.nan  # one value: std undefined -> 1
    arr = Arrays(np.zeros((5, 40, 2), np.float32), np.arange(5, dtype=np.float32)[:, None], y,
                 np.arange(5), np.arange(40))
    sd = target_std(arr)
    np.testing.assert_allclose(sd[1:, 0], np.nanstd(y[1:, :, 0], axis=1), rtol=1e-5)
    assert sd[0, 0] == 1.0
    batch = SequenceSampler(arr, 16, 10, site_std=True).sample(np.random.default_rng(1))
    site = batch["x_static"][:, 0].astype(int)  # the static column is the site index
    np.testing.assert_array_equal(batch["y_std"], sd[site])
    plain = SequenceSampler(arr, 16, 10).sample(np.random.default_rng(1))
    assert "y_std" not in plain
    np.testing.assert_array_equal(plain["y"], batch["y"])  # the same draws with or without it


def test_nse_is_a_registered_objective():
    assert isinstance(build_objective(None, None, default="nse"), NSEObjective)
