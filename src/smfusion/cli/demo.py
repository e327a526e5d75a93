"""``smfusion demo``: the main job on the real CONUS data, in minutes on 2 CPU cores.

Trains the LSTM of ``configs/demo.yaml`` (the published protocol: train
2015-04-01..2016-02-29, validation March 2016, test the next year, all 412 cells, SMAP_AM target),
then prints the protocol and the table of our model, the baselines and the
published hydroDL predictions.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import yaml

from smfusion.config import parse_config


def demo_config():
    text = resources.files("smfusion").joinpath("configs/demo.yaml").read_text()
    return parse_config(yaml.safe_load(text), source="smfusion/configs/demo.yaml")


def run_demo(run_dir: str | Path = "runs/demo") -> str:
    from smfusion.evaluation.report import evaluate
    from smfusion.training.run import train

    cfg = demo_config()
    t0 = time.perf_counter()
    print(f"smfusion demo: training '{cfg.name}' into {run_dir} ...", flush=True)
    train(cfg, run_dir)
    report = evaluate(run_dir)
    print(report.text)
    print(f"\n(demo wall time {time.perf_counter() - t0:.0f} s; run dir {run_dir})")
    return report.text
