"""Smoke test of benchmarks/smap_tb_check.py on the real SMAP L2 granules (tiny budget; figures meaningless)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "smap_tb_check.py"


@pytest.mark.realdata
def test_smap_tb_check_runs_and_prints_the_protocol(shared_data, capsys):
    mod = runpy.run_path(str(SCRIPT))
    assert mod["main"](["--data", str(shared_data / "smap_l2"), "--repeats", "1", "--epochs", "3",
                        "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "spatial CV over blocks" in out and "| linear, TB + ancillary |" in out
    data, names, files, n_cells = mod["load_cells"](shared_data / "smap_l2")
    assert len(files) == 2 and 700 < data["soil_moisture"].size < 895 and "vegetation_opacity" not in names
    folds = mod["block_folds"](data["row"], data["col"], 4, 5, seed=0)
    blocks = (data["row"] // 4) * 1000 + data["col"] // 4
    for b in set(blocks.tolist()):  # every block lies in one fold: no spatial leakage
        assert len(set(folds[blocks == b].tolist())) == 1
