"""Baselines on synthetic Datasets whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.data.climatology import day_of_year_365
from smfusion.errors import DataError
from smfusion.evaluation.baselines import climatology_baseline, linear_baseline

pytestmark = pytest.mark.filterwarnings("error")

TRAIN = ("2001-01-01", "2003-12-31")
TEST = ("2004-01-01", "2004-12-31")  # a leap year


def _dataset(n_sites=4, seed=0):
    rng = np.random.default_rng(seed)
    time = pd.date_range("2001-01-01", "2004-12-31", freq="D")
    slot = day_of_year_365(time.values)
    amp = rng.uniform(0.05, 0.15, n_sites)
    mean = rng.uniform(0.1, 0.3, n_sites)
    seasonal = mean[:, None] + amp[:, None] * np.sin(2 * np.pi * slot[None, :] / 365)
    x1 = rng.normal(size=(n_sites, time.size))
    x2 = rng.normal(5.0, 2.0, size=(n_sites, time.size))
    clay = rng.uniform(0, 50, n_sites)
    return xr.Dataset(
        {
            "seasonal": (("site", "time"), seasonal),
            "x1": (("site", "time"), x1),
            "x2": (("site", "time"), x2),
            "clay": ("site", clay),
            "linear": (("site", "time"), 2.0 + 3.0 * x1 - 0.5 * x2 + 0.04 * clay[:, None]),
        },
        coords={"site": np.arange(n_sites), "time": time,
                "lat": ("site", np.linspace(30, 45, n_sites)), "lon": ("site", np.linspace(-120, -80, n_sites))},
    )


def test_climatology_baseline_recovers_pure_seasonal_signal():
    ds = _dataset()
    rng = np.random.default_rng(5)
    keep = rng.random(ds["seasonal"].shape) > 0.5
    keep |= (ds["time"].dt.year == 2003).values  # gaps in 2001-2002; 2003 complete covers every slot
    ds["seasonal"] = ds["seasonal"].where(keep)
    pred = climatology_baseline(ds, "seasonal", TRAIN, TEST, window=1, min_count=1)
    truth = _dataset()["seasonal"].sel(time=slice(*TEST))
    assert pred.dims == ("site", "time")
    assert pred.sizes["time"] == 366 and str(pred.time.values[-1])[:10] == "2004-12-31"
    np.testing.assert_allclose(pred.values, truth.values, rtol=1e-12)
    assert "lat" in pred.coords and pred.attrs["baseline"] == "climatology"


def test_climatology_baseline_smooths_with_window():
    ds = _dataset()
    pred = climatology_baseline(ds, "seasonal", TRAIN, TEST, window=31)
    truth = ds["seasonal"].sel(time=slice(*TEST))
    err = np.abs(pred.values - truth.values)
    assert 0 < err.max() < 0.01  # a 31-day mean of a yearly sine is close but not exact


def test_climatology_baseline_ignores_test_period_target():
    ds = _dataset()
    ref = climatology_baseline(ds, "seasonal", TRAIN, TEST)
    ds["seasonal"].loc[{"time": slice(*TEST)}] = 99.0
    np.testing.assert_array_equal(climatology_baseline(ds, "seasonal", TRAIN, TEST).values, ref.values)


def test_climatology_baseline_falls_back_to_training_mean():
    ds = _dataset(n_sites=3)
    y = ds["seasonal"].copy()
    month = y["time"].dt.month
    # site 1: training data only in January -> climatology NaN for most of the year
    y[1] = y[1].where(month == 1)
    # site 2: no training data at all
    y[2] = y[2].where(y["time"] > np.datetime64("2003-12-31"))
    ds["seasonal"] = y
    pred = climatology_baseline(ds, "seasonal", TRAIN, TEST, window=31, min_count=5)
    jan_mean = float(y[1].sel(time=slice(*TRAIN)).mean())
    july = pred.sel(time="2004-07-15")
    assert float(july.sel(site=1)) == pytest.approx(jan_mean)
    jan15 = float(pred.sel(time="2004-01-15", site=1))
    assert jan15 != pytest.approx(jan_mean)  # a real climatology value where there is one
    assert np.isnan(pred.sel(site=2)).all()
    assert np.isfinite(pred.sel(site=0)).all()


def test_linear_baseline_recovers_exact_linear_function():
    ds = _dataset()
    rng = np.random.default_rng(7)
    ds["linear"] = ds["linear"].where(rng.random(ds["linear"].shape) > 0.7)  # sparse target
    pred = linear_baseline(ds, "linear", ["x1", "x2"], ["clay"], TRAIN, TEST)
    truth = _dataset()["linear"].sel(time=slice(*TEST))
    assert pred.dims == ("site", "time") and pred.sizes["time"] == 366
    np.testing.assert_allclose(pred.values, truth.values, rtol=1e-9, atol=1e-9)
    assert pred.attrs["baseline"] == "linear"


def test_linear_baseline_matches_plain_least_squares():
    ds = _dataset()
    rng = np.random.default_rng(8)
    noisy = ds["linear"] + rng.normal(0, 1.0, ds["linear"].shape)
    noisy[0, :500] = np.nan
    ds["noisy"] = noisy
    pred = linear_baseline(ds, "noisy", ["x1", "x2"], ["clay"], TRAIN, TEST)
    tr, te = ds.sel(time=slice(*TRAIN)), ds.sel(time=slice(*TEST))

    def design(sub):
        clay = np.broadcast_to(sub["clay"].values[:, None], sub["x1"].shape)
        cols = [np.ones(sub["x1"].size), sub["x1"].values.ravel(), sub["x2"].values.ravel(), clay.ravel()]
        return np.column_stack(cols)

    a, y = design(tr), tr["noisy"].values.ravel()
    ok = np.isfinite(y)
    coef = np.linalg.lstsq(a[ok], y[ok], rcond=None)[0]
    expect = (design(te) @ coef).reshape(pred.shape)
    np.testing.assert_allclose(pred.values, expect, rtol=1e-8, atol=1e-10)
    assert not np.allclose(coef, [2.0, 3.0, -0.5, 0.04], atol=1e-6)  # the noise did matter


def test_linear_baseline_uses_training_period_only_and_missing_inputs():
    ds = _dataset()
    ref = linear_baseline(ds, "linear", ["x1"], ["clay"], TRAIN, TEST)
    ds["linear"].loc[{"time": slice(*TEST)}] = 1e6
    again = linear_baseline(ds, "linear", ["x1"], ["clay"], TRAIN, TEST)
    np.testing.assert_array_equal(again.values, ref.values)
    ds["x1"][0, -1] = np.nan
    pred = linear_baseline(ds, "linear", ["x1"], ["clay"], TRAIN, TEST)
    assert np.isnan(pred.values[0, -1]) and np.isfinite(pred.values[0, :-1]).all()


def test_linear_baseline_constant_input_and_errors():
    ds = _dataset()
    ds["const"] = ("site", np.ones(ds.sizes["site"]))
    pred = linear_baseline(ds, "linear", ["x1", "x2"], ["clay", "const"], TRAIN, TEST)
    np.testing.assert_allclose(pred.values, ds["linear"].sel(time=slice(*TEST)).values, atol=1e-9)
    with pytest.raises(DataError):
        linear_baseline(ds, "linear", ["x1"], [], ("1990-01-01", "1990-12-31"), TEST)
    ds["linear"].loc[{"time": slice(*TRAIN)}] = np.nan
    with pytest.raises(DataError):
        linear_baseline(ds, "linear", ["x1"], [], TRAIN, TEST)
