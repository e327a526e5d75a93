"""benchmarks/nowcast.py: the projection twin is the DI recipe without its section; ``--set`` changes the DI run
only; ``--tuning`` moves both runs to the tuning split (the recipe is chosen without the test year)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MOD = runpy.run_path(str(ROOT / "benchmarks" / "nowcast.py"))
CONFIG = str(ROOT / "configs" / "conus_di.yaml")


def test_twin_set_and_tuning():
    di, proj = MOD["configs"](CONFIG, None)
    assert proj.data_integration is None and di.data_integration.retrievals == 2 and di.training.ensemble == 8
    assert proj.model == di.model and proj.training == di.training and proj.periods == di.periods
    di2, proj2 = MOD["configs"](CONFIG, 2, sets=["data_integration.retrievals=1", "model.hidden_size=128",
                                                 "data_integration.train_leads=[1, 7]"], tuning=True)
    assert di2.data_integration.retrievals == 1 and di2.data_integration.leads == (1, 7)
    assert di2.model.hidden_size == 128 and proj2.model.hidden_size == di.model.hidden_size
    assert di2.training.ensemble == proj2.training.ensemble == 2
    for cfg in (di2, proj2):
        assert cfg.periods.train.as_tuple() == MOD["TUNING"]["train"]
        assert cfg.periods.validation.as_tuple() == MOD["TUNING"]["validation"]
        assert cfg.periods.test == di.periods.test
    with pytest.raises(Exception, match="retrievals"):
        MOD["configs"](CONFIG, None, sets=["data_integration.retrievals=0"])


def test_epoch_curves(tmp_path):
    import json

    for m, val in ((0, [0.7, 0.6, 0.65, 0.8, 0.9, 0.95]), (1, [0.5, 0.45, 0.44, 0.43, 0.42, 0.41])):
        (tmp_path / f"member_{m}").mkdir()
        rows = [{"epoch": e + 1, "train_loss": 0.0, "val_rmse": v} for e, v in enumerate(val)]
        (tmp_path / f"member_{m}" / "history.json").write_text(json.dumps(rows))
    (tmp_path / "member_2").mkdir()  # no validation period: no line
    (tmp_path / "member_2" / "history.json").write_text(json.dumps([{"epoch": 1, "train_loss": 0.0}]))
    lines = MOD["epoch_curves"](tmp_path).splitlines()
    assert len(lines) == 3
    assert lines[1] == "  member_0: 1:0.700 5:0.900 | kept epoch 2 of 6 (0.6000)"
    assert lines[2].endswith("kept epoch 6 of 6 (0.4100)")
