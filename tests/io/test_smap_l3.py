"""SMAP L3 reader on generated SPL3SMP / SPL3SMP_E granules, including broken ones."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy
from smfusion.io.smap_l3 import (
    extract_sites,
    find_granules,
    granule_info,
    open_granules,
    read_granule,
    recommended_quality,
)
from smfusion.synthetic.smap_granules import J2000_EPOCH, granule_filename, truncate_file, write_granule

CONUS = (-125.0, 25.0, -66.0, 50.0)
DATES = ["2015-04-03", "2015-04-01", "2015-04-02"]  # written out of order on purpose


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("smap")
    for i, day in enumerate(DATES):
        write_granule(d / "SPL3SMP", day, "SPL3SMP", seed=i, bbox=CONUS, compression=None)
    write_granule(d / "global", "2015-04-01", "SPL3SMP", seed=9, compression="gzip")
    write_granule(d / "E", "2015-04-01", "SPL3SMP_E", seed=4, bbox=(-100.0, 35.0, -95.0, 40.0), compression="gzip")
    return d


def _raw(path, name):
    with h5py.File(path, "r") as h5:
        dset = h5[name]
        return dset[()], dict(dset.attrs)


def test_granule_layout_is_the_product_layout(folder):
    path = find_granules(folder / "global")[0]
    assert path.name == granule_filename("SPL3SMP", "2015-04-01") == "SMAP_L3_SM_P_20150401_R19240_001.h5"
    with h5py.File(path, "r") as h5:
        assert {"Soil_Moisture_Retrieval_Data_AM", "Soil_Moisture_Retrieval_Data_PM", "Metadata"} <= set(h5)
        am, pm = h5["Soil_Moisture_Retrieval_Data_AM"], h5["Soil_Moisture_Retrieval_Data_PM"]
        for var in ("soil_moisture", "retrieval_qual_flag", "surface_flag", "tb_v_corrected", "tb_h_corrected",
                    "vegetation_water_content", "tb_time_seconds", "latitude", "longitude"):
            assert am[var].shape == (406, 964)
            assert pm[var + "_pm"].shape == (406, 964)
            assert var not in pm
        assert am["soil_moisture"].dtype == np.float32 and am["soil_moisture"].attrs["_FillValue"] == -9999.0
        assert am["retrieval_qual_flag"].dtype == np.uint16
        assert am["soil_moisture"].compression == "gzip"
    info = granule_info(path)
    assert (info.product, info.grid.name, str(info.date.date()), info.passes) == ("SPL3SMP", "M36", "2015-04-01",
                                                                                   ("AM", "PM"))


def test_read_granule_matches_raw_arrays(folder):
    path = find_granules(folder / "global")[0]
    ds = read_granule(path)
    assert ds.sizes == {"time": 1, "y": 406, "x": 964}
    assert ds.attrs["ease2_grid"] == "M36" and ds.attrs["product"] == "SPL3SMP"
    g = get_grid("M36")
    x, y = rowcol_to_xy(g, np.arange(406), np.arange(964))
    np.testing.assert_allclose(ds["x"], x)
    np.testing.assert_allclose(ds["y"], y)
    np.testing.assert_allclose(ds["lat"], rowcol_to_latlon(g, np.arange(406), 0)[0])
    for overpass, group, sfx in (("am", "Soil_Moisture_Retrieval_Data_AM", ""),
                                 ("pm", "Soil_Moisture_Retrieval_Data_PM", "_pm")):
        sm, attrs = _raw(path, f"{group}/soil_moisture{sfx}")
        flag, _ = _raw(path, f"{group}/retrieval_qual_flag{sfx}")
        keep = (sm != -9999.0) & (sm >= attrs["valid_min"]) & (sm <= attrs["valid_max"]) & ((flag & 1) == 0)
        got = ds[f"soil_moisture_{overpass}"].values[0]
        np.testing.assert_array_equal(np.isfinite(got), keep)
        np.testing.assert_array_equal(got[keep], sm[keep])
        assert keep.sum() > 1000 and (~keep & (sm != -9999.0)).sum() > 1000  # masking did something
        np.testing.assert_array_equal(ds[f"retrieval_qual_flag_{overpass}"].values[0], flag)
        tbv, _ = _raw(path, f"{group}/tb_v_corrected{sfx}")
        np.testing.assert_array_equal(np.nan_to_num(ds[f"tb_v_corrected_{overpass}"].values[0], nan=-9999.0), tbv)
        secs, _ = _raw(path, f"{group}/tb_time_seconds{sfx}")
        t = ds[f"overpass_time_{overpass}"].values[0]
        obs = secs != -9999.0
        expect = J2000_EPOCH.astype("datetime64[ns]") + (np.round(secs[obs] * 1e6).astype(np.int64) * 1000).astype(
            "timedelta64[ns]")
        np.testing.assert_array_equal(t[obs], expect)
        assert np.isnat(t[~obs]).all()
    assert ds["soil_moisture_am"].attrs["units"] == "m3 m-3"
    assert ds["soil_moisture_am"].attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"


def test_quality_masking_options(folder):
    path = find_granules(folder / "SPL3SMP")[0]
    on = read_granule(path, passes="AM")
    off = read_granule(path, passes="AM", quality=None)
    flag = on["retrieval_qual_flag_am"].values
    assert set(on.data_vars) == {"soil_moisture_am", "retrieval_qual_flag_am", "surface_flag_am",
                                 "tb_v_corrected_am", "tb_h_corrected_am", "vegetation_water_content_am",
                                 "overpass_time_am"}
    assert int(off["soil_moisture_am"].count()) > int(on["soil_moisture_am"].count())
    np.testing.assert_array_equal(np.isfinite(on["soil_moisture_am"].values),
                                  np.isfinite(off["soil_moisture_am"].values) & recommended_quality(flag))
    masked = read_granule(path, passes="AM", surface_mask=1 << 11)  # dense vegetation
    dense = (on["surface_flag_am"].values & (1 << 11)) != 0
    assert dense.any()
    assert not np.isfinite(masked["soil_moisture_am"].values[dense]).any()
    np.testing.assert_array_equal(masked["soil_moisture_am"].values[~dense], on["soil_moisture_am"].values[~dense])
    assert recommended_quality(np.array([0, 1, 8, 9, 65534], dtype=np.uint16)).tolist() == [True, False, True,
                                                                                             False, False]


def test_tb_quality_masks_brightness_temperature(folder):
    path = find_granules(folder / "SPL3SMP")[0]
    for pol in ("h", "v"):
        tb, attrs = _raw(path, f"Soil_Moisture_Retrieval_Data_PM/tb_{pol}_corrected_pm")
        flag, _ = _raw(path, f"Soil_Moisture_Retrieval_Data_PM/tb_qual_flag_{pol}_pm")
        good = read_granule(path, passes=("PM",), variables=(f"tb_{pol}_corrected",), tb_quality="good")
        every = read_granule(path, passes=("PM",), variables=(f"tb_{pol}_corrected",))
        ok = (tb != -9999.0) & (tb >= 0) & (tb <= 330)
        assert np.array_equal(np.isfinite(every[f"tb_{pol}_corrected_pm"].values[0]), ok)
        expect = ok & (flag != 65534) & ((flag & 1) == 0)
        assert np.array_equal(np.isfinite(good[f"tb_{pol}_corrected_pm"].values[0]), expect)
        assert 0 < (ok & ~expect).sum()
        assert "tb_qual_flag" in good[f"tb_{pol}_corrected_pm"].attrs["quality_masking"]


def test_open_many_granules_lazily_sorted(folder):
    paths = find_granules(folder / "SPL3SMP")
    cube = open_granules(paths)
    assert cube["soil_moisture_am"].chunks is not None  # dask-backed
    assert [str(t)[:10] for t in cube["time"].values] == sorted(DATES)
    eager = read_granule(folder / "SPL3SMP" / granule_filename("SPL3SMP", "2015-04-02"))
    np.testing.assert_array_equal(cube["soil_moisture_pm"].sel(time="2015-04-02").values,
                                  eager["soil_moisture_pm"].values[0])
    sub = open_granules(paths, bbox=CONUS, passes=["PM"], variables=["soil_moisture", "tb_h_corrected"])
    r0, c0 = latlon_to_rowcol("M36", 50.0, -125.0)
    assert float(sub["lat"][0]) == pytest.approx(float(rowcol_to_latlon("M36", r0, 0)[0]))
    assert set(sub.data_vars) == {"soil_moisture_pm", "tb_h_corrected_pm"}
    np.testing.assert_array_equal(sub["soil_moisture_pm"].values,
                                  cube["soil_moisture_pm"].sel(y=sub["y"], x=sub["x"]).values)


def test_lazy_read_error_surfaces_as_data_error(folder, tmp_path):
    for p in find_granules(folder / "SPL3SMP"):
        shutil.copy(p, tmp_path / p.name)
    cube = open_granules(find_granules(tmp_path))  # headers fine: nothing read yet
    victim = tmp_path / granule_filename("SPL3SMP", "2015-04-02")
    victim.write_bytes(b"no longer HDF5")
    with pytest.raises(DataError, match=victim.name):
        cube["soil_moisture_am"].compute()


def test_spl3smp_e_granule(folder):
    path = find_granules(folder / "E", product="SPL3SMP_E")[0]
    ds = read_granule(path, bbox=(-100.0, 35.0, -95.0, 40.0))
    assert ds.attrs["product"] == "SPL3SMP_E" and ds.attrs["ease2_grid"] == "M09"
    r0, c0 = latlon_to_rowcol("M09", 40.0, -100.0)
    r1, c1 = latlon_to_rowcol("M09", 35.0, -95.0)
    assert ds.sizes == {"time": 1, "y": int(r1 - r0 + 1), "x": int(c1 - c0 + 1)}
    assert int(ds["soil_moisture_am"].count()) > 100
    full = read_granule(path, passes="AM", variables=["tb_v_corrected"])
    assert full.sizes == {"time": 1, "y": 1624, "x": 3856}


def test_extract_sites(folder):
    cube = open_granules(find_granules(folder / "SPL3SMP"), bbox=CONUS)
    lat, lon = np.array([36.6054, 38.43003, 0.0]), np.array([-97.4878, -120.8, 0.0])
    ts = extract_sites(cube, lat, lon, site=["ARM-1", "node414", "gulf-of-guinea"])
    assert ts["soil_moisture_am"].dims == ("site", "time")
    rows, cols = latlon_to_rowcol("M36", lat[:2], lon[:2])
    for i in range(2):
        np.testing.assert_array_equal(ts["soil_moisture_am"].values[i],
                                      cube["soil_moisture_am"].values[:, rows[i] - int(_row0(cube)),
                                                                      cols[i] - int(_col0(cube))])
    assert np.isnan(ts["soil_moisture_am"].values[2]).all()  # outside the CONUS window
    assert ts["cell_row"].values.tolist()[2] == -1
    np.testing.assert_allclose(ts["lat"], lat)
    assert abs(float(ts["cell_lat"][0]) - lat[0]) < 0.4


def _row0(cube):
    return latlon_to_rowcol("M36", float(cube["lat"][0]), 0.0)[0]


def _col0(cube):
    return latlon_to_rowcol("M36", 0.0, float(cube["lon"][0]))[1]


# --- bad granules ----------------------------------------------------------------

def test_missing_group(tmp_path):
    p = write_granule(tmp_path, "2015-04-01", omit_groups=("PM",), bbox=CONUS, compression=None)
    with pytest.raises(DataError, match="Soil_Moisture_Retrieval_Data_PM") as err:
        read_granule(p)
    assert p.name in str(err.value)
    assert read_granule(p, passes="AM")["soil_moisture_am"].count() > 0


def test_missing_field(tmp_path):
    p = write_granule(tmp_path, "2015-04-01", omit_fields=("tb_h_corrected",), bbox=CONUS, compression=None)
    with pytest.raises(DataError, match="tb_h_corrected"):
        read_granule(p)
    p2 = write_granule(tmp_path / "q", "2015-04-01", omit_fields=("retrieval_qual_flag",), bbox=CONUS,
                       compression=None)
    with pytest.raises(DataError, match="retrieval_qual_flag"):
        read_granule(p2, variables=["soil_moisture"])  # needed for the quality mask
    assert read_granule(p2, variables=["soil_moisture"], quality=None)["soil_moisture_am"].count() > 0


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.3, 0.9])
def test_truncated_file(tmp_path, keep):
    p = write_granule(tmp_path, "2015-04-01", bbox=CONUS, compression="gzip")
    truncate_file(p, keep)
    with pytest.raises(DataError, match=p.name):
        read_granule(p)


def test_wrong_grid_size(tmp_path):
    p = write_granule(tmp_path, "2015-04-01", shape=(400, 964), bbox=CONUS, compression=None)
    with pytest.raises(DataError, match="grid size 400x964") as err:
        read_granule(p)
    assert p.name in str(err.value)


def test_other_bad_inputs(tmp_path):
    text = tmp_path / "SMAP_L3_SM_P_20150401_R19240_001.h5"
    text.write_text("hello")
    with pytest.raises(DataError, match="HDF5"):
        read_granule(text)
    with pytest.raises(DataError, match="not found"):
        read_granule(tmp_path / "nope.h5")
    # a 36 km array in a file named like the 9 km product
    p = write_granule(tmp_path / "e", "2015-04-01", "SPL3SMP", bbox=CONUS, compression=None,
                      filename="SMAP_L3_SM_P_E_20150401_R19240_001.h5")
    with pytest.raises(DataError, match="SPL3SMP_E"):
        read_granule(p)
    # two granules of one day
    a = write_granule(tmp_path / "d", "2015-04-01", bbox=CONUS, compression=None)
    b = write_granule(tmp_path / "d", "2015-04-01", bbox=CONUS, compression=None, crid="R19999")
    with pytest.raises(DataError, match="two granules"):
        open_granules([a, b])
    # no recognisable name: the date comes from Metadata/Extent
    c = write_granule(tmp_path / "n", "2016-02-29", bbox=CONUS, compression=None, filename="granule.h5")
    assert str(read_granule(c)["time"].values[0])[:10] == "2016-02-29"
    with pytest.raises(DataError):
        open_granules([])


@pytest.fixture(scope="module")
def fuzz_source(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    return write_granule(d, "2015-04-01", bbox=(-100.0, 35.0, -90.0, 40.0), compression="gzip").read_bytes()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_truncated_or_garbled_granules(fuzz_source, tmp_path, garbler, data):
    mode = data.draw(st.sampled_from(["truncate", "garble", "both"]))
    raw = garbler(data, fuzz_source, max_edits=8, max_chunk=64, truncate=mode in ("truncate", "both"),
                  overwrite=mode in ("garble", "both"))
    path = tmp_path / "SMAP_L3_SM_P_20150401_R19240_001.h5"
    path.write_bytes(raw)
    try:
        ds = read_granule(path)
    except DataError as exc:
        assert path.name in str(exc)
    else:
        assert ds.sizes["y"] == 406 and ds.sizes["x"] == 964
