"""Long-term product on a small real domain equals per-site prediction; grid layout; beyond the target."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from smfusion.config import parse_config
from smfusion.io.cf import cf_problems, read_product
from smfusion.products.longterm import composite, predict_product
from smfusion.runs import Run
from smfusion.training.run import train

pytestmark = pytest.mark.realdata
SITES = [0, 25, 50, 75, 100, 125]


def _cfg(root, model, **extra):
    raw = {
        "name": f"prod_{model}",
        "data": {"root": str(root), "dynamic": ["APCP_FORA", "TMP_2_FORA"], "static": ["Sand"], "target": ["SMAP_AM"],
                 "sites": SITES},
        "periods": {"train": ["2015-04-01", "2016-03-31"], "test": ["2016-04-01", "2017-03-31"], "warmup_days": 40},
        "seasonal": {"target_mode": "anomaly", "input_mode": "anomaly"},
        "model": {"name": model, "hidden_size": 8, "dropout": 0.0, "num_layers": 2},
        "training": {"epochs": 1, "batch_size": 4, "seq_len": 20, "iterations_per_epoch": 3, "ensemble": 2,
                     "progress": False, "threads": 1},
        "uncertainty": {"noise": 0.1, "noise_runs": 2},
        **extra,
    }
    return parse_config(raw)


@pytest.fixture(scope="module")
def runs(conus_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prod")
    mlp = train(_cfg(conus_root, "mlp", features={"antecedent": {"APCP_FORA": [30]}}), tmp / "mlp")
    lstm = train(_cfg(conus_root, "lstm"), tmp / "lstm")
    return {"mlp": mlp, "lstm": lstm, "tmp": tmp}


def test_product_equals_per_site_prediction(runs):
    tmp = runs["tmp"]
    period = ("2016-04-01", "2016-06-29")
    for model, chunk_days in (("mlp", 30), ("lstm", 400)):  # the MLP's state-free output allows time chunks
        out = predict_product(runs[model], *period, tmp / f"{model}.nc", chunk_days=chunk_days, chunk_sites=4,
                              progress=False)
        p = read_product(out, load=True)
        assert not cf_problems(p)
        ref = Run.load(runs[model]).predict(*period)
        assert p.sm.dims == ("site", "time") and p.sm.shape == (6, 90)
        np.testing.assert_allclose(p.sm.values, ref["SMAP_AM"].values, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p.sm_epistemic_std.values, ref["SMAP_AM_ensemble_std"].values, rtol=1e-4, atol=1e-6)
        assert (p.sm_aleatoric_std.values > 0).all()
        assert np.isfinite(p.sm_climatology.values).all()
        assert p.attrs["model"] == model and "config_hash" in p.attrs


def test_grid_layout_and_3day_composites_beyond_the_target(runs):
    tmp = runs["tmp"]
    period = ("2017-03-01", "2018-03-31")  # SMAP ends 2017-03-31, forcing goes on
    site = predict_product(runs["mlp"], *period, tmp / "s.nc", composite_days=3, chunk_days=100, progress=False)
    grid = predict_product(runs["mlp"], *period, tmp / "g.zarr", layout="grid", composite_days=3, chunk_days=100,
                           progress=False)
    s, g = read_product(site, load=True), read_product(grid, load=True)
    assert s.sm.shape == (6, 132)  # 396 days and g.sm.dims == ("time", "y", "x") and g.attrs["ease2_grid"] == "M36"
    assert not cf_problems(g)
    assert s.sm.attrs["cell_methods"] == "time: mean (interval: 3 days)"
    assert int(np.isfinite(g.sm.isel(time=0).values).sum()) == 6
    for i, site_id in enumerate(s.site.values):  # each site's series sits in its own cell
        lat, lon = float(s.lat[i]), float(s.lon[i])
        cell = np.unravel_index(np.argmin((g.lat.values - lat) ** 2 + (g.lon.values - lon) ** 2), g.lat.shape)
        np.testing.assert_allclose(g.sm.values[:, cell[0], cell[1]], s.sm.values[i], rtol=1e-6)
    daily = read_product(predict_product(runs["mlp"], "2017-03-01", "2017-03-09", tmp / "d.nc", progress=False),
                         load=True)
    np.testing.assert_allclose(s.sm.values[:, :3], composite(daily.sm.values, 3), rtol=1e-5)


def test_composite_by_hand():
    x = np.array([[1.0, 2.0, 3.0, 4.0, np.nan, 6.0, 7.0]])
    np.testing.assert_allclose(composite(x, 3), [[2.0, 5.0, 7.0]])
    assert xr is not None
