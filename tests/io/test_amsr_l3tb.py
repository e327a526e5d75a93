"""AMSR2 / AMSR-E L3 TB reader on files in the JAXA HDF5 layout, and their resampling onto EASE-2 cells."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from smfusion.errors import DataError
from smfusion.grids.ease2 import latlon_to_rowcol
from smfusion.grids.latlon import bucket_weights, latlon_to_cells
from smfusion.io.amsr_l3tb import open_amsr_l3tb, parse_amsr_l3tb_name, read_amsr_l3tb
from smfusion.synthetic.amsr_l3tb import write_amsr_l3tb
from smfusion.synthetic.smap_granules import truncate_file

BBOX = (-100.0, 35.0, -92.0, 40.0)


def test_layout_names_and_orientation(tmp_path):
    p = write_amsr_l3tb(tmp_path, "2016-06-10", "06", "A", resolution=0.25, bbox=BBOX)
    assert p.name == "GW1AM2_20160610_01D_EQMA_L3SGT06LA2220220.h5"
    assert parse_amsr_l3tb_name(p) == {"date": pd.Timestamp("2016-06-10"), "orbit": "A", "freq": "06",
                                       "resolution": 0.25}
    with h5py.File(p, "r+") as h5:
        d = h5["Brightness Temperature (H)"]
        assert d.shape == (720, 1440) and d.dtype == np.uint16
        assert d.attrs["SCALE FACTOR"][0] == pytest.approx(0.01)
        assert h5.attrs["SensorShortName"][0] == b"AMSR2" and h5.attrs["PlatformShortName"][0] == b"GCOM-W1"
        # the pixel of lat 37.125 N, lon 97.125 W: row (90 - 37.125) / 0.25 - 0.5, column (360 - 97.125) / 0.25 - 0.5
        d[211, 1051] = 12345
        d[212, 1051] = 65535
        d[213, 1051] = 65534
    ds = read_amsr_l3tb(p, bbox=BBOX)
    assert ds["tb_h_06_asc"].sel(lat=37.125, lon=-97.125).item() == pytest.approx(123.45, abs=1e-4)
    assert np.isnan(ds["tb_h_06_asc"].sel(lat=36.875, lon=-97.125).item())
    assert np.isnan(ds["tb_h_06_asc"].sel(lat=36.625, lon=-97.125).item())
    assert np.all(np.diff(ds["lon"].values) > 0) and np.all(np.diff(ds["lat"].values) < 0)
    full = read_amsr_l3tb(p)
    assert full.sizes == {"time": 1, "lat": 720, "lon": 1440} and full["lon"].values[0] == -179.875
    assert np.isnan(full["tb_v_06_asc"].sel(lat=-45.125, lon=120.125).item())  # outside the observed area


def test_scale_factor_is_applied_and_high_resolution(tmp_path):
    p = write_amsr_l3tb(tmp_path, "2016-06-10", "36", "D", resolution=0.1, bbox=BBOX, missing_fraction=0.2)
    with h5py.File(p, "r") as h5:
        counts = h5["Brightness Temperature (V)"][()]
    ds = read_amsr_l3tb(p, bbox=BBOX)
    r = np.rint((90.0 - ds["lat"].values) / 0.1 - 0.5).astype(int)
    c = np.rint(np.mod(ds["lon"].values, 360.0) / 0.1 - 0.5).astype(int)
    raw = counts[np.ix_(r, c)]
    expect = np.where(raw >= 65534, np.nan, raw * np.float32(0.01))
    np.testing.assert_allclose(ds["tb_v_36_dsc"].values[0], expect, rtol=1e-6)
    inb = ((ds["lat"].values >= 35) & (ds["lat"].values <= 40))[:, None] & \
        ((ds["lon"].values >= -100) & (ds["lon"].values <= -92))[None, :]
    assert 0.1 < np.isnan(expect[inb]).mean() < 0.3 and np.isnan(expect[~inb]).all()


def test_open_stacks_frequencies_orbits_days_and_amsre(tmp_path):
    paths = [write_amsr_l3tb(tmp_path, day, f, o, bbox=BBOX, seed=k)
             for k, (day, f, o) in enumerate([("2016-06-10", "06", "A"), ("2016-06-10", "10", "A"),
                                              ("2016-06-11", "06", "A"), ("2016-06-10", "06", "D")])]
    ds = open_amsr_l3tb(paths, bbox=BBOX, sensor="AMSR2")
    assert {"tb_h_06_asc", "tb_v_10_asc", "tb_h_06_dsc"} <= set(ds.data_vars) and ds.sizes["time"] == 2
    assert np.isnan(ds["tb_h_10_asc"].isel(time=1).values).all()
    e = write_amsr_l3tb(tmp_path / "e", "2008-06-10", "06", "A", bbox=BBOX, sensor="AMSR-E")
    assert read_amsr_l3tb(e).attrs["sensor"] == "AMSR-E"
    with pytest.raises(DataError, match="mix sensors"):
        open_amsr_l3tb([paths[0], e])
    with pytest.raises(DataError, match="two files"):
        open_amsr_l3tb([paths[0], paths[0]])


def test_bucket_mean_onto_ease2_cells(tmp_path):
    p = write_amsr_l3tb(tmp_path, "2016-06-10", "10", "A", resolution=0.1, bbox=BBOX, missing_fraction=0.0)
    ds = read_amsr_l3tb(p, bbox=BBOX)
    rows, cols = latlon_to_rowcol("M25", [37.0, 38.4, 36.2], [-97.0, -95.2, -93.9])
    sites = latlon_to_cells(ds, "M25", rows, cols)
    assert sites["tb_v_10_asc"].dims == ("site", "time") and sites.attrs["ease2_grid"] == "M25"
    plat, plon = np.meshgrid(ds["lat"].values, ds["lon"].values, indexing="ij")
    pr, pc = latlon_to_rowcol("M25", plat, plon)
    for k in range(3):
        inside = (pr == rows[k]) & (pc == cols[k])
        assert inside.sum() >= 4  # 0.1 deg pixels: several per 25 km cell
        w = np.cos(np.radians(plat[inside]))
        expect = (ds["tb_v_10_asc"].values[0][inside] * w).sum() / w.sum()
        assert sites["tb_v_10_asc"].values[k, 0] == pytest.approx(expect, rel=1e-5)


def test_coarse_pixels_fall_back_to_the_containing_pixel():
    lat = 90.0 - (np.arange(720) + 0.5) * 0.25
    lon = (np.arange(1440) + 0.5) * 0.25
    rows, cols = latlon_to_rowcol("M25", np.full(40, 10.0), np.linspace(-80, -70, 40))
    w = bucket_weights(lat, lon, "M25", rows, cols)
    np.testing.assert_allclose(np.asarray(w.sum(axis=1)).ravel(), 1.0)
    assert (np.diff(w.indptr) == 1).any()  # some 25 km cells hold no 0.25 deg centre: one pixel each


def test_bad_files_raise(tmp_path):
    with pytest.raises(DataError, match="file name"):
        read_amsr_l3tb(tmp_path / "amsr.h5")
    p = write_amsr_l3tb(tmp_path / "a", "2016-06-10", omit=("Brightness Temperature (V)",), bbox=BBOX)
    with pytest.raises(DataError, match=r"Brightness Temperature \(V\)"):
        read_amsr_l3tb(p)
    p = write_amsr_l3tb(tmp_path / "b", "2016-06-10", omit=("SCALE FACTOR",), bbox=BBOX)
    with pytest.raises(DataError, match="SCALE FACTOR"):
        read_amsr_l3tb(p)
    p = write_amsr_l3tb(tmp_path / "c", "2016-06-10", bbox=BBOX, shape=(700, 1440))
    with pytest.raises(DataError, match="720 x 1440"):
        read_amsr_l3tb(p)
    p = truncate_file(write_amsr_l3tb(tmp_path / "d", "2016-06-10", bbox=BBOX), 0.5)
    with pytest.raises(DataError, match="AMSR L3 TB"):
        read_amsr_l3tb(p)
