"""Day-of-year climatology: hand computation, leap days, gaps, wrap, round trip, training period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.data.climatology import Climatology, day_of_year_365

pytestmark = pytest.mark.filterwarnings("error")


def _da(values, start, sites=("a",)):
    values = np.atleast_2d(np.asarray(values, dtype=float))
    time = pd.date_range(start, periods=values.shape[1], freq="D")
    return xr.DataArray(
        values,
        dims=("site", "time"),
        coords={"site": list(sites), "time": time, "lat": ("site", np.arange(len(sites)) + 30.0),
                "lon": ("site", np.arange(len(sites)) - 100.0)},
        name="sm",
    )


def _empty_year(year=2001, n_sites=1):
    n = 366 if pd.Timestamp(f"{year}-12-31").day_of_year == 366 else 365
    return np.full((n_sites, n), np.nan)


def _slot(date):
    return int(day_of_year_365([np.datetime64(date)])[0])


def test_day_of_year_365_calendar():
    dates = ["2003-01-01", "2003-02-28", "2003-03-01", "2003-12-31",
             "2004-02-28", "2004-02-29", "2004-03-01", "2004-12-31"]
    assert day_of_year_365(pd.to_datetime(dates)).tolist() == [0, 58, 59, 364, 58, 58, 59, 364]


def test_window_mean_by_hand():
    v = _empty_year()
    v[0, 9], v[0, 10], v[0, 11] = 1.0, 2.0, 6.0  # Jan 10, 11, 12
    clim = Climatology().fit(_da(v, "2001-01-01"), window=3, min_count=1)
    c = clim.values[0]
    assert c[10] == pytest.approx(3.0)  # (1 + 2 + 6) / 3
    assert c[9] == pytest.approx(1.5)  # (1 + 2) / 2, Jan 9 missing
    assert c[11] == pytest.approx(4.0)
    assert c[12] == pytest.approx(6.0)
    assert c[8] == pytest.approx(1.0)
    assert np.isnan(c[7]) and np.isnan(c[13])
    assert clim.counts[0, 7:14].tolist() == [0, 1, 2, 3, 2, 1, 0]
    # min_count: windows with fewer valid values are NaN
    c2 = Climatology().fit(_da(v, "2001-01-01"), window=3, min_count=2).values[0]
    assert np.isnan(c2[8]) and np.isnan(c2[12])
    assert c2[9] == pytest.approx(1.5)


def test_pools_years_and_averages_values():
    v = np.full((1, 730), np.nan)
    v[0, 100] = 1.0
    v[0, 365 + 100] = 3.0  # same day of year, next year
    c = Climatology().fit(_da(v, "2001-01-01"), window=1, min_count=1).values[0]
    assert c[100] == pytest.approx(2.0)
    assert np.isnan(c[99]) and np.isnan(c[101])


def test_window_wraps_at_year_end():
    v = np.full((1, 367), np.nan)  # 2001-01-01 .. 2002-01-02
    v[0, 363] = 10.0  # 2001-12-30
    v[0, 365] = 20.0  # 2002-01-01
    c = Climatology().fit(_da(v, "2001-01-01"), window=3, min_count=1).values[0]
    assert c[364] == pytest.approx(15.0)  # Dec 31 sees Dec 30 and Jan 1
    assert c[0] == pytest.approx(20.0)  # Jan 1 sees Dec 31 (missing), Jan 1, Jan 2 (missing)
    assert c[362] == pytest.approx(10.0)
    assert np.isnan(c[2])


def test_leap_day_shares_feb28_slot():
    v = _empty_year(2004)
    feb28 = pd.Timestamp("2004-02-28").day_of_year - 1
    v[0, feb28], v[0, feb28 + 1], v[0, feb28 + 2] = 1.0, 3.0, 10.0  # Feb 28, Feb 29, Mar 1
    clim = Climatology().fit(_da(v, "2004-01-01"), window=1, min_count=1)
    assert clim.values[0, 58] == pytest.approx(2.0)
    assert clim.values[0, 59] == pytest.approx(10.0)
    assert clim.values.shape == (1, 365)
    got = clim.climatology_for(pd.to_datetime(["2008-02-29", "2007-02-28", "2007-03-01", "2008-03-01"]))
    np.testing.assert_allclose(got.values[0], [2.0, 2.0, 10.0, 10.0])


def _naive(values, slots, window, min_count):
    """Slot-by-slot reference: mean of values within circular distance window // 2."""
    half = window // 2
    out = np.full((values.shape[0], 365), np.nan)
    for i in range(values.shape[0]):
        for j in range(365):
            dist = np.abs(slots - j)
            dist = np.minimum(dist, 365 - dist)
            sel = values[i, (dist <= half) & np.isfinite(values[i])]
            if sel.size >= min_count:
                out[i, j] = sel.mean()
    return out


def test_vectorised_matches_naive_with_gaps():
    rng = np.random.default_rng(0)
    da = _da(rng.normal(size=(3, 3 * 365 + 1)), "2003-06-01", sites=("a", "b", "c"))
    vals = da.values
    vals[rng.random(vals.shape) < 0.6] = np.nan
    vals[1, 100:400] = np.nan  # a long gap
    vals[2] = np.nan  # a site with no data at all
    clim = Climatology().fit(da, window=31, min_count=30)
    expect = _naive(vals, day_of_year_365(da.time.values), 31, 30)
    np.testing.assert_allclose(clim.values, expect, rtol=1e-10, atol=1e-12, equal_nan=True)
    assert np.isnan(clim.values[2]).all()
    # the gap leaves site b's windows short of min_count in some slots only
    assert np.isnan(clim.values[1]).any() and np.isfinite(clim.values[1]).any()
    assert np.isnan(clim.values[1]).sum() > np.isnan(clim.values[0]).sum()


def test_transform_and_round_trip():
    rng = np.random.default_rng(1)
    da = _da(rng.normal(size=(2, 800)), "2001-01-01", sites=("a", "b"))
    clim = Climatology().fit(da, window=11, min_count=3)
    anom = clim.transform(da)
    c = clim.climatology_for(da.time.values)
    assert c.dims == ("site", "time") and c["lat"].values.tolist() == [30.0, 31.0]
    np.testing.assert_allclose(anom.values, da.values - c.values)
    np.testing.assert_allclose(clim.inverse_transform(anom).values, da.values)
    # (time, site) layout and reordered sites are handled by label
    swapped = da.isel(site=[1, 0]).T
    anom2 = clim.transform(swapped)
    assert anom2.dims == ("time", "site")
    np.testing.assert_allclose(anom2.values, anom.isel(site=[1, 0]).T.values)
    with pytest.raises(ValueError):
        clim.transform(_da(np.zeros((1, 5)), "2001-01-01", sites=("zzz",)))


def test_fitted_on_training_period_only():
    rng = np.random.default_rng(2)
    da = _da(rng.normal(size=(2, 3 * 365)), "2001-01-01", sites=("a", "b"))
    period = ("2001-01-01", "2002-12-31")
    ref = Climatology().fit(da, window=31, min_count=5, period=period)
    changed = da.copy()
    changed.loc[{"time": slice("2003-01-01", None)}] = 100.0
    again = Climatology().fit(changed, window=31, min_count=5, period=period)
    np.testing.assert_array_equal(ref.values, again.values)
    sliced = Climatology().fit(da.sel(time=slice(*period)), window=31, min_count=5)
    np.testing.assert_array_equal(ref.values, sliced.values)
    full = Climatology().fit(changed, window=31, min_count=5)
    assert not np.allclose(full.values, ref.values)  # the test data would have changed it
    assert ref.period == period


def test_dataset_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    da = _da(rng.normal(size=(2, 400)), "2001-01-01", sites=("a", "b"))
    clim = Climatology().fit(da, window=7, min_count=2, period=("2001-01-01", "2001-12-31"))
    ds = clim.to_dataset()
    assert ds["climatology"].dims == ("site", "doy") and ds.sizes["doy"] == 365
    path = tmp_path / "clim.nc"
    ds.to_netcdf(path)
    with xr.open_dataset(path) as loaded:
        back = Climatology.from_dataset(loaded.load())
    np.testing.assert_array_equal(back.values, clim.values)
    np.testing.assert_array_equal(back.counts, clim.counts)
    assert (back.window, back.min_count, back.period) == (7, 2, ("2001-01-01", "2001-12-31"))
    np.testing.assert_allclose(back.transform(da).values, clim.transform(da).values)


def test_invalid_arguments():
    da = _da(np.zeros((1, 10)), "2001-01-01")
    with pytest.raises(ValueError):
        Climatology().fit(da, window=30)
    with pytest.raises(ValueError):
        Climatology().fit(da, min_count=0)
    with pytest.raises(ValueError):
        Climatology().fit(da, period=("1990-01-01", "1990-12-31"))
    with pytest.raises(RuntimeError):
        Climatology().transform(da)


def test_filled_uses_site_training_mean_where_short_of_min_count(tmp_path):
    v = _empty_year(2001, n_sites=2)
    v[0, 9], v[0, 10], v[0, 200] = 1.0, 2.0, 6.0
    clim = Climatology().fit(_da(v, "2001-01-01", sites=("a", "b")), window=3, min_count=2)
    assert np.isnan(clim.values[0, 200])  # one value: short of min_count
    f = clim.filled()
    assert f.values[0, 200] == pytest.approx(3.0)  # (1 + 2 + 6) / 3
    assert f.values[0, 10] == pytest.approx(1.5)  # windows with enough values unchanged
    assert np.isnan(f.values[1]).all()  # no data at all: still NaN
    assert np.isnan(clim.values[0, 200])  # the original is left alone
    back = Climatology.from_dataset(clim.to_dataset())
    np.testing.assert_array_equal(back.filled().values, f.values)
