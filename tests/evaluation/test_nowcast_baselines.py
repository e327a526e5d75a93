"""The baselines of the skill-against-lead table: persistence, climatology + persisted anomaly, projection +
damped residual (hand-checked values) and the damping fit."""

from __future__ import annotations

import numpy as np

from smfusion.evaluation.nowcast import damped_residual, fit_damping, lead_scores, persisted_anomaly, persistence

NAN = np.nan


def test_persistence_and_persisted_anomaly_by_hand():
    obs = np.array([[0.2, NAN, 0.3, NAN, NAN]])
    np.testing.assert_allclose(persistence(obs, 1)[0], [NAN, 0.2, 0.2, 0.3, 0.3])
    np.testing.assert_allclose(persistence(obs, 2)[0], [NAN, NAN, 0.2, 0.2, 0.3])
    clim = np.array([[0.1, 0.15, 0.2, 0.25, 0.3]])
    # anomaly of day 2 (0.3 - 0.2 = 0.1) added to the climatology of days 3 and 4
    np.testing.assert_allclose(persisted_anomaly(obs, clim, 1)[0], [NAN, 0.25, 0.3, 0.35, 0.4])


def test_damped_residual_by_hand_and_fit():
    obs = np.array([[0.3, NAN, NAN, 0.5]])
    proj = np.array([[0.2, 0.2, 0.2, 0.2]])
    np.testing.assert_allclose(damped_residual(obs, proj, 1, 0.5)[0], [0.2, 0.25, 0.225, 0.2125])
    np.testing.assert_allclose(damped_residual(obs, proj, 1, 0.0)[0], proj[0])
    # a residual that truly decays by 0.7 a day is fitted as 0.7
    rng = np.random.default_rng(0)
    r = np.zeros((50, 400))
    for t in range(1, 400):
        r[:, t] = 0.7 * r[:, t - 1] + rng.normal(0, 0.01, 50)
    proj = rng.uniform(0.1, 0.4, (50, 400))
    obs = np.where(rng.random((50, 400)) < 0.4, proj + r, NAN)
    assert abs(fit_damping(obs, proj, 1, slice(0, 400)) - 0.7) <= 0.1
    s = lead_scores(obs, damped_residual(obs, proj, 1, 0.7))
    assert s["ubRMSE"] < lead_scores(obs, proj)["ubRMSE"]
