"""Probabilistic heads through the one pipeline (SYNTHETIC series): physical units through site scaling
and anomaly mode, mixed-head ensembles, recalibration fitted on validation data only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.config import parse_config
from smfusion.errors import ConfigError
from smfusion.runs import Run
from smfusion.training.run import check_names, train

VALID = ("2002-07-01", "2002-12-31")
TEST = ("2003-01-01", "2003-06-30")


def synthetic(n_site=6, seed=0) -> xr.Dataset:
    """sm = site level + seasonal cycle + a bucket response to precipitation + noise whose size varies by site."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2000-11-01", TEST[1], freq="D")
    cyc = np.sin(2 * np.pi * time.day_of_year.values / 365.25)
    p = np.clip(rng.gamma(0.5, 4.0, (n_site, time.size)) + 2 * cyc, 0, None)
    t = 10 + 15 * cyc + rng.normal(0, 2, (n_site, time.size))
    wet = np.zeros_like(p)
    for i in range(1, time.size):
        wet[:, i] = 0.9 * wet[:, i - 1] + 0.01 * (p[:, i] - p.mean())
    noise = rng.uniform(0.005, 0.03, (n_site, 1)) * rng.standard_normal(p.shape)
    sm = rng.uniform(0.1, 0.3, (n_site, 1)) + 0.05 * cyc + wet + noise
    sm[:, rng.random(time.size) < 0.3] = np.nan
    ds = xr.Dataset({"P": (("site", "time"), p), "T": (("site", "time"), t), "sm": (("site", "time"), sm),
                     "S": (("site",), rng.normal(size=n_site))},
                    coords={"site": np.arange(n_site), "time": time, "lat": ("site", np.linspace(35, 45, n_site)),
                            "lon": ("site", np.linspace(-110, -90, n_site))})
    ds["sm"].attrs["units"] = "m3 m-3"
    return ds


def config(**over):
    raw = {"name": "unc", "data": {"dynamic": ["P", "T"], "static": ["S"], "target": ["sm"]},
           "model": {"name": "mlp", "hidden_size": 8, "dropout": 0.0, "num_layers": 2},
           "training": {"epochs": 2, "batch_size": 4, "seq_len": 20, "iterations_per_epoch": 5, "progress": False,
                        "ensemble": 2, "threads": 1}}
    for key, val in over.items():
        raw[key] = {**raw.get(key, {}), **val} if isinstance(val, dict) else val
    return parse_config(raw)


def _cfg(**over):
    base = dict(
        periods={"train": ["2001-01-01", "2002-06-30"], "validation": list(VALID), "test": list(TEST),
                 "warmup_days": 30},
        seasonal={"target_mode": "anomaly"}, normalization={"target": "site"},
        model={"name": "mlp", "head": "gaussian"}, training={"loss": "gaussian_nll"},
        uncertainty={"beta_nll": 0.5, "recalibration": "variance", "quantiles": [0.05, 0.95]},
    )
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return config(**base)


@pytest.fixture(scope="module")
def gauss_run(tmp_path_factory):
    ds = synthetic()
    return Run.load(train(_cfg(), tmp_path_factory.mktemp("u") / "run", data=ds)), ds


def test_layers_in_physical_units_through_site_scaling_and_anomalies(gauss_run):
    run, ds = gauss_run
    sites = ds.site.values
    b = run.adapter.eval_batches(ds, sites, TEST)
    dist = run.predict_distribution(ds, None, None, batches=b, recalibration="none")["sm"]
    import torch

    from smfusion.runs.passes import to_tensors

    st = run.adapter.scaler.site_stats["sm"]
    sd = np.asarray(st["std"])[[st["site"].index(int(s)) for s in sites]]
    clim = run.adapter.climatologies(sites, b.time[b.score_from:])["sm"]
    for i, model in enumerate(run.members):
        with torch.no_grad():
            out = model(to_tensors(b.inputs))
        mu = out["y_hat"][:, b.score_from:, 0].numpy()
        s = np.exp(0.5 * out["log_var"][:, b.score_from:, 0].numpy())
        # mean: z * site std + site mean + climatology; std: z-std * site std
        np.testing.assert_allclose(dist.scale[i, ..., 0], s * sd[:, None], rtol=1e-5)
        st_mean = np.asarray(st["mean"])[[st["site"].index(int(x)) for x in sites]]
        np.testing.assert_allclose(dist.means[i], mu * sd[:, None] + st_mean[:, None] + clim, rtol=1e-5, atol=1e-6)
    layers = dist.layers([0.05, 0.95])
    mom = dist.moments()
    np.testing.assert_allclose(layers["_aleatoric_std"] ** 2, (dist.scale[..., 0] ** 2).mean(0), rtol=1e-4)
    np.testing.assert_allclose(layers["_epistemic_std"] ** 2, dist.means.var(0), rtol=1e-4, atol=1e-10)
    np.testing.assert_allclose(layers["_std"] ** 2, mom["total_var"], rtol=1e-4)
    assert (layers["_q05"] < layers[""]).all() and (layers[""] < layers["_q95"]).all()
    # Run.predict: the same layers, CF attributes, ancillary_variables
    pred = run.predict(*TEST, data=ds, recalibration="none")
    np.testing.assert_allclose(pred["sm_std"].values, layers["_std"], rtol=1e-5)
    assert pred["sm"].attrs["ancillary_variables"] == "sm_std sm_epistemic_std sm_aleatoric_std sm_q05 sm_q95"
    assert pred["sm_std"].attrs["units"] == "m3 m-3"


def test_recalibration_uses_validation_data_only(gauss_run, tmp_path):
    run, ds = gauss_run
    rec = run.recalibration("isotonic", refit=True, data=ds)["sm"]
    assert "validation period 2002-07-01 .. 2002-12-31" in run.recalibration_note
    assert (run.run_dir / "recalibration_isotonic_noise0.json").is_file()
    changed = ds.copy(deep=True)  # other test (and training) targets: the same recalibration
    rng = np.random.default_rng(9)
    for period in (TEST, ("2001-01-01", "2002-06-30")):
        sl = {"time": slice(*period)}
        changed["sm"].loc[sl] = changed["sm"].loc[sl] + rng.normal(0, 0.2, changed["sm"].loc[sl].shape)
    again = run.recalibration("isotonic", refit=True, data=changed)["sm"]
    assert again == rec
    moved = ds.copy(deep=True)  # other validation targets: another one
    sl = {"time": slice(*VALID)}
    moved["sm"].loc[sl] = moved["sm"].loc[sl] + rng.normal(0, 0.05, moved["sm"].loc[sl].shape)
    other = run.recalibration("isotonic", refit=True, data=moved)["sm"]
    assert other.aleatoric_factor > rec.aleatoric_factor
    # saved: read back without data; applied by predict_distribution, switchable
    assert run.recalibration("isotonic")["sm"] == other
    on = run.predict_distribution(ds, ds.site.values, TEST, recalibration="isotonic")["sm"]
    off = run.predict_distribution(ds, ds.site.values, TEST, recalibration="none")["sm"]
    assert on.recal == other and off.recal.method == "none"
    np.testing.assert_allclose(on.moments()["aleatoric_var"], other.aleatoric_factor**2 * off.moments()["aleatoric_var"])


def test_mixed_head_ensemble_and_noise_runs(tmp_path):
    ds = synthetic()
    cfg = _cfg(training={"ensemble": 1}, variants=[
        {"model": {"head": "gaussian"}},
        {"model": {"head": "gmm", "components": 2}, "training": {"loss": "mixture_nll"}}])
    run = Run.load(train(cfg, tmp_path / "mix", data=ds))
    dist = run.predict_distribution(ds, ds.site.values, TEST, noise_runs=2, noise=0.2, recalibration="none")["sm"]
    assert dist.loc.shape == (2, 6, 181, 2)
    np.testing.assert_array_equal(dist.weight[0, ..., 1], 0.0)  # the Gaussian member padded with weight 0
    np.testing.assert_allclose(dist.weight.sum(-1), 1.0, rtol=1e-6)
    assert dist.noise_var.shape == (6, 181) and (dist.noise_var > 0).all()
    mom = dist.moments()
    member_var = (dist.weight * (dist.scale**2 + (dist.loc - dist.means[..., None]) ** 2)).sum(-1)
    np.testing.assert_allclose(mom["aleatoric_var"], member_var.mean(0) + dist.noise_var, rtol=1e-6)


def test_point_head_refuses_nll_and_log1p_target(tmp_path):
    with pytest.raises(ConfigError, match="needs model.head"):
        check_names(_cfg(model={"head": "regression"}))
    with pytest.raises(ConfigError, match="predicts a distribution"):
        check_names(_cfg(training={"loss": "rmse"}))


def test_fusion_points_with_a_gaussian_head(tmp_path):
    """SYNTHETIC shards: the point adapter's runs predict distributions; evaluate prints their calibration."""
    from smfusion.evaluation.report import evaluate
    from smfusion.synthetic.fusion_shards import write_shards

    write_shards(tmp_path / "shards", n_sensors=16, n_times=12, size=4, seed=1, n_shards=2)
    cfg = parse_config({
        "name": "fu", "data": {"reader": "tfrecord", "root": str(tmp_path / "shards"), "target": ["sm_0_5"]},
        "split": {"kind": "kfold", "k": 4, "fold": 0, "validation_fraction": 0.25},
        "model": {"name": "fusion", "hidden_size": 16, "dropout": 0.0, "head": "gaussian"},
        "fusion": {"groups": ["smap", "gldas"], "patch_size": 4, "cnn_channels": 4, "embed_size": 4,
                   "index_dir": str(tmp_path / "index")},
        "training": {"epochs": 2, "iterations_per_epoch": 5, "batch_size": 16, "loss": "gaussian_nll",
                     "ensemble": 2, "threads": 1, "progress": False},
        "evaluation": {"plots": False},
    })
    run_dir = train(cfg, tmp_path / "run")
    run = Run.load(run_dir)
    pts = run.adapter.load()
    dist = run.predict_distribution(pts, run.split.test, None, recalibration="none")["sm_0_5"]
    assert dist.loc.shape[:3] == dist.means.shape and dist.means.shape[2] == 1 and (dist.scale > 0).all()
    pred = run.predict(data=pts, ids=run.split.test)
    assert pred["sm_0_5_std"].dims == ("example",) and (pred["sm_0_5_std"] > 0).all()
    text = evaluate(run_dir).text
    assert "Calibration of the predictive distribution of sm_0_5" in text and "recalibrated (variance)" in text


@pytest.mark.realdata
def test_multiscale_nll_trains_and_predicts(conus_root, tmp_path):
    """Twin (SYNTHETIC truth on real forcing): both multiscale terms as NLLs, then a distribution per fine cell."""
    cfg = parse_config({
        "name": "ms_nll",
        "data": {"reader": "twin", "root": str(conus_root), "dynamic": ["APCP_FORA", "TMP_2_FORA"],
                 "static": ["Sand"], "target": ["sm_station"], "twin": {"seed": 0, "n_coarse": 6}},
        "periods": {"train": ["2015-04-01", "2015-12-31"], "validation": ["2016-01-01", "2016-03-31"],
                    "test": ["2016-04-01", "2016-06-30"], "warmup_days": 60},
        "split": {"kind": "kfold", "k": 3, "fold": 0},
        "model": {"name": "lstm", "hidden_size": 8, "dropout": 0.0, "head": "gaussian"},
        "training": {"epochs": 2, "iterations_per_epoch": 4, "seq_len": 60, "loss": "gaussian_nll", "threads": 1,
                     "progress": False},
        "multiscale": {"groups_per_batch": 2, "stations_per_batch": 4},
        "uncertainty": {"fine_error_correlation": 0.3},
    })
    run_dir = train(cfg, tmp_path / "ms")
    hist = (run_dir / "member_0" / "history.json").read_text()
    assert "train_coarse" in hist and "train_site" in hist
    run = Run.load(run_dir)
    data = run.load_data("2016-04-01", "2016-06-30")
    dist = run.predict_distribution(data, run.split.test, ("2016-04-01", "2016-06-30"))["sm_station"]
    assert np.isfinite(dist.means).all() and (dist.scale > 0).all()
    assert dist.recal.method == "variance"  # fitted on the validation period of the training stations
