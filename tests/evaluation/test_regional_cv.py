"""Regional CV end to end on a tiny synthetic reader, and the honesty check: held-out targets never
reach the scaler, the climate indices, the predicted target statistics, the sampler or the weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from smfusion.config import parse_config
from smfusion.data.adapters import adapter_for
from smfusion.data.loading import register_reader
from smfusion.data.spatial_cv import make_folds
from smfusion.errors import ConfigError
from smfusion.experiments.cv import MODEL, TEMPORAL, fold_config, run_cv
from smfusion.training.run import train

N_ROW, N_COL = 6, 7  # 42 cells on a 1-degree grid
PERTURB: dict = {"sites": [], "seed": 0}  # held-out sites whose target the reader scrambles


def _tiny() -> xr.Dataset:
    rng = np.random.default_rng(3)
    time = xr.date_range("2015-04-01", "2017-03-31", freq="D")
    lat, lon = np.meshgrid(35.0 + np.arange(N_ROW), -100.0 + np.arange(N_COL), indexing="ij")
    lat, lon = lat.ravel(), lon.ravel()
    n, t = lat.size, time.size
    doy = np.asarray(time.day_of_year)
    season = np.sin(2 * np.pi * (doy - 110) / 365.25)
    wet = 0.3 + 0.6 * (lon + 100) / N_COL  # wetter to the east
    p = rng.gamma(0.4, 1.0, (n, t)) * (rng.random((n, t)) < 0.3) * wet[:, None] / 4  # kg m-2 h-1
    temp = 283.0 + 12 * season[None, :] - 0.8 * (lat[:, None] - 35) + rng.normal(0, 2, (n, t))
    sw = 200 + 100 * season[None, :] + rng.normal(0, 20, (n, t))
    lw = 300 + 30 * season[None, :] + rng.normal(0, 10, (n, t))
    sand = rng.uniform(10, 80, n)
    sm = np.zeros((n, t))
    s = np.full(n, 0.2)
    for i in range(t):  # a leaky bucket: rain fills it, warm days dry it
        s = np.clip(s + 0.02 * p[:, i] * 24 - 0.004 * (1 + season[i]) * s / 0.3 - 0.0002 * sand / 50 * s, 0.03, 0.45)
        sm[:, i] = s
    sm = sm + rng.normal(0, 0.01, sm.shape)
    sm[rng.random(sm.shape) < 0.5] = np.nan  # a retrieval every other day or so
    ds = xr.Dataset(
        {"APCP_FORA": (("site", "time"), p.astype(np.float32), {"units": "kg m-2 h-1"}),
         "TMP_2_FORA": (("site", "time"), temp.astype(np.float32), {"units": "K"}),
         "DSWRF_FORA": (("site", "time"), sw.astype(np.float32), {"units": "W m-2"}),
         "DLWRF_FORA": (("site", "time"), lw.astype(np.float32), {"units": "W m-2"}),
         "Sand": (("site",), sand.astype(np.float32)),
         "SMAP_AM": (("site", "time"), sm.astype(np.float32), {"units": "m3 m-3"})},
        coords={"site": np.arange(n), "time": time, "lat": ("site", lat), "lon": ("site", lon)})
    if PERTURB["sites"]:
        r = np.random.default_rng(PERTURB["seed"])
        sel = ds["site"].isin(PERTURB["sites"]).values
        y = ds["SMAP_AM"].values.copy()
        y[sel] = r.uniform(0.0, 0.6, y[sel].shape)  # every held-out value replaced, gaps filled too
        ds["SMAP_AM"] = (("site", "time"), y, ds["SMAP_AM"].attrs)
    return ds


@register_reader("tiny_regional_test")
def _read_tiny(cfg, start, end):
    return _tiny().sel(time=slice(start, end))


def _cfg(**over) -> object:
    raw = {
        "name": "tiny_regional",
        "data": {"reader": "tiny_regional_test", "dynamic": ["APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "DLWRF_FORA"],
                 "static": ["Sand"], "target": ["SMAP_AM"]},
        "periods": {"train": ["2015-04-01", "2016-03-31"], "test": ["2016-04-01", "2017-03-31"], "warmup_days": 60},
        "normalization": {"log1p": ["APCP_FORA"], "target": "predicted"},
        "descriptors": {"climate": ["p_mean", "aridity", "p_seasonality", "low_prec_freq", "t_mean"],
                        "location": "xyz"},
        "features": {"antecedent": {"APCP_FORA": [7, 30], "TMP_2_FORA": [30]}},  # forcing only: covered below
        "model": {"name": "lstm", "hidden_size": 8, "dropout": 0.2},
        "training": {"epochs": 2, "batch_size": 8, "seq_len": 30, "iterations_per_epoch": 5, "progress": False,
                     "threads": 1, "lr": 0.01, "weight_decay": 1e-4},
        "cv": {"kind": "kmeans", "k": 4, "seed": 1, "buffer_km": 120.0, "periods": ["test", "train"],
               "temporal_reference": True, "baselines": ["idw_climatology", "idw_observations", "linear", "gbm"]},
    }
    for k, v in over.items():
        raw[k] = {**raw[k], **v} if isinstance(v, dict) else v
    return parse_config(raw)


@pytest.fixture(autouse=True)
def _no_perturbation():
    PERTURB["sites"] = []
    yield
    PERTURB["sites"] = []


def _fold0(cfg):
    ds = _tiny()
    return make_folds("kmeans", ds["site"].values, lat=ds.lat.values, lon=ds.lon.values, k=cfg.cv.k,
                      seed=cfg.cv.seed, buffer_km=cfg.cv.buffer_km)[0]


def _train_fold(cfg, fold, path):
    fcfg = fold_config(cfg, fold)
    adapter = adapter_for(fcfg)
    data = adapter.load()
    run_dir = train(fcfg, path, data=data)
    adapter.fit(data, adapter.split(data))
    sampler = adapter.train_batches(data, adapter.split(data), fcfg.training)
    batch = sampler.sample(np.random.default_rng(7))
    desc = {v: data[v].values.copy() for v in data.data_vars if v.startswith(("clim_", "loc_"))}
    return run_dir, batch, desc


def test_held_out_targets_never_reach_training(tmp_path):
    """Scramble every target value of the held-out and buffer cells: the fitted state, the descriptors, a
    sampled minibatch and the trained weights stay bit-for-bit the same."""
    cfg = _cfg(training={"ensemble": 2})
    fold = _fold0(cfg)
    assert fold["buffer"], "the test needs a buffer ring"
    ref_dir, ref_batch, ref_desc = _train_fold(cfg, fold, tmp_path / "ref")
    original = _tiny()["SMAP_AM"].sel(site=fold["test"]).values
    PERTURB["sites"], PERTURB["seed"] = fold["test"] + fold["buffer"], 11
    scrambled = _tiny()["SMAP_AM"].sel(site=fold["test"]).values
    assert np.isfinite(scrambled).all() and not np.allclose(np.nan_to_num(original), scrambled)
    new_dir, new_batch, new_desc = _train_fold(cfg, fold, tmp_path / "new")
    for name in ("scaler.yaml", "target_stats.yaml", "split.json"):
        assert (ref_dir / name).read_text() == (new_dir / name).read_text(), name
    assert ref_desc.keys() == new_desc.keys() and len(ref_desc) == 5 + 3
    for k in ref_desc:
        np.testing.assert_array_equal(ref_desc[k], new_desc[k])
    for k in ref_batch:
        np.testing.assert_array_equal(ref_batch[k], new_batch[k])
    for m in (0, 1):
        a = torch.load(ref_dir / f"member_{m}" / "model.pt", weights_only=True)
        b = torch.load(new_dir / f"member_{m}" / "model.pt", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_perturbing_a_training_target_does_change_training(tmp_path):
    """The check above can fail: scrambling a training cell's target changes the fitted statistics."""
    cfg = _cfg(training={"epochs": 1})
    fold = _fold0(cfg)
    ref_dir, _, _ = _train_fold(cfg, fold, tmp_path / "ref")
    PERTURB["sites"] = fold["train"][:3]
    new_dir, _, _ = _train_fold(cfg, fold, tmp_path / "new")
    assert (ref_dir / "target_stats.yaml").read_text() != (new_dir / "target_stats.yaml").read_text()


def test_regional_cv_end_to_end(tmp_path, monkeypatch):
    from smfusion.evaluation import regional_baselines

    monkeypatch.setitem(regional_baselines.GBM_PARAMS, "max_iter", 20)  # a quick forest: only the wiring is tested
    res = run_cv(_cfg(), tmp_path / "cv")
    folds = json.loads((tmp_path / "cv" / "folds.json").read_text())["folds"]
    assert len(folds) == 4 and sorted(s for f in folds for s in f["test"]) == list(range(N_ROW * N_COL))
    t = res.table
    assert set(t["period"]) == {"test", "train"}
    assert set(t.loc[t["period"] == "test", "row"]) >= {MODEL, TEMPORAL}
    assert t.loc[t["period"] == "train", "row"].nunique() == 5  # model + 4 baselines (no temporal row)
    for f in folds:  # scored on held-out cells only
        scored = set(t.loc[(t["fold"] == f["fold"]) & (t["row"] == MODEL), "site"])
        assert scored == set(f["test"])
    s = res.summary
    assert set(s["ubrmse_ratio"]) == {0, 1, 2, 3}
    assert s["pooled_median"] == {k: s["periods"]["test"][MODEL]["pooled"][k] for k in ("R", "RMSE", "ubRMSE", "bias")}
    assert set(s["per_fold_median"]) == {0, 1, 2, 3} and {"lat", "lon"} <= set(t.columns)
    med = s["periods"]["test"][MODEL]["pooled"]
    assert np.isfinite([med["R"], med["ubRMSE"]]).all()
    assert "held-out / temporal median ubRMSE" in res.text
    assert (tmp_path / "cv" / "temporal" / "member_0" / "model.pt").is_file()
    assert "120 km buffer ring" in (tmp_path / "cv" / "report.txt").read_text()


def test_cv_refuses_site_normalisation(tmp_path):
    cfg = _cfg(normalization={"target": "site"}, cv={"temporal_reference": False})
    with pytest.raises(ConfigError, match="normalization.target 'site'"):
        run_cv(cfg, tmp_path / "cv")


def test_static_noise_perturbs_training_statics_only():
    cfg = _cfg(descriptors={"climate": ["p_mean"], "location": "none", "static_noise": 0.5})
    adapter = adapter_for(cfg)
    data = adapter.load()
    split = adapter.split(data)
    adapter.fit(data, split)
    noisy = adapter.train_batches(data, split, cfg.training).sample(np.random.default_rng(0))
    again = adapter.train_batches(data, split, cfg.training).sample(np.random.default_rng(0))
    clean_cfg = _cfg(descriptors={"climate": ["p_mean"], "location": "none"})
    clean = adapter_for(clean_cfg)
    clean.fit(data, split)
    ref = clean.train_batches(data, split, clean_cfg.training).sample(np.random.default_rng(0))
    np.testing.assert_array_equal(noisy["x_dynamic"], ref["x_dynamic"])  # same sites and windows
    np.testing.assert_array_equal(noisy["y"], ref["y"])
    diff = noisy["x_static"] - ref["x_static"]
    assert 0.35 < diff.std() < 0.65 and np.array_equal(again["x_static"], noisy["x_static"])  # seeded
    b = adapter.eval_batches(data, split.test[:3], cfg.periods.test.as_tuple())
    np.testing.assert_array_equal(b.inputs["x_static"], clean.eval_batches(data, split.test[:3],
                                                                           cfg.periods.test.as_tuple()).inputs["x_static"])


def test_descriptors_are_refused_for_multiscale_runs():
    with pytest.raises(ConfigError, match="sequence runs only"):
        parse_config({"data": {"reader": "twin", "dynamic": ["P"], "target": ["sm"]},
                      "periods": {"train": ["2015-04-01", "2016-03-31"]}, "multiscale": {},
                      "descriptors": {"climate": ["p_mean"]}}, source="x")
