"""Lazy training reads (data.lazy): the same statistics and minibatches as in memory, and a store larger than
the process may hold is trained on without being loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from smfusion.config import parse_config
from smfusion.data.adapters import adapter_for

sys.path.insert(0, str(Path(__file__).parents[1] / "products"))
from engine_setup import config, write_domain  # noqa: E402


@pytest.fixture(scope="module")
def domain(tmp_path_factory):
    return write_domain(tmp_path_factory.mktemp("lazy"))


def _adapters(store, cells, **extra):
    eager = config(store, cells, "lstm", **extra)
    lazy = parse_config({**eager.to_dict(), "data": {**eager.to_dict()["data"],
                                                     "lazy": {"block_sites": 7, "cache_mb": 0.05}}})
    return adapter_for(eager), adapter_for(lazy)


@pytest.mark.parametrize("extra", [{}, {"seasonal": {"target_mode": "anomaly", "input_mode": "anomaly"},
                                        "features": {"antecedent": {"precip": [5]}}, "normalization":
                                        {"target": "site"}}])
def test_lazy_fit_and_batches_equal_in_memory(domain, extra):
    eager, lazy = _adapters(*domain, **extra)
    d_e, d_l = eager.load(), lazy.load()
    assert d_l.attrs.get("smfusion_lazy") and not d_l.data_vars
    split = eager.split(d_e)
    eager.fit(d_e, split)
    lazy.fit(d_l, lazy.split(d_l))
    for v in eager.scaler.mean:
        assert lazy.scaler.mean[v] == pytest.approx(eager.scaler.mean[v], rel=1e-9, abs=1e-12), v
        assert lazy.scaler.std[v] == pytest.approx(eager.scaler.std[v], rel=1e-9)
    for v, st in eager.scaler.site_stats.items():
        np.testing.assert_allclose(lazy.scaler.site_stats[v]["std"], st["std"], rtol=1e-9)
    assert set(lazy.seasonal.clims) == set(eager.seasonal.clims)
    for v, clim in eager.seasonal.clims.items():
        np.testing.assert_allclose(lazy.seasonal.clims[v].values, clim.values, rtol=1e-9, atol=1e-12, err_msg=v)
    training = eager.cfg.training
    s_e, s_l = eager.train_batches(d_e, split, training), lazy.train_batches(d_l, split, training)
    assert s_l.iterations_per_epoch(8, 20) == s_e.iterations_per_epoch(8, 20)
    r_e, r_l = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(6):
        a, b = s_e.sample(r_e), s_l.sample(r_l)
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert s_l.cache.bytes <= 0.05 * 2**20 or len(s_l.cache.items) == 1  # the cache holds what it may


CHILD = textwrap.dedent('''
    import json, resource, sys
    import numpy as np, xarray as xr, torch
    from smfusion.config import parse_config
    from smfusion.training.run import train
    cfg = json.loads(sys.argv[1])
    def vm():
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize"))
    limit = vm() + int(cfg.pop("headroom"))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    what = cfg.pop("what")
    if what == "load":
        try:
            xr.open_zarr(cfg["store"]).load()
            print("LOADED")
        except MemoryError:
            print("MEMORYERROR")
    else:
        store = cfg.pop("store")
        train(parse_config(cfg), cfg.pop("run_dir", None) or sys.argv[2])
        print("TRAINED")
''')


def _big_store(path: Path, n_cells: int, n_days: int) -> tuple[Path, Path]:
    """A SYNTHETIC EASE-2 M36 store of 4 daily variables (cheap patterns, compressible), n_cells x n_days."""
    import dask.array as da
    import pandas as pd
    import xarray as xr

    from smfusion.grids.ease2 import get_grid, rowcol_to_latlon, rowcol_to_xy

    g = get_grid("M36")
    nx = 200
    ny = n_cells // nx
    rows, cols = np.meshgrid(np.arange(100, 100 + ny), np.arange(300, 300 + nx), indexing="ij")
    x, _ = rowcol_to_xy(g, np.zeros(nx, int), np.arange(300, 300 + nx))
    _, y = rowcol_to_xy(g, np.arange(100, 100 + ny), np.zeros(ny, int))
    chunks = (n_days, 1, 100)
    t = da.arange(n_days, chunks=n_days, dtype=np.float32)[:, None, None]
    yy = da.arange(ny, chunks=1, dtype=np.float32)[None, :, None]
    xx = da.arange(nx, chunks=100, dtype=np.float32)[None, None, :]
    season = da.sin(2 * np.pi * t / 365.25)
    data = {"precip": da.maximum(da.sin(t * 0.7 + xx * 0.3 + yy) * 10, 0), "tair": 10 + 15 * season + 0.01 * yy,
            "swdown": 200 + 100 * season + 0 * xx, "sm": 0.2 + 0.1 * da.sin(2 * np.pi * t / 365.25 + 0.01 * xx)}
    ds = xr.Dataset({k: (("time", "y", "x"), da.broadcast_to(v, (n_days, ny, nx)).rechunk(chunks).astype(np.float32),
                         {"units": "1"}) for k, v in data.items()},
                    coords={"time": pd.date_range("1990-01-01", periods=n_days), "y": y, "x": x},
                    attrs={"ease2_grid": "M36"})
    ds.to_zarr(path, zarr_format=2, encoding={k: {"chunks": chunks} for k in data})
    lat, lon = rowcol_to_latlon(g, rows.ravel(), cols.ravel())
    cells = path.parent / "big_cells.csv"
    pd.DataFrame({"lat": lat, "lon": lon}).to_csv(cells, index=False)
    return path, cells


@pytest.mark.slow
def test_lazy_training_never_loads_the_store(tmp_path):
    """A 1.8 GB (uncompressed) store, a process limited to 0.9 GB more address space than after its imports:
    loading the store fails there, lazy training on all of it (statistics over every value) succeeds."""
    store, cells = _big_store(tmp_path / "big.zarr", n_cells=20_000, n_days=5_840)  # 4 x 20,000 x 5,840 x 4 B
    raw = {"name": "big", "data": {
        "reader": "grid_inputs", "dynamic": ["precip", "tair", "swdown"], "target": ["sm"],
        "lazy": {"block_sites": 200, "cache_mb": 64},
        "grid_inputs": {"grid": "M36", "cells": str(cells), "stores": [{"path": str(store), "variables": {
            v: {"name": v} for v in ("precip", "tair", "swdown", "sm")}}]}},
        "periods": {"train": ["1990-01-10", "2005-12-31"], "warmup_days": 0},
        "model": {"name": "lstm", "hidden_size": 8, "dropout": 0.0},
        "training": {"epochs": 1, "batch_size": 16, "seq_len": 30, "iterations_per_epoch": 5, "progress": False,
                     "threads": 1}}
    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2")

    def child(what):
        arg = json.dumps({**raw, "what": what, "store": str(store), "headroom": 900 * 2**20})
        res = subprocess.run([sys.executable, "-c", CHILD, arg, str(tmp_path / "run")], env=env,
                             capture_output=True, text=True, timeout=900)
        return res.stdout + res.stderr

    assert "MEMORYERROR" in child("load")  # the limit is real: the store does not fit
    out = child("train")
    assert "TRAINED" in out, out[-3000:]
    assert (tmp_path / "run" / "member_0" / "model.pt").is_file()
