"""The paper's ablation: sign convention of the % change, rows in the paper's order on SYNTHETIC shards."""

from __future__ import annotations

import pytest

from smfusion.config import parse_config
from smfusion.experiments.fusion_ablation import format_table, pct_change, run_ablation
from smfusion.io.fusion_schema import GROUP_ORDER
from smfusion.synthetic.fusion_shards import write_shards
from smfusion.data.adapters.points import load_points

PAPER_ORDER = ["SMAP alone", "GLDAS alone (rescaled)", "SMAP+GLDAS NN", "S1+DEM", "S1+DEM+S2",
               "S1+DEM+S2+SoilGrids", "S1+DEM+S2+SoilGrids+SMAP+GLDAS"]


def test_pct_change_follows_the_paper():
    # the paper's README table (validation, S1+DEM+S2+SoilGrids vs SMAP+GLDAS NN): 0.06 vs 0.062 ubRMSE "+3.2%",
    # 0.674 vs 0.658 R "+2.4%"; test R 0.647 vs 0.666 "-2.9%"
    assert pct_change(0.060, 0.062, "ubrmse") == pytest.approx(3.2, abs=0.05)
    assert pct_change(0.674, 0.658, "r") == pytest.approx(2.4, abs=0.05)
    assert pct_change(0.647, 0.666, "r") == pytest.approx(-2.9, abs=0.05)
    assert pct_change(0.087, 0.098, "rmse") == pytest.approx(11.2, abs=0.05)  # full model, test RMSE
    assert pct_change(0.2, 0.1, "rmse") < 0  # a larger error is a negative change


def test_ablation_rows_in_paper_order(tmp_path):
    root = tmp_path / "shards"
    write_shards(root, n_sensors=16, n_times=6, size=4, seed=1, n_shards=2)
    cfg = parse_config({
        "name": "abl", "data": {"reader": "tfrecord", "root": str(root), "target": ["sm_0_5"]},
        "split": {"kind": "kfold", "k": 4, "fold": 0, "seed": 0, "validation_fraction": 0.25},
        "model": {"name": "fusion", "hidden_size": 8, "dropout": 0.0},
        "fusion": {"groups": list(GROUP_ORDER), "patch_size": 4, "cnn_channels": 4, "embed_size": 4,
                   "index_dir": str(tmp_path / "index")},
        "training": {"epochs": 1, "iterations_per_epoch": 2, "batch_size": 16, "seed": 0, "threads": 1,
                     "progress": False, "checkpoint_every": 100},
    })
    points = load_points(cfg)
    logged = []
    rows = run_ablation(cfg, points, tmp_path / "runs", log=logged.append)
    assert [name for name, _ in rows] == PAPER_ORDER and len(logged) == 5
    for _, m in rows:
        assert set(m) == {"validation", "test"} and all(m[s]["n"] > 0 for s in m)
    full = dict(rows)["S1+DEM+S2+SoilGrids+SMAP+GLDAS"]
    assert (tmp_path / "runs" / "S1_plus_DEM_plus_S2_plus_SoilGrids_plus_SMAP_plus_GLDAS" / "metrics" / "metrics.json").is_file()
    text = format_table(rows, "SYNTHETIC", "protocol")
    lines = text.splitlines()
    assert [ln.split("  ")[0] for ln in lines[5:12]] == PAPER_ORDER
    assert lines[7].count("( +0.0%)") == 6  # the reference row
    expected = f"({pct_change(full['test']['r'], dict(rows)['SMAP+GLDAS NN']['test']['r'], 'r'):+5.1f}%)"
    assert lines[11].rstrip().endswith(expected)
