"""Every NetCDF smfusion writes for a product or a prediction passes ``compliance-checker --test cf:1.8``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.io.cf import read_product
from smfusion.products.longterm import predict_product
from smfusion.products.predict import predict_to_file

sys.path.insert(0, str(Path(__file__).parent))
from engine_setup import config, write_domain  # noqa: E402

pytest.importorskip("compliance_checker")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from smfusion.training.run import train

    tmp = tmp_path_factory.mktemp("cf")
    store, cells = write_domain(tmp)
    return train(config(store, cells, "lstm"), tmp / "run")


def test_checker_sees_the_old_int64_errors(tmp_path, cf_checker):
    """The check is real: int64 time and site (what smfusion wrote before) are reported."""
    ds = xr.Dataset({"sm": (("site", "time"), np.zeros((2, 3), np.float32), {"units": "m3 m-3"})},
                    coords={"site": np.array([1, 2], np.int64), "time": pd.date_range("2016-01-01", periods=3)},
                    attrs={"Conventions": "CF-1.8"})
    path = tmp_path / "old.nc"
    ds.to_netcdf(path, encoding={"time": {"dtype": "int64", "units": "days since 2016-01-01"}})
    errors = cf_checker(path)
    assert any("time" in e and "int64" in e for e in errors) and any("site" in e for e in errors)


def test_product_and_prediction_files_are_cf_clean(run, tmp_path, cf_checker):
    period = ("2015-08-01", "2015-08-31")
    files = [predict_product(run, *period, tmp_path / "site.nc", chunk_days=15, progress=False),
             predict_product(run, *period, tmp_path / "grid.nc", layout="grid", composite_days=3, progress=False),
             predict_to_file(run, *period, tmp_path / "points.nc")]
    for f in files:
        assert cf_checker(f) == [], f.name
    z = predict_product(run, *period, tmp_path / "grid.zarr", layout="grid", progress=False)
    assert (z / ".zmetadata").is_file()  # consolidated metadata
    a, b = read_product(z), read_product(tmp_path / "grid.nc")
    for key in ("Conventions", "config_hash", "product", "ease2_grid", "run_dir"):
        assert a.attrs[key] == b.attrs[key], key
    assert a.sm.attrs["standard_name"] == b.sm.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
