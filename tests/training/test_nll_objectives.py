"""Gaussian NLL, beta-NLL and mixture NLL against hand computation; the multiscale NLL's aggregated variance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from smfusion.training.multiscale import aggregate_variance, multiscale_loss
from smfusion.training.objectives import NLLObjective, gaussian_nll, mixture_nll


def _nll(y, m, v):
    return 0.5 * (math.log(2 * math.pi) + math.log(v) + (y - m) ** 2 / v)


def test_gaussian_nll_by_hand_with_mask_and_two_targets():
    y = torch.tensor([[[0.5, 1.0]], [[float("nan"), 2.0]], [[-1.0, float("nan")]]])  # (3, 1, 2)
    mu = torch.tensor([[[0.0, 1.5]], [[9.0, 1.0]], [[-0.5, 9.0]]])
    var = torch.tensor([[[1.0, 0.25]], [[3.0, 4.0]], [[0.5, 3.0]]])
    got = gaussian_nll(mu, var.log(), y)
    t0 = (_nll(0.5, 0.0, 1.0) + _nll(-1.0, -0.5, 0.5)) / 2
    t1 = (_nll(1.0, 1.5, 0.25) + _nll(2.0, 1.0, 4.0)) / 2
    assert float(got) == pytest.approx(t0 + t1, rel=1e-6)
    # matches scipy's log density
    assert -norm(0.0, 1.0).logpdf(0.5) == pytest.approx(_nll(0.5, 0.0, 1.0))


def test_beta_nll_weights_and_gradients():
    y = torch.tensor([[[1.0]], [[3.0]]])
    mu = torch.tensor([[[0.0]], [[1.0]]], requires_grad=True)
    lv = torch.tensor([[[0.0]], [[math.log(4.0)]]], requires_grad=True)
    loss = gaussian_nll(mu, lv, y, beta=0.5)
    hand = (1.0 * _nll(1.0, 0.0, 1.0) + 2.0 * _nll(3.0, 1.0, 4.0)) / 2  # weights var^0.5 = 1, 2
    assert float(loss.detach()) == pytest.approx(hand, rel=1e-6)
    # beta = 1: the mean's gradient is the MSE's, (mu - y) / n, whatever the variance
    mu1 = mu.detach().clone().requires_grad_(True)
    gaussian_nll(mu1, lv.detach(), y, beta=1.0).backward()
    np.testing.assert_allclose(mu1.grad.numpy().ravel(), [(0.0 - 1.0) / 2, (1.0 - 3.0) / 2], rtol=1e-6)
    # beta = 0: the plain NLL, gradient (mu - y) / var / n
    mu0 = mu.detach().clone().requires_grad_(True)
    gaussian_nll(mu0, lv.detach(), y).backward()
    np.testing.assert_allclose(mu0.grad.numpy().ravel(), [-1.0 / 2, -2.0 / 4 / 2], rtol=1e-6)


def test_mixture_nll_by_hand_and_one_component_equals_gaussian():
    y = torch.tensor([[[0.3]], [[float("nan")]], [[-2.0]]])
    loc = torch.tensor([[[[0.0, 1.0]]], [[[5.0, 5.0]]], [[[-1.0, 2.0]]]])  # (3, 1, 1, 2)
    var = torch.tensor([[[[1.0, 0.5]]], [[[1.0, 1.0]]], [[[2.0, 0.1]]]])
    w = torch.tensor([[[[0.3, 0.7]]], [[[0.5, 0.5]]], [[[0.6, 0.4]]]])
    got = mixture_nll(loc, var.log(), w.log(), y)
    hand = [-math.log(0.3 * norm(0, 1).pdf(0.3) + 0.7 * norm(1, math.sqrt(0.5)).pdf(0.3)),
            -math.log(0.6 * norm(-1, math.sqrt(2)).pdf(-2.0) + 0.4 * norm(2, math.sqrt(0.1)).pdf(-2.0))]
    assert float(got) == pytest.approx(np.mean(hand), rel=1e-5)
    one = mixture_nll(loc[..., :1], var[..., :1].log(), torch.zeros_like(w[..., :1]), y)
    assert float(one) == pytest.approx(float(gaussian_nll(loc[..., 0], var[..., 0].log(), y)), rel=1e-6)
    # the objective picks the mixture when the head gives one, else the Gaussian of y_hat / log_var
    obj = NLLObjective("mixture_nll")
    pred = {"y_hat": (w * loc).sum(-1), "log_var": torch.zeros(3, 1, 1), "mix_loc": loc, "mix_log_var": var.log(),
            "mix_log_weight": w.log()}
    assert float(obj(pred, {"y": y})[0]) == pytest.approx(float(got))


def test_aggregate_variance_by_hand_and_by_monte_carlo():
    s = torch.tensor([0.1, 0.2, 0.3, 0.4, 9.0])  # row 4 is masked out
    lv = (s**2).log().reshape(5, 1, 1)
    index, mask = torch.tensor([[0, 1, 2, 3, 4]]), torch.tensor([[True, True, True, True, False]])
    indep = float(aggregate_variance(lv, index, mask, 0.0))
    assert indep == pytest.approx((0.01 + 0.04 + 0.09 + 0.16) / 16, rel=1e-5)
    full = float(aggregate_variance(lv, index, mask, 1.0))
    assert full == pytest.approx(((0.1 + 0.2 + 0.3 + 0.4) / 4) ** 2, rel=1e-5)
    # the assumption, checked: the mean of 4 independent N(0, s_k^2) errors has variance sum s_k^2 / 16,
    # and of equicorrelated (rho = 0.5) errors ((1 - rho) sum s_k^2 + rho (sum s_k)^2) / 16
    rng = np.random.default_rng(0)
    sk = s[:4].numpy().astype(float)
    draws = rng.standard_normal((200_000, 4)) * sk
    assert draws.mean(1).var() == pytest.approx(indep, rel=0.02)
    common = rng.standard_normal((200_000, 1))
    corr = (np.sqrt(0.5) * common + np.sqrt(0.5) * rng.standard_normal((200_000, 4))) * sk
    assert corr.mean(1).var() == pytest.approx(float(aggregate_variance(lv, index, mask, 0.5)), rel=0.02)


def test_multiscale_nll_terms_by_hand():
    # 2 coarse groups of 2 fine rows + 1 station row; one day
    y_hat = torch.tensor([[[0.0]], [[1.0]], [[2.0]], [[4.0]], [[0.5]]])
    lv = torch.tensor([[[0.0]], [[0.0]], [[math.log(4.0)]], [[math.log(4.0)]], [[math.log(0.25)]]])
    batch = {"group_index": torch.tensor([[0, 1], [2, 3]]), "group_mask": torch.ones(2, 2, dtype=torch.bool),
             "group_coverage": torch.ones(2), "y_coarse": torch.tensor([[[1.0]], [[2.0]]]),
             "site_index": torch.tensor([4]), "y_site": torch.tensor([[[0.0]]])}
    obj = NLLObjective("gaussian_nll")

    def term(y_hat_, y, extra=None):
        return obj({"y_hat": y_hat_, **(extra or {})}, {"y": y})[0]

    total, terms = multiscale_loss(y_hat, batch, 1.0, 2.0, term, distribution={"log_var": lv}, min_coverage=0.0)
    coarse = (_nll(1.0, 0.5, 2 / 4) + _nll(2.0, 3.0, 8 / 4)) / 2  # var of the mean: (1 + 1) / 4, (4 + 4) / 4
    site = _nll(0.0, 0.5, 0.25)
    assert terms["coarse"] == pytest.approx(coarse, rel=1e-5) and terms["site"] == pytest.approx(site, rel=1e-5)
    assert float(total) == pytest.approx(coarse + 2 * site, rel=1e-5)
    with pytest.raises(Exception, match="median"):
        multiscale_loss(y_hat, batch, 1.0, 1.0, term, aggregation="median", distribution={"log_var": lv})
