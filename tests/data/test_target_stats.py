"""Target statistics predicted from statics (normalization.target: predicted)."""

from __future__ import annotations

import numpy as np
import pytest

from smfusion.data.normalize import MIN_SITE_COUNT, SITE_STD_FLOOR
from smfusion.data.target_stats import TargetStatsModel, merge_site_stats, ridge_fit
from smfusion.errors import DataError


def test_ridge_fit_recovers_a_linear_relation_and_shrinks_with_the_penalty():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3))
    y = 0.25 + z @ np.array([0.05, -0.02, 0.0])
    np.testing.assert_allclose(ridge_fit(z, y, 0.0), [0.25, 0.05, -0.02, 0.0], atol=1e-12)
    shrunk = ridge_fit(z, y, 1e4)
    assert abs(shrunk[1]) < 0.05 and shrunk[0] == pytest.approx(0.25, abs=0.01)  # intercept not penalised


def test_fit_predict_and_unseen_sites(tmp_path):
    rng = np.random.default_rng(1)
    n_site, n_time = 60, 200
    z = rng.normal(size=(n_site, 2))
    mean = 0.2 + 0.05 * z[:, 0]
    std = np.exp(np.log(0.04) + 0.2 * z[:, 1])
    y = mean[:, None] + std[:, None] * rng.standard_normal((n_site, n_time))
    y[:, ::3] = np.nan
    y[0, MIN_SITE_COUNT - 2:] = np.nan  # too few values: left out of the fit
    model = TargetStatsModel.fit({"sm": y}, z, ridge=0.0)
    m, s = model.predict("sm", np.array([[1.0, 0.0], [0.0, 2.0]]))  # sites never seen
    np.testing.assert_allclose(m, [0.25, 0.2], atol=0.01)
    np.testing.assert_allclose(s, [0.04, 0.04 * np.exp(0.4)], rtol=0.1)
    assert s.min() >= SITE_STD_FLOOR * np.nanstd(y)
    model.save(tmp_path / "ts.yaml")
    again = TargetStatsModel.load(tmp_path / "ts.yaml")
    np.testing.assert_array_equal(again.predict("sm", z)[0], model.predict("sm", z)[0])
    st = model.site_stats("sm", [7, 9], z[:2])
    assert st["site"] == [7, 9] and len(st["mean"]) == 2
    with pytest.raises(DataError, match="static inputs"):
        model.predict("sm", z[:, :1])


def test_merge_site_stats():
    a = {"site": [1, 2], "mean": [0.1, 0.2], "std": [1.0, 2.0]}
    b = {"site": [2, 3], "mean": [0.25, 0.3], "std": [2.5, 3.0]}
    assert merge_site_stats(a, b) == {"site": [1, 2, 3], "mean": [0.1, 0.25, 0.3], "std": [1.0, 2.5, 3.0]}
    assert merge_site_stats(None, b) == b
