"""Real CONUS cells: the product's uncertainty layers equal per-site prediction, CF metadata, the
recalibration switch (config and CLI), and the calibration section printed by evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smfusion.cli.main import main
from smfusion.config import parse_config
from smfusion.io.cf import SOIL_MOISTURE_STANDARD_NAME, cf_problems, read_product
from smfusion.products.longterm import predict_product
from smfusion.runs import Run
from smfusion.training.run import train

pytestmark = pytest.mark.realdata
SITES = [0, 25, 50, 75, 100, 125]
PERIOD = ("2016-04-01", "2016-05-30")


@pytest.fixture(scope="module")
def run_dir(conus_root, tmp_path_factory):
    cfg = parse_config({
        "name": "prod_unc",
        "data": {"root": str(conus_root), "dynamic": ["APCP_FORA", "TMP_2_FORA"], "static": ["Sand"],
                 "target": ["SMAP_AM"], "sites": SITES},
        "periods": {"train": ["2015-04-01", "2016-01-31"], "validation": ["2016-02-01", "2016-03-31"],
                    "test": ["2016-04-01", "2017-03-31"], "warmup_days": 40},
        "normalization": {"target": "site"},
        "model": {"name": "mlp", "hidden_size": 8, "dropout": 0.0, "num_layers": 2, "head": "gaussian"},
        "training": {"epochs": 1, "batch_size": 4, "seq_len": 20, "iterations_per_epoch": 5, "ensemble": 2,
                     "loss": "gaussian_nll", "progress": False, "threads": 1},
        "uncertainty": {"recalibration": "variance", "quantiles": [0.05, 0.95]},
        "evaluation": {"baselines": ["climatology"]},
    })
    return train(cfg, tmp_path_factory.mktemp("produnc") / "run")


def test_product_layers_equal_per_site_prediction(run_dir, tmp_path):
    out = predict_product(run_dir, *PERIOD, tmp_path / "p.nc", chunk_sites=4, progress=False)
    p = read_product(out, load=True)
    assert not cf_problems(p)
    ref = Run.load(run_dir).predict(*PERIOD)
    for suffix in ("", "_std", "_epistemic_std", "_aleatoric_std", "_q05", "_q95"):
        np.testing.assert_allclose(p[f"sm{suffix}"].values, ref[f"SMAP_AM{suffix}"].values, rtol=1e-5, atol=1e-6)
    assert (p.sm_std.values > p.sm_aleatoric_std.values).all()
    assert p.sm.attrs["ancillary_variables"] == "sm_std sm_epistemic_std sm_aleatoric_std sm_q05 sm_q95"
    for name in ("sm_std", "sm_epistemic_std", "sm_aleatoric_std"):
        assert p[name].attrs["standard_name"] == f"{SOIL_MOISTURE_STANDARD_NAME} standard_error"
        assert p[name].attrs["units"] == "m3 m-3" and "recalibrated" in p[name].attrs["comment"]
    assert p.sm_q95.attrs["quantile"] == 0.95 and p.attrs["recalibration"] == "variance"
    # the recalibration is fitted once, on the validation period, and saved in the run
    assert (run_dir / "recalibration_variance_noise0.json").is_file()
    # switched off from the command line: the raw spread
    raw_nc = tmp_path / "raw.nc"
    assert main(["predict", str(run_dir), "--start", PERIOD[0], "--end", PERIOD[1], "--out", str(raw_nc),
                 "--product", "--recalibration", "none"]) == 0
    raw = read_product(raw_nc, load=True)
    ref_raw = Run.load(run_dir).predict(*PERIOD, recalibration="none")
    np.testing.assert_allclose(raw.sm_std.values, ref_raw["SMAP_AM_std"].values, rtol=1e-5)
    assert raw.attrs["recalibration"] == "none" and not np.allclose(raw.sm_std.values, p.sm_std.values)
    np.testing.assert_allclose(raw.sm.values, p.sm.values, rtol=1e-6)  # the mean is not touched


def test_evaluate_prints_the_calibration_section(run_dir, capsys):
    assert main(["evaluate", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "Calibration of the predictive distribution of SMAP_AM" in text and "cov95" in text
    assert "recalibrated (variance)" in text and "ensemble spread only" in text
    assert (run_dir / "metrics" / "calibration.json").is_file() and (run_dir / "plots" / "reliability.png").is_file()


def test_spatial_cv_prints_calibration_on_held_out_cells(conus_root, tmp_path):
    from smfusion.experiments.cv import run_cv

    cfg = parse_config({
        "name": "cv_unc",
        "data": {"root": str(conus_root), "dynamic": ["APCP_FORA", "TMP_2_FORA"], "static": ["Sand"],
                 "target": ["SMAP_AM"], "sites": list(range(0, 400, 25))},
        "periods": {"train": ["2015-04-01", "2016-01-31"], "validation": ["2016-02-01", "2016-03-31"],
                    "test": ["2016-04-01", "2016-09-30"], "warmup_days": 40},
        "split": {"validation_fraction": 0.3},
        "model": {"name": "mlp", "hidden_size": 8, "dropout": 0.0, "num_layers": 2, "head": "gaussian"},
        "training": {"epochs": 1, "batch_size": 4, "seq_len": 20, "iterations_per_epoch": 5, "ensemble": 2,
                     "loss": "gaussian_nll", "progress": False, "threads": 1},
        "cv": {"kind": "block", "k": 2, "block_deg": 10.0},
    })
    res = run_cv(cfg, tmp_path / "cv")
    assert "Calibration of SMAP_AM on held-out units" in res.text and "recalibration variance" in res.text
    assert (tmp_path / "cv" / "calibration.json").is_file()
    scores = next(iter(json.loads((tmp_path / "cv" / "calibration.json").read_text())["SMAP_AM"].values()))
    assert scores["mean_epistemic_std"] > 0 and scores["mean_aleatoric_std"] > 0  # the folds' split, not 0
