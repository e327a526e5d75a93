"""Era chaining: contiguous eras only, windows per era, one product; regridding a product conserves the area mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon
from smfusion.grids.regrid import site_weights
from smfusion.products.chain import check_eras, era_periods
from smfusion.products.regrid_product import regrid_site_product


def test_eras_must_be_contiguous():
    eras = check_eras([("a", "2002-06-19", "2010-01-11"), ("b", "2010-01-12", "2020-12-31")])
    assert [e.start for e in eras] == [pd.Timestamp("2002-06-19"), pd.Timestamp("2010-01-12")]
    with pytest.raises(ConfigError, match="leaves a gap"):
        check_eras([("a", "2002-06-19", "2010-01-10"), ("b", "2010-01-12", "2020-12-31")])
    with pytest.raises(ConfigError, match="overlaps"):
        check_eras([("a", "2002-06-19", "2010-01-12"), ("b", "2010-01-12", "2020-12-31")])
    with pytest.raises(ConfigError, match="ends before"):
        check_eras([("a", "2002-06-19", "2002-06-01")])


def test_each_window_belongs_to_the_era_of_its_first_day():
    eras = check_eras([("a", "2002-01-01", "2002-01-07"), ("b", "2002-01-08", "2002-01-20")])
    (a0, a1), (b0, b1) = era_periods(eras, 3)
    # windows start 01, 04, 07 | 10, 13, 16, 19 (the last cut at the chain's end)
    assert (a0, a1) == (pd.Timestamp("2002-01-01"), pd.Timestamp("2002-01-09"))
    assert (b0, b1) == (pd.Timestamp("2002-01-10"), pd.Timestamp("2002-01-20"))
    assert era_periods(eras, 1) == [(eras[0].start, eras[0].end), (eras[1].start, eras[1].end)]
    with pytest.raises(ConfigError, match="holds no 10-day window"):
        era_periods(check_eras([("a", "2002-01-01", "2002-01-12"), ("b", "2002-01-13", "2002-01-15")]), 10)


def _m36_product(rng, n_time=5):
    """A site-layout product on scattered and on adjacent M36 cells (one site per cell), with a gap."""
    rows = np.array([60, 60, 61, 61, 70, 75, 80])
    cols = np.array([200, 201, 200, 201, 230, 260, 210])
    lat, lon = rowcol_to_latlon("M36", rows, cols)
    sm = rng.uniform(0.05, 0.45, (rows.size, n_time)).astype(np.float32)
    sm[4, 2] = np.nan
    ds = xr.Dataset({"sm": (("site", "time"), sm), "sm_epistemic_std": (("site", "time"), 0.1 * sm)},
                    coords={"site": np.arange(rows.size), "lat": ("site", lat), "lon": ("site", lon),
                            "time": pd.date_range("2015-04-01", periods=n_time, freq="3D")})
    return ds.assign(source_era=("time", np.array([0, 0, 1, 1, 1], dtype=np.int8))), rows, cols


def test_regridding_a_product_conserves_the_area_mean(tmp_path):
    ds, rows, cols = _m36_product(np.random.default_rng(0))
    out = regrid_site_product(ds, "M36", "M25", tmp_path / "g.zarr", min_valid_fraction=0.0).load()
    assert out.attrs["ease2_grid"] == "M25" and out["sm"].dims == ("time", "y", "x")
    r25, c25 = latlon_to_rowcol("M25", out["lat"].values, out["lon"].values)
    w = site_weights("M36", "M25", rows, cols, r25.ravel(), c25.ravel())  # overlap areas (m2)
    area36 = get_grid("M36").cell_size ** 2
    for k in range(ds.sizes["time"]):
        v36 = ds["sm"].values[:, k].astype(float)
        ok = np.isfinite(v36)
        covered = w[:, ok].sum(axis=1).A1  # area of each M25 cell covered by valid M36 cells
        v25 = out["sm"].values[k].ravel().astype(float)
        total25 = np.nansum(np.where(covered > 0, v25, 0.0) * covered)
        np.testing.assert_allclose(total25, (v36[ok] * area36).sum(), rtol=1e-5)
        # the area mean over the covered region is the source mean (equal-area cells)
        np.testing.assert_allclose(total25 / covered.sum(), v36[ok].mean(), rtol=1e-5)
    # source: the step's era where sm has a value, -1 elsewhere
    src, sm = out["source"].values, out["sm"].values
    assert set(np.unique(src[np.isfinite(sm)])) == {0, 1} and (src[~np.isfinite(sm)] == -1).all()
    assert (src[:2][np.isfinite(sm[:2])] == 0).all() and (src[2:][np.isfinite(sm[2:])] == 1).all()


def test_regridding_onto_the_same_grid_is_the_identity_and_coverage_is_enforced(tmp_path):
    ds, rows, cols = _m36_product(np.random.default_rng(1))
    out = regrid_site_product(ds, "M36", "M36", tmp_path / "same.zarr").load()
    r, c = latlon_to_rowcol("M36", ds["lat"].values, ds["lon"].values)
    y0, x0 = latlon_to_rowcol("M36", float(out["lat"].values[0, 0]), float(out["lon"].values[0, 0]))
    np.testing.assert_allclose(out["sm"].values[:, r - y0, c - x0].T, ds["sm"].values, rtol=1e-6)
    # one scattered M25 cell covers under half of an M36 cell: nothing reaches 0.5 coverage
    lat, lon = rowcol_to_latlon("M25", np.array([100, 140]), np.array([300, 400]))
    sparse = ds.isel(site=[0, 1]).assign_coords(lat=("site", lat), lon=("site", lon))
    with pytest.raises(DataError, match="min_valid_fraction"):
        regrid_site_product(sparse, "M25", "M36", tmp_path / "sparse.zarr", min_valid_fraction=0.5)
