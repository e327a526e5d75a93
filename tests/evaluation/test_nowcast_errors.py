"""The error budget of a nowcast (evaluation/nowcast_errors.py): hand computations and a known noise level."""

import numpy as np
import pytest

from smfusion.evaluation.nowcast_errors import grouped_rms, noise_bounds, semivariance, wet_days


def test_semivariance_by_hand():
    y = np.array([[1.0, 2.0, np.nan, 5.0, 4.0], [np.nan] * 5])
    d, n = semivariance(y, 1)
    # pairs (1,2) and (5,4): 1/2 * (1 + 1) / 2
    assert n.tolist() == [2, 0] and d[0] == pytest.approx(0.5) and np.isnan(d[1])
    d2, n2 = semivariance(y, 2)  # pairs (1, nan), (2, 5), (nan, 4): only (2, 5)
    assert n2[0] == 1 and d2[0] == pytest.approx(0.5 * 9)
    with pytest.raises(ValueError):
        semivariance(y, 0)


def test_noise_bounds_find_a_known_white_noise():
    """A smooth AR(1) signal (std 0.05, lag-1 correlation 0.98) plus white noise of std 0.02, seen on 60% of the
    days: D(1) bounds the noise from above and the nuggets recover it within a few thousandths."""
    rng = np.random.default_rng(0)
    n_site, n_time, rho, sd, sigma = 300, 730, 0.98, 0.05, 0.02
    s = np.zeros((n_site, n_time))
    s[:, 0] = sd * rng.standard_normal(n_site)
    for t in range(1, n_time):
        s[:, t] = rho * s[:, t - 1] + sd * np.sqrt(1 - rho ** 2) * rng.standard_normal(n_site)
    y = s + sigma * rng.standard_normal(s.shape)
    y[rng.random(y.shape) < 0.4] = np.nan
    nb = noise_bounds(y)
    assert nb["sites"] == n_site
    assert nb["sqrt_d1"] > sigma  # an upper bound: the signal moves too
    assert nb["nugget_linear"] == pytest.approx(sigma, abs=0.002)
    assert nb["nugget_quadratic"] == pytest.approx(sigma, abs=0.003)
    assert noise_bounds(y, min_pairs=10_000)["sites"] == 0


def test_wet_days_and_grouped_rms_by_hand():
    p = np.array([[0.0, 0.3, 0.3, np.nan, 0.0, 0.0]])
    assert wet_days(p, days=3, threshold=0.5).tolist() == [[False, False, True, True, False, False]]
    obs = np.array([[1.0, 2.0, 3.0, np.nan]])
    sim = np.array([[1.5, 2.0, 2.0, 4.0]])
    ref = np.array([[2.0, 1.0, 3.0, 4.0]])
    out = grouped_rms(obs, sim, ref, {"all": np.ones((1, 4), bool), "first": np.array([[True, False, False, False]]),
                                      "none": np.zeros((1, 4), bool)})
    e, r = np.array([0.5, 0.0, -1.0]), np.array([1.0, -1.0, 0.0])
    assert out["all"]["n"] == 3
    assert out["all"]["rms"] == pytest.approx(np.sqrt(np.mean(e ** 2)))
    assert out["all"]["rms_ref"] == pytest.approx(np.sqrt(np.mean(r ** 2)))
    assert out["all"]["sqrt_cov"] == pytest.approx(np.sqrt(np.mean(e * r)))
    assert out["first"]["sqrt_cov"] == pytest.approx(np.sqrt(0.5))
    assert out["none"]["n"] == 0 and np.isnan(out["none"]["rms"])
