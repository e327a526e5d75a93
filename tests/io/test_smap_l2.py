"""SMAP L2 half-orbit reader and gridding: format-exact synthetic granules and the two real SPL2SMP granules."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, rowcol_to_latlon
from smfusion.io.smap_hdf5 import UINT_FILL, recommended_quality, tb_good_quality
from smfusion.io.smap_l2 import find_l2_granules, grid_l2_granules, read_l2_granule
from smfusion.synthetic.smap_granules import truncate_file
from smfusion.synthetic.smap_l2_granules import write_l2_granule

BBOX = (-100.0, 35.0, -90.0, 42.0)


@pytest.fixture
def granule(tmp_path):
    return write_l2_granule(tmp_path, "2016-05-02T11:10:00", direction="D", rev=11500, bbox=BBOX, seed=3)


def test_reads_cells_with_masks_and_time(granule):
    raw = h5py.File(granule, "r")["Soil_Moisture_Retrieval_Data"]
    sm_raw, qflag = raw["soil_moisture"][()], raw["retrieval_qual_flag"][()]
    tbv_raw, vflag = raw["tb_v_corrected"][()], raw["tb_qual_flag_v"][()]
    secs = raw["tb_time_seconds"][()]
    ds = read_l2_granule(granule, tb_quality="good")
    assert ds.attrs["orbit_direction"] == "Descending" and ds.attrs["ease2_grid"] == "M36"
    assert ds.sizes["cell"] == sm_raw.size > 50
    keep = (sm_raw != -9999) & (sm_raw >= 0.02) & (sm_raw <= 0.5) & recommended_quality(qflag)
    assert np.array_equal(np.isfinite(ds["soil_moisture"].values), keep)
    assert np.array_equal(np.isfinite(ds["tb_v_corrected"].values), (tbv_raw != -9999) & tb_good_quality(vflag))
    assert 0 < (~tb_good_quality(vflag)).sum() < vflag.size  # the flag masks some cells, not all
    expect = np.datetime64("2000-01-01T11:58:55.816", "ns") + (np.round(secs * 1e6).astype(np.int64)
                                                               * 1000).astype("timedelta64[ns]")
    assert np.array_equal(ds["time"].values, expect)
    no_q = read_l2_granule(granule, quality=None)
    assert np.isfinite(no_q["soil_moisture"].values).sum() > keep.sum()
    assert ds["retrieval_qual_flag"].dtype == np.uint16


def test_indices_locate_the_cells(granule):
    ds = read_l2_granule(granule)
    lat, lon = rowcol_to_latlon(get_grid("M36"), ds["row"].values, ds["col"].values)
    np.testing.assert_allclose(lat, ds["lat"].values, atol=1e-4)
    np.testing.assert_allclose(lon, ds["lon"].values, atol=1e-4)


def test_gridding_am_pm_and_the_nearest_local_time_rule(tmp_path):
    d1 = write_l2_granule(tmp_path, "2016-05-02T11:10:00", direction="D", rev=1, bbox=BBOX, seed=1)
    d2 = write_l2_granule(tmp_path, "2016-05-02T12:50:00", direction="D", rev=2, bbox=BBOX, seed=2)
    a1 = write_l2_granule(tmp_path, "2016-05-02T23:10:00", direction="A", rev=3, bbox=BBOX, seed=3)
    with h5py.File(d2, "r+") as h5:  # d2 observes 3 h later in local time: d1 must win wherever both see a cell
        h5["Soil_Moisture_Retrieval_Data/tb_time_seconds"][...] += 3 * 3600.0
    cube = grid_l2_granules([d1, d2, a1], quality=None)
    assert {"tb_v_corrected_am", "tb_v_corrected_pm", "overpass_time_am"} <= set(cube.data_vars)
    g1, g2 = read_l2_granule(d1, quality=None), read_l2_granule(d2, quality=None)
    grid = get_grid("M36")
    r0 = int(np.rint((grid.y_max - cube["y"].values[0]) / grid.cell_size - 0.5))
    c0 = int(np.rint((cube["x"].values[0] - grid.x_min) / grid.cell_size - 0.5))
    am = cube["tb_v_corrected_am"].sel(time="2016-05-02").values
    both = set(zip(g1["row"].values, g1["col"].values))
    np.testing.assert_array_equal(am[g1["row"].values - r0, g1["col"].values - c0], g1["tb_v_corrected"].values)
    only2 = [k for k, rc in enumerate(zip(g2["row"].values, g2["col"].values)) if rc not in both]
    assert only2
    np.testing.assert_array_equal(am[g2["row"].values[only2] - r0, g2["col"].values[only2] - c0],
                                  g2["tb_v_corrected"].values[only2])
    # UTC days: the AM passes on May 2; 6 pm local at 90-100 W is around or after midnight UTC (May 3)
    assert [str(pd.Timestamp(t).date()) for t in cube["time"].values] == ["2016-05-02", "2016-05-03"]
    pm = np.isfinite(cube["tb_v_corrected_pm"].values).sum(axis=(1, 2))
    assert pm[1] > 5 * pm[0]
    assert (cube["retrieval_qual_flag_am"].values == UINT_FILL).any()


def test_bad_granules_raise(tmp_path):
    missing = write_l2_granule(tmp_path / "a", "2016-05-02T11:10:00", bbox=BBOX, omit_fields=("tb_v_corrected",))
    with pytest.raises(DataError, match="tb_v_corrected"):
        read_l2_granule(missing)
    bad = write_l2_granule(tmp_path / "b", "2016-05-02T11:10:00", bbox=BBOX, bad_index=True)
    with pytest.raises(DataError, match="EASE index"):
        read_l2_granule(bad)
    cut = truncate_file(write_l2_granule(tmp_path / "c", "2016-05-02T11:10:00", bbox=BBOX), 0.5)
    with pytest.raises(DataError, match="SMAP"):
        read_l2_granule(cut)
    other = write_l2_granule(tmp_path / "d", "2016-05-02T11:10:00", bbox=BBOX)
    with h5py.File(other, "r+") as h5:
        h5["Metadata/DatasetIdentification"].attrs["shortName"] = "SPL3SMP"
    with pytest.raises(DataError, match="shortName"):
        read_l2_granule(other)
    with pytest.raises(DataError, match="not found"):
        read_l2_granule(tmp_path / "nope.h5")


@pytest.mark.realdata
def test_real_spl2smp_granules(shared_data):
    paths = find_l2_granules(shared_data / "smap_l2")
    assert [p.name[:20] for p in paths] == ["SMAP_L2_SM_P_02801_A", "SMAP_L2_SM_P_02802_A"]
    g = read_l2_granule(paths[0], quality="recommended")
    assert g.attrs["product"] == "SPL2SMP" and g.attrs["orbit_direction"] == "Ascending"
    assert g.sizes["cell"] == 17251
    assert int(np.isfinite(g["soil_moisture"].values).sum()) == 592  # data README: 592 of recommended quality
    assert int(np.isfinite(read_l2_granule(paths[0], quality=None)["soil_moisture"].values).sum()) == 1152
    lat, lon = rowcol_to_latlon(get_grid("M36"), g["row"].values, g["col"].values)
    np.testing.assert_allclose(lat, g["lat"].values, atol=1e-3)
    np.testing.assert_allclose(np.mod(lon - g["lon"].values + 180, 360) - 180, 0, atol=1e-3)
    tb = read_l2_granule(paths[0], tb_quality="good")
    ok = np.isfinite(tb["tb_v_corrected"].values)
    assert 0.9 * g.sizes["cell"] < ok.sum() < g.sizes["cell"]  # a few cells fail the TB quality bit
    assert 100 < np.nanmin(tb["tb_v_corrected"].values) and np.nanmax(tb["tb_v_corrected"].values) < 300
    t = g["time"].values
    assert pd.Timestamp(t.min()) >= pd.Timestamp("2015-08-11T01:30") and pd.Timestamp(t.max()) <= pd.Timestamp(
        "2015-08-11T02:24")
    cube = grid_l2_granules(paths)
    assert "soil_moisture_pm" in cube.data_vars and "soil_moisture_am" not in cube.data_vars
    g2 = read_l2_granule(paths[1])
    shared = set(zip(g["row"].values, g["col"].values)) & set(zip(g2["row"].values, g2["col"].values))
    assert len(shared) > 1000  # adjacent half-orbits overlap at high latitudes: one observation per cell is kept
    assert 592 <= int(np.isfinite(cube["soil_moisture_pm"].values).sum()) < 592 + 303
