"""Smoke test of benchmarks/uncertainty.py on 25 real CONUS cells (tiny budget; figures meaningless)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "uncertainty.py"
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "uncertainty_conus.yaml"


@pytest.mark.realdata
def test_uncertainty_benchmark_prints_the_table(conus_root, tmp_path, capsys):
    raw = yaml.safe_load(CONFIG.read_text())
    raw["data"].update(root=str(conus_root), sites=list(range(0, 400, 16)), dynamic=["APCP_FORA", "TMP_2_FORA"],
                       static=["Sand"])
    raw["periods"].update(train=["2015-04-01", "2016-01-31"], validation=["2016-02-01", "2016-03-31"], warmup_days=30)
    raw["model"].update(hidden_size=8, dropout=0.0)
    raw["training"].update(epochs=1, iterations_per_epoch=3, batch_size=8, ensemble=2)
    raw["uncertainty"]["noise_runs"] = 2
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    mod = runpy.run_path(str(SCRIPT))
    assert mod["main"](["--config", str(cfg), "--out", str(tmp_path / "out"), "--cv-k", "2", "--cv-kind", "kmeans"]) == 0
    out = capsys.readouterr().out
    for row in ("ensemble spread only", "noise runs", "Gaussian single model", "Gaussian ensemble", "mixture ensemble"):
        assert out.count(row) >= 2
    assert "CV cov95" in out and "held-out cells (spatial CV) coverage_95" in out and "kmeans folds" in out
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(res["cv"]["Gaussian ensemble"]) == {"raw", "recalibrated"}
    assert len(res["cv"]["_folds"]) == 2
