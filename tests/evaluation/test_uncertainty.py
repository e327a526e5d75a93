"""Epistemic / aleatoric std by hand; calibration of a known Gaussian forecast."""

from __future__ import annotations

import numpy as np
import pytest

from smfusion.evaluation.uncertainty import aleatoric_std, calibration, epistemic_std, format_calibration, total_std


def test_stds_by_hand():
    members = np.array([[1.0, 2.0], [3.0, 2.0]])  # 2 members x 2 points
    np.testing.assert_allclose(epistemic_std(members), [1.0, 0.0])
    assert np.all(epistemic_std(np.stack([members[0]] * 4)) == 0)
    noisy = np.array([[[0.0], [2.0]], [[1.0], [1.0]]])  # member 0 runs 0, 2 (var 1); member 1 runs 1, 1 (var 0)
    np.testing.assert_allclose(aleatoric_std(noisy), [np.sqrt(0.5)])
    np.testing.assert_allclose(total_std(np.array([3.0]), np.array([4.0])), [5.0])
    with pytest.raises(ValueError):
        total_std(None, None)


def test_calibration_of_a_calibrated_and_an_overconfident_forecast():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.01, 0.1, (50, 400))
    mean = rng.normal(0.2, 0.05, std.shape)
    obs = mean + std * rng.standard_normal(std.shape)
    cal = calibration(obs, mean, std)
    assert cal["coverage_68"] == pytest.approx(0.68, abs=0.01)
    assert cal["coverage_95"] == pytest.approx(0.95, abs=0.01)
    assert cal["spread_skill_ratio"] == pytest.approx(1.0, abs=0.05) and cal["spread_skill_r"] > 0.95
    over = calibration(obs, mean, std / 4)
    assert over["coverage_68"] < 0.3 and over["spread_skill_ratio"] > 3.5
    text = format_calibration(cal, "test")
    assert "central 68% interval" in text and "nominal 0.95" in text
