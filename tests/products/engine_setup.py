"""A small SYNTHETIC domain (48 M36 cells, 2015) in a Zarr store read by ``grid_inputs``, and trained runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smfusion.config import parse_config
from smfusion.grids.ease2 import get_grid, rowcol_to_latlon
from smfusion.synthetic.global_forcing import write_forcing_store
from smfusion.training.run import train

ROWS, COLS = np.meshgrid(np.arange(100, 106), np.arange(200, 208), indexing="ij")


def write_domain(tmp: Path) -> tuple[Path, Path]:
    store = write_forcing_store(tmp / "forcing.zarr", ROWS.ravel(), COLS.ravel(), "2015-01-01", "2015-12-31",
                                seed=3)
    lat, lon = rowcol_to_latlon(get_grid("M36"), ROWS.ravel(), COLS.ravel())
    cells = tmp / "cells.csv"
    pd.DataFrame({"lat": lat, "lon": lon}).to_csv(cells, index=False)
    return store, cells


def config(store: Path, cells: Path, model: str, **extra):
    raw = {
        "name": f"engine_{model}",
        "data": {"reader": "grid_inputs", "dynamic": ["precip", "tair", "swdown", "spfh"], "static": ["sand", "clay"],
                 "target": ["sm"],
                 "grid_inputs": {"grid": "M36", "cells": str(cells), "stores": [{"path": str(store), "variables": {
                     v: {"name": v} for v in ("precip", "tair", "swdown", "spfh", "sand", "clay", "sm")}}]}},
        "periods": {"train": ["2015-02-01", "2015-07-31"], "warmup_days": 30},
        "model": {"name": model, "hidden_size": 8, "dropout": 0.0, "num_layers": 2},
        "training": {"epochs": 1, "batch_size": 8, "seq_len": 20, "iterations_per_epoch": 3, "ensemble": 2,
                     "progress": False, "threads": 1},
        "uncertainty": {"noise": 0.1, "noise_runs": 2},
        **extra,
    }
    return parse_config(raw)


def train_runs(tmp: Path) -> dict[str, Path]:
    store, cells = write_domain(tmp)
    lstm = train(config(store, cells, "lstm"), tmp / "lstm")
    mlp = train(config(store, cells, "mlp", features={"antecedent": {"precip": [7]}, "lags": {"tair": [2]}}),
                tmp / "mlp")
    return {"lstm": lstm, "mlp": mlp, "store": store, "cells": cells}
