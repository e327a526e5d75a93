"""One path for every adapter: tiny YAML configs through the same CLI verbs (train, evaluate,
predict, predict --product, cv), and a clear one-line refusal where a verb does not apply."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml

from smfusion.cli.main import main

pytestmark = pytest.mark.realdata

MULTISCALE = {
    "name": "ms_tiny",
    "data": {"reader": "twin", "dynamic": ["APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "SPFH_2_FORA"],
             "static": ["Sand", "Clay", "Capa", "NDVI"], "target": ["sm_station"],
             "twin": {"seed": 0, "n_coarse": 8}},
    "periods": {"train": ["2015-04-01", "2015-12-31"], "test": ["2016-01-01", "2016-03-31"], "warmup_days": 60},
    "split": {"kind": "kfold", "k": 3, "fold": 0},
    "normalization": {"log1p": ["APCP_FORA"]},
    "model": {"name": "lstm", "hidden_size": 8, "dropout": 0.0},
    "training": {"epochs": 2, "iterations_per_epoch": 3, "seq_len": 40, "threads": 1, "progress": False},
    "multiscale": {"groups_per_batch": 2, "stations_per_batch": 4, "burn_in": 5},
    "cv": {"kind": "station", "k": 2},
}

POINTS = {
    "name": "pt_tiny",
    "data": {"reader": "points", "target": ["SMAP_AM"], "sites": list(range(0, 400, 20))},
    "periods": {"train": ["2015-04-01", "2015-09-30"]},
    "split": {"kind": "kfold", "k": 4, "fold": 0, "validation_fraction": 0.25},
    "model": {"name": "fusion", "hidden_size": 16, "dropout": 0.0},
    "fusion": {"groups": ["smap", "gldas"], "embed_size": 8},
    "training": {"epochs": 2, "iterations_per_epoch": 5, "batch_size": 64, "loss": "mse", "threads": 1,
                 "progress": False},
}


def _write(tmp_path, raw) -> str:
    path = tmp_path / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_multiscale_through_every_verb(conus_root, tmp_path, capsys):
    cfg, run = _write(tmp_path, MULTISCALE), tmp_path / "ms"
    assert main(["train", cfg, "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "adapter: multiscale" in out and "baseline: satellite retrieval of the parent coarse cell" in out
    assert main(["evaluate", str(run), "--no-plots"]) == 0
    nc = tmp_path / "ms.nc"
    assert main(["predict", str(run), "--start", "2016-02-01", "--end", "2016-02-29", "--out", str(nc)]) == 0
    p = xr.open_dataset(nc)
    assert p.sm_station.dims == ("site", "time") and p.sm_station.shape[1] == 29
    grid = tmp_path / "ms_grid.nc"
    assert main(["predict", str(run), "--start", "2016-02-01", "--end", "2016-02-29", "--out", str(grid),
                 "--product", "--layout", "grid"]) == 0
    g = xr.open_dataset(grid)
    assert g.attrs["ease2_grid"] == "M09" and np.isfinite(g.sm.values).sum() == 29 * p.sizes["site"]
    assert main(["cv", cfg, "--run-dir", str(tmp_path / "cv")]) == 0
    assert "held-out" in capsys.readouterr().out
    assert main(["report", str(run), "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "baseline: satellite retrieval of the parent coarse cell" in page and "img/timeseries.png" in page


def test_points_through_every_verb(conus_root, tmp_path, capsys):
    cfg, run = _write(tmp_path, POINTS), tmp_path / "pt"
    assert main(["train", cfg, "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "split by sensor" in out and "SMAP alone" in out
    assert main(["evaluate", str(run)]) == 0
    csv = tmp_path / "pt.csv"
    assert main(["predict", str(run), "--start", "2015-08-01", "--end", "2015-08-31", "--out", str(csv)]) == 0
    rows = csv.read_text().splitlines()
    assert rows[0].startswith("sensor_id,") and len(rows) > 20
    assert all(r.split(",")[2].startswith("2015-08") for r in rows[1:])
    capsys.readouterr()
    # verbs that do not apply say so in one line, exit 2
    assert main(["predict", str(run), "--start", "2015-08-01", "--end", "2015-08-31", "--out",
                 str(tmp_path / "x.nc"), "--product"]) == 2
    assert "predict-points" in capsys.readouterr().err
    assert main(["predict", str(run), "--start", "2015-08-01", "--end", "2015-08-31", "--out",
                 str(tmp_path / "x.nc")]) == 2
    assert ".csv" in capsys.readouterr().err
    assert main(["cv", cfg, "--run-dir", str(tmp_path / "cv")]) == 2
    assert "split by sensor" in capsys.readouterr().err
    # the report shows the pooled table of a point run
    assert main(["report", str(run), "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "Pooled over every example of the split" in page and "GLDAS alone (rescaled)" in page


def test_old_verbs_are_aliases_of_train(conus_root, tmp_path, capsys):
    cfg = _write(tmp_path, {**MULTISCALE, "training": {**MULTISCALE["training"], "epochs": 1}})
    assert main(["multiscale", cfg, "--run-dir", str(tmp_path / "a"), "--no-evaluate"]) == 0
    assert (tmp_path / "a" / "member_0" / "model.pt").is_file()
