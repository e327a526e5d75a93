"""Homogeneity checks on series with a known trend, jump and variance change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smfusion.evaluation.homogeneity import (decimal_years, homogeneity, mean_jump, summarize_homogeneity, trend,
                                             variance_ratio)

TIME = pd.date_range("2005-01-01", "2016-12-31", freq="D")
YEARS = decimal_years(TIME)


def _ar1(rng, shape, phi, sd):
    e = rng.normal(0.0, sd * np.sqrt(1 - phi**2), shape)
    x = np.empty(shape)
    x[..., 0] = rng.normal(0.0, sd, shape[:-1])
    for k in range(1, shape[-1]):
        x[..., k] = phi * x[..., k - 1] + e[..., k]
    return x


def test_trend_recovers_known_slopes_per_site_with_gaps():
    rng = np.random.default_rng(0)
    slopes = np.array([0.0, 0.002, -0.005, 0.02])
    d = 0.01 + slopes[:, None] * YEARS[None, :] + rng.normal(0, 0.01, (4, YEARS.size))
    d[rng.random(d.shape) < 0.6] = np.nan  # sparse sampling, as a 3-day product with gaps
    b, se, n = trend(d, TIME)
    np.testing.assert_allclose(b, slopes, atol=4 * se.max())
    assert se.max() < 0.0005 and np.all(n > 1000)
    for k in range(4):  # vectorised == one site at a time
        bk, sek, _ = trend(d[k], TIME)
        assert bk == pytest.approx(b[k], rel=1e-12) and sek == pytest.approx(se[k], rel=1e-12)


def test_autocorrelated_residuals_widen_the_standard_error():
    rng = np.random.default_rng(1)
    white = rng.normal(0, 0.02, (50, YEARS.size))
    red = _ar1(rng, (50, YEARS.size), 0.9, 0.02)
    _, se_w, _ = trend(white, TIME)
    b_r, se_r, _ = trend(red, TIME)
    assert np.median(se_r) > 3 * np.median(se_w)
    # the corrected error is about right: the spread of trends of trend-free AR(1) series
    assert 0.5 < np.std(b_r) / np.median(se_r) < 2.0


def test_mean_jump_and_variance_ratio_at_a_boundary():
    rng = np.random.default_rng(2)
    boundary = "2011-10-04"
    after = TIME >= pd.Timestamp(boundary)
    d = rng.normal(0, 0.01, (3, TIME.size))
    d[0, after] += 0.02  # a mean jump
    d[1, after] *= 2.0  # a variance change (x4)
    jump, se = mean_jump(d, TIME, boundary, window_days=365)
    assert jump[0] == pytest.approx(0.02, abs=4 * se[0]) and abs(jump[2]) < 4 * se[2]
    ratio = variance_ratio(d, TIME, boundary, window_days=365)
    assert ratio[1] == pytest.approx(4.0, rel=0.25) and ratio[2] == pytest.approx(1.0, rel=0.25)
    # only the windows count: a jump outside them is not seen
    far = np.where(TIME >= pd.Timestamp("2014-01-01"), 0.05, 0.0)
    assert mean_jump(far, TIME, boundary, window_days=365)[0] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(mean_jump(d[:, :100], TIME[:100], boundary)[0]).all()  # no data after the boundary


def test_homogeneity_table_and_the_casm_criterion():
    rng = np.random.default_rng(3)
    ref = 0.2 + 0.05 * np.sin(2 * np.pi * YEARS)[None, :] + rng.normal(0, 0.02, (3, YEARS.size))
    prod = ref + np.array([[0.005], [0.02], [0.0]]) * YEARS[None, :] + rng.normal(0, 0.01, (3, YEARS.size))
    prod[2, TIME >= pd.Timestamp("2012-07-03")] += 0.01
    res = homogeneity(prod, ref, TIME, boundaries=["2011-10-04", "2012-07-03"])
    assert res["stable"].tolist() == [True, False, True]
    assert res["jump@2012-07-03"][2] == pytest.approx(0.01, abs=0.003)
    table = summarize_homogeneity(res)
    assert {"trend", "jump@2011-10-04", "variance_ratio@2012-07-03"} <= set(table.index)
    assert table.loc["stable (|trend| <= 0.01 per year)", "median"] == pytest.approx(2 / 3)
    assert table.loc["trend", "sites"] == 3
