"""Metrics against hand computation, NaN rules, min_count and vectorisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smfusion.evaluation import metrics as M

# any RuntimeWarning (e.g. from all-NaN rows) fails the test
pytestmark = pytest.mark.filterwarnings("error")

OBS = np.array([1.0, 2.0, 3.0, 4.0])
SIM = np.array([2.0, 2.0, 5.0, 3.0])
# d = sim - obs = [1, 0, 2, -1]; obs dev = [-1.5, -.5, .5, 1.5]; sim dev = [-1, -1, 2, 0]
R_HAND = 3.0 / math.sqrt(5.0 * 6.0)


def test_bias_rmse_ubrmse_by_hand():
    assert M.bias(OBS, SIM) == pytest.approx(0.5)
    assert M.rmse(OBS, SIM) == pytest.approx(math.sqrt(6 / 4))
    assert M.ubrmse(OBS, SIM) == pytest.approx(math.sqrt(1.5 - 0.25))


def test_pearson_nse_by_hand():
    assert M.pearson_r(OBS, SIM) == pytest.approx(R_HAND)
    assert M.nse(OBS, SIM) == pytest.approx(1 - 6 / 5)
    assert M.nse(OBS, OBS) == pytest.approx(1.0)
    assert M.nse(OBS, np.full(4, 2.5)) == pytest.approx(0.0)  # predicting the obs mean


def test_kge_by_hand():
    # sim = 2 * obs: r = 1, alpha = 2, beta = 2 -> 1 - sqrt(2)
    assert M.kge([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(1 - math.sqrt(2))
    alpha = math.sqrt(6 / 4) / math.sqrt(5 / 4)
    beta = 3.0 / 2.5
    expect = 1 - math.sqrt((R_HAND - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)
    assert M.kge(OBS, SIM) == pytest.approx(expect)
    assert M.kge(OBS, OBS) == pytest.approx(1.0)


def test_anomaly_r_subtracts_each_climatology():
    clim_o = np.array([0.0, 1.0, 0.0, 1.0])
    clim_s = np.array([1.0, 0.0, 1.0, 0.0])
    expect = M.pearson_r(OBS - clim_o, SIM - clim_s)
    assert M.anomaly_r(OBS, SIM, clim_o, clim_s) == pytest.approx(expect)
    assert M.anomaly_r(OBS, SIM, clim_o, clim_s) != pytest.approx(M.pearson_r(OBS, SIM))
    # NaN in a climatology drops that pair
    clim_o2 = clim_o.copy()
    clim_o2[0] = np.nan
    assert M.anomaly_r(OBS, SIM, clim_o2, clim_s) == pytest.approx(M.pearson_r((OBS - clim_o)[1:], (SIM - clim_s)[1:]))


def test_nan_in_either_drops_the_pair():
    obs = np.array([1.0, np.nan, 2.0, 3.0, 4.0, 7.0])
    sim = np.array([2.0, 9.0, 2.0, 5.0, 3.0, np.nan])
    for name, f in M.METRICS.items():
        assert f(obs, sim) == pytest.approx(f(OBS, SIM)), name
    assert M.count(obs, sim) == 4


def test_inf_is_treated_as_missing():
    obs = np.array([1.0, np.inf, 2.0, 3.0, 4.0])
    sim = np.array([2.0, 1.0, 2.0, 5.0, 3.0])
    assert M.rmse(obs, sim) == pytest.approx(M.rmse(OBS, SIM))


def test_all_nan_rows_give_nan_without_warnings():
    obs = np.array([[np.nan] * 4, OBS])
    sim = np.array([[1.0, 2.0, 3.0, 4.0], SIM])
    res = M.compute_all(obs, sim)
    assert res["n"].tolist() == [0, 4]
    for name in M.METRICS:
        assert np.isnan(res[name][0]), name
        assert np.isfinite(res[name][1]), name


def test_min_count():
    o, s = np.array([1.0, 2.0, np.nan]), np.array([1.5, 2.5, 3.0])
    assert M.bias(o, s) == pytest.approx(0.5)  # 2 pairs >= default 2
    assert np.isnan(M.bias(o, s, min_count=3))
    assert np.isnan(M.rmse(o[:1], s[:1]))  # one pair < 2
    assert np.isnan(M.pearson_r(o, s))  # R needs 3 by default
    assert M.pearson_r(o, s, min_count=2) == pytest.approx(1.0)
    assert np.isnan(M.kge(o, s))
    with pytest.raises(ValueError):
        M.bias(o, s, min_count=0)


def test_undefined_statistics_are_nan():
    const = np.array([2.0, 2.0, 2.0, 2.0])
    assert np.isnan(M.pearson_r(const, OBS))
    assert np.isnan(M.pearson_r(OBS, const))
    assert np.isnan(M.nse(const, OBS))
    assert np.isnan(M.kge(const, OBS))
    assert np.isnan(M.kge(np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 3.0])))  # mean(obs) = 0


def _reference(name, o, s):
    """Plain per-row reference implementations, independent of the module."""
    ok = np.isfinite(o) & np.isfinite(s)
    o, s = o[ok], s[ok]
    if name in ("pearson_r", "kge") and o.size < 3 or o.size < 2:
        return np.nan
    d = s - o
    if name == "bias":
        return d.mean()
    if name == "rmse":
        return np.sqrt((d**2).mean())
    if name == "ubrmse":
        return np.sqrt((d**2).mean() - d.mean() ** 2)
    r = np.corrcoef(o, s)[0, 1]
    if name == "pearson_r":
        return r
    if name == "nse":
        return 1 - (d**2).sum() / ((o - o.mean()) ** 2).sum()
    if name == "kge":
        return 1 - np.sqrt((r - 1) ** 2 + (s.std() / o.std() - 1) ** 2 + (s.mean() / o.mean() - 1) ** 2)
    raise KeyError(name)


def test_vectorised_equals_per_row_loop():
    rng = np.random.default_rng(0)
    obs = rng.uniform(0.05, 0.5, (7, 60))
    sim = obs + rng.normal(0.02, 0.05, obs.shape)
    obs[rng.random(obs.shape) < 0.3] = np.nan
    sim[rng.random(obs.shape) < 0.1] = np.nan
    obs[5, :] = np.nan  # all missing
    obs[6, 2:] = np.nan  # two pairs at most
    for name, f in M.METRICS.items():
        vec = f(obs, sim)
        assert vec.shape == (7,)
        loop = np.array([_reference(name, obs[i], sim[i]) for i in range(7)])
        np.testing.assert_allclose(vec, loop, rtol=1e-10, equal_nan=True, err_msg=name)
        # axis argument: same result on the transposed layout
        np.testing.assert_allclose(f(obs.T, sim.T, axis=0), vec, rtol=1e-12, equal_nan=True)
    # axis=None pools everything
    ok = np.isfinite(obs) & np.isfinite(sim)
    assert M.rmse(obs, sim, axis=None) == pytest.approx(np.sqrt(((sim - obs)[ok] ** 2).mean()))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=3, max_size=30))
# tiny variances: var_obs * var_sim once underflowed and gave |r| = 1.00000014
@example([(0.0, 6.773917264889351e-07), (1.1863590995564904e-152, 0.0), (1.1863590995564904e-152, 0.0)])
def test_rmse_decomposition_and_r_bounds(pairs):
    o, s = np.array(pairs).T
    b, r2, u = M.bias(o, s), M.rmse(o, s), M.ubrmse(o, s)
    assert r2**2 == pytest.approx(b**2 + u**2, abs=1e-9)
    r = M.pearson_r(o, s)
    assert np.isnan(r) or -1 - 1e-12 <= r <= 1 + 1e-12


def test_compute_all_keys_and_subset():
    res = M.compute_all(OBS[None, :], SIM[None, :])
    assert list(res) == ["n"] + list(M.METRICS)
    assert res["rmse"][0] == pytest.approx(math.sqrt(1.5))
    sub = M.compute_all(OBS, SIM, metrics=["bias"], clim_obs=np.zeros(4), clim_sim=np.ones(4))
    assert set(sub) == {"n", "bias", "anomaly_r"}
    assert sub["anomaly_r"] == pytest.approx(R_HAND)  # constant climatologies do not change r
    with pytest.raises(KeyError):
        M.compute_all(OBS, SIM, metrics=["nope"])
    with pytest.raises(ValueError):
        M.compute_all(OBS, SIM, clim_obs=np.zeros(4))


def test_interval_coverage_by_hand():
    obs = np.array([0.0, 1.0, 2.0, 3.0, np.nan])
    # z(0.9) = 1.645: 0 and 1 inside, 2 and 3 outside, NaN dropped
    assert M.interval_coverage(obs, 0.0, 1.0, level=0.9) == pytest.approx(0.5)
    # z(0.99) = 2.576: 0, 1, 2 inside
    assert M.interval_coverage(obs, 0.0, 1.0, level=0.99) == pytest.approx(0.75)
    per_site = M.interval_coverage(np.array([[0.0, 5.0], [0.0, 0.5]]), 0.0, 1.0, level=0.9)
    np.testing.assert_allclose(per_site, [0.5, 1.0])
    with pytest.raises(ValueError):
        M.interval_coverage(obs, 0.0, 1.0, level=1.0)
    with pytest.raises(ValueError):
        M.interval_coverage(obs, 0.0, -1.0)


def test_interval_coverage_calibrated_gaussian():
    rng = np.random.default_rng(1)
    std = rng.uniform(0.5, 2.0, 200_000)
    obs = rng.normal(0.0, std)
    for level in (0.5, 0.9):
        assert M.interval_coverage(obs, 0.0, std, level=level, axis=None) == pytest.approx(level, abs=0.005)
    assert M.interval_coverage(obs, 0.0, std / 2, level=0.9, axis=None) < 0.7  # overconfident


def test_spread_skill_by_hand():
    std = np.array([1.0, 1.0, 2.0, 2.0, np.nan])
    err = np.array([1.0, -1.0, 2.0, -2.0, 0.0])
    res = M.spread_skill(err, np.zeros(5), std, n_bins=2)
    np.testing.assert_allclose(res["bin_edges"], [1.0, 1.5, 2.0])
    np.testing.assert_allclose(res["mean_std"], [1.0, 2.0])
    np.testing.assert_allclose(res["rms_std"], [1.0, 2.0])
    np.testing.assert_allclose(res["rmse"], [1.0, 2.0])
    assert res["count"].tolist() == [2, 2]
    # a bin below min_count is NaN
    res = M.spread_skill(err, np.zeros(5), std, n_bins=2, min_count=3)
    assert np.isnan(res["rmse"]).all()


def test_spread_skill_calibrated_gaussian():
    rng = np.random.default_rng(2)
    std = rng.uniform(0.1, 1.0, 100_000)
    obs = rng.normal(0.0, std)
    res = M.spread_skill(obs, np.zeros_like(obs), std, n_bins=5)
    assert res["count"].sum() == obs.size
    np.testing.assert_allclose(res["rmse"], res["rms_std"], rtol=0.03)
    assert np.all(np.diff(res["rmse"]) > 0)


@pytest.mark.realdata
def test_reproduces_published_hydrodl_scores(conus_root):
    """Median per-cell scores of the hydroDL LSTM match the data README's table."""
    import pandas as pd

    root = conus_root
    obs = pd.read_csv(root / "CONUSv4f1/2016/SMAP_AM.csv", header=None).to_numpy(float)
    obs[obs == -9999] = np.nan
    stat = pd.read_csv(root / "Statistics/SMAP_AM_stat.csv", header=None).to_numpy(float).ravel()
    norm = pd.read_csv(root / "reference/hydrodl_lstm_ep100_test_2016_normalized.csv", header=None)
    sim = norm.to_numpy(float) * stat[3] + stat[2]
    res = M.compute_all(obs, sim)
    assert np.nanmedian(res["rmse"]) == pytest.approx(0.0332, abs=5e-5)
    assert np.nanmedian(res["ubrmse"]) == pytest.approx(0.0294, abs=5e-5)
    assert np.nanmedian(res["pearson_r"]) == pytest.approx(0.841, abs=5e-4)
    assert np.nanmedian(res["bias"]) == pytest.approx(0.0085, abs=5e-5)
