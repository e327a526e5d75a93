"""Spatial (nearest point with data, distance limit, containing cell) and temporal matching on hand-made series."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.data.collocation import haversine_km
from smfusion.data.extract import product_at_stations
from smfusion.data.station_match import daily_means, match_pairs, resolve_mode, restrict_dates
from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy


def _stations(lat, lon, times, values, sampling="hourly"):
    ds = xr.Dataset({"soil_moisture": (("site", "time"), np.asarray(values, dtype=float))},
                    coords={"site": [f"s{i}" for i in range(len(lat))], "time": pd.DatetimeIndex(times),
                            "lat": ("site", np.asarray(lat, dtype=float)), "lon": ("site", np.asarray(lon, dtype=float))})
    ds.attrs["sampling"] = sampling
    return ds


def _site_product(lat, lon, values, times):
    return xr.Dataset({"sm": (("site", "time"), np.asarray(values, dtype=float))},
                      coords={"site": np.arange(len(lat)), "time": pd.DatetimeIndex(times),
                              "lat": ("site", np.asarray(lat, dtype=float)), "lon": ("site", np.asarray(lon, dtype=float))})


def test_site_product_nearest_with_data_and_distance_limit():
    days = pd.date_range("2017-01-01", periods=4, freq="D")
    prod = _site_product([36.0, 36.05, 38.0], [-97.0, -97.0, -97.0],
                         [[0.1] * 4, [np.nan] * 4, [0.3] * 4], days)  # site 1 is nearest to s0 but empty
    st = _stations([36.06, 37.9, 10.0], [-97.0, -97.0, -97.0], days, np.zeros((3, 4)))
    out = product_at_stations(prod, st, max_distance_km=50.0)
    assert out["cell_id"].values.tolist() == ["site 0", "site 2", ""]
    assert out["distance_km"].values[0] == pytest.approx(haversine_km(36.06, -97.0, 36.0, -97.0))
    assert np.isnan(out["distance_km"].values[2]) and np.isnan(out["value"].values[2]).all()
    assert out["value"].values[1].tolist() == [0.3] * 4
    assert list(out.site.values) == ["s0", "s1", "s2"]
    far = product_at_stations(prod, st, max_distance_km=5.0)
    assert far["cell_id"].values.tolist() == ["", "", ""]


def test_ease2_grid_product_nearest_valid_and_containing_cell():
    grid = get_grid("M36")
    r0, c0 = latlon_to_rowcol(grid, 36.0, -97.0)
    rows, cols = np.arange(r0 - 3, r0 + 4), np.arange(c0 - 3, c0 + 4)
    x, _ = rowcol_to_xy(grid, np.full(cols.size, r0), cols)
    _, y = rowcol_to_xy(grid, rows, np.full(rows.size, c0))
    data = np.full((5, rows.size, cols.size), np.nan)
    data[:, 3, 4] = 0.25  # only the cell east of the station's cell has data
    prod = xr.Dataset({"sm": (("time", "y", "x"), data)},
                      coords={"time": pd.date_range("2017-01-01", periods=5), "y": y, "x": x},
                      attrs={"ease2_grid": "M36"})
    clat, clon = rowcol_to_latlon(grid, r0, c0)
    st = _stations([float(clat)], [float(clon)], pd.date_range("2017-01-01", periods=5), np.zeros((1, 5)))
    near = product_at_stations(prod, st, max_distance_km=60.0)
    assert near["cell_id"].values[0] == f"M36:{r0}:{c0 + 1}"
    assert 25.0 < near["distance_km"].values[0] < 45.0
    assert (near["value"].values == 0.25).all()
    cell = product_at_stations(prod, st, spatial="cell", max_distance_km=60.0)
    assert cell["cell_id"].values[0] == f"M36:{r0}:{c0}" and np.isnan(cell["value"].values).all()
    assert product_at_stations(prod, st, max_distance_km=10.0)["cell_id"].values[0] == ""


def test_grid_product_file_netcdf_and_zarr(tmp_path):
    from smfusion.io import cf

    grid = get_grid("M36")
    r0, c0 = latlon_to_rowcol(grid, 36.0, -97.0)
    rows, cols = np.arange(r0 - 2, r0 + 3), np.arange(c0 - 2, c0 + 3)
    x, _ = rowcol_to_xy(grid, np.full(cols.size, r0), cols)
    _, y = rowcol_to_xy(grid, rows, np.full(rows.size, c0))
    data = np.random.default_rng(2).uniform(0.1, 0.4, (4, 5, 5)).astype(np.float32)
    ds = xr.Dataset({"sm": (("time", "y", "x"), data, {"units": "m3 m-3"}),
                     "sm_ensemble_std": (("time", "y", "x"), data * 0.1, {"units": "m3 m-3"})},
                    coords={"time": pd.date_range("2017-01-01", periods=4), "y": y, "x": x},
                    attrs={"ease2_grid": "M36"})
    st = _stations([36.0], [-97.0], pd.date_range("2017-01-01", periods=4), np.zeros((1, 4)))
    for path in (cf.write_netcdf(ds, tmp_path / "g.nc"), cf.write_zarr(ds, tmp_path / "g.zarr")):
        out = product_at_stations(path, st, spatial="cell")
        assert out.attrs["variable"] == "sm" and out.attrs["layout"] == "ease2"  # not the std layer
        np.testing.assert_allclose(out["value"].values[0], data[:, 2, 2])


def test_latlon_grid_product():
    lat = np.arange(30.0, 40.0, 0.5)
    lon = np.arange(-100.0, -90.0, 0.5)
    data = np.random.default_rng(0).uniform(0.1, 0.4, (3, lat.size, lon.size))
    data[:, 12, 6] = np.nan  # the nearest point has no data: the next nearest is taken
    prod = xr.Dataset({"swvl1": (("time", "lat", "lon"), data)},
                      coords={"time": pd.date_range("2017-01-01", periods=3), "lat": lat, "lon": lon})
    st = _stations([36.05], [-97.1], pd.date_range("2017-01-01", periods=3), np.zeros((1, 3)))
    out = product_at_stations(prod, st, max_distance_km=100.0)
    assert out["cell_id"].values[0] == "36.0000,-97.5000"
    assert out["distance_km"].values[0] == pytest.approx(haversine_km(36.05, -97.1, 36.0, -97.5))
    np.testing.assert_array_equal(out["value"].values[0], data[:, 12, 5])


def test_nearest_matching_window_and_overpass_times():
    hours = pd.date_range("2017-01-01", periods=72, freq="h")
    obs = np.arange(72, dtype=float)
    obs[17] = np.nan  # a gap next to an overpass
    st = _stations([20.0], [-155.0], hours, obs[None, :])
    days = pd.date_range("2017-01-01", periods=3, freq="D")
    overpass = np.array(["2017-01-01T06:20", "2017-01-02T17:10", "2017-01-03T23:59"], dtype="datetime64[ns]")
    prod = xr.Dataset({"value": (("site", "time"), [[0.1, 0.2, 0.3]]),
                       "obs_time": (("site", "time"), overpass[None, :])},
                      coords={"site": ["s0"], "time": days})
    assert resolve_mode("auto", "hourly", prod) == "nearest"
    pairs = match_pairs(st, prod, window="1h", clim_min_count=1)
    # 06:20 -> 06:00 (value 6); 41:10 -> 41 (17:00 on day 2); 71:59 -> 71 (23:00 on day 3, 59 min away)
    assert pairs.obs[0].tolist() == [6.0, 41.0, 71.0]
    narrow = match_pairs(st, prod, window="30min", clim_min_count=1)
    assert narrow.obs[0, 0] == 6.0 and np.isnan(narrow.obs[0, 2])
    mean = match_pairs(st, prod, mode="mean", window="1h", clim_min_count=1)
    assert mean.obs[0, 0] == pytest.approx((6.0 + 7.0) / 2)  # 05:20-07:20 holds 06:00 and 07:00
    cut = restrict_dates(pairs, start="2017-01-02", end="2017-01-02")
    assert np.isnan(cut.obs[0, [0, 2]]).all() and cut.obs[0, 1] == 41.0


def test_daily_matching_min_hours():
    hours = pd.date_range("2017-01-01", periods=48, freq="h")
    obs = np.full(48, 0.2)
    obs[24:36] = 0.4
    obs[36:] = np.nan  # day 2 has only 12 valid hours
    st = _stations([20.0], [-155.0], hours, obs[None, :])
    d = daily_means(st.soil_moisture, min_hours=12)
    np.testing.assert_allclose(d.values[0], [0.2, 0.4])
    assert np.isnan(daily_means(st.soil_moisture, min_hours=13).values[0, 1])
    prod = _site_product([20.0], [-155.0], [[0.25, 0.35]], pd.date_range("2017-01-01", periods=2))
    prod_at = product_at_stations(prod, st, max_distance_km=10.0)
    assert resolve_mode("auto", "hourly", prod_at) == "daily"  # daily product stamped at midnight
    pairs = match_pairs(st, prod_at, min_hours=13, clim_min_count=1)
    assert pairs.obs[0, 0] == pytest.approx(0.2) and np.isnan(pairs.obs[0, 1])
    with pytest.raises(DataError, match="matching"):
        match_pairs(st, prod_at, mode="closest")


def test_pick_variable_skips_spread_and_quantile_layers():
    """A product or prediction file with the predictive-distribution layers: the value is the one variable
    that is neither a spread, a climatology nor a quantile."""
    from smfusion.data.extract import pick_variable
    from smfusion.io.cf import SOIL_MOISTURE_STANDARD_NAME

    sm = {"standard_name": SOIL_MOISTURE_STANDARD_NAME, "units": "m3 m-3"}
    ds = xr.Dataset({name: ("site", np.zeros(2), dict(sm)) for name in
                     ("sm_station", "sm_station_q05", "sm_station_q95", "sm_station_q02p5")})
    ds["sm_station_std"] = ("site", np.zeros(2), {"standard_name": SOIL_MOISTURE_STANDARD_NAME + " standard_error"})
    assert pick_variable(ds, None, "f.nc") == "sm_station"
