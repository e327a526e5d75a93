"""Climate descriptors against hand computation; they read the training period's forcing only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.config import parse_config
from smfusion.data.climate import (add_descriptors, climate_indices, descriptor_names, location_encodings,
                                   mean_run_length, priestley_taylor_pet, sine_cycle, static_inputs)
from smfusion.errors import DataError

TIME = pd.date_range("2015-04-01", periods=365, freq="D")
DOY = np.asarray(TIME.day_of_year) - 1


def test_priestley_taylor_by_hand():
    # T = 20 C, SW = 250, LW = 350 W m-2: sigma T^4 = 418.77, Rn = 0.77*250 + 0.97*(350 - 418.77) = 125.79 W m-2
    # = 10.868 MJ m-2 d-1; es = 2.3382 kPa, Delta = 0.14474 kPa/C (FAO-56 table 2.4: 0.145), gamma = 0.067365;
    # PET = 1.26 * 0.14474 / 0.21210 * 10.868 / 2.45 = 3.814 mm/day
    assert priestley_taylor_pet(20.0, 250.0, 350.0) == pytest.approx(3.814, abs=0.002)
    assert priestley_taylor_pet(-20.0, 0.0, 150.0) == 0.0  # negative net radiation: no evaporative demand


def test_sine_cycle_recovers_amplitude_and_phase():
    t = 10 + 8 * np.sin(2 * np.pi * (DOY - 100) / 365.25)
    p = 2 * (1 + 0.5 * np.sin(2 * np.pi * (DOY - 150) / 365.25))
    d_t, s_t = sine_cycle(t[None], DOY)
    d_p, s_p = sine_cycle(p[None], DOY, relative=True)
    assert d_t[0] == pytest.approx(8, abs=0.05) and s_t[0] == pytest.approx(100, abs=0.5)
    assert d_p[0] == pytest.approx(0.5, abs=0.01) and s_p[0] == pytest.approx(150, abs=0.5)


def test_run_lengths():
    flag = np.array([[1, 1, 0, 1, 0, 0, 1, 1, 1, 0], [0] * 10], dtype=bool)
    np.testing.assert_allclose(mean_run_length(flag), [6 / 3, 0.0])


def _series():
    p = np.zeros((3, 365))
    p[0, [10, 11, 50]] = 30.0
    p[0, 100:110] = 2.0
    p[1] = 2 * (1 + 0.5 * np.sin(2 * np.pi * (DOY - 150) / 365.25))
    p[2] = p[0]
    p[2, 280:285] = 3.0  # January rain (snow at site 2)
    t = np.stack([10 + 8 * np.sin(2 * np.pi * (DOY - 100) / 365.25)] * 2
                 + [0.5 + 8 * np.sin(2 * np.pi * (DOY - 100) / 365.25)])
    return p, t


def test_climate_indices_by_hand():
    p, t = _series()
    pet = np.full_like(p, 1.5)
    idx = climate_indices(p, t, pet, TIME)
    # site 0: P total 110 mm over 365 days; high days P >= 5 * 0.30137 = 1.507 mm: 10, 11, 50 and 100..109 = 13
    # days in 3 runs; dry days (< 1 mm): the other 352 in 4 runs (0-9, 12-49, 51-99, 110-364)
    assert idx["p_mean"][0] == pytest.approx(110 / 365)
    assert idx["aridity"][0] == pytest.approx(1.5 / (110 / 365))
    assert idx["high_prec_freq"][0] == pytest.approx(13 / 365 * 365.25)
    assert idx["high_prec_dur"][0] == pytest.approx(13 / 3)
    assert idx["low_prec_freq"][0] == pytest.approx(352 / 365 * 365.25)
    assert idx["low_prec_dur"][0] == pytest.approx(88.0)
    assert idx["t_mean"][0] == pytest.approx(t[0].mean())
    assert idx["frac_snow"][0] == 0.0  # never at or below 0 C
    # site 1: P peaks 50 days after T: seasonality 0.5 * cos(2 pi 50 / 365.25) (summer rain, > 0)
    assert idx["p_seasonality"][1] == pytest.approx(0.5 * np.cos(2 * np.pi * 50 / 365.25), abs=0.01)
    # site 2: same rain, colder: the share of P on days with T <= 0, counted day by day
    snow = sum(p[2, d] for d in range(365) if t[2, d] <= 0.0) / p[2].sum()
    assert 0 < snow < 1 and idx["frac_snow"][2] == pytest.approx(snow)


def test_winter_rain_has_negative_seasonality():
    t = 10 + 8 * np.sin(2 * np.pi * (DOY - 100) / 365.25)
    p = 2 * (1 + 0.6 * np.sin(2 * np.pi * (DOY - 100 - 182.6) / 365.25))
    idx = climate_indices(p[None], t[None], np.ones((1, 365)), TIME)
    assert idx["p_seasonality"][0] == pytest.approx(-0.6, abs=0.02)


def test_location_encodings():
    xyz = location_encodings([0.0, 90.0, 45.0], [0.0, 10.0, -90.0], "xyz")
    norm = np.sqrt(xyz["x"] ** 2 + xyz["y"] ** 2 + xyz["z"] ** 2)
    np.testing.assert_allclose(norm, 1.0)
    np.testing.assert_allclose([xyz["x"][0], xyz["z"][1], xyz["y"][2]], [1.0, 1.0, -np.sqrt(0.5)], atol=1e-12)
    four = location_encodings([35.0, 35.0], [-100.0, -99.0], "fourier", [1000.0])
    assert sorted(four) == ["cosx1000", "cosy1000", "sinx1000", "siny1000"]
    assert four["siny1000"][0] == four["siny1000"][1] and four["sinx1000"][0] != four["sinx1000"][1]


def _ds(n_days=730):
    time = pd.date_range("2015-04-01", periods=n_days, freq="D")
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {"APCP_FORA": (("site", "time"), rng.gamma(0.5, 0.2, (4, n_days)), {"units": "kg m-2 h-1"}),
         "TMP_2_FORA": (("site", "time"), 285 + rng.normal(0, 5, (4, n_days)), {"units": "K"}),
         "DSWRF_FORA": (("site", "time"), 200 + rng.normal(0, 30, (4, n_days)), {"units": "W m-2"}),
         "DLWRF_FORA": (("site", "time"), 320 + rng.normal(0, 20, (4, n_days)), {"units": "W m-2"}),
         "SMAP_AM": (("site", "time"), rng.uniform(0.1, 0.4, (4, n_days))),
         "Sand": (("site",), rng.uniform(10, 80, 4))},
        coords={"site": np.arange(4), "time": time, "lat": ("site", [35.0, 36, 37, 38]),
                "lon": ("site", [-100.0, -99, -98, -97])})
    return ds


def _cfg(**desc):
    return parse_config({"data": {"dynamic": ["APCP_FORA", "TMP_2_FORA"], "static": ["Sand"], "target": ["SMAP_AM"]},
                         "periods": {"train": ["2015-04-01", "2016-03-31"], "test": ["2016-04-01", "2017-03-31"]},
                         "descriptors": desc})


def test_descriptors_use_the_training_forcing_only():
    cfg = _cfg(climate=["p_mean", "aridity", "t_mean", "frac_snow"], location="xyz")
    assert descriptor_names(cfg.descriptors) == ["clim_p_mean", "clim_aridity", "clim_t_mean", "clim_frac_snow",
                                                 "loc_x", "loc_y", "loc_z"]
    assert static_inputs(cfg) == ["Sand", *descriptor_names(cfg.descriptors)]
    ds = _ds()
    ref = add_descriptors(ds, cfg)
    train = ds.sel(time=slice("2015-04-01", "2016-03-31"))
    assert ref["clim_p_mean"].values == pytest.approx(train["APCP_FORA"].mean("time").values * 24, rel=1e-5)
    assert ref["clim_t_mean"].values == pytest.approx(train["TMP_2_FORA"].mean("time").values - 273.15, rel=1e-5)
    changed = ds.copy(deep=True)
    changed["SMAP_AM"][:] = 0.9  # the target
    changed["APCP_FORA"].loc[{"time": slice("2016-04-01", None)}] = 50.0  # forcing outside the training period
    out = add_descriptors(changed, cfg)
    for v in descriptor_names(cfg.descriptors):
        np.testing.assert_array_equal(out[v].values, ref[v].values)


def test_descriptors_refuse_unknown_units_and_short_periods():
    cfg = _cfg(climate=["p_mean"])
    ds = _ds()
    ds["APCP_FORA"].attrs["units"] = "inches"
    with pytest.raises(DataError, match="precipitation units"):
        add_descriptors(ds, cfg)
    with pytest.raises(DataError, match="need a year"):
        add_descriptors(_ds(200), cfg)


def test_no_descriptors_leaves_the_dataset_alone():
    ds = _ds()
    assert add_descriptors(ds, _cfg()) is ds
