"""A new adapter and a new objective, registered in this test file, work through the one pipeline
without touching the package."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from smfusion.config import parse_config
from smfusion.data.adapters import adapter_for, available, register_adapter
from smfusion.data.adapters.sequence import SequenceAdapter
from smfusion.errors import ConfigError
from smfusion.runs import Run
from smfusion.training.objectives import register_objective
from smfusion.training.run import check_names, train


@register_objective("huber_test")
def _huber(cfg, training):
    """Masked Huber loss (delta 1) on y_hat vs y."""

    def objective(prediction, data):
        y, y_hat = data["y"], prediction["y_hat"]
        ok = ~torch.isnan(y)
        loss = torch.nn.functional.huber_loss(y_hat[ok], y[ok])
        return loss, {"huber": float(loss.detach())}

    return objective


@register_adapter("sequence_scaled_target_test")
class TenfoldTarget(SequenceAdapter):
    """The sequence adapter with the target in tenths of its unit: to_physical must undo it."""

    def load(self, *a, **k) -> xr.Dataset:
        ds = super().load(*a, **k)
        for v in self.cfg.data.target:
            if v in ds:
                ds[v] = ds[v] * 10.0
        return ds

    def to_physical(self, z, batches):
        return super().to_physical(z, batches) / 10.0


def _synthetic() -> xr.Dataset:
    rng = np.random.default_rng(0)
    time = xr.date_range("2001-01-01", "2001-12-31", freq="D")
    p = rng.gamma(0.5, 4.0, (5, time.size))
    sm = 0.2 + 0.01 * np.cumsum(p - p.mean(), axis=1) / 30
    return xr.Dataset({"P": (("site", "time"), p), "sm": (("site", "time"), sm), "S": (("site",), rng.normal(size=5))},
                      coords={"site": np.arange(5), "time": time, "lat": ("site", np.linspace(35, 40, 5)),
                              "lon": ("site", np.linspace(-100, -95, 5))})


def _cfg(**over):
    raw = {"name": "ext", "data": {"dynamic": ["P"], "static": ["S"], "target": ["sm"]},
           "periods": {"train": ["2001-02-01", "2001-09-30"], "test": ["2001-10-01", "2001-12-31"], "warmup_days": 30},
           "model": {"name": "lstm", "hidden_size": 8, "dropout": 0.0},
           "training": {"epochs": 2, "batch_size": 4, "seq_len": 20, "iterations_per_epoch": 4, "progress": False,
                        "threads": 1}}
    for k, v in over.items():
        raw[k] = {**raw[k], **v}
    return parse_config(raw)


def test_registered_objective_trains_through_the_one_trainer(tmp_path):
    run_dir = train(_cfg(training={"loss": "huber_test"}), tmp_path / "run", data=_synthetic())
    history = (run_dir / "member_0" / "history.json").read_text()
    assert "train_loss" in history
    pred = Run.load(run_dir).predict("2001-10-01", "2001-12-31", data=_synthetic())
    assert pred["sm"].shape == (5, 92) and np.isfinite(pred["sm"].values).all()


def test_registered_adapter_is_picked_by_the_config_and_by_the_run_loader(tmp_path):
    cfg = _cfg(data={"adapter": "sequence_scaled_target_test"})
    assert "sequence_scaled_target_test" in available()
    assert type(adapter_for(cfg)) is TenfoldTarget
    ds = _synthetic()
    adapter = adapter_for(cfg)
    ds10 = ds.copy()
    ds10["sm"] = ds["sm"] * 10.0
    run_dir = train(cfg, tmp_path / "run", data=ds10)
    run = Run.load(run_dir)
    assert type(run.adapter) is TenfoldTarget and run.adapter.scaler is not None and adapter is not run.adapter
    pred = run.predict("2001-10-01", "2001-12-31", data=ds10)["sm"].values
    assert np.nanmax(np.abs(pred)) < 1.0  # back in the original unit (m3/m3), not tenths


def test_unknown_names_are_refused_before_work():
    with pytest.raises(ConfigError, match="training.loss: unknown objective 'nope'"):
        check_names(_cfg(training={"loss": "nope"}), "x.yaml")
    with pytest.raises(ConfigError, match="data.adapter: unknown adapter 'nope'"):
        check_names(_cfg(data={"adapter": "nope"}), "x.yaml")
