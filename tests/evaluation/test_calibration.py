"""CRPS closed forms against properscoring / scoringrules; coverage, PIT and CRPS of draws from a known
distribution; the printed section and the reliability diagram."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from smfusion.evaluation.calibration import (calibration_scores, crps, crps_gaussian, crps_mixture, format_scores,
                                             plot_reliability)
from smfusion.runs.predictive import Predictive, Recalibration

properscoring = pytest.importorskip("properscoring")
scoringrules = pytest.importorskip("scoringrules")


def test_crps_gaussian_matches_properscoring():
    rng = np.random.default_rng(0)
    y, mu, sigma = rng.normal(size=200), rng.normal(size=200), rng.uniform(0.01, 2.0, 200)
    np.testing.assert_allclose(crps_gaussian(y, mu, sigma), properscoring.crps_gaussian(y, mu, sigma), rtol=1e-10)
    np.testing.assert_allclose(crps_gaussian(y, mu, 0.0), np.abs(y - mu))


def test_crps_mixture_matches_scoringrules_and_quadrature():
    rng = np.random.default_rng(1)
    n, k = 300, 4
    loc, scale = rng.normal(size=(n, k)), rng.uniform(0.05, 1.5, (n, k))
    w = rng.dirichlet(np.ones(k), n)
    y = rng.normal(size=n)
    ref = np.asarray(scoringrules.crps_mixnorm(y, loc, scale, w, backend="numpy"))
    np.testing.assert_allclose(crps_mixture(y, loc, scale, w), ref, rtol=1e-8)
    np.testing.assert_allclose(crps_mixture(y, loc[:, :1], scale[:, :1], np.ones((n, 1))),
                               properscoring.crps_gaussian(y, loc[:, 0], scale[:, 0]), rtol=1e-10)
    # after an isotonic PIT map: the identity map gives the closed form; a real map agrees with a fine
    # direct quadrature of int (R(F(x)) - 1{x >= y})^2 dx
    pred = Predictive(loc.mean(1)[None], loc[None], scale[None], w[None])
    ident = pred.with_recalibration(Recalibration("isotonic", pit_x=[0.0, 1.0], pit_y=[0.0, 1.0]))
    np.testing.assert_allclose(crps(ident, y), crps(pred, y), rtol=1e-12)
    bent = pred.with_recalibration(Recalibration("isotonic", pit_x=[0.0, 0.3, 0.8, 1.0], pit_y=[0.0, 0.5, 0.9, 1.0]))
    x = np.linspace(-12, 12, 200_001)
    for i in range(5):
        big = np.broadcast_to(x[:, None], (x.size, 1))
        cdf = bent.recal.pit_map((w[i] * ndtr((big - loc[i]) / scale[i])).sum(-1))
        ref = np.trapezoid((cdf - (x >= y[i])) ** 2, x)
        assert crps(bent.select(lambda a: a[i:i + 1]), y[i:i + 1])[0] == pytest.approx(ref, rel=2e-3)


def test_scores_of_draws_from_the_known_distribution():
    rng = np.random.default_rng(2)
    cells, days, members = 60, 400, 3
    means = rng.normal(0.25, 0.05, (members, cells, days))
    sigma = rng.uniform(0.01, 0.04, (members, cells, days))
    pick = rng.integers(0, members, (cells, days))
    ci, di = np.meshgrid(np.arange(cells), np.arange(days), indexing="ij")
    obs = means[pick, ci, di] + sigma[pick, ci, di] * rng.standard_normal((cells, days))
    obs[rng.random(obs.shape) < 0.2] = np.nan
    pred = Predictive(means, means[..., None], sigma[..., None], np.ones(means.shape + (1,)))
    s = calibration_scores(pred, obs)
    for lv in (0.5, 0.68, 0.9, 0.95):  # binomial sd sqrt(p (1 - p) / n) <= 0.0036 here (n ~ 19000): 0.012 > 3 sd
        key = f"coverage_{round(lv * 100)}"
        assert s[key] == pytest.approx(lv, abs=0.012) and s[key + "_cell_median"] == pytest.approx(lv, abs=0.03)
    assert np.abs(np.asarray(s["pit_histogram"]) - 0.1).max() < 0.01
    np.testing.assert_allclose(s["reliability"]["observed"], s["reliability"]["tau"], atol=0.012)
    # E CRPS of a calibrated forecast = E over draws of CRPS(F, Y), Y ~ F: for one Gaussian sigma / sqrt(pi)
    single = Predictive(means[:1], means[:1, ..., None], sigma[:1, ..., None], np.ones((1, cells, days, 1)))
    obs1 = means[0] + sigma[0] * rng.standard_normal((cells, days))
    assert calibration_scores(single, obs1)["crps"] == pytest.approx(np.mean(sigma[0]) / np.sqrt(np.pi), rel=0.02)
    # an overconfident forecast (std / 3) covers far less, and its CRPS is worse
    s1 = calibration_scores(single, obs1)
    over = Predictive(means[:1], means[:1, ..., None], sigma[:1, ..., None] / 3, np.ones((1, cells, days, 1)))
    so = calibration_scores(over, obs1)
    assert so["coverage_68"] < 0.3 and so["coverage_95"] < 0.5 and so["crps"] > s1["crps"]
    assert s1["rmse_over_rms_std"] == pytest.approx(1.0, abs=0.05) and so["rmse_over_rms_std"] > 2.5


def test_format_and_reliability_png(tmp_path):
    rng = np.random.default_rng(3)
    means = rng.normal(size=(2, 20, 50))
    obs = means.mean(0) + rng.normal(size=(20, 50))
    rows = {"ensemble spread only": calibration_scores(Predictive(means), obs)}
    text = format_scores(rows, "title")
    assert "cov68" in text and "PIT histogram" in text and "ensemble spread only" in text
    path = plot_reliability(rows, tmp_path / "plots" / "reliability.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
