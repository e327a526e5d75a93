"""Reader ``tb_files``: SMOS L3TB, AMSR2/AMSR-E L3 TB and SMAP L3/L2 files in their exact layouts -> (site, time)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smfusion.config import parse_config
from smfusion.data.loading import load_dataset
from smfusion.data.tb_files import tb_cells
from smfusion.errors import DataError
from smfusion.grids.ease2 import latlon_to_rowcol
from smfusion.grids.latlon import latlon_to_cells
from smfusion.grids.regrid import regrid
from smfusion.io.amsr_l3tb import open_amsr_l3tb
from smfusion.io.ease_cube import cells_to_sites
from smfusion.io.smap_l2 import grid_l2_granules
from smfusion.io.smap_l3 import open_granules
from smfusion.io.smos_l3tb import open_smos_l3tb
from smfusion.synthetic.amsr_l3tb import write_amsr_l3tb
from smfusion.synthetic.smap_granules import write_granule
from smfusion.synthetic.smap_l2_granules import write_l2_granule
from smfusion.synthetic.smos_l3tb import write_smos_l3tb

DAYS = pd.date_range("2016-06-01", "2016-06-03")
FILE_BBOX = (-100.0, 35.0, -97.0, 38.0)
CELLS = [-99.5, 35.5, -98.0, 37.0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tbfiles")
    for i, day in enumerate(DAYS):
        for orbit in ("A", "D"):
            write_smos_l3tb(d / "smos", day, orbit, bbox=FILE_BBOX, compression=False, seed=i)
        for f in ("06", "10"):
            write_amsr_l3tb(d / "amsr2", day, f, "D", bbox=FILE_BBOX, seed=i)
            write_amsr_l3tb(d / "amsre", day, f, "D", bbox=FILE_BBOX, seed=i, sensor="AMSR-E")
        write_granule(d / "smap", day, "SPL3SMP", bbox=FILE_BBOX, compression=None, seed=i)
    write_l2_granule(d / "l2", "2016-06-02T11:10:00", direction="D", rev=11500, bbox=FILE_BBOX, seed=3)
    return d


def _cfg(d, **tb):
    sensors = {"smos": {"paths": [str(d / "smos" / "*.nc")]}, "amsr2": {"paths": [str(d / "amsr2" / "*.h5")]},
               "amsre": {"paths": [str(d / "amsre" / "*.h5")]}, "smap": {"paths": [str(d / "smap" / "*.h5")]}}
    raw = {"data": {"reader": "tb_files", "adapter": "tb", "dynamic": ["tb_h_smos", "tb_v_smos"],
                    "target": ["sm_smap"], "tb_files": {"grid": "M25", "bbox": CELLS, **sensors, **tb}},
           "periods": {"train": ["2016-06-01", "2016-06-03"], "warmup_days": 0}}
    return parse_config(raw)


def test_each_sensor_at_the_cells_as_its_own_reader_gives_it(files):
    cfg = _cfg(files)
    ds = load_dataset(cfg.data, "2016-06-01", "2016-06-03")
    rows, cols = tb_cells(cfg.data.tb_files)
    assert ds.sizes == {"site": rows.size, "time": 3} and ds.attrs["ease2_grid"] == "M25"
    assert np.array_equal(ds["row"].values, rows) and rows.size > 10
    smos = cells_to_sites(open_smos_l3tb(sorted((files / "smos").glob("*CDF3TA*"))), rows, cols)
    np.testing.assert_array_equal(ds["tb_h_smos"].values, smos["tb_h_asc"].values)
    amsr = latlon_to_cells(open_amsr_l3tb(sorted((files / "amsr2").glob("*.h5"))), "M25", rows, cols)
    np.testing.assert_array_equal(ds["tb_v_amsr2_10"].values, amsr["tb_v_10_dsc"].values)
    assert np.isfinite(ds["tb_h_amsre_06"].values).mean() > 0.5
    cube = open_granules(sorted((files / "smap").glob("*.h5")), passes=("AM",), lazy=False,
                         variables=("soil_moisture", "tb_h_corrected", "tb_v_corrected"), tb_quality="good")
    sm25 = regrid(cube["soil_moisture_am"].astype(float), "M36", "M25")  # area-weighted 36 -> 25 km
    expect = cells_to_sites(sm25.to_dataset(name="sm").assign_attrs(ease2_grid="M25"), rows, cols)["sm"].values
    np.testing.assert_allclose(ds["sm_smap"].values, expect, rtol=1e-6)
    assert 0 < np.isfinite(ds["sm_smap"].values).mean() < 1 and ds["sm_smap"].dtype == np.float32


def test_period_filter_grid_and_l2(files):
    rows, cols = latlon_to_rowcol("M36", np.array([36.0, 36.5, 37.0]), np.array([-99.0, -98.5, -98.0]))
    cfg = _cfg(files, grid="M36", bbox=None, rows=rows.tolist(), cols=cols.tolist(),
               smap={"paths": [str(files / "l2" / "*.h5")], "level": "l2"})
    ds = load_dataset(cfg.data, "2016-06-02", "2016-06-02", require_target=False)
    assert ds.sizes["time"] == 1 and ds.attrs["ease2_grid"] == "M36"
    assert np.isfinite(ds["tb_h_smos"].values).all() and np.isfinite(ds["tb_v_amsre_10"].values).all()
    cube = grid_l2_granules(sorted((files / "l2").glob("*.h5")), tb_quality="good")
    ref = cells_to_sites(cube, rows, cols)
    assert np.isfinite(ref["tb_v_corrected_am"].values).any()
    np.testing.assert_allclose(ds["tb_v_smap"].values[:, 0], ref["tb_v_corrected_am"].values[:, 0], rtol=1e-6)
    # SMOS (M25) onto M36 is regridded area-weighted; a day with no file of a sensor is all missing
    later = load_dataset(cfg.data, "2016-06-10", "2016-06-11", require_target=False)
    assert np.isnan(later["tb_h_smos"].values).all() and later.sizes["time"] == 2


def test_bad_inputs_are_named(files):
    with pytest.raises(DataError, match="no file matches"):
        load_dataset(_cfg(files, smos={"paths": [str(files / "nothing*.nc")]}).data, "2016-06-01", "2016-06-02")
    with pytest.raises(DataError, match="amsr2 files give no"):
        load_dataset(_cfg(files, amsr2={"paths": [str(files / "amsr2" / "*.h5")], "frequencies": ["06", "18"]}).data,
                     "2016-06-01", "2016-06-02")
