"""`evaluate` asks the run once (SYNTHETIC series): one clean forward pass per member and the noisy passes once
over the test batches, shared by the metric table, the stored predictions and the calibration section; the
recalibration's validation passes once, when it is fitted, and never again once saved."""

from __future__ import annotations

import pytest

from smfusion.config import parse_config
from smfusion.data.adapters.sequence import SequenceAdapter
from smfusion.evaluation import report
from smfusion.runs import Run
from smfusion.training.run import train

TEST = ("2002-01-01", "2002-03-31")
MEMBERS, NOISE_RUNS = 2, 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory, forcing_sites):
    cfg = parse_config({
        "name": "passes", "data": {"dynamic": ["P", "T"], "static": ["S"], "target": ["sm"]},
        "periods": {"train": ["2001-01-01", "2001-09-30"], "validation": ["2001-10-01", "2001-12-31"],
                    "test": list(TEST), "warmup_days": 20},
        "model": {"name": "mlp", "hidden_size": 8, "dropout": 0.0, "num_layers": 2, "head": "gaussian"},
        "training": {"loss": "gaussian_nll", "epochs": 1, "batch_size": 4, "seq_len": 20, "iterations_per_epoch": 3,
                     "ensemble": MEMBERS, "progress": False, "threads": 1},
        "uncertainty": {"noise": 0.1, "noise_runs": NOISE_RUNS, "recalibration": "variance"},
        "evaluation": {"baselines": ["climatology", "linear"], "plots": False},
    })
    ds = forcing_sites(6, 0, TEST[1], units={"units": "m3 m-3"}, latlon=True)
    return train(cfg, tmp_path_factory.mktemp("passes") / "run", data=ds), ds


def _counted_evaluate(run_dir, ds, monkeypatch) -> dict[int, int]:
    """Run ``evaluate`` with every member's forward calls counted by the number of days they cover."""
    calls: dict[int, int] = {}
    load = Run.load

    def counting_load(path):
        run = load(path)
        for model in run.members:
            model.register_forward_hook(
                lambda mod, args, out: calls.__setitem__(args[0]["x_dynamic"].shape[1],
                                                         calls.get(args[0]["x_dynamic"].shape[1], 0) + 1))
        return run

    monkeypatch.setattr(report.Run, "load", staticmethod(counting_load))
    monkeypatch.setattr(SequenceAdapter, "load", lambda self, *a, **k: ds)
    rep = report.evaluate(run_dir)
    assert "Calibration of the predictive distribution of sm" in rep.text and "recalibrated (variance)" in rep.text
    return calls


def test_evaluate_runs_each_member_once_and_the_noisy_passes_once(trained, monkeypatch):
    run_dir, ds = trained
    test_days = 20 + 90  # warm-up + Jan..Mar 2002
    valid_days = 20 + 92  # warm-up + Oct..Dec 2001
    once = MEMBERS * (1 + NOISE_RUNS)  # 6 sites: one chunk of rows per pass
    for f in run_dir.glob("recalibration_*.json"):
        f.unlink()
    first = _counted_evaluate(run_dir, ds, monkeypatch)
    assert first == {test_days: once, valid_days: once}  # the test passes, and the recalibration's fit
    again = _counted_evaluate(run_dir, ds, monkeypatch)
    assert again == {test_days: once}  # the saved recalibration is read, not refitted
