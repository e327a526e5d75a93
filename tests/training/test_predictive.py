"""Ensemble combination (law of total variance), the Predictive container and the recalibration fit."""

from __future__ import annotations

import numpy as np
import pytest

from smfusion.runs.ensembles import combine_members, ensemble_mixture, mixture_moments
from smfusion.runs.predictive import (Predictive, Recalibration, concat_rows, fit_recalibration, mixture_cdf,
                                          mixture_quantile, quantile_suffix)


def test_mixture_moments_by_hand():
    loc, scale, w = np.array([0.0, 2.0]), np.array([1.0, 0.5]), np.array([0.25, 0.75])
    mean, var = mixture_moments(loc, scale, w)
    assert mean == pytest.approx(1.5)
    assert var == pytest.approx(0.25 * (1 + 1.5**2) + 0.75 * (0.25 + 0.5**2))


def test_total_variance_across_members_by_hand_and_by_sampling():
    means = np.array([[0.0], [1.0], [3.0]])  # 3 members, one point
    variances = np.array([[1.0], [0.25], [4.0]])
    out = combine_members(means, variances, noise_var=np.array([0.5]))
    assert out["mean"][0] == pytest.approx(4 / 3)
    assert out["epistemic_var"][0] == pytest.approx(np.var([0.0, 1.0, 3.0]))
    assert out["aleatoric_var"][0] == pytest.approx(np.mean([1.0, 0.25, 4.0]) + 0.5)
    assert out["total_var"][0] == pytest.approx(out["epistemic_var"][0] + out["aleatoric_var"][0])
    # draws from the equal-weight mixture of the members' Gaussians have that variance
    rng = np.random.default_rng(0)
    member = rng.integers(0, 3, 400_000)
    x = means[member, 0] + np.sqrt(variances[member, 0]) * rng.standard_normal(member.size)
    assert x.var() == pytest.approx(out["total_var"][0] - 0.5, rel=0.01)
    # the flattened ensemble mixture has the same moments
    loc, scale, w = ensemble_mixture(means[:, :, None], np.sqrt(variances)[:, :, None], np.ones((3, 1, 1)))
    m, v = mixture_moments(loc, scale, w)
    assert m[0] == pytest.approx(4 / 3) and v[0] == pytest.approx(out["total_var"][0] - 0.5)


def _gaussian_ensemble(rng, n_points=3000, members=4, spread=0.3, sigma=0.5):
    centre = rng.normal(0, 1, n_points)
    means = centre + spread * rng.standard_normal((members, n_points))
    loc = means[..., None]
    scale = np.full(loc.shape, sigma)
    return Predictive(means, loc, scale, np.ones(loc.shape)), centre


def test_variance_factors_scale_epistemic_and_aleatoric_parts():
    rng = np.random.default_rng(1)
    pred, _ = _gaussian_ensemble(rng)
    base = pred.moments()
    scaled = pred.with_recalibration(Recalibration("variance", 2.0, 3.0)).moments()
    np.testing.assert_allclose(scaled["epistemic_var"], 4 * base["epistemic_var"])
    np.testing.assert_allclose(scaled["aleatoric_var"], 9 * base["aleatoric_var"])
    m, v = mixture_moments(*pred.with_recalibration(Recalibration("variance", 2.0, 3.0)).mixture())
    np.testing.assert_allclose(m, base["mean"])
    np.testing.assert_allclose(v, scaled["total_var"])


def test_recalibration_recovers_the_missing_spread_and_is_monotone():
    rng = np.random.default_rng(2)
    pred, centre = _gaussian_ensemble(rng, sigma=0.2)
    truth_sd = np.sqrt(pred.moments()["epistemic_var"] + 0.6**2)  # the model's aleatoric sd is 3x too small
    obs = pred.moments()["mean"] + truth_sd * rng.standard_normal(centre.size)
    rec = fit_recalibration(pred, obs, "isotonic")
    assert rec.aleatoric_factor == pytest.approx(3.0, rel=0.1)
    assert np.all(np.diff(rec.pit_x) > 0) and np.all(np.diff(rec.pit_y) > 0)
    assert rec.pit_x[0] == 0 and rec.pit_x[-1] == 1 and rec.pit_y[0] == 0 and rec.pit_y[-1] == 1
    grid = np.linspace(0, 1, 1001)
    assert np.all(np.diff(rec.pit_map(grid)) >= 0)
    np.testing.assert_allclose(rec.pit_inverse(rec.pit_map(grid)), grid, atol=1e-9)
    # on fresh draws from the same truth the recalibrated PIT is flat
    obs2 = pred.moments()["mean"] + truth_sd * rng.standard_normal(centre.size)
    pit = pred.with_recalibration(rec).cdf(obs2)
    hist = np.histogram(pit, 10, (0, 1))[0] / pit.size
    assert np.abs(hist - 0.1).max() < 0.025
    # missing observations are left out; a run without spread cannot be recalibrated
    obs2[::2] = np.nan
    assert fit_recalibration(pred, obs2, "variance").info["n_points"] == centre.size // 2
    with pytest.raises(ValueError, match="no spread"):
        fit_recalibration(Predictive(pred.means[:1]), obs, "variance")
    assert Recalibration.from_dict(rec.to_dict()) == rec


def test_quantiles_cdf_and_selection():
    loc, scale, w = np.array([[-1.0, 1.0]]), np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]])
    for tau in (0.05, 0.5, 0.95):
        q = mixture_quantile(tau, loc, scale, w)
        assert mixture_cdf(q, loc, scale, w) == pytest.approx(tau, abs=1e-9)
    rng = np.random.default_rng(3)
    pred, _ = _gaussian_ensemble(rng, n_points=10)
    layers = pred.layers([0.05, 0.95])
    assert set(layers) == {"", "_std", "_epistemic_std", "_aleatoric_std", "_q05", "_q95"}
    assert np.all(layers["_q05"] < layers[""]) and np.all(layers[""] < layers["_q95"])
    sub = pred.select(lambda a: a[:3])
    assert sub.means.shape == (4, 3) and sub.loc.shape == (4, 3, 1)
    np.testing.assert_allclose(sub.layers()["_std"], layers["_std"][:3])
    assert set(Predictive(pred.means[:1]).layers()) == {""}  # no spread: no spread layers
    assert [quantile_suffix(q) for q in (0.05, 0.5, 0.975)] == ["_q05", "_q50", "_q97p5"]


def test_quantile_layer_names_read_back():
    from smfusion.io.layer_names import split_quantile

    for q in (0.001, 0.025, 0.05, 0.5, 0.9, 0.975):
        assert split_quantile("sm" + quantile_suffix(q)) == ("sm", round(100 * q, 6))
        assert split_quantile(quantile_suffix(q)) == ("", round(100 * q, 6))
    assert [split_quantile(n) for n in ("sm", "sm_std", "sm_q", "sm_quality", "sm_q5x")] == [None] * 5


def test_rows_recalibrated_apart_join_into_one_distribution():
    rng = np.random.default_rng(4)
    a, _ = _gaussian_ensemble(rng, n_points=50)
    b, _ = _gaussian_ensemble(rng, n_points=30, members=2)
    ra, rb = Recalibration("variance", 1.5, 2.0), Recalibration("variance", 0.5, 3.0)
    joined = concat_rows([a.with_recalibration(ra), b.with_recalibration(rb)])
    assert joined.means.shape == (1, 80) and joined.loc.shape == (1, 80, 4)
    y = rng.normal(size=80)
    np.testing.assert_allclose(joined.cdf(y)[:50], a.with_recalibration(ra).cdf(y[:50]))
    np.testing.assert_allclose(joined.cdf(y)[50:], b.with_recalibration(rb).cdf(y[50:]))
    np.testing.assert_allclose(joined.moments()["total_var"][50:], b.with_recalibration(rb).moments()["total_var"])
