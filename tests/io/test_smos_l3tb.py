"""SMOS L3TB reader on files written in the CATDS MIR_CDF3TA/TD layout: scaling, fills, angle classes, fit, flags."""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pytest

from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, rowcol_to_latlon
from smfusion.io.ease_cube import cells_to_sites
from smfusion.io.smos_l3tb import fit_at_angle, open_smos_l3tb, parse_smos_l3tb_name, read_smos_l3tb
from smfusion.synthetic.smap_granules import truncate_file
from smfusion.synthetic.smos_l3tb import ANGLE_CLASSES, write_smos_l3tb

BBOX = (-100.0, 35.0, -92.0, 40.0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("smos")
    write_smos_l3tb(d, "2016-06-10", "A", bbox=BBOX, seed=1)
    write_smos_l3tb(d, "2016-06-10", "D", bbox=BBOX, seed=2)
    write_smos_l3tb(d, "2016-06-11", "A", bbox=BBOX, seed=3)
    return d


def _raw(path, name):
    with netCDF4.Dataset(path) as nc:
        v = nc[name]
        v.set_auto_maskandscale(False)
        return np.ma.getdata(v[...]), {k: v.getncattr(k) for k in v.ncattrs()}


def _decoded(path, name):
    raw, attrs = _raw(path, name)
    out = raw * attrs.get("scale_factor", 1.0) + attrs.get("add_offset", 0.0)
    return np.where(raw == attrs["_FillValue"], np.nan, out)


def test_layout_is_the_catds_layout(folder):
    path = sorted(folder.glob("*CDF3TA_20160610*"))[0]
    assert path.name == "SM_RE07_MIR_CDF3TA_20160610T000000_20160610T235959_330_001_7.DBL.nc"
    assert parse_smos_l3tb_name(path) == ("A", pd.Timestamp("2016-06-10"), 1)
    with netCDF4.Dataset(path) as nc:
        assert nc["BT_H"].dimensions == ("inc", "lat", "lon") and nc["BT_H"].dtype == np.int16
        assert nc["BT_H"].scale_factor == pytest.approx(0.0061037018951994385) and nc["BT_H"].add_offset == 200.0
        assert nc["BT_H"]._FillValue == -32768 and nc["Days"].dtype == np.int32
        assert np.allclose(nc["inc"][:], ANGLE_CLASSES) and nc["inc"].size == 14
        lat = nc["lat"][:]
        assert lat[0] < lat[-1]  # south to north, as in the real files


def test_class_mode_is_the_decoded_class(folder):
    path = sorted(folder.glob("*CDF3TA_20160610*"))[0]
    cube = read_smos_l3tb(path, mode="class")
    k = int(np.flatnonzero(ANGLE_CLASSES == 42.5)[0])
    for pol in ("h", "v"):
        expect = _decoded(path, f"BT_{pol.upper()}")[k][::-1]  # file rows south-first, cube rows north-first
        np.testing.assert_allclose(cube[f"tb_{pol}_asc"].values[0], expect, rtol=1e-6)
    lat = rowcol_to_latlon(get_grid("M25"), np.arange(cube.sizes["y"]), np.zeros(cube.sizes["y"], int))[0]
    assert np.all(np.diff(cube["lat"].values) < 0) and cube["lat"].values[0] <= lat[0]
    days = _raw(path, "Days")[0][k][::-1]
    secs = _raw(path, "UTC_Seconds")[0][k][::-1]
    micro = _raw(path, "UTC_Microseconds")[0][k][::-1]
    i, j = np.argwhere(days != -2147483647)[0]
    expect_t = (pd.Timestamp("2000-01-01") + pd.Timedelta(days=int(days[i, j]), seconds=int(secs[i, j]),
                                                            microseconds=int(micro[i, j])))
    assert pd.Timestamp(cube["overpass_time_asc"].values[0, i, j]) == expect_t


def test_fit_recovers_an_exact_quadratic_and_refuses_to_extrapolate():
    theta = np.array([32.5, 37.5, 40.0, 42.5, 47.5, 52.5])[:, None]
    tb = 250.0 + 0.8 * (theta - 42.5) - 0.02 * (theta - 42.5) ** 2
    val, n = fit_at_angle(tb, theta, np.ones_like(tb), 42.5)
    assert val[0] == pytest.approx(250.0, abs=1e-9) and n[0] == 6
    val, _ = fit_at_angle(tb[:3], theta[:3], np.ones((3, 1)), 42.5)  # all classes below 42.5
    assert np.isnan(val[0])
    val, _ = fit_at_angle(tb[2:4], theta[2:4], np.ones((2, 1)), 42.5)  # two classes only
    assert np.isnan(val[0])


def test_fit_mode_is_close_to_the_class_and_uses_several_classes(folder):
    path = sorted(folder.glob("*CDF3TA_20160610*"))[0]
    fit, cls = read_smos_l3tb(path), read_smos_l3tb(path, mode="class")
    both = np.isfinite(fit["tb_v_asc"].values) & np.isfinite(cls["tb_v_asc"].values)
    assert both.mean() > 0.8 and np.median(fit["n_classes_asc"].values[both]) >= 4
    diff = fit["tb_v_asc"].values[both] - cls["tb_v_asc"].values[both]
    assert abs(np.mean(diff)) < 0.5 and np.std(diff) < 2.5  # the fit averages the noise of several classes


def test_quality_limits_drop_classes(folder):
    path = sorted(folder.glob("*CDF3TA_20160610*"))[0]
    k = int(np.flatnonzero(ANGLE_CLASSES == 42.5)[0])
    rfi = _raw(path, "Nb_RFI_Flags")[0][k][::-1]
    acc = _decoded(path, "Pixel_Radiometric_Accuracy_H")[k][::-1]
    base = read_smos_l3tb(path, mode="class")["tb_h_asc"].values[0]
    clean = read_smos_l3tb(path, mode="class", max_rfi_fraction=0.0)["tb_h_asc"].values[0]
    assert np.array_equal(np.isfinite(clean), np.isfinite(base) & (rfi == 0)) and (np.isfinite(base) & (rfi > 0)).any()
    tight = read_smos_l3tb(path, mode="class", max_accuracy=3.5)["tb_h_asc"].values[0]
    assert np.array_equal(np.isfinite(tight), np.isfinite(base) & (acc <= 3.5)) and np.isfinite(tight).sum() > 0
    few = read_smos_l3tb(path, max_rfi_fraction=0.0, max_accuracy=3.5)
    assert np.isfinite(few["tb_h_asc"].values).sum() < np.isfinite(read_smos_l3tb(path)["tb_h_asc"].values).sum()


def test_north_first_files_read_the_same(tmp_path):
    a = write_smos_l3tb(tmp_path / "s", "2016-06-10", "A", bbox=BBOX, seed=5)
    b = write_smos_l3tb(tmp_path / "n", "2016-06-10", "A", bbox=BBOX, seed=5, lat_order="north_first")
    np.testing.assert_allclose(read_smos_l3tb(b, mode="class")["tb_h_asc"].values,
                               read_smos_l3tb(a, mode="class")["tb_h_asc"].values)


def test_open_merges_orbits_and_days_and_gives_sites(folder):
    cube = open_smos_l3tb(sorted(folder.glob("*.nc")))
    assert {"tb_h_asc", "tb_h_dsc", "tb_v_asc", "tb_v_dsc"} <= set(cube.data_vars)
    assert [str(pd.Timestamp(t).date()) for t in cube["time"].values] == ["2016-06-10", "2016-06-11"]
    assert np.isnan(cube["tb_h_dsc"].values[1]).all() and np.isfinite(cube["tb_h_dsc"].values[0]).any()
    grid = get_grid("M25")
    r0 = int(np.rint((grid.y_max - cube["y"].values[0]) / grid.cell_size - 0.5))
    c0 = int(np.rint((cube["x"].values[0] - grid.x_min) / grid.cell_size - 0.5))
    sites = cells_to_sites(cube, [r0 + 2, r0 + 5, 0], [c0 + 3, c0 + 7, 0])
    assert sites["tb_v_asc"].dims == ("site", "time") and sites.sizes["site"] == 3
    assert sites["tb_v_asc"].values[0, 0] == cube["tb_v_asc"].values[0, 2, 3]
    assert np.isnan(sites["tb_v_asc"].values[2]).all()  # outside the window
    assert sites["row"].values.tolist() == [r0 + 2, r0 + 5, 0]


def test_bad_files_raise(folder, tmp_path):
    with pytest.raises(DataError, match="two files"):
        p = sorted(folder.glob("*CDF3TA_20160610*"))[0]
        open_smos_l3tb([p, p])
    missing = write_smos_l3tb(tmp_path / "m", "2016-06-10", "A", bbox=BBOX, omit_variables=("Nviews",))
    with pytest.raises(DataError, match="Nviews"):
        read_smos_l3tb(missing)
    cut = truncate_file(write_smos_l3tb(tmp_path / "t", "2016-06-10", "A", bbox=BBOX), 0.4)
    with pytest.raises(DataError, match="SMOS L3TB"):
        read_smos_l3tb(cut)
    with pytest.raises(DataError, match="file name"):
        read_smos_l3tb(tmp_path / "smos.nc")
    off = write_smos_l3tb(tmp_path / "o", "2016-06-10", "A", bbox=BBOX)
    with netCDF4.Dataset(off, "r+") as nc:
        nc["lat"][:] = nc["lat"][:] + 0.1
    with pytest.raises(DataError, match="M25 cell centres"):
        read_smos_l3tb(off)
    other = write_smos_l3tb(tmp_path / "w", "2016-06-11", "A", bbox=(-100.0, 35.0, -95.0, 40.0))
    with pytest.raises(DataError, match="different lat/lon windows"):
        open_smos_l3tb([p, other])


def test_three_day_files(tmp_path, folder):
    p3 = write_smos_l3tb(tmp_path, "2016-06-10", "A", bbox=BBOX, days=3)
    assert "_20160610T000000_20160612T235959_" in p3.name
    cube = read_smos_l3tb(p3)
    assert cube.attrs["composite_days"] == 3 and str(pd.Timestamp(cube["time"].values[0]).date()) == "2016-06-10"
    daily = sorted(folder.glob("*CDF3TA_20160611*"))[0]
    with pytest.raises(DataError, match="composite lengths"):
        open_smos_l3tb([p3, daily])
