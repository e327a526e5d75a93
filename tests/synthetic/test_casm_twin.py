"""The CASM twin: canonical layout on M25, sensor eras, physics wiring, drift, target retrieval, resampled years."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from smfusion.evaluation.metrics import pearson_r
from smfusion.grids.ease2 import rowcol_to_latlon
from smfusion.synthetic.casm_sensors import SENSORS
from smfusion.synthetic.casm_twin import _temperatures, make_casm_twin, resample_years, retrieve_single_channel
from smfusion.synthetic.emission import (fresnel_reflectivity, mironov_permittivity, rough_reflectivity, tau_omega,
                                         vegetation_opacity)

KW = dict(n_cells=12, start="2009-01-01", end="2016-12-31")


@pytest.fixture(scope="module")
def twin(conus_root):
    return make_casm_twin(conus_root, seed=1, **KW)


def test_layout_and_coords(twin):
    assert twin.sizes == {"site": 12, "time": pd.date_range("2009-01-01", "2016-12-31").size}
    tb_vars = {"tb_h_smos", "tb_v_smos", "tb_h_smap", "tb_v_smap", "tb_h_amsre_06", "tb_v_amsre_10",
               "tb_h_amsr2_06", "tb_v_amsr2_10"}
    assert tb_vars <= set(twin.data_vars) and {"sm_true", "sm_smap"} <= set(twin.data_vars)
    assert all(twin[v].dims == ("site", "time") for v in tb_vars | {"sm_true", "sm_smap"})
    lat, lon = rowcol_to_latlon("M25", twin["row"].values, twin["col"].values)
    np.testing.assert_allclose(twin["lat"].values, lat)
    np.testing.assert_allclose(twin["lon"].values, lon)
    assert twin.attrs["ease2_grid"] == "M25" and twin.attrs["era_amsre"] == "2002-06-19/2011-10-04"
    assert twin.attrs["variables_amsr2"].split() == ["tb_h_amsr2_06", "tb_v_amsr2_06", "tb_h_amsr2_10",
                                                     "tb_v_amsr2_10"]
    assert np.unique(twin["row"].values * 10_000 + twin["col"].values).size == 12


def test_eras_frozen_days_and_sampling(twin):
    t = pd.DatetimeIndex(twin["time"].values)
    for name, spec in SENSORS.items():
        era = (t >= pd.Timestamp(spec.start)) & (t <= pd.Timestamp(spec.end))
        for var in twin.attrs[f"variables_{name}"].split():
            v = twin[var].values
            assert np.isnan(v[:, ~era]).all(), var
            seen = np.isfinite(v[:, era]).mean()
            assert 0.2 * spec.pass_fraction < seen <= spec.pass_fraction + 0.02, (var, seen)
    target = twin["sm_smap"].values
    assert np.isnan(target[:, t < pd.Timestamp("2015-03-31")]).all() and np.isfinite(target).sum() > 1000
    frozen = twin["tair"].values <= 273.15
    assert frozen.any() and np.isnan(twin["tb_v_smos"].values[frozen]).all()


def test_tb_follows_soil_moisture_more_at_l_band(twin):
    truth = twin["sm_true"].values
    r = {v: np.nanmedian(pearson_r(truth, twin[v].values)) for v in ("tb_h_smos", "tb_h_smap", "tb_h_amsre_06",
                                                                     "tb_h_amsr2_10")}
    assert r["tb_h_smos"] < -0.7 and r["tb_h_smap"] < -0.7
    assert r["tb_h_amsre_06"] < -0.4 and r["tb_h_amsr2_10"] < -0.4
    assert r["tb_h_smap"] < r["tb_h_amsre_06"] and r["tb_h_smos"] < r["tb_h_amsr2_10"]  # L-band sees more
    assert np.nanmedian(pearson_r(truth, twin["sm_smap"].values)) > 0.9
    assert 0.02 <= np.nanmin(twin["sm_smap"].values) and np.nanmax(twin["sm_smap"].values) <= 0.5


def test_noise_free_sensor_is_the_tau_omega_model(conus_root):
    quiet = {k: replace(s, nedt=0.0, bias_h=0.0, bias_v=0.0, drift=0.0, rfi=0.0) for k, s in SENSORS.items()}
    ds = make_casm_twin(conus_root, seed=2, sensors=quiet, **KW)
    spec = quiet["smos"]
    ch = spec.channels[0]
    i, j = np.argwhere(np.isfinite(ds["tb_v_smos"].values))[100]
    sm, vwc = float(ds["sm_true"].values[i, j]), float(ds["vwc_true"].values[i, j])
    eps = mironov_permittivity(ch.freq_ghz, sm, float(ds["clay"].values[i]))
    r_h, r_v = rough_reflectivity(*fresnel_reflectivity(eps, spec.incidence), spec.incidence,
                                  h=float(ds["roughness_h"].values[i]))
    tau = vegetation_opacity(vwc, ch.b * float(ds["b_factor"].values[i]))
    t_eff, t_surf = _temperatures(ds["tair"].values.astype(float), ds["vwc_true"].values.astype(float),
                                  pd.DatetimeIndex(ds["time"].values), spec)
    for pol, r in (("h", r_h), ("v", r_v)):
        expect = tau_omega(r, t_eff[i, j], t_surf[i, j], tau, ch.omega, spec.incidence)
        assert float(ds[f"tb_{pol}_smos"].values[i, j]) == pytest.approx(expect, abs=0.02)


def test_drift_adds_a_linear_trend(conus_root):
    base = {k: replace(s, drift=0.0) for k, s in SENSORS.items()}
    drifting = dict(base, smos=replace(base["smos"], drift=0.5))
    a = make_casm_twin(conus_root, seed=3, sensors=base, **KW)
    b = make_casm_twin(conus_root, seed=3, sensors=drifting, **KW)
    t = pd.DatetimeIndex(a["time"].values)
    years = (t - pd.Timestamp(SENSORS["smos"].start)).days.values / 365.25
    diff = b["tb_h_smos"].values - a["tb_h_smos"].values
    ok = np.isfinite(diff)
    np.testing.assert_allclose(diff[ok], np.broadcast_to(0.5 * years, diff.shape)[ok], atol=1e-3)
    np.testing.assert_array_equal(a["tb_v_amsre_06"].values, b["tb_v_amsre_06"].values)


def test_same_seed_same_twin(conus_root, twin):
    again = make_casm_twin(conus_root, seed=1, **KW)
    np.testing.assert_array_equal(again["tb_v_amsr2_06"].values, twin["tb_v_amsr2_06"].values)
    other = make_casm_twin(conus_root, seed=5, **KW)
    assert not np.array_equal(other["sm_true"].values, twin["sm_true"].values)


def test_single_channel_retrieval_inverts_the_forward_model():
    mv = np.array([0.03, 0.1, 0.2, 0.3, 0.45])
    clay, h = np.array([0.25]), np.array([0.12])
    eps = mironov_permittivity(1.41, mv, 0.25)
    _, r_v = rough_reflectivity(*fresnel_reflectivity(eps, 40.0), 40.0, h=0.12)
    tau = vegetation_opacity(np.full(5, 2.5), 0.11)
    tb = tau_omega(r_v, 295.0, 295.0, tau, 0.05, 40.0)
    out = retrieve_single_channel(tb, np.full(5, 295.0), tau, 0.05, 40.0, h, clay, np.zeros(5, int), 1.41, 1)
    np.testing.assert_allclose(out, mv, atol=1e-3)


def test_resample_years_copies_whole_water_years():
    dates = pd.date_range("2002-01-01", "2006-12-31")
    idx, drawn = resample_years("2015-04-01", 3, dates, np.random.default_rng(0))
    src = pd.Timestamp("2015-04-01") + pd.to_timedelta(idx, "D")
    assert np.all((src.month == dates.month))
    leap_day = (dates.month == 2) & (dates.day == 29)
    assert np.all(src.day[~leap_day] == dates.day[~leap_day]) and np.all(src.day[leap_day] >= 28)
    assert set(drawn) <= {2015, 2016, 2017} and idx.min() >= 0 and idx.max() < 1096


def test_cli_writes_the_twin(conus_root, tmp_path, monkeypatch):
    import xarray as xr

    from smfusion.cli.main import main

    monkeypatch.setenv("SMFUSION_DATA_DIR", str(conus_root.parent))
    out = tmp_path / "twin.nc"
    assert main(["casm-twin", "--out", str(out), "--cells", "5", "--start", "2014-01-01", "--end", "2015-12-31",
                 "--dielectric", "dobson"]) == 0
    with xr.open_dataset(out) as ds:
        assert ds.sizes["site"] == 5 and ds.attrs["dielectric_model"] == "dobson"
        assert np.isfinite(ds["tb_v_smap"].values).any() and ds["sm_smap"].dims == ("site", "time")
