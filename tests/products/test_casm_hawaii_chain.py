"""CASM chain on the REAL Hawaii retrievals (skipped without ../shared/data/hawaii_multisensor): tiny runs from
configs/casm_hawaii_{smos,cci}.yaml, chained across the real SMOS start 2010-01-12 -- no gap, no overlap, the
source and uncertainty layers -- and the homogeneity check on that product against ESA CCI."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from smfusion.settings import data_dir

    root = data_dir()
    if root is None or not (root / "hawaii_multisensor").is_dir():
        pytest.skip("no real data hawaii_multisensor: set SMFUSION_DATA_DIR or place ../shared/data")
    from smfusion.config import parse_config
    from smfusion.training.run import train

    out, made = tmp_path_factory.mktemp("casm_hawaii"), {}
    for name in ("smos", "cci"):
        raw = yaml.safe_load((ROOT / "configs" / f"casm_hawaii_{name}.yaml").read_text())
        raw["training"].update(ensemble=2, epochs=2, iterations_per_epoch=5, progress=False, checkpoint_every=2)
        raw["uncertainty"]["noise_runs"] = 2
        raw["evaluation"]["baselines"] = []
        if "transfer" in raw:
            raw["transfer"]["from_run"] = str(made["smos"])
        made[name] = train(parse_config(raw), out / name)
    return out, made


@pytest.mark.slow  # ~40-70 s: two small trainings on 13 sites x 15-22 years of real records
def test_chain_on_real_dates_and_homogeneity(runs):
    from smfusion.evaluation.homogeneity import homogeneity
    from smfusion.products.chain import predict_chain

    out, made = runs
    path = predict_chain([(made["cci"], "2009-10-01", "2010-01-11", "esa_cci"), (made["smos"], "2010-01-12",
                          "2010-04-30", "smos")], out / "product.nc", progress=False)
    p = xr.open_dataset(path)
    t = pd.DatetimeIndex(p.time.values)
    assert (t == pd.date_range("2009-10-01", "2010-04-30", freq="D")).all()  # no gap, no overlap
    src = np.nan_to_num(p["source"].values.astype(float), nan=-1.0)  # the fill (-1) reads back as NaN
    before, after = np.asarray(t < "2010-01-12"), np.asarray(t >= "2010-01-12")
    assert set(np.unique(src[:, before])) <= {-1, 0} and set(np.unique(src[:, after])) <= {-1, 1}
    assert (src[:, before] == 0).any() and (src[:, after] == 1).any()
    assert np.array_equal(src >= 0, np.isfinite(p["sm"].values))
    assert "retrieval to retrieval" in p.attrs["era_methods"] and "esa_cci: " in p.attrs["era_methods"]
    for layer in ("sm_epistemic_std", "sm_aleatoric_std"):
        v = p[layer].values[np.isfinite(p["sm"].values)]
        assert np.all(v >= 0) and np.nanmax(v) > 0
    from smfusion.config import DataConfig
    from smfusion.data.sensor_cells import read_sensor_cells

    cfg = DataConfig.model_validate({"reader": "sensor_cells", "target": ["sm_cci"], "sensor_cells": {
        "points": "smap", "products": {
            "smap": {"sensor": "smap_l3", "overpass": "am", "path": "hawaii_multisensor/SMAP_L3/SMAP_V9_AM_PM/netcdf"},
            "cci": {"sensor": "esa_cci", "path": "hawaii_multisensor/ESA_CCI_SM_passive/ESA_CCI_SM_P_V09_2"}}}})
    cci = read_sensor_cells(cfg, "2009-10-01", "2010-04-30")["sm_cci"].values
    h = homogeneity(p["sm"].values, cci, t, ["2010-01-12"], window_days=90, min_count=5)
    jump = h["jump@2010-01-12"]
    assert np.isfinite(jump).any() and np.all(np.abs(jump[np.isfinite(jump)]) < 0.3)
    assert np.isfinite(h["trend"]).any()
