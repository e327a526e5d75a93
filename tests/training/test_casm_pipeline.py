"""Residual learning in the one pipeline (synthetic data): climatology on the training period,
anomaly round trip, switches off = old behaviour, uncertainty layers, transfer through train()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from smfusion.config import parse_config
from smfusion.data.adapters import Batches
from smfusion.data.adapters.sequence import SequenceAdapter
from smfusion.data.climatology import Climatology
from smfusion.data.loading import SiteSplit
from smfusion.data.sampling import to_arrays
from smfusion.data.seasonal import fit_seasonal, prepare
from smfusion.errors import ConfigError
from smfusion.evaluation.uncertainty import aleatoric_std, epistemic_std
from smfusion.runs import Run
from smfusion.training.run import train

TRAIN = ("2001-01-01", "2002-12-31")
TEST = ("2003-01-01", "2003-06-30")


def synthetic(n_site=6, seed=0) -> xr.Dataset:
    """sm = seasonal cycle (site-dependent level) + response to precipitation anomalies."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2000-11-01", TEST[1], freq="D")
    doy = time.day_of_year.values
    cyc = np.sin(2 * np.pi * doy / 365.25)
    p = np.clip(rng.gamma(0.5, 4.0, (n_site, time.size)) + 2 * cyc, 0, None)
    t = 10 + 15 * cyc + rng.normal(0, 2, (n_site, time.size))
    level = rng.uniform(0.1, 0.3, n_site)[:, None]
    wet = np.zeros_like(p)
    for i in range(1, time.size):
        wet[:, i] = 0.9 * wet[:, i - 1] + 0.01 * (p[:, i] - p.mean())
    sm = level + 0.05 * cyc + wet
    sm[:, rng.random(time.size) < 0.3] = np.nan  # gaps
    ds = xr.Dataset(
        {"P": (("site", "time"), p), "T": (("site", "time"), t), "sm": (("site", "time"), sm),
         "S": (("site",), rng.normal(size=n_site))},
        coords={"site": np.arange(n_site), "time": time, "lat": ("site", np.linspace(35, 45, n_site)),
                "lon": ("site", np.linspace(-110, -90, n_site))},
    )
    ds["sm"].attrs["units"] = "m3 m-3"
    return ds


def config(**over) -> "RunConfig":  # noqa: F821
    raw = {
        "name": "syn",
        "data": {"dynamic": ["P", "T"], "static": ["S"], "target": ["sm"]},
        "periods": {"train": list(TRAIN), "test": list(TEST), "warmup_days": 30},
        "model": {"name": "mlp", "hidden_size": 8, "dropout": 0.0, "num_layers": 2},
        "training": {"epochs": 2, "batch_size": 4, "seq_len": 20, "iterations_per_epoch": 5, "progress": False,
                     "ensemble": 2, "threads": 1},
    }
    for key, val in over.items():
        raw[key] = {**raw.get(key, {}), **val} if isinstance(val, dict) else val
    return parse_config(raw)


def test_switches_off_is_the_plain_pipeline():
    ds = synthetic()
    cfg = config()
    split = SiteSplit(ds.site.values, np.array([], int), ds.site.values)
    adapter = SequenceAdapter(cfg)
    adapter.fit(ds, split)
    arr = adapter.train_batches(ds, split, cfg.training).arrays
    sub = ds.sel(time=slice(*TRAIN))
    ref = to_arrays(sub, adapter.scaler, ["P", "T"], ["S"], ["sm"])
    np.testing.assert_array_equal(arr.x_dynamic, ref.x_dynamic)
    np.testing.assert_array_equal(arr.y, ref.y)
    assert prepare(sub, cfg) is sub  # nothing to do


def test_climatology_fitted_on_training_period_and_round_trip():
    ds = synthetic()
    cfg = config(seasonal={"target_mode": "anomaly", "input_mode": "anomaly", "window": 31, "min_count": 5},
                 features={"lags": {"P": [1]}})
    train_sites = np.array([0, 1, 2, 3, 4, 5])
    split = SiteSplit(train_sites, np.array([], int), train_sites)
    sea = fit_seasonal(cfg, ds, split)
    assert sea.anomalies == ["P", "T", "P_lag1", "sm"]
    hand = Climatology().fit(ds["sm"], window=31, min_count=5, period=TRAIN).filled()
    np.testing.assert_allclose(sea.clims["sm"].values, hand.values)
    # test-period values do not enter the climatology
    changed = ds.copy(deep=True)
    changed["sm"].loc[{"time": slice(*TEST)}] = 5.0
    np.testing.assert_array_equal(fit_seasonal(cfg, changed, split).clims["sm"].values, sea.clims["sm"].values)
    # anomaly = value - climatology for inputs and target
    sub = ds.sel(time=slice(*TEST))
    prep = prepare(sub, cfg, sea)
    c = sea.clims["T"].climatology_for(sub.time.values, site=sub.site.values).values
    np.testing.assert_allclose(prep["T"].values, sub["T"].values - c, rtol=1e-5, atol=1e-4)
    # round trip: normalised anomalies -> the adapter's to_physical -> the original values
    adapter = SequenceAdapter(cfg)
    adapter.fit(ds, split)
    z = adapter.scaler.transform("sm", prep["sm"].values)[..., None]
    back = adapter.to_physical(z, Batches({}, z, sub.site.values, sub.time.values))[..., 0]
    np.testing.assert_allclose(back, sub["sm"].values, atol=1e-5)


def test_climatology_inputs_are_the_input_climatology_on_the_day():
    """seasonal.climatology_inputs: the climatology an anomaly input is taken from becomes an input column."""
    ds = synthetic()
    cfg = config(seasonal={"target_mode": "anomaly", "input_mode": "anomaly", "climatology_inputs": ["T"]})
    split = SiteSplit(ds.site.values, np.array([], int), ds.site.values)
    sea = fit_seasonal(cfg, ds, split)
    sub = ds.sel(time=slice(*TEST))
    prep = prepare(sub, cfg, sea)
    c = sea.clims["T"].climatology_for(sub.time.values, site=sub.site.values).values
    np.testing.assert_allclose(prep["T_clim"].values, c, rtol=1e-6)
    np.testing.assert_allclose(prep["T"].values + prep["T_clim"].values, sub["T"].values, rtol=1e-5, atol=1e-4)
    adapter = SequenceAdapter(cfg)
    adapter.fit(ds, split)
    assert adapter.input_names() == ["P", "T", "T_clim", "S"]
    arr = adapter.train_batches(ds, split, cfg.training).arrays
    assert arr.x_dynamic.shape[-1] == 3 and np.isfinite(arr.x_dynamic[..., 2]).all()
    with pytest.raises(ConfigError, match="climatology_inputs"):
        config(seasonal={"input_mode": "anomaly", "climatology_inputs": ["Q"]})
    with pytest.raises(ConfigError, match="climatology_inputs"):
        config(seasonal={"climatology_inputs": ["T"]})  # inputs not taken as anomalies


def test_anomaly_target_needs_temporal_split():
    with pytest.raises(ConfigError, match="temporal"):
        config(seasonal={"target_mode": "anomaly"}, split={"kind": "kfold", "k": 3})
    with pytest.raises(ConfigError, match="log1p"):
        config(seasonal={"input_mode": "anomaly"}, normalization={"log1p": ["P"]})
    with pytest.raises(ConfigError, match="not in data.dynamic"):
        config(features={"lags": {"Q": [1]}})


@pytest.mark.parametrize("model", ["mlp", "lstm"])
def test_train_anomaly_mode_and_uncertainty(tmp_path, model):
    ds = synthetic()
    cfg = config(seasonal={"target_mode": "anomaly", "input_mode": "anomaly"}, model={"name": model},
                 features={"antecedent": {"P": [7]}})
    run_dir = train(cfg, tmp_path / "run", data=ds)
    assert (run_dir / "climatology" / "sm.nc").is_file() and (run_dir / "climatology" / "P_mean7.nc").is_file()
    run = Run.load(run_dir)
    sites = ds.site.values
    members, noisy = run.predict_members(ds, sites, TEST, noise_runs=3, noise=0.0)
    assert members.shape == (2, 6, 181, 1) and noisy.shape == (2, 3, 6, 181, 1)
    assert np.isfinite(members).all()
    # the climatology is added back: predictions live around the observed level, not around 0
    assert abs(np.nanmean(members) - np.nanmean(ds["sm"].sel(time=slice(*TEST)).values)) < 0.1
    assert np.allclose(aleatoric_std(noisy[..., 0]), 0.0)  # zero noise, zero spread
    assert np.allclose(epistemic_std(np.stack([members[0], members[0]])), 0.0)  # identical members
    assert epistemic_std(members).mean() > 0
    spread = [aleatoric_std(run.predict_members(ds, sites, TEST, noise_runs=4, noise=s, seed=1)[1][..., 0]).mean()
              for s in (0.05, 0.2, 0.8)]
    assert 0 < spread[0] < spread[1] < spread[2]
    pred = run.to_dataset(members, ds, run.adapter.eval_batches(ds, sites, TEST), noisy=noisy)
    assert "sm_aleatoric_std" in pred and "sm_ensemble_std" in pred


def test_transfer_through_train(tmp_path):
    ds = synthetic()
    src_dir = train(config(model={"name": "lstm"}), tmp_path / "src", data=ds)
    source = Run.load(src_dir)
    cfg = config(model={"name": "lstm"}, data={"dynamic": ["P"], "static": ["S"], "target": ["sm"]},
                 periods={"train": ["2002-10-01", "2002-12-31"], "test": list(TEST), "warmup_days": 30},
                 transfer={"from_run": str(src_dir), "freeze": ["lstm", "head"]})
    run = Run.load(train(cfg, tmp_path / "dst", data=ds))
    for m_src, m_dst in zip(source.members, run.members):
        for name in ("lstm.weight_hh_l0", "lstm.bias_ih_l0", "head.weight"):
            torch.testing.assert_close(m_src.state_dict()[name], m_dst.state_dict()[name])  # frozen: kept
        w_src, w_dst = m_src.input_layer[0].weight, m_dst.input_layer[0].weight
        assert w_dst.shape[1] == 2  # P, S (T dropped)
        assert not torch.allclose(w_src[:, [0, 2]], w_dst)  # unfrozen input layer was fine-tuned
    # shared variables keep the source normalisation
    run_sc, src_sc = run.adapter.scaler, source.adapter.scaler
    assert run_sc.mean["P"] == src_sc.mean["P"] and run_sc.mean["sm"] == src_sc.mean["sm"]
    with pytest.raises(ConfigError, match="unknown part"):
        train(config(model={"name": "lstm"}, transfer={"from_run": str(src_dir), "freeze": ["encoder"]}),
              tmp_path / "bad", data=ds)
