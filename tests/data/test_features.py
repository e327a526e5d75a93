"""Lagged and antecedent features against hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.config import FeaturesConfig
from smfusion.data.features import add_features, feature_names


def test_lags_and_trailing_means_by_hand():
    v = np.array([[1.0, 2.0, np.nan, 4.0, 5.0, 6.0]])
    ds = xr.Dataset({"P": (("site", "time"), v)},
                    coords={"site": [7], "time": pd.date_range("2001-01-01", periods=6)})
    cfg = FeaturesConfig(lags={"P": [1, 2]}, antecedent={"P": [3]})
    assert feature_names(cfg) == ["P_lag1", "P_lag2", "P_mean3"]
    out = add_features(ds, cfg)
    np.testing.assert_array_equal(out["P_lag1"].values[0], [np.nan, 1, 2, np.nan, 4, 5])
    np.testing.assert_array_equal(out["P_lag2"].values[0], [np.nan, np.nan, 1, 2, np.nan, 4])
    # mean of the finite values among t-2..t (first days use what exists)
    np.testing.assert_allclose(out["P_mean3"].values[0], [1, 1.5, 1.5, 3, 4.5, 5])
    assert add_features(ds, FeaturesConfig()) is ds


def test_lags_and_windows_are_days_on_composited_data():
    """On N-day composites (attribute composite_days) a lag of k days is round(k / N) steps, a window of w days
    round(w / N) steps (at least one)."""
    v = np.array([[1.0, 2.0, 3.0, np.nan, 5.0, 6.0]])
    ds = xr.Dataset({"P": (("site", "time"), v)},
                    coords={"site": [7], "time": pd.date_range("2001-01-01", periods=6, freq="3D")},
                    attrs={"composite_days": 3})
    out = add_features(ds, FeaturesConfig(lags={"P": [3, 6]}, antecedent={"P": [3, 9]}))
    np.testing.assert_array_equal(out["P_lag3"].values[0], [np.nan, 1, 2, 3, np.nan, 5])
    np.testing.assert_array_equal(out["P_lag6"].values[0], [np.nan, np.nan, 1, 2, 3, np.nan])
    np.testing.assert_allclose(out["P_mean3"].values[0], v[0])  # one window: the composite itself
    np.testing.assert_allclose(out["P_mean9"].values[0], [1, 1.5, 2, 2.5, 4, 5.5])
