"""``smfusion predict`` runs the check that ``check``/``train``/``cv`` run (runs/checks.py: validate_config), without
training's part, before the run is loaded: a missing input is one line, exit 2."""

from __future__ import annotations

from smfusion.cli.main import main
from smfusion.config import dump_config, parse_config

RAW = {"name": "r", "data": {"reader": "casm_twin", "adapter": "tb", "dynamic": ["tb_h_smos", "tb_v_smos"],
                             "target": ["sm_smap"]},
       "periods": {"train": ["2015-04-01", "2015-12-31"], "test": ["2016-01-01", "2016-03-31"], "warmup_days": 0},
       "model": {"name": "mlp", "hidden_size": 4}}


def _run_dir(tmp_path, **training):
    cfg = parse_config({**RAW, "data": {**RAW["data"], "casm_twin": {"path": str(tmp_path / "missing_twin.nc")}},
                        "training": training})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(cfg))
    return run


def _predict(run, tmp_path):
    return main(["predict", str(run), "--start", "2016-01-01", "--end", "2016-01-31", "--out", str(tmp_path / "p.nc")])


def test_predict_refuses_a_missing_input_in_one_line(tmp_path, capsys):
    run = _run_dir(tmp_path)
    assert _predict(run, tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"smfusion: error: data.casm_twin.path: {tmp_path / 'missing_twin.nc'} does not exist (write it "
                   "with smfusion casm-twin --out, or drop path to generate the twin)"]
    assert not (tmp_path / "p.nc").exists()
    assert main(["check", str(run / "config.yaml")]) == 2  # what check reports, the same line
    assert capsys.readouterr().err.strip().splitlines()[-1] == err[0]


def test_predict_skips_what_only_training_needs(tmp_path, capsys):
    """A run trained on a GPU predicts on any machine: training's part of the check (device, memory,
    objective) is not predict's; check and train still refuse the device first."""
    run = _run_dir(tmp_path, device="cuda:7")
    assert _predict(run, tmp_path) == 2
    assert "data.casm_twin.path" in capsys.readouterr().err
    assert main(["check", str(run / "config.yaml")]) == 2
    assert "training.device: 'cuda:7'" in capsys.readouterr().err
