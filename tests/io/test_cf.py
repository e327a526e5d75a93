"""CF-1.8 NetCDF / Zarr product writer and reader: round trips and the CF attributes that matter.

No CF compliance checker (cfchecker, compliance-checker) is installed offline, so
the CF checks are written out here against the files' raw attributes.
"""

from __future__ import annotations

import json

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smfusion import __version__
from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy
from smfusion.io import cf
from smfusion.io.cf import SOIL_MOISTURE_STANDARD_NAME, cf_problems, config_hash, read_product, to_cf, write_netcdf, \
    write_zarr
from smfusion.io.smap_l3 import open_granules
from smfusion.synthetic.smap_granules import write_granule

CONFIG = {"model": "lstm", "epochs": 3, "grid": "M36"}


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    d = tmp_path_factory.mktemp("granules")
    paths = [write_granule(d, day, seed=i, bbox=(-105.0, 30.0, -90.0, 42.0), compression=None)
             for i, day in enumerate(["2015-04-01", "2015-04-02"])]
    return open_granules(paths, bbox=(-105.0, 30.0, -90.0, 42.0), variables=["soil_moisture", "retrieval_qual_flag",
                                                                             "tb_time_seconds"])


def site_dataset(n_site=3, n_time=5):
    rng = np.random.default_rng(1)
    sm = rng.uniform(0.05, 0.45, (n_site, n_time)).astype(np.float32)
    sm[0, 1] = np.nan
    return xr.Dataset(
        {"soil_moisture": (("site", "time"), sm, {"units": "m3 m-3", "long_name": "in-situ soil moisture"}),
         "n_hours": (("site", "time"), rng.integers(12, 25, (n_site, n_time)).astype(np.int16), {"units": "1"})},
        coords={"site": ("site", [f"NET:ST{i}:probe:0.05-0.05" for i in range(n_site)]),
                "time": pd.date_range("2016-04-01", periods=n_time, freq="D"),
                "lat": ("site", np.linspace(30, 40, n_site)), "lon": ("site", np.linspace(-100, -90, n_site)),
                "network": ("site", ["NET"] * n_site)},
    )


def _same_values(a: xr.Dataset, b: xr.Dataset):
    for name in a.data_vars:
        x, y = a[name].values, b[name].values
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    for name in a.coords:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_gridded_netcdf_round_trip_and_raw_cf_attributes(cube, tmp_path):
    inputs = [f"SMAP_L3_SM_P_2015040{i}_R19240_001.h5" for i in (1, 2)]
    path = write_netcdf(cube, tmp_path / "grid.nc", config=CONFIG, inputs=inputs, title="test cube")
    back = read_product(path)
    _same_values(cube.compute(), back)
    assert cf_problems(back) == []
    assert back.attrs["config_hash"] == config_hash(CONFIG)
    assert back.attrs["smfusion_version"] == __version__
    assert back.attrs["inputs"] == "; ".join(inputs)
    plain = xr.open_dataset(path)  # a plain xarray open works too
    assert plain["soil_moisture_am"].attrs["grid_mapping"] == "crs"
    plain.close()
    with netCDF4.Dataset(path) as nc:
        assert nc.Conventions == "CF-1.8" and nc.title == "test cube"
        sm = nc["soil_moisture_am"]
        assert sm.grid_mapping == "crs" and set(sm.coordinates.split()) == {"lat", "lon"}
        assert sm.standard_name == SOIL_MOISTURE_STANDARD_NAME and sm.units == "m3 m-3"
        assert sm.filters()["zlib"] and sm.filters()["shuffle"] and sm.chunking() != "contiguous"
        crs = nc["crs"]
        assert crs.grid_mapping_name == "lambert_cylindrical_equal_area"
        assert crs.standard_parallel == 30.0 and crs.longitude_of_central_meridian == 0.0
        assert "EASE-Grid 2.0 Global" in crs.crs_wkt and crs.epsg_code == "EPSG:6933"
        assert (nc["x"].axis, nc["x"].standard_name, nc["x"].units) == ("X", "projection_x_coordinate", "m")
        assert (nc["y"].axis, nc["y"].standard_name, nc["y"].units) == ("Y", "projection_y_coordinate", "m")
        assert (nc["lat"].standard_name, nc["lat"].units) == ("latitude", "degrees_north")
        assert nc["time"].axis == "T" and " since " in nc["time"].units
        assert "_FillValue" not in nc["x"].ncattrs()
        flag = nc["retrieval_qual_flag_am"]
        assert flag.dtype == np.uint16 and flag._FillValue == 65534 and "units" not in flag.ncattrs()
        assert list(flag.flag_masks) == [1, 2, 4, 8]
        ot = nc["overpass_time_am"]
        # CF-1.8 has no int64: float64 ns since the data's first day (exact within 104 days)
        assert ot.units.startswith("nanoseconds since 2015-04-01") and ot.dtype == np.float64
        assert nc["time"].dtype == np.int32 and nc["time"].units.startswith("days since")
    # x/y are M36 cell centres: the first one is the centre of the bbox's west column
    col0 = int(latlon_to_rowcol("M36", 42.0, -105.0)[1])
    assert back["x"].values[0] == pytest.approx(float(rowcol_to_xy(get_grid("M36"), 0, col0)[0]))


def test_gridded_zarr_round_trip(cube, tmp_path):
    path = write_zarr(cube, tmp_path / "grid.zarr", config=CONFIG, chunks={"y": 16, "x": 16})
    back = read_product(path)
    _same_values(cube.compute(), back)
    assert cf_problems(back) == []
    assert back["soil_moisture_am"].encoding["chunks"] == (2, 16, 16)
    meta = json.loads((path / "soil_moisture_am" / ".zarray").read_text())
    assert meta["compressor"]["id"] == "blosc"
    attrs = json.loads((path / "soil_moisture_am" / ".zattrs").read_text())
    assert attrs["grid_mapping"] == "crs" and attrs["standard_name"] == SOIL_MOISTURE_STANDARD_NAME
    assert json.loads((path / ".zattrs").read_text())["Conventions"] == "CF-1.8"


@pytest.mark.parametrize("fmt", ["nc", "zarr"])
def test_site_round_trip(tmp_path, fmt):
    ds = site_dataset()
    writer = write_netcdf if fmt == "nc" else write_zarr
    path = writer(ds, tmp_path / f"sites.{fmt}", config="0" * 64, inputs=["a.stm", "b.stm"])
    back = read_product(path, load=True)
    _same_values(ds, back)
    assert back["site"].dtype.kind in "UO"
    assert cf_problems(back) == []
    assert back.attrs["featureType"] == "timeSeries" and back["site"].attrs["cf_role"] == "timeseries_id"
    assert back.attrs["config_hash"] == "0" * 64
    assert back["soil_moisture"].attrs["standard_name"] == SOIL_MOISTURE_STANDARD_NAME
    assert back["crs"].attrs["grid_mapping_name"] == "latitude_longitude"


def test_to_cf_fills_defaults_and_polar_2d_coords():
    g = get_grid("N36")
    rows, cols = np.arange(240, 244), np.arange(250, 253)
    x, y = rowcol_to_xy(g, rows, cols)
    lat, lon = rowcol_to_latlon(g, rows[:, None], cols[None, :])
    ds = xr.Dataset({"sm_pred": (("time", "y", "x"), np.zeros((1, 4, 3), np.float32)),
                     "score": (("time", "y", "x"), np.ones((1, 4, 3)))},
                    coords={"time": [np.datetime64("2017-01-01")], "y": y, "x": x,
                            "lat": (("y", "x"), lat), "lon": (("y", "x"), lon)})
    out = to_cf(ds, grid="N36", config=CONFIG)
    assert out["sm_pred"].attrs["standard_name"] == SOIL_MOISTURE_STANDARD_NAME
    assert out["sm_pred"].attrs["units"] == "m3 m-3" and out["score"].attrs["units"] == "1"
    assert out["crs"].attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
    assert out["crs"].attrs["latitude_of_projection_origin"] == 90.0
    assert cf_problems(out) == []
    assert "crs" not in ds and ds["sm_pred"].attrs == {}  # input untouched


def test_cf_problems_finds_what_is_missing(cube):
    bad = to_cf(cube).copy()
    bad.attrs.pop("config_hash")
    bad["soil_moisture_am"].attrs.pop("standard_name")
    bad["tb_v"] = bad["soil_moisture_am"].copy()
    bad["tb_v"].attrs = {}
    bad["tb_v"].encoding = {}
    bad["x"].attrs["axis"] = "Y"
    problems = "\n".join(cf_problems(bad))
    for expected in ("config_hash missing", "soil_moisture_am: soil moisture without standard_name",
                     "tb_v: no long_name", "tb_v: no units", "tb_v: no grid_mapping", "coordinate x: axis"):
        assert expected in problems
    with pytest.raises(DataError, match="EASE-2 grid"):
        to_cf(cube.drop_attrs())
    with pytest.raises(DataError, match="dims"):
        to_cf(xr.Dataset({"a": ("z", [1.0])}))


def test_config_hash_is_stable():
    assert config_hash({"b": 1, "a": [1, 2]}) == config_hash({"a": [1, 2], "b": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash("text")) == 64 and config_hash(None) == "none"


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    ds = site_dataset()
    target = write_netcdf(ds, tmp_path / "sites.nc")
    before = target.read_bytes()

    def broken(self, path, *args, **kwargs):
        open(path, "wb").write(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_netcdf(ds, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sites.nc"]


def test_read_product_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_product(tmp_path / "none.nc")
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"CDF\x01garbage")
    with pytest.raises(DataError, match="junk.nc"):
        read_product(junk)
    plain = tmp_path / "plain.nc"
    xr.Dataset({"a": ("x", [1.0])}).to_netcdf(plain)
    with pytest.raises(DataError, match="Conventions"):
        read_product(plain)
    assert "a" in read_product(plain, require_cf=False)


@pytest.fixture(scope="module")
def nc_bytes(tmp_path_factory):
    path = write_netcdf(site_dataset(4, 30), tmp_path_factory.mktemp("fz") / "s.nc", complevel=1)
    return path.read_bytes()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_product_reader(nc_bytes, tmp_path, garbler, data):
    raw = garbler(data, nc_bytes, max_edits=6, max_chunk=32, overwrite=data.draw(st.booleans()))
    path = tmp_path / "fuzz.nc"
    path.write_bytes(raw)
    try:
        ds = read_product(path, load=True)
    except DataError as exc:
        assert "fuzz.nc" in str(exc)
    else:
        assert "soil_moisture" in ds


def test_module_constants():
    assert cf.CONVENTIONS == "CF-1.8"
    assert cf.is_soil_moisture("soil_moisture_pm") and cf.is_soil_moisture("sm")
    assert not cf.is_soil_moisture("soil_moisture_error") and not cf.is_soil_moisture("smooth")
