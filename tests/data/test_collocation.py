"""Collocation: stations -> EASE-2 cells (containing / nearest valid, kept / averaged) and overpass-time matching."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.data.collocation import (
    collocate_sites,
    haversine_km,
    match_overpasses,
    match_times,
    nearest_valid_cells,
    station_cells,
)
from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy


def test_haversine_known_distances():
    assert haversine_km(0.0, 0.0, 0.0, 1.0) == pytest.approx(111.195, abs=0.01)
    assert haversine_km(90.0, 0.0, -90.0, 0.0) == pytest.approx(np.pi * 6371.0088, rel=1e-9)
    assert haversine_km(10.0, 179.5, 10.0, -179.5) == pytest.approx(haversine_km(10.0, 0.0, 10.0, 1.0))


@pytest.mark.parametrize("grid", ["M36", "M09", "N25"])
def test_station_cells_contain_station(grid):
    rng = np.random.default_rng(5)
    lat, lon = rng.uniform(20, 70, 300), rng.uniform(-180, 180, 300)
    rows, cols = station_cells(grid, lat, lon)
    g = get_grid(grid)
    clat, clon = rowcol_to_latlon(g, rows, cols)
    # the containing cell's centre is at most half a cell diagonal away (in projected metres)
    from smfusion.grids.ease2 import latlon_to_xy
    x, y = latlon_to_xy(g, lat, lon)
    cx, cy = rowcol_to_xy(g, rows, cols)
    assert (np.hypot(x - cx, y - cy) <= g.cell_size * np.sqrt(2) / 2 + 1e-6).all()


def _brute_nearest(g, lat, lon, mask, radius):
    r0, c0 = latlon_to_rowcol(g, lat, lon)
    best = (-1, -1, np.inf)
    if mask[r0, c0]:
        return r0, c0
    for r in range(r0 - radius, r0 + radius + 1):
        for c in range(c0 - radius, c0 + radius + 1):
            cw = c % g.ncols
            if 0 <= r < g.nrows and mask[r, cw]:
                d = haversine_km(lat, lon, *rowcol_to_latlon(g, r, cw))
                if d < best[2]:
                    best = (r, cw, d)
    return best[:2]


def test_nearest_valid_cells_against_brute_force():
    g = get_grid("M36")
    rng = np.random.default_rng(11)
    mask = rng.random(g.shape) < 0.15
    lat, lon = rng.uniform(-60, 60, 200), rng.uniform(-180, 180, 200)
    lon[:3] = [179.95, -179.95, 179.99]  # across the antimeridian
    rows, cols, dist = nearest_valid_cells(g, lat, lon, mask, search_radius=2)
    for i in range(lat.size):
        want = _brute_nearest(g, lat[i], lon[i], mask, 2)
        assert (rows[i], cols[i]) == tuple(int(v) for v in want), i
        if rows[i] >= 0:
            assert mask[rows[i], cols[i]]
            assert dist[i] == pytest.approx(float(haversine_km(lat[i], lon[i], *rowcol_to_latlon(g, rows[i],
                                                                                                   cols[i]))))
        else:
            assert np.isnan(dist[i])
    # a distance cap removes far matches only
    capped = nearest_valid_cells(g, lat, lon, mask, search_radius=2, max_distance_km=40.0)
    keep = dist <= 40.0
    np.testing.assert_array_equal(capped[0][keep], rows[keep])
    assert (capped[0][~keep] == -1).all()


def test_nearest_valid_with_window_mask_equals_full_mask():
    g = get_grid("M09")
    rng = np.random.default_rng(2)
    r0, r1, c0, c1 = 300, 420, 700, 900
    full = np.zeros(g.shape, dtype=bool)
    full[r0:r1, c0:c1] = rng.random((r1 - r0, c1 - c0)) < 0.3
    x, y = rowcol_to_xy(g, np.arange(r0, r1), np.arange(c0, c1))
    window = xr.DataArray(full[r0:r1, c0:c1], dims=("y", "x"), coords={"y": y, "x": x})
    lat, lon = rowcol_to_latlon(g, rng.integers(r0, r1, 100), rng.integers(c0, c1, 100))
    lat = lat + rng.uniform(-0.03, 0.03, 100)
    a = nearest_valid_cells(g, lat, lon, full, search_radius=3)
    b = nearest_valid_cells(g, lat, lon, window, search_radius=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(DataError):
        nearest_valid_cells(g, lat, lon, full[:10])


def _sites(lat, lon, values):
    n, t = np.asarray(values).shape
    return xr.Dataset({"soil_moisture": (("site", "time"), np.asarray(values, dtype=np.float32),
                                         {"units": "m3 m-3"})},
                      coords={"site": [f"s{i}" for i in range(n)], "lat": ("site", lat), "lon": ("site", lon),
                              "time": pd.date_range("2016-01-01", periods=t)})


def test_collocate_keep_and_mean():
    g = get_grid("M36")
    clat, clon = rowcol_to_latlon(g, 100, 200)
    lat = np.array([clat + 0.05, clat - 0.05, clat + 2.0, 89.5])
    lon = np.array([clon + 0.05, clon - 0.05, clon, 0.0])
    vals = [[0.1, np.nan, 0.3], [0.3, 0.2, np.nan], [0.5, 0.5, 0.5], [0.9, 0.9, 0.9]]
    ds = _sites(lat, lon, vals)
    kept = collocate_sites(ds, "M36")
    assert kept.sizes["site"] == 3  # 89.5 N is beyond the global grid: dropped
    assert kept["cell_row"].values.tolist()[:2] == [100, 100] and kept["cell_col"].values.tolist()[:2] == [200, 200]
    assert kept["cell_index"].values[0] == 100 * 964 + 200
    assert (kept["cell_distance_km"].values[:2] < 10).all()
    mean = collocate_sites(ds, "M36", combine="mean")
    assert mean.sizes["site"] == 2
    shared = mean.sel(site="M36:100:200")
    np.testing.assert_allclose(shared["soil_moisture"].values, [0.2, 0.2, 0.3], rtol=1e-6)
    assert shared["soil_moisture_n"].values.tolist() == [2, 1, 1]
    assert int(shared["n_stations"]) == 2 and str(shared["stations"].values) == "s0|s1"
    assert float(shared["lat"]) == pytest.approx(clat)


def test_collocate_moves_to_nearest_valid_cell():
    g = get_grid("M36")
    clat, clon = rowcol_to_latlon(g, 100, 200)
    valid = np.zeros(g.shape, dtype=bool)
    valid[100, 201] = True
    ds = _sites(np.array([clat, clat]), np.array([clon + 0.1, clon - 0.1]), [[0.1], [0.2]])
    out = collocate_sites(ds, g, valid=valid, search_radius=1)
    assert out["cell_col"].values.tolist() == [201, 201]
    out = collocate_sites(ds, g, valid=valid, search_radius=1, max_distance_km=30.0)
    assert out.sizes["site"] == 1 and out["site"].values.tolist() == ["s0"]


def _brute_match(times, values, q, window, how):
    if np.isnat(q):
        return np.nan
    ok = np.isfinite(values)
    d = np.abs((times[ok] - q).astype("timedelta64[ns]").astype(np.int64))
    w = pd.Timedelta(window).value
    if how == "mean":
        sel = d <= w
        return values[ok][sel].mean() if sel.any() else np.nan
    if d.size == 0 or d.min() > w:
        return np.nan
    i = np.flatnonzero(d == d.min())[0]  # ties: the earlier time
    return values[ok][i]


@pytest.mark.parametrize("how", ["nearest", "mean"])
def test_match_times_against_brute_force(how):
    rng = np.random.default_rng(8)
    times = pd.date_range("2017-08-10", periods=96, freq="h").values
    vals = rng.uniform(0.1, 0.4, (3, 96))
    vals[rng.random((3, 96)) < 0.3] = np.nan
    vals[2] = np.nan  # a station without any value
    station = xr.DataArray(vals, dims=("site", "time"), coords={"site": ["a", "b", "c"], "time": times})
    q = times[0] + rng.integers(-2 * 3600, 98 * 3600, (3, 20)).astype("timedelta64[s]")
    q = q.astype("datetime64[ns]")
    q[0, :3] = np.datetime64("NaT")
    q[1, 0] = times[5]  # exactly on a station time
    sat = xr.DataArray(q, dims=("site", "day"), coords={"site": ["a", "b", "c"]})
    out = match_times(sat, station, window="90min", how=how)
    for s in range(3):
        for j in range(20):
            want = _brute_match(times, vals[s], q[s, j], "90min", how)
            got = out["value"].values[s, j]
            assert (np.isnan(want) and np.isnan(got)) or got == pytest.approx(want), (s, j)
    if how == "nearest":
        off = out["time_offset"].values
        assert np.isnat(off[0, :3]).all() and abs(off[~np.isnat(off)]).max() <= np.timedelta64(90, "m")
        if np.isfinite(vals[1, 5]):
            assert off[1, 0] == np.timedelta64(0, "ns")
    else:
        assert (out["count"].values[2] == 0).all()


def test_match_times_input_checks():
    station = xr.DataArray(np.ones((1, 3)), dims=("site", "time"),
                           coords={"site": ["a"], "time": pd.date_range("2017-01-01", periods=3, freq="h")})
    sat = xr.DataArray(np.array([["2017-01-01T01:10"]], dtype="datetime64[ns]"), dims=("site", "day"),
                       coords={"site": ["b"]})
    with pytest.raises(DataError, match="site"):
        match_times(sat, station)
    rev = station.isel(time=[2, 1, 0])
    with pytest.raises(DataError, match="increasing"):
        match_times(sat.assign_coords(site=["a"]), rev)


@pytest.mark.realdata
def test_real_stations_on_m36_land_and_overpasses(ismn_root, land_file, tmp_path):
    from smfusion.grids.ease2 import land_mask
    from smfusion.io.ismn import read_ismn
    from smfusion.io.smap_l3 import extract_sites, open_granules
    from smfusion.synthetic.smap_granules import write_granule

    daily = read_ismn(ismn_root / "multinetwork" / "header_values", good_flags=("G", "U"))
    land = land_mask("M36", land_file)
    kept = collocate_sites(daily, "M36", valid=land)
    assert kept.sizes["site"] == daily.sizes["site"] == 8
    assert land[kept["cell_row"].values, kept["cell_col"].values].all()
    cells = collocate_sites(daily, "M36", valid=land, combine="mean")
    assert cells.sizes["site"] < 8  # SOILSCAPE nodes share a 36 km cell
    for cell in cells["site"].values:
        members = str(cells["stations"].sel(site=cell).values).split("|")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days
            want = np.nanmean(daily["soil_moisture"].sel(site=members).values.astype(float), axis=0)
            np.testing.assert_allclose(cells["soil_moisture"].sel(site=cell).values, want, rtol=1e-6)

    hourly = read_ismn(ismn_root / "cosmos" / "Data_seperate_files_header_20170810_20180809",
                       depth=(0.0, 0.3), daily=False)
    bbox = (-160.0, 30.0, -90.0, 75.0)
    paths = [write_granule(tmp_path, d, seed=i, bbox=bbox, coverage=1.0, compression=None)
             for i, d in enumerate(["2017-08-10", "2017-08-11"])]
    smap = extract_sites(open_granules(paths, bbox=bbox), hourly["lat"].values, hourly["lon"].values,
                         site=hourly["site"].values)
    matched = match_overpasses(smap, hourly, window="1h")
    assert matched["insitu_am"].dims == ("site", "time")
    assert int(matched["insitu_am"].count()) + int(matched["insitu_pm"].count()) > 0
    for s in range(hourly.sizes["site"]):
        for t in range(2):
            q = smap["overpass_time_am"].values[s, t]
            want = _brute_match(hourly["time"].values, hourly["soil_moisture"].values[s].astype(float), q, "1h",
                                "nearest")
            got = matched["insitu_am"].values[s, t]
            assert (np.isnan(want) and np.isnan(got)) or got == pytest.approx(want)
