"""The report's linear baseline sees the model's inputs: derived features and descriptors included."""

from __future__ import annotations

import numpy as np
import xarray as xr

from smfusion.config import parse_config
from smfusion.data.adapters import adapter_for
from smfusion.evaluation.report import _baseline


def _cfg(features: dict):
    return parse_config({
        "name": "t", "data": {"reader": "hydrodl", "dynamic": ["p"], "static": ["clay"], "target": ["y"]},
        "periods": {"train": ["2015-01-01", "2015-12-31"], "test": ["2016-01-01", "2016-12-31"]},
        "features": features, "model": {"name": "lstm", "hidden_size": 4}, "training": {"epochs": 1}})


def test_linear_baseline_uses_the_trailing_means_the_model_sees():
    rng = np.random.default_rng(0)
    time = xr.date_range("2015-01-01", "2016-12-31", freq="D")
    p = rng.gamma(0.5, 2.0, (6, time.size))
    p30 = np.stack([np.convolve(r, np.ones(30) / 30)[: r.size] for r in p])  # complete windows after day 29
    y = 0.1 + 0.02 * p30
    y[:, :29] = np.nan  # the first incomplete windows are not scored
    ds = xr.Dataset({"p": (("site", "time"), p), "y": (("site", "time"), y), "clay": ("site", rng.uniform(5, 40, 6))},
                    coords={"site": np.arange(6), "time": time})
    args = (ds, np.arange(6), np.arange(6), "y", ("2015-01-01", "2015-12-31"), ("2016-01-01", "2016-12-31"))
    with_means = _baseline("linear", adapter_for(_cfg({"antecedent": {"p": [30]}})), *args)
    without = _baseline("linear", adapter_for(_cfg({})), *args)
    truth = ds["y"].sel(time=slice("2016-01-01", "2016-12-31")).values
    assert np.nanmax(np.abs(with_means - truth)) < 1e-6  # the target is a linear function of p_mean30
    assert np.nanmax(np.abs(without - truth)) > 1e-3
