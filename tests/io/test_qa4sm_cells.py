"""pynetcf cell-file reader (QA4SM layout): a hand-written folder, and the real Hawaii files against pynetcf."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.errors import DataError
from smfusion.io import qa4sm_cells


def write_cell_folder(folder, *, gpis=(11, 12, 13), cells=(165, 165, 166), lats=(19.5, 19.6, 20.1),
                      lons=(-155.5, -155.4, -155.6), days=10, start_mjd=57754.25):
    """A minimal cell-file product as pynetcf writes it: grid.nc + one NNNN.nc per cell."""
    folder.mkdir(parents=True, exist_ok=True)
    grid = xr.Dataset({"gpi": ("gp", np.asarray(gpis + (99,), dtype=np.int32)),
                       "lat": ("gp", np.asarray(lats + (0.0,))), "lon": ("gp", np.asarray(lons + (0.0,))),
                       "cell": ("gp", np.asarray(cells + (1,), dtype=np.int32))})
    grid.to_netcdf(folder / "grid.nc")
    time = start_mjd + np.arange(days, dtype=float)
    for cell in sorted(set(cells)):
        idx = [i for i, c in enumerate(cells) if c == cell]
        sm = np.stack([0.1 * (k + 1) + 0.01 * np.arange(days) for k in idx]).astype(np.float32)
        sm[:, 3] = -9999.0  # fill
        sm[:, 4] = 0.6  # beyond valid_max
        ds = xr.Dataset(
            {"location_id": ("locations", np.asarray([gpis[k] for k in idx], dtype=np.int64)),
             "lat": ("locations", np.asarray([lats[k] for k in idx], dtype=np.float32)),
             "lon": ("locations", np.asarray([lons[k] for k in idx], dtype=np.float32)),
             "soil_moisture": (("locations", "time"), sm, {"valid_min": np.float32(0.02),
                                                           "valid_max": np.float32(0.5)})},
            coords={"time": ("time", time, {"units": "days since 1858-11-17 00:00:00"})})
        ds.to_netcdf(folder / f"{cell:04d}.nc", encoding={"soil_moisture": {"_FillValue": np.float32(-9999.0)},
                                                        "time": {"dtype": "float64"}})
    return folder


def test_hand_written_folder(tmp_path):
    folder = write_cell_folder(tmp_path / "prod")
    assert qa4sm_cells.is_cell_folder(folder) and not qa4sm_cells.is_cell_folder(tmp_path)
    assert sorted(qa4sm_cells.cell_files(folder)) == [165, 166]
    locs = qa4sm_cells.stored_locations(folder)
    assert locs["gpi"].tolist() == [11, 12, 13] and locs["file"].tolist() == ["0165.nc", "0165.nc", "0166.nc"]
    assert qa4sm_cells.stored_locations(folder, cells=[166])["gpi"].tolist() == [13]
    pts = qa4sm_cells.read_points(folder, [13, 11, -1], ["0166.nc", "0165.nc", ""], ["soil_moisture"])
    t = pd.DatetimeIndex(pts.time.values)
    assert t[0] == pd.Timestamp("2017-01-01 06:00")  # MJD 57754.25
    sm = pts.soil_moisture.values
    assert sm[0, 0] == pytest.approx(0.3) and sm[1, 1] == pytest.approx(0.11)
    assert np.isnan(sm[:2, 3]).all() and np.isnan(sm[:2, 4]).all()  # fill value and out of valid range
    assert np.isnan(sm[2]).all()  # gpi -1: no point
    cut = qa4sm_cells.read_points(folder, [11], ["0165.nc"], ["soil_moisture"], start="2017-01-03", end="2017-01-04")
    assert cut.sizes["time"] == 2


def test_bad_cell_files(tmp_path):
    folder = write_cell_folder(tmp_path / "prod")
    with pytest.raises(DataError, match="lacks variable 'swvl1'"):
        qa4sm_cells.read_points(folder, [11], ["0165.nc"], ["swvl1"])
    with pytest.raises(DataError, match="not stored"):
        qa4sm_cells.read_points(folder, [13], ["0165.nc"], ["soil_moisture"])
    (folder / "0166.nc").write_bytes(b"garbage")
    with pytest.raises(DataError, match="0166.nc"):
        qa4sm_cells.stored_locations(folder)
    (folder / "grid.nc").unlink()
    with pytest.raises(DataError, match="grid.nc"):
        qa4sm_cells.read_grid(folder)


@pytest.mark.realdata
@pytest.mark.parametrize("product,var", [("SMAP_L3/SMAP_V8_AM", "soil_moisture"),
                                         ("ERA5_LAND/ERA5_LAND_V20190904", "swvl1")])
def test_real_cell_files_match_pynetcf(shared_data, product, var):
    pytest.importorskip("pynetcf")
    from pygeogrids.netcdf import load_grid
    from pynetcf.time_series import GriddedNcOrthoMultiTs

    folder = shared_data / "insitu_hawaii_scan" / "gridded_timeseries" / product
    locs = qa4sm_cells.stored_locations(folder)
    assert len(locs) == (13 if "SMAP" in product else 136)
    pick = locs.iloc[[0, len(locs) // 2, len(locs) - 1]]
    pts = qa4sm_cells.read_points(folder, pick["gpi"].to_numpy(), pick["file"].tolist(), [var])
    ref = GriddedNcOrthoMultiTs(str(folder), grid=load_grid(str(folder / "grid.nc")), ioclass_kws={"read_bulk": True})
    for i, gpi in enumerate(pick["gpi"]):
        ts = ref.read(int(gpi))[var]
        np.testing.assert_array_equal(pd.DatetimeIndex(pts.time.values), ts.index.astype("datetime64[ns]"))
        np.testing.assert_allclose(pts[var].values[i], ts.to_numpy(dtype=float), rtol=0, equal_nan=True)
