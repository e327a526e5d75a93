"""N-day compositing from the passes in each window, fixed to an origin; the polarization-ratio feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.config import FeaturesConfig
from smfusion.data.composite import composite_windows, snap_to_windows, window_index
from smfusion.data.features import add_features, feature_names


def _ds(start="2002-01-01", n=10):
    t = pd.date_range(start, periods=n)
    tb = np.array([[200.0, np.nan, 206.0, np.nan, np.nan, np.nan, 210.0, 211.0, 212.0, np.nan]])[:, :n]
    return xr.Dataset({"tb": (("site", "time"), tb), "clay": (("site",), [0.2])},
                      coords={"site": [4], "time": t, "lat": ("site", [40.0])})


def test_composite_is_the_mean_of_the_passes_in_fixed_windows():
    out = composite_windows(_ds(), 3, "2002-01-01")
    assert list(pd.DatetimeIndex(out.time.values).strftime("%m-%d")) == ["01-01", "01-04", "01-07", "01-10"]
    # passes of each window: {200, 206}, none, {210, 211, 212}, none
    np.testing.assert_allclose(out["tb"].values[0], [203.0, np.nan, 211.0, np.nan])
    assert out["clay"].values[0] == 0.2 and out.attrs["composite_days"] == 3
    # windows are fixed to the origin: a period starting mid-window composites the same days together
    shifted = composite_windows(_ds().isel(time=slice(1, None)), 3, "2002-01-01")
    assert pd.Timestamp(shifted.time.values[0]) == pd.Timestamp("2002-01-01")
    np.testing.assert_allclose(shifted["tb"].values[0][1:], [np.nan, 211.0, np.nan])
    assert composite_windows(_ds(), 1, "2002-01-01") is not None


def test_windows_and_snapping():
    assert list(window_index(pd.to_datetime(["2001-12-31", "2002-01-01", "2002-01-03", "2002-01-04"]), 3,
                             "2002-01-01")) == [-1, 0, 0, 1]
    assert snap_to_windows("2002-01-02", "2002-01-05", 3, "2002-01-01") == ("2002-01-01", "2002-01-06")


def test_polarization_ratio_feature_follows_its_pair():
    t = pd.date_range("2002-01-01", periods=3)
    ds = xr.Dataset({"h": (("site", "time"), [[200.0, np.nan, 180.0]]),
                     "v": (("site", "time"), [[250.0, 240.0, 260.0]])}, coords={"site": [0], "time": t})
    cfg = FeaturesConfig(polarization_ratio={"pr": ("h", "v")})
    out = add_features(ds, cfg)
    np.testing.assert_allclose(out["pr"].values[0], [50 / 450, np.nan, 80 / 440], rtol=1e-6)
    assert feature_names(cfg) == ["pr"] and feature_names(cfg, of=["h", "v"]) == ["pr"]
    assert feature_names(cfg, of=["h"]) == []  # an anomaly feature only when both of its TBs are


def test_config_checks_of_the_tb_sections():
    from smfusion.config import parse_config
    from smfusion.errors import ConfigError

    base = {"data": {"reader": "casm_twin", "adapter": "tb", "dynamic": ["tb_h_smos", "tb_v_smos"],
                     "target": ["sm_smap"]}, "periods": {"train": ["2015-04-01", "2016-03-31"]}}
    cfg = parse_config({**base, "features": {"polarization_ratio": {"pr_smos": ["tb_h_smos", "tb_v_smos"]}},
                        "seasonal": {"input_mode": "anomaly", "input_period": ["2010-01-12", "2020-12-31"]},
                        "tb": {"composite_days": 3}})
    assert cfg.seasonal.input_period.start == "2010-01-12" and cfg.tb.composite_days == 3
    with pytest.raises(ConfigError, match="polarization_ratio.pr names"):
        parse_config({**base, "features": {"polarization_ratio": {"pr": ["tb_h_smos", "tb_v_smap"]}}})
    with pytest.raises(ConfigError, match="tb_files section"):
        parse_config({**base, "data": {**base["data"], "reader": "tb_files"}})
    with pytest.raises(ConfigError, match="bbox must be"):
        parse_config({**base, "data": {**base["data"], "reader": "tb_files", "tb_files": {
            "bbox": [35, -100, 37, -98], "smos": {"paths": ["x"]}}}})
    with pytest.raises(ConfigError, match="at least one sensor"):
        parse_config({**base, "data": {**base["data"], "reader": "tb_files", "tb_files": {"rows": [1], "cols": [2]}}})
