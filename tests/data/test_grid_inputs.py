"""Reader grid_inputs: lat/lon and EASE-2 stores sampled to M36 cells (nearest, area), daily steps, units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.config import DataConfig
from smfusion.data.grid_inputs import cell_list
from smfusion.data.loading import load_dataset
from smfusion.data.units import converter
from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy

LAT = np.arange(45.0, 30.0, -0.25) - 0.125  # descending, like ERA5
LON = np.arange(250.0, 270.0, 0.25) + 0.125  # 0..360 convention
TIMES = pd.date_range("2016-01-01", periods=4 * 6, freq="6h")  # 6-hourly, 6 days


def _latlon_store(tmp_path):
    rng = np.random.default_rng(0)
    shape = (TIMES.size, LAT.size, LON.size)
    t2m = 270.0 + 20 * rng.random(shape)
    tp = 1e-5 * rng.random(shape)
    tp[:, 10, 10] = np.nan
    sand = rng.random((LAT.size, LON.size))
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), t2m.astype(np.float32),
                             {"units": "K", "standard_name": "air_temperature"}),
                     "tp": (("time", "latitude", "longitude"), tp.astype(np.float32), {"units": "kg m-2 s-1"}),
                     "sand": (("latitude", "longitude"), sand.astype(np.float32), {"units": "1"})},
                    coords={"time": TIMES, "latitude": LAT, "longitude": LON})
    path = tmp_path / "era5.nc"
    ds.to_netcdf(path)
    return ds, path


def _cells(tmp_path, n=30):
    g = get_grid("M36")
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(33, 42, n), rng.uniform(-108, -93, n)
    r, c = latlon_to_rowcol(g, lat, lon)
    key = np.unique(r * g.ncols + c)
    r, c = np.divmod(key, g.ncols)
    clat, clon = rowcol_to_latlon(g, r, c)
    path = tmp_path / "cells.csv"
    pd.DataFrame({"lat": clat, "lon": clon}).to_csv(path, index=False)
    return path, clat, clon


def _cfg(stores, cells, resample="nearest", target=(), **kw):
    cfg = DataConfig.model_validate({"reader": "grid_inputs", **kw,
                                     "grid_inputs": {"grid": "M36", "cells": str(cells), "resample": resample,
                                                     "stores": stores}})
    return cfg.model_copy(update={"target": list(target)})  # inputs only (as products read them)


def test_latlon_nearest_daily_and_units(tmp_path):
    ds, path = _latlon_store(tmp_path)
    cells, clat, clon = _cells(tmp_path)
    stores = [{"path": str(path), "variables": {
        "tair": {"standard_name": "air_temperature", "units": "degC"},
        "precip": {"name": "tp", "units": "mm d-1", "daily": "mean"},
        "tmax": {"name": "t2m", "daily": "max"},
        "sand": {"name": "sand"}}}]
    cfg = _cfg(stores, cells, dynamic=["tair", "precip", "tmax"], static=["sand"])
    out = load_dataset(cfg, "2016-01-02", "2016-01-07", require_target=False)
    assert out.tair.dims == ("site", "time") and out.sizes["time"] == 6 and out.sizes["site"] == clat.size
    assert np.isnan(out.tair.values[:, -1]).all()  # 2016-01-07 is past the store
    iy = np.abs(LAT[None] - clat[:, None]).argmin(1)
    ix = np.abs(LON[None] - np.mod(clon, 360)[:, None]).argmin(1)
    day2 = ds.sel(time="2016-01-02")
    want = day2.t2m.values[:, iy, ix].mean(0) - 273.15
    np.testing.assert_allclose(out.tair.values[:, 0], want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out.tmax.values[:, 0], day2.t2m.values[:, iy, ix].max(0), rtol=1e-6)
    pr = day2.tp.values[:, iy, ix].mean(0) * 86400.0  # kg m-2 s-1 -> mm d-1: water equivalent
    np.testing.assert_allclose(out.precip.values[:, 0], pr, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.sand.values, ds.sand.values[iy, ix], rtol=1e-6)
    assert out.tair.attrs["units"] == "degC" and out.precip.attrs["units"] == "mm d-1"
    sub = load_dataset(_cfg(stores, cells, dynamic=["tair"], sites=[3, 1]), "2016-01-02", "2016-01-03",
                       require_target=False)
    np.testing.assert_array_equal(sub.site.values, [3, 1])
    np.testing.assert_allclose(sub.tair.values, out.tair.values[[3, 1], :2])


def test_latlon_area_weighting_and_coverage(tmp_path):
    ds, path = _latlon_store(tmp_path)
    cells, clat, clon = _cells(tmp_path)
    stores = [{"path": str(path), "variables": {"precip": {"name": "tp"}, "sand": {"name": "sand"}}}]
    out = load_dataset(_cfg(stores, cells, "area", dynamic=["precip"], static=["sand"]), "2016-01-01",
                       "2016-01-01", require_target=False)
    g = get_grid("M36")
    lat2, lon2 = np.meshgrid(LAT, LON - 360.0, indexing="ij")
    r, c = latlon_to_rowcol(g, lat2, lon2)
    cr, cc = latlon_to_rowcol(g, clat, clon)
    for k in range(clat.size):  # by hand: cos(lat)-weighted mean of the pixels whose centres are in the cell
        inside = (r == cr[k]) & (c == cc[k])
        w = np.cos(np.radians(lat2[inside]))
        assert inside.sum() >= 1  # 0.25 deg pixels: one to four centres per 36 km cell
        np.testing.assert_allclose(out.sand.values[k], (w * ds.sand.values[inside]).sum() / w.sum(), rtol=1e-5)
        p = ds.tp.isel(time=slice(0, 4)).values.mean(0)[inside]
        ok = np.isfinite(p)
        want = (w[ok] * p[ok]).sum() / w[ok].sum() if w[ok].sum() >= 0.5 * w.sum() else np.nan
        np.testing.assert_allclose(out.precip.values[k, 0], want, rtol=1e-4)


def test_ease_store_area_is_block_mean_and_nearest_is_child(tmp_path):
    fine, coarse = get_grid("M09"), get_grid("M36")
    r0, c0 = 100, 300  # an M09 window
    ny, nx = 40, 60
    x, _ = rowcol_to_xy(fine, np.zeros(nx, int), np.arange(c0, c0 + nx))
    _, y = rowcol_to_xy(fine, np.arange(r0, r0 + ny), np.zeros(ny, int))
    v = np.random.default_rng(2).random((2, ny, nx)).astype(np.float32)
    store = xr.Dataset({"v": (("time", "y", "x"), v, {"units": "m3 m-3"})},
                       coords={"time": pd.date_range("2016-01-01", periods=2), "y": y, "x": x},
                       attrs={"ease2_grid": "M09"})
    path = tmp_path / "m09.zarr"
    store.to_zarr(path, zarr_format=2)
    # M36 cells fully inside the window: parents of the window's M09 cells
    rows = np.arange(r0 // 4 + 1, (r0 + ny) // 4 - 1)
    cols = np.arange(c0 // 4 + 1, (c0 + nx) // 4 - 1)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    lat, lon = rowcol_to_latlon(coarse, rr.ravel(), cc.ravel())
    cells = tmp_path / "c.csv"
    pd.DataFrame({"lat": lat, "lon": lon}).to_csv(cells, index=False)
    stores = [{"path": str(path), "variables": {"v": {"name": "v", "units": "1"}}}]
    area = load_dataset(_cfg(stores, cells, "area", dynamic=["v"]), "2016-01-01", "2016-01-02",
                        require_target=False)
    near = load_dataset(_cfg(stores, cells, dynamic=["v"]), "2016-01-01", "2016-01-02",
                        require_target=False)
    for k, (r, c) in enumerate(zip(rr.ravel(), cc.ravel())):
        blk = v[:, 4 * r - r0:4 * r - r0 + 4, 4 * c - c0:4 * c - c0 + 4]
        np.testing.assert_allclose(area.v.values[k], blk.mean((1, 2)), rtol=1e-5)
        fr, fc = latlon_to_rowcol(fine, lat[k], lon[k])
        np.testing.assert_allclose(near.v.values[k], v[:, int(fr) - r0, int(fc) - c0], rtol=1e-6)


def test_unit_conversion_table_and_refusals(tmp_path):
    np.testing.assert_allclose(converter("K", "degC")(np.array([273.15, 300.0])), [0.0, 26.85], atol=1e-5)
    np.testing.assert_allclose(converter("kg m-2 s-1", "mm d-1")(1e-5), 0.864, rtol=1e-6)
    np.testing.assert_allclose(converter("m", "kg m-2")(0.002), 2.0, rtol=1e-6)  # water equivalent
    np.testing.assert_allclose(converter("J m-2 d-1", "W m-2")(86400.0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(converter("Pa", "hPa")(101325.0), 1013.25, rtol=1e-6)
    np.testing.assert_allclose(converter("1", "%")(0.25), 25.0, rtol=1e-6)
    with pytest.raises(DataError, match="cannot be converted"):
        converter("K", "mm d-1", "tair")
    with pytest.raises(DataError, match="unknown unit"):
        converter("knots per bogon", "m s-1", "wind")
    ds, path = _latlon_store(tmp_path)
    cells, *_ = _cells(tmp_path)
    bad = [{"path": str(path), "variables": {"tair": {"name": "t2m", "units": "mm"}}}]
    with pytest.raises(DataError, match="cannot be converted") as err:
        load_dataset(_cfg(bad, cells, dynamic=["tair"]), "2016-01-01", "2016-01-02", require_target=False)
    assert "tair" in str(err.value) and "era5.nc" in str(err.value)


def test_land_cells_of_the_m36_grid(land_file):
    rows, cols, lat, lon = cell_list("M36", "land", str(land_file), None)
    assert rows.size == 103_902
    r, c, *_ = cell_list("M36", "land", str(land_file), (30.0, 40.0, -100.0, -90.0))
    assert 0 < r.size < 1000


def test_input_check_before_any_read(tmp_path):
    """``smfusion check`` / train's first step: stores, variables and units are checked without reading data."""
    import sys
    from pathlib import Path

    from smfusion.config import parse_config
    from smfusion.data.checks import check_config

    sys.path.insert(0, str(Path(__file__).parents[1] / "products"))
    from engine_setup import config, write_domain

    store, cells = write_domain(tmp_path)
    good = config(store, cells, "lstm")
    assert [p for p in check_config(good) if p.severity == "error"] == []
    raw = good.to_dict()
    raw["data"]["grid_inputs"]["stores"][0]["variables"]["tair"] = {"name": "tair", "units": "mm"}
    problems = [p for p in check_config(parse_config(raw)) if p.severity == "error"]
    assert problems and "cannot be converted" in problems[0].what
    raw["data"]["grid_inputs"]["stores"][0]["variables"]["tair"] = {"name": "no_such_variable"}
    problems = [p for p in check_config(parse_config(raw)) if p.severity == "error"]
    assert problems and "no_such_variable" in str(problems[0])
