"""End to end from a tiny YAML config on real data: train, evaluate, predict (CLI)."""

import json

import numpy as np
import pytest
import xarray as xr
import yaml

from smfusion.cli.main import main

pytestmark = pytest.mark.realdata

TINY = """
name: tiny
data:
  dynamic: [APCP_FORA, TMP_2_FORA, DSWRF_FORA]
  static: [Sand, Clay, Capa]
  target: [SMAP_AM]
  sites: [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150]
periods:
  train: [2015-04-01, 2016-03-31]
  test: [2016-04-01, 2017-03-31]
  warmup_days: 60
split: {kind: kfold, k: 4, fold: 1, seed: 0, validation_fraction: 0.25}
model: {name: lstm, hidden_size: 8, dropout: 0.0}
training:
  epochs: 3
  batch_size: 8
  seq_len: 30
  iterations_per_epoch: 4
  checkpoint_every: 1
  ensemble: 2
  progress: false
  early_stopping: {patience: 5}
"""


def test_train_evaluate_predict(conus_root, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    # the printed table states its protocol and carries the baseline rows
    for text in ("Period: train 2015-04-01 .. 2016-03-31", "spatial 4-fold, fold 1", "Sites: 4",
                 "baseline: training-period climatology", "baseline: linear model", "published hydroDL LSTM"):
        assert text in out
    split = json.loads((run / "split.json").read_text())
    assert not set(split["train"]) & set(split["test"]) and not set(split["validation"]) & set(split["test"])
    assert len(split["test"]) == 4 and len(split["validation"]) == 3
    for name in ("config.yaml", "scaler.yaml", "member_0/model.pt", "member_1/model.pt",
                 "member_0/checkpoints/epoch_0003.pt", "metrics/summary.csv", "metrics/metrics.json",
                 "predictions/test.nc", "plots/map_r.png", "plots/timeseries.png", "plots/scatter.png"):
        assert (run / name).is_file(), name
    scaler = yaml.safe_load((run / "scaler.yaml").read_text())
    assert set(scaler["variables"]) == {"APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "Sand", "Clay", "Capa", "SMAP_AM"}
    metrics = json.loads((run / "metrics/metrics.json").read_text())
    assert metrics["protocol"]["n_sites"] == 4
    pred = xr.open_dataset(run / "predictions/test.nc")
    assert pred.SMAP_AM.shape == (4, 365) and "SMAP_AM_ensemble_std" in pred
    assert list(pred.site.values) == split["test"]
    assert np.isfinite(pred.SMAP_AM.values).all()

    # evaluating again reproduces the same figures
    assert main(["evaluate", str(run), "--no-plots"]) == 0
    assert "smfusion lstm (ensemble mean of 2)" in capsys.readouterr().out

    # predicting beyond the target's availability (forcing only) works
    nc = tmp_path / "p.nc"
    assert main(["predict", str(run), "--start", "2017-04-01", "--end", "2017-06-30", "--out", str(nc)]) == 0
    p = xr.open_dataset(nc)
    assert p.SMAP_AM.shape == (16, 91) and p.attrs["Conventions"].startswith("CF-1")
    assert p.SMAP_AM.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"


def test_cli_reports_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("hidden_size: 8", "hidden_sise: 8"))
    assert main(["train", str(bad), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "model.hidden_sise: unknown key" in err
    assert not (tmp_path / "r").exists()


def test_cli_reports_unknown_variable(conus_root, tmp_path, capsys):
    bad = tmp_path / "var.yaml"
    bad.write_text(TINY.replace("TMP_2_FORA", "TMP_3_FORA"))
    assert main(["train", str(bad), "--run-dir", str(tmp_path / "r")]) == 2
    assert "TMP_3_FORA" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_ensemble_of_mixed_variants(conus_root, tmp_path):
    from smfusion.config import parse_config
    from smfusion.data.loading import load_dataset
    from smfusion.evaluation.report import describe_members
    from smfusion.runs import Run
    from smfusion.training.run import train

    raw = yaml.safe_load(TINY)
    raw["training"]["ensemble"] = 1
    raw["variants"] = [{}, {"model": {"hidden_size": 12}, "training": {"lr": 0.01}}]
    cfg = parse_config(raw)
    run = train(cfg, tmp_path / "run")
    loaded = Run.load(run)
    assert [m.lstm.hidden_size for m in loaded.members] == [8, 12]
    assert describe_members(loaded.cfg) == "ensemble of 2: 1 x lstm hidden 8 + 1 x lstm hidden 12"
    ds = load_dataset(cfg.data, "2016-02-01", "2016-03-31")
    pred = loaded.predict_members(ds, loaded.split.test, ("2016-03-01", "2016-03-31"))
    assert pred.shape == (2, 4, 31, 1) and not np.allclose(pred[0], pred[1])


def test_bucket_features_and_nse_objective(conus_root, tmp_path):
    """A run with water-balance bucket inputs trained on NSE*: the buckets are model inputs with scaler
    statistics, prediction rebuilds them from the forcing, and the figures come out finite."""
    from smfusion.config import parse_config
    from smfusion.runs import Run
    from smfusion.training.run import train

    raw = yaml.safe_load(TINY)
    raw["data"]["dynamic"] = ["APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "DLWRF_FORA"]
    raw["features"] = {"bucket": {"capacities_mm": [20, 100]}}
    raw["periods"]["warmup_days"] = 365
    raw["training"].update(ensemble=1, loss="nse")
    raw["training"].pop("early_stopping")
    run = train(parse_config(raw), tmp_path / "run")
    scaler = yaml.safe_load((run / "scaler.yaml").read_text())
    assert {"bucket20", "bucket100"} <= set(scaler["variables"])
    loaded = Run.load(run)
    pred = loaded.predict("2016-04-01", "2016-06-30", ids=loaded.split.test)
    assert pred.SMAP_AM.shape == (4, 91) and np.isfinite(pred.SMAP_AM.values).all()
    history = json.loads((run / "member_0" / "history.json").read_text())
    assert len(history) == 3 and all(np.isfinite(h["train_loss"]) for h in history)
