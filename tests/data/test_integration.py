"""Data-integration channels: the last retrieval known ``lead`` days before each day, its age, presence,
thinning, and that no channel reads a retrieval after d - lead."""

from __future__ import annotations

import numpy as np
import pytest

from smfusion.config import DataIntegrationConfig, parse_config
from smfusion.data.integration import channel_names, di_channels, last_retrieval, last_retrievals, thin, window_channels
from smfusion.data.sampling import Arrays
from smfusion.errors import ConfigError

NAN = np.nan


def test_last_retrieval_by_hand():
    y = np.array([[0.1, NAN, NAN, 0.4, NAN, NAN, NAN, NAN]])
    value, age, present = last_retrieval(y, 1, max_age=3)
    # day 0: nothing before it; days 1-3 see day 0 (ages 1-3); day 4 sees day 3; day 7: age 4 > 3, masked
    np.testing.assert_allclose(value[0], [0, 0.1, 0.1, 0.1, 0.4, 0.4, 0.4, 0])
    np.testing.assert_array_equal(age[0], [0, 1, 2, 3, 1, 2, 3, 0])
    np.testing.assert_array_equal(present[0], [0, 1, 1, 1, 1, 1, 1, 0])
    value, age, present = last_retrieval(y, 3, max_age=5)
    np.testing.assert_allclose(value[0], [0, 0, 0, 0.1, 0.1, 0.1, 0.4, 0.4])
    np.testing.assert_array_equal(age[0], [0, 0, 0, 3, 4, 5, 3, 4])


def test_lead_per_row_equals_one_lead_at_a_time():
    rng = np.random.default_rng(0)
    y = np.where(rng.random((5, 40)) < 0.4, rng.standard_normal((5, 40)), NAN)
    leads = np.array([1, 2, 3, 5, 7])
    v, a, p = last_retrieval(y, leads, max_age=10)
    for i, lead in enumerate(leads):
        vi, ai, pi = last_retrieval(y[i:i + 1], int(lead), max_age=10)
        np.testing.assert_array_equal(v[i], vi[0])
        np.testing.assert_array_equal(a[i], ai[0])
        np.testing.assert_array_equal(p[i], pi[0])


@pytest.mark.parametrize("lead", [1, 2, 3, 7])
def test_no_channel_reads_a_retrieval_after_d_minus_lead(lead):
    rng = np.random.default_rng(1)
    y = np.where(rng.random((4, 60, 2)) < 0.4, rng.standard_normal((4, 60, 2)), NAN).astype(np.float32)
    ref = di_channels(y, lead, 10)
    for cut in (5, 30, 50):
        z = y.copy()
        z[:, cut:] = np.where(rng.random(z[:, cut:].shape) < 0.5, rng.standard_normal(z[:, cut:].shape), NAN)
        got = di_channels(z, lead, 10)
        np.testing.assert_array_equal(got[:, :cut + lead], ref[:, :cut + lead])
        assert not np.array_equal(got, ref)
    assert channel_names(["a", "b"]) == ["di_a", "di_a_age", "di_a_present", "di_b", "di_b_age", "di_b_present"]


def test_thin_drops_at_the_row_rate():
    y = np.ones((3, 20000), dtype=np.float32)
    out = thin(y, np.array([0.0, 0.3, 0.9]), np.random.default_rng(2))
    frac = np.isnan(out).mean(axis=1)
    assert frac[0] == 0 and abs(frac[1] - 0.3) < 0.02 and abs(frac[2] - 0.9) < 0.02
    assert not np.isnan(y).any()  # the input is not touched


def test_window_channels_see_the_history_before_the_window():
    y = np.full((1, 30, 1), NAN, dtype=np.float32)
    y[0, 10, 0] = 0.5
    arr = Arrays(np.zeros((1, 30, 2), np.float32), np.zeros((1, 0), np.float32), y, np.arange(1), np.arange(30))
    di = DataIntegrationConfig(lead=1, max_age=10, thin=0.0)
    ch = window_channels(arr, np.array([0]), np.arange(15, 20)[None, :], di, np.random.default_rng(0))
    np.testing.assert_allclose(ch[0, :, 0], 0.5)  # the retrieval of day 10 precedes the window
    np.testing.assert_allclose(ch[0, :, 1], np.arange(5, 10) / 10)
    ch = window_channels(arr, np.array([0]), np.arange(22, 27)[None, :], di, np.random.default_rng(0))
    np.testing.assert_array_equal(ch[0, :, 2], 0)  # older than max_age


def test_config_section_checks():
    assert DataIntegrationConfig().leads == (1, 1)
    assert DataIntegrationConfig(train_leads=(1, 7), max_age=10).history_days() == 17
    for bad in ({"train_leads": (3, 2)}, {"lead": 5, "max_age": 4}, {"thin": 1.0}, {"lead": 0}, {"tau": 1}):
        with pytest.raises(ValueError):
            DataIntegrationConfig(**bad)
    base = {"data": {"reader": "hydrodl", "dynamic": ["APCP_FORA"], "target": ["SMAP_AM"]},
            "periods": {"train": ["2015-04-01", "2015-12-31"], "test": ["2016-01-01", "2016-03-31"]}}
    assert parse_config(base).data_integration is None
    assert parse_config({**base, "data_integration": {"lead": 2}}).data_integration.lead == 2
    with pytest.raises(ConfigError, match="data_integration"):
        parse_config({**base, "data_integration": {"lead": 1}, "data": {**base["data"], "lazy": {}}})


def test_last_k_retrievals_by_hand_and_causal():
    y = np.array([[0.1, NAN, 0.3, 0.4, NAN, NAN, NAN, NAN]])
    (v1, a1, p1), (v2, a2, p2) = last_retrievals(y, 1, max_age=4, k=2)
    np.testing.assert_array_equal(v1, last_retrieval(y, 1, max_age=4)[0])
    # the retrieval before the last one: day 3 sees days 2 and 0; day 5 sees 3 and 2; day 7 sees 3 (age 4), 2 (5: masked)
    np.testing.assert_allclose(v2[0], [0, 0, 0, 0.1, 0.3, 0.3, 0.3, 0])
    np.testing.assert_array_equal(a2[0], [0, 0, 0, 3, 2, 3, 4, 0])
    np.testing.assert_array_equal(p2[0], [0, 0, 0, 1, 1, 1, 1, 0])
    ch = di_channels(y[:, :, None].astype(np.float32), 1, 4, retrievals=2)
    assert ch.shape == (1, 8, 6)
    np.testing.assert_array_equal(ch[0, :, :3], di_channels(y[:, :, None].astype(np.float32), 1, 4)[0])
    np.testing.assert_allclose(ch[0, :, 3], v2[0])
    assert channel_names(["a"], 2) == ["di_a", "di_a_age", "di_a_present", "di_a_2", "di_a_2_age", "di_a_2_present"]
    rng = np.random.default_rng(3)
    z = np.where(rng.random((3, 50, 1)) < 0.4, rng.standard_normal((3, 50, 1)), NAN).astype(np.float32)
    ref = di_channels(z, 2, 10, retrievals=3)
    w = z.copy()
    w[:, 30:] = rng.standard_normal(w[:, 30:].shape)
    np.testing.assert_array_equal(di_channels(w, 2, 10, retrievals=3)[:, :32], ref[:, :32])
