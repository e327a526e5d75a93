"""Bucket water balance (data/water_balance.py) against hand computation, and as a config feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.config import FeaturesConfig
from smfusion.data.features import add_features, feature_names
from smfusion.data.water_balance import SPINUP_DAYS, bucket_saturation


def _by_hand(p, t, pet, c, f, s, w):
    out = []
    for pi, ti, ei in zip(p, t, pet):
        if ti <= 0:
            w += pi
            rain = 0.0
        else:
            rain = pi
        m = min(w, f * max(ti, 0.0))
        w -= m
        s = min(s + rain + m, c)
        s -= ei * s / c
        out.append(s / c)
    return out, s, w


def test_bucket_by_hand_with_the_first_year_cycled():
    rng = np.random.default_rng(3)
    n = 20  # shorter than the spin-up: the whole record is the spin-up year
    p = rng.gamma(0.5, 6.0, n)
    t = rng.normal(2.0, 4.0, n)
    pet = rng.uniform(0.0, 4.0, n)
    _, s0, w0 = _by_hand(p, t, pet, 30.0, 2.0, 30.0, 0.0)  # spin-up from a full bucket, no snow
    want, _, _ = _by_hand(p, t, pet, 30.0, 2.0, s0, w0)
    got = bucket_saturation(p[None], t[None], pet[None], 30.0, melt_mm_per_degc=2.0)
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    assert np.all((got >= 0) & (got <= 1))


def test_bucket_spin_up_is_the_first_year_only():
    n = SPINUP_DAYS + 50
    p = np.zeros((1, n))
    p[0, SPINUP_DAYS + 10] = 100.0  # rain after the spin-up year does not enter the initial state
    got = bucket_saturation(p, np.full((1, n), 15.0), np.full((1, n), 1.0), 50.0)
    _, s0, _ = _by_hand(p[0, :SPINUP_DAYS], [15.0] * SPINUP_DAYS, [1.0] * SPINUP_DAYS, 50.0, 3.0, 50.0, 0.0)
    want, _, _ = _by_hand(p[0], [15.0] * n, [1.0] * n, 50.0, 3.0, s0, 0.0)
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    assert got[0, SPINUP_DAYS + 10] == pytest.approx(1.0 - 1.0 / 50.0)  # filled (the excess runs off), then 1 mm ET


def test_snow_waits_for_melt_and_missing_days_are_nan():
    p = np.array([[0.0, 20.0, 0.0, 0.0, np.nan, 0.0]])
    t = np.array([[5.0, -3.0, -1.0, 4.0, 4.0, 4.0]])
    pet = np.zeros_like(p)
    s = bucket_saturation(p, t, pet, 100.0, melt_mm_per_degc=2.5)[0]
    # no PET: the bucket stays full whatever the snow does; with PET = 0 nothing leaves
    np.testing.assert_allclose(s[[0, 1, 2, 3, 5]], 1.0)
    assert np.isnan(s[4])
    with pytest.raises(ValueError, match="capacity"):
        bucket_saturation(p, t, pet, 0.0)


def test_bucket_features_from_forcing_with_units():
    time = pd.date_range("2001-06-01", periods=40)
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {"APCP_FORA": (("site", "time"), rng.gamma(0.3, 0.5, (2, 40)), {"units": "kg m-2 h-1"}),
         "TMP_2_FORA": (("site", "time"), rng.normal(293.0, 3.0, (2, 40)), {"units": "K"}),
         "DSWRF_FORA": (("site", "time"), rng.uniform(150, 300, (2, 40)), {"units": "W m-2"}),
         "DLWRF_FORA": (("site", "time"), rng.uniform(300, 380, (2, 40)), {"units": "W m-2"})},
        coords={"site": [1, 2], "time": time})
    cfg = FeaturesConfig(bucket={"capacities_mm": [20, 80]})
    assert feature_names(cfg) == ["bucket20", "bucket80"]
    assert feature_names(cfg, of=["APCP_FORA"]) == []
    out = add_features(ds, cfg)
    from smfusion.data.climate import priestley_taylor_pet

    pet = priestley_taylor_pet(ds.TMP_2_FORA.values - 273.15, ds.DSWRF_FORA.values, ds.DLWRF_FORA.values)
    want = bucket_saturation(ds.APCP_FORA.values * 24.0, ds.TMP_2_FORA.values - 273.15, pet, 80.0)
    np.testing.assert_allclose(out["bucket80"].values, want, rtol=1e-6)
    assert out["bucket20"].attrs["units"] == "1"
