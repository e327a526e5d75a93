"""EASE-Grid 2.0: NSIDC definitions, the real M36 land-cell file, round trips, nesting, aggregation."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from smfusion.errors import ConfigError, DataError
from smfusion.grids import ease2
from smfusion.grids.ease2 import (
    GRID_NAMES,
    aggregate,
    cell_bounds,
    cell_bounds_xy,
    children_rowcol,
    get_grid,
    gpi_to_rowcol,
    index_to_rowcol,
    land_mask,
    latlon_to_rowcol,
    latlon_to_xy,
    nest_factor,
    nesting_index,
    parent_rowcol,
    read_land_cells,
    rowcol_to_gpi,
    rowcol_to_index,
    rowcol_to_latlon,
    xy_to_rowcol,
)


# --- NSIDC published definitions ---------------------------------------------

# (name, ncols, nrows, cell size (m) as NSIDC publishes it, EPSG)
NSIDC = [
    ("M36", 964, 406, 36032.22, 6933),
    ("M25", 1388, 584, 25025.26, 6933),
    ("M09", 3856, 1624, 9008.06, 6933),
    ("M03", 11568, 4872, 3002.69, 6933),
    ("M01", 34704, 14616, 1000.90, 6933),
    ("N36", 500, 500, 36000.0, 6931),
    ("N25", 720, 720, 25000.0, 6931),
    ("N09", 2000, 2000, 9000.0, 6931),
    ("N03", 6000, 6000, 3000.0, 6931),
    ("N01", 18000, 18000, 1000.0, 6931),
    ("S36", 500, 500, 36000.0, 6932),
    ("S09", 2000, 2000, 9000.0, 6932),
]


@pytest.mark.parametrize("name, ncols, nrows, cell, epsg", NSIDC)
def test_nsidc_dimensions_and_cell_size(name, ncols, nrows, cell, epsg):
    g = get_grid(name)
    assert (g.ncols, g.nrows, g.epsg) == (ncols, nrows, epsg)
    assert g.cell_size == pytest.approx(cell, abs=0.006)


@pytest.mark.parametrize("name", ["M36", "M09", "M03", "M01"])
def test_global_corners_match_nsidc(name):
    # NSIDC: upper-left map corner (-17367530.45, 7314530.83) m, lat extent +-85.0445664 deg
    g = get_grid(name)
    assert g.x_min == pytest.approx(-17367530.45, abs=0.01)
    assert g.y_max == pytest.approx(7314540.83, abs=0.01)
    assert g.y_min == pytest.approx(-g.y_max)
    lat, lon = ease2.xy_to_latlon(g, [g.x_min, g.x_max], [g.y_max, g.y_min])
    np.testing.assert_allclose(lat, [85.0445664, -85.0445664], atol=1e-7)
    np.testing.assert_allclose(lon, [-180.0, 180.0], atol=1e-9)


def test_m25_and_polar_corners():
    m25 = get_grid("M25")
    assert m25.y_max == pytest.approx(7307375.92, abs=0.01)
    for name in ("N36", "S09", "N01"):
        g = get_grid(name)
        assert (g.x_min, g.y_max, g.x_max, g.y_min) == (-9e6, 9e6, 9e6, -9e6)
    # the pole is the shared corner of the four central cells
    for name, lat in (("N36", 90.0), ("S36", -90.0)):
        x, y = latlon_to_xy(name, lat, 0.0)
        assert abs(float(x)) < 1e-6 and abs(float(y)) < 1e-6
        row, col = latlon_to_rowcol(name, lat, 0.0)
        assert (int(row), int(col)) == (250, 250)


def test_smap_published_first_cell_centres():
    # SMAP L3 36 km / 9 km arrays: first row/column centre lat/lon (NSIDC SPL3SMP / SPL3SMP_E)
    lat, lon = rowcol_to_latlon("M36", 0, 0)
    assert float(lat) == pytest.approx(83.63197528, abs=1e-7)
    assert float(lon) == pytest.approx(-179.81327801, abs=1e-7)
    lat, lon = rowcol_to_latlon("M09", 0, 0)
    assert float(lat) == pytest.approx(84.65641880, abs=1e-7)
    assert float(lon) == pytest.approx(-179.95331950, abs=1e-7)


def test_grid_names():
    assert len(GRID_NAMES) == 15
    assert get_grid("EASE2_M36km") == get_grid("m36") == get_grid("M36")
    for bad in ("M12", "X36", "", "EASE2_N37km"):
        with pytest.raises(ConfigError):
            get_grid(bad)


# --- the real land-cell file ---------------------------------------------------

@pytest.mark.realdata
def test_every_land_cell_of_ease36land(land_file):
    cells = read_land_cells(land_file)
    g = get_grid("M36")
    assert cells.gpi.size == 103902
    # centre of the decoded (row, col) is the file's lat/lon
    lat, lon = rowcol_to_latlon(g, cells.row, cells.col)
    np.testing.assert_allclose(lat, cells.lat, atol=1e-9)
    np.testing.assert_allclose(lon, cells.lon, atol=1e-9)
    # and the file's lat/lon map back to its own index
    row, col = latlon_to_rowcol(g, cells.lat, cells.lon)
    np.testing.assert_array_equal(rowcol_to_gpi(g, row, col), cells.gpi)
    np.testing.assert_array_equal(gpi_to_rowcol(g, cells.gpi)[0], row)


@pytest.mark.realdata
def test_land_mask_nesting_and_polar(land_file):
    m36 = land_mask("M36", land_file)
    m09 = land_mask("M09", land_file)
    assert m36.sum() == 103902
    assert m09.sum() == 16 * m36.sum()
    rows, cols = np.nonzero(m09)
    pr, pc = parent_rowcol("M09", "M36", rows, cols)
    assert m36[pr, pc].all()
    n36 = land_mask("N36", land_file)
    # Greenland interior is land, the mid North Atlantic is not
    for lat, lon, want in ((72.0, -40.0, True), (40.0, -40.0, False)):
        r, c = latlon_to_rowcol("N36", lat, lon)
        assert n36[int(r), int(c)] == want
        r, c = latlon_to_rowcol("M36", lat, lon)
        assert m36[int(r), int(c)] == want


def test_read_land_cells_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_land_cells(tmp_path / "missing.nc")
    bad = tmp_path / "nogpi.nc"
    xr.Dataset({"lat": ("gp", [1.0]), "lon": ("gp", [2.0])}).to_netcdf(bad)
    with pytest.raises(DataError, match="'gpi'"):
        read_land_cells(bad)
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 50)
    with pytest.raises(DataError, match="garbage.nc"):
        read_land_cells(garbage)


# --- round trips --------------------------------------------------------------

@pytest.mark.parametrize("name", GRID_NAMES)
def test_latlon_cell_centre_round_trip(name):
    g = get_grid(name)
    rng = np.random.default_rng(7)
    if g.is_global:
        lat = rng.uniform(-84.0, 84.0, 4000)  # M25 reaches only +-84.44 deg
        lon = rng.uniform(-180.0, 180.0, 4000)
    else:
        sign = 1 if name.startswith("N") else -1
        lat = sign * rng.uniform(5.0, 90.0, 4000)
        lon = rng.uniform(-180.0, 180.0, 4000)
    row, col = latlon_to_rowcol(g, lat, lon)
    assert (row >= 0).all() and (col >= 0).all()
    clat, clon = rowcol_to_latlon(g, row, col)
    row2, col2 = latlon_to_rowcol(g, clat, clon)
    np.testing.assert_array_equal(row2, row)
    np.testing.assert_array_equal(col2, col)
    # the point lies inside its cell's projected bounds
    x, y = latlon_to_xy(g, lat, lon)
    xb, yb = cell_bounds_xy(g, row, col)
    assert ((xb[:, 0] <= x) & (x < xb[:, 1]) & (yb[:, 0] < y) & (y <= yb[:, 1])).all()
    idx = rowcol_to_index(g, row, col)
    np.testing.assert_array_equal(np.stack(index_to_rowcol(g, idx)), np.stack([row, col]))


def test_outside_and_invalid_points():
    row, col = latlon_to_rowcol("M36", [89.0, np.nan, 0.0], [0.0, 0.0, np.nan])
    assert row.tolist() == [-1, -1, -1] and col.tolist() == [-1, -1, -1]
    row, col = xy_to_rowcol("N09", [9.5e6], [0.0])
    assert (row[0], col[0]) == (-1, -1)
    # longitude wraps: 180 == -180 and 540 == 180
    a = latlon_to_rowcol("M09", [10.0, 10.0, 10.0], [180.0, -180.0, 540.0])
    assert len(set(a[1].tolist())) == 1 and a[1][0] == 0
    assert rowcol_to_index("M36", [-1], [3]).tolist() == [-1]


def test_cell_bounds_corners():
    g = get_grid("M36")
    lat, lon = cell_bounds(g, [0, 405], [0, 963])
    assert lat.shape == (2, 4)
    np.testing.assert_allclose(lat[0, 2:], 85.0445664, atol=1e-7)  # north edge of the top row
    np.testing.assert_allclose(lon[0, [0, 3]], -180.0)
    np.testing.assert_allclose(lon[1, [1, 2]], 180.0)
    clat, clon = rowcol_to_latlon(g, [0, 405], [0, 963])
    assert ((lat.min(axis=1) < clat) & (clat < lat.max(axis=1))).all()
    assert ((lon.min(axis=1) < clon) & (clon < lon.max(axis=1))).all()


# --- nesting and aggregation ----------------------------------------------------

@pytest.mark.parametrize("fine, coarse, k", [("M09", "M36", 4), ("M03", "M09", 3), ("M01", "M03", 3),
                                             ("M03", "M36", 12), ("N09", "N36", 4), ("S03", "S09", 3)])
def test_nesting_consistency(fine, coarse, k):
    assert nest_factor(fine, coarse) == k
    f, c = get_grid(fine), get_grid(coarse)
    rng = np.random.default_rng(3)
    lat = rng.uniform(-80, 80, 2000) if f.is_global else rng.uniform(10, 89, 2000) * (1 if fine[0] == "N" else -1)
    lon = rng.uniform(-180, 180, 2000)
    fr, fc = latlon_to_rowcol(f, lat, lon)
    cr, cc = latlon_to_rowcol(c, lat, lon)
    pr, pc = parent_rowcol(f, c, fr, fc)
    np.testing.assert_array_equal(pr, cr)
    np.testing.assert_array_equal(pc, cc)
    kr, kc = children_rowcol(f, c, cr, cc)
    assert kr.shape == (2000, k, k)
    assert ((kr == fr[:, None, None]) & (kc == fc[:, None, None])).any(axis=(1, 2)).all()
    # every child centre lies inside the parent's projected bounds
    x, y = ease2.rowcol_to_xy(f, kr, kc)
    xb, yb = cell_bounds_xy(c, cr, cc)
    assert ((xb[:, None, None, 0] < x) & (x < xb[:, None, None, 1])).all()
    assert ((yb[:, None, None, 0] < y) & (y < yb[:, None, None, 1])).all()


def test_nesting_index_covers_fine_grid_once():
    idx = nesting_index("M09", "M36")
    assert idx.shape == (406, 964, 16)
    counts = np.bincount(idx.ravel(), minlength=3856 * 1624)
    assert counts.size == 3856 * 1624 and (counts == 1).all()
    # first coarse cell holds fine rows 0..3, cols 0..3
    assert sorted(idx[0, 0].tolist()) == sorted(r * 3856 + c for r in range(4) for c in range(4))


@pytest.mark.parametrize("fine, coarse", [("M25", "M36"), ("M09", "N36"), ("M36", "M09"), ("N25", "N36")])
def test_non_nesting_pairs_raise(fine, coarse):
    with pytest.raises(ConfigError):
        nest_factor(fine, coarse)


def test_aggregate_mean_with_min_valid_fraction():
    rng = np.random.default_rng(0)
    a = rng.random((2, 8, 12))  # 2 x 3 M36 cells in the top-left corner of M09
    a[0, 0:4, 0:4] = np.nan
    a[0, 0:2, 0:4] = 0.5  # 8 of 16 valid
    a[0, 4:8, 4:8] = np.nan
    a[0, 4, 4] = 0.9  # 1 of 16 valid
    out = aggregate(a, "M09", "M36", min_valid_fraction=0.5)
    assert out.shape == (2, 2, 3)
    assert out[0, 0, 0] == pytest.approx(0.5)
    assert np.isnan(out[0, 1, 1])
    assert out[1, 1, 2] == pytest.approx(a[1, 4:8, 8:12].mean())
    loose = aggregate(a, "M09", "M36", min_valid_fraction=0.0)
    assert loose[0, 1, 1] == pytest.approx(0.9)
    strict = aggregate(a, "M09", "M36", min_valid_fraction=1.0)
    assert np.isnan(strict[0, 0, 0]) and np.isfinite(strict[1]).all()


def test_aggregate_dataarray_window_keeps_coords():
    f, c = get_grid("M09"), get_grid("M36")
    rows, cols = np.arange(400, 412), np.arange(1000, 1008)  # aligned to 4
    x, y = ease2.rowcol_to_xy(f, rows, cols)
    da = xr.DataArray(np.arange(12 * 8, dtype=float).reshape(1, 12, 8), dims=("time", "y", "x"),
                      coords={"time": [np.datetime64("2015-04-01")], "y": y, "x": x}, name="sm",
                      attrs={"units": "m3 m-3"})
    out = aggregate(da, f, c)
    assert out.dims == ("time", "y", "x") and out.shape == (1, 3, 2)
    cx, cy = ease2.rowcol_to_xy(c, np.arange(100, 103), np.arange(250, 252))
    np.testing.assert_allclose(out["x"], cx)
    np.testing.assert_allclose(out["y"], cy)
    assert float(out[0, 0, 0]) == pytest.approx(da.values[0, 0:4, 0:4].mean())
    assert out.attrs["units"] == "m3 m-3"


def test_aggregate_rejects_misaligned_windows():
    with pytest.raises(DataError):
        aggregate(np.zeros((6, 8)), "M09", "M36")
    with pytest.raises(DataError):
        aggregate(np.zeros((8, 8)), "M09", "M36", offset=(2, 0))
    f = get_grid("M09")
    x, y = ease2.rowcol_to_xy(f, np.arange(1, 5), np.arange(0, 4))
    da = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"), coords={"y": y, "x": x})
    with pytest.raises(DataError):
        aggregate(da, "M09", "M36")
