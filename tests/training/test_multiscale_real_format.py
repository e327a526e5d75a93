"""Multiscale end to end on real-format inputs: real ISMN files, generated SMAP granules,
re-dated real NLDAS forcing on M09; fine-grid CF product; leave-one-network-out CV."""

from __future__ import annotations

import json

import numpy as np

from smfusion.config import parse_config

START, END = "2013-04-01", "2013-05-31"


def _cfg(tmp_path, inputs, ismn):
    return parse_config({
        "name": "rf",
        "data": {"reader": "gridded", "dynamic": ["APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "SPFH_2_FORA"],
                 "static": ["Sand", "Clay", "Capa", "NDVI"], "target": ["sm_station"],
                 "gridded": {"forcing": str(inputs["forcing"]), "smap_dir": str(inputs["smap_dir"]),
                             "ismn_dir": str(ismn), "ismn_good_flags": ["G", "U"],
                             "ismn_networks": ["SCAN", "SOILSCAPE"]}},
        "periods": {"train": ["2013-04-16", END], "warmup_days": 15},
        "normalization": {"log1p": ["APCP_FORA"]},
        "model": {"name": "lstm", "hidden_size": 8, "dropout": 0.0},
        "training": {"epochs": 2, "iterations_per_epoch": 3, "seq_len": 30, "threads": 1, "progress": False},
        "multiscale": {"groups_per_batch": 2, "stations_per_batch": 3},
        "cv": {"kind": "network"},
    })


def test_real_format_train_product_and_cv(tmp_path, shared_data, conus_root):
    from smfusion.data.loading import load_dataset, span
    from smfusion.experiments.cv import run_cv
    from smfusion.io.cf import read_product
    from smfusion.products.longterm import predict_product
    from smfusion.synthetic.forcing_grid import write_real_format_inputs
    from smfusion.training.run import train

    ismn = shared_data / "ismn" / "multinetwork" / "header_values"
    inputs = write_real_format_inputs(tmp_path / "in", ismn, START, END,
                                      ismn_kwargs={"good_flags": ("G", "U"), "networks": ["SCAN", "SOILSCAPE"]})
    cfg = _cfg(tmp_path, inputs, ismn)
    ds = load_dataset(cfg.data, *span(cfg))
    assert ds.attrs["fine_grid"] == "M09" and ds.sizes["site"] % 16 == 0
    has = np.isfinite(ds["sm_station"].values).any(axis=1)
    assert set(ds["network"].values[has]) == {"SCAN", "SOILSCAPE"}
    # the satellite value of a fine cell is the granule value of its parent M36 cell
    assert np.isfinite(ds["sm_satellite"].values).mean() > 0.2
    run_dir = train(cfg, tmp_path / "run", data=ds)
    out = predict_product(run_dir, "2013-05-01", END, tmp_path / "sm_M09.nc", layout="grid", progress=False)
    prod = read_product(out, load=True)
    assert prod.attrs["ease2_grid"] == "M09" and prod["sm"].dims == ("time", "y", "x")
    assert prod.sizes["time"] == 31
    sm = prod["sm"].values
    assert np.isfinite(sm).sum() == 31 * ds.sizes["site"]  # every fine cell predicted, window elsewhere NaN
    res = run_cv(cfg, tmp_path / "cv")
    assert sorted(res.table["fold"].unique()) == [0, 1]
    folds = json.loads((tmp_path / "cv" / "folds.json").read_text())["folds"]
    assert [f["groups"] for f in folds] == [["SCAN"], ["SOILSCAPE"]]
    assert "held-out stations only" in res.text and (tmp_path / "cv" / "summary.json").is_file()
