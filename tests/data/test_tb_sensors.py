"""One sensor registry pattern: a TB sensor is one module (config section + reader + variables + check), and the
config and data registries of both sensor kinds (TB files, retrievals in cell files) name the same sensors."""

from __future__ import annotations

import typing

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pydantic import Field

from smfusion.config import parse_config
from smfusion.config.base import _Strict
from smfusion.config.tb import TB_SECTIONS, tb_section
from smfusion.data.checks import check_config
from smfusion.data.loading import load_dataset
from smfusion.data.tb_files import tb_cells, tb_variables
from smfusion.data.tb_sensors import get_tb_sensor, register_tb_sensor, tb_sensors
from smfusion.data.tb_sensors.base import TB_SENSORS, expand_paths
from smfusion.errors import ConfigError

ROWS, COLS = [200, 201, 202], [700, 701, 702]  # M25 cells


def test_config_and_data_registries_name_the_same_sensors():
    assert list(tb_sensors()) and set(tb_sensors()) == set(TB_SECTIONS)  # TB: config/tb.py, data/tb_sensors/
    from smfusion.config.sensors import SensorSection
    from smfusion.data.sensors import get_sensor
    from smfusion.data.sensors.base import SENSORS

    union = typing.get_args(typing.get_args(SensorSection)[0])  # the section classes of the discriminated union
    names = {n for cls in union for n in typing.get_args(cls.model_fields["sensor"].annotation)}
    get_sensor(sorted(names)[0])  # the built-in product modules registered
    assert names and names == set(SENSORS)  # retrievals: config/sensors.py, data/sensors/


@pytest.fixture
def toy():
    """A sensor that smfusion does not know, added as one module would add it: its section class (config layer,
    keyed by name) and its reader with its variables (data layer, same name); removed again afterwards."""

    @tb_section("toy")
    class ToyFiles(_Strict):
        paths: list[str]
        gain: float = Field(1.0, gt=0)

    def variables(name, section):
        return [f"tb_h_{name}", f"tb_v_{name}"]

    @register_tb_sensor("toy", variables=variables)
    def read_toy(name, section, cells, start, end):
        """One NetCDF table (time, cell) with coords row/col: the cells asked for, times in the period."""
        (path,) = expand_paths(section.paths, f"tb_files.{name}.paths")
        with xr.open_dataset(path) as f:
            table = f.sel(time=slice(start, end)).load()
        where = {(r, c): i for i, (r, c) in enumerate(zip(table["row"].values, table["col"].values))}
        idx = [where[(r, c)] for r, c in zip(cells.rows, cells.cols)]
        return xr.Dataset({f"tb_{p}_{name}": (("site", "time"), section.gain * table[f"tb_{p}"].values[:, idx].T)
                           for p in ("h", "v")}, coords={"time": table["time"].values})

    yield
    TB_SECTIONS.pop("toy"), TB_SENSORS.pop("toy")


def _toy_file(path):
    t = pd.date_range("2016-06-01", periods=4, freq="2D")
    rng = np.random.default_rng(0)
    rows, cols = [*ROWS, 5], [*COLS, 5]
    xr.Dataset({p: (("time", "cell"), rng.uniform(200, 290, (t.size, len(rows))).astype(np.float32))
                for p in ("tb_h", "tb_v")}, coords={"time": t, "row": ("cell", rows), "col": ("cell", cols)}
               ).to_netcdf(path)
    return path


def _raw(toy_section):
    return {"data": {"reader": "tb_files", "adapter": "tb", "dynamic": ["tb_h_toy", "tb_v_toy"],
                     "target": ["sm"],
                     "tb_files": {"grid": "M25", "rows": ROWS, "cols": COLS, "toy": toy_section}},
            "periods": {"train": ["2016-06-01", "2016-06-08"], "warmup_days": 0}}


def test_a_new_sensor_is_one_module(toy, tmp_path):
    path = _toy_file(tmp_path / "toy.nc")
    cfg = parse_config(_raw({"paths": [str(path)], "gain": 2.0}))
    tf = cfg.data.tb_files
    assert list(tf.sections) == ["toy"] and tf.toy.gain == 2.0 and tb_variables(tf) == ["tb_h_toy", "tb_v_toy"]
    assert cfg.to_dict()["data"]["tb_files"]["toy"] == {"paths": [str(path)], "gain": 2.0}
    assert parse_config(cfg.to_dict()).hash() == cfg.hash()  # written and read back: the same config
    ds = load_dataset(cfg.data, "2016-06-01", "2016-06-08", require_target=False)
    with xr.open_dataset(path) as f:
        expect = 2.0 * f["tb_v"].values[:, :3].T
    assert ds.sizes == {"site": 3, "time": 8} and ds.attrs["sensors"] == "toy"
    np.testing.assert_array_equal(ds["tb_v_toy"].values[:, ::2], expect)  # files every other day
    assert np.isnan(ds["tb_v_toy"].values[:, 1::2]).all()
    assert list(ds["row"].values) == ROWS and np.array_equal(tb_cells(tf)[1], COLS)
    # the default check: the section's paths, before any work; the section's own keys refused as any other
    missing = check_config(parse_config(_raw({"paths": [str(tmp_path / "none*.nc")]})))
    assert [p.where for p in missing if p.severity == "error"] == ["[field 'data.tb_files.toy.paths']"]
    with pytest.raises(ConfigError, match=r"data\.tb_files\.toy\.gian: unknown key$"):
        parse_config(_raw({"paths": ["x"], "gian": 2}))
    with pytest.raises(ConfigError, match=r"data\.tb_files\.toy\.gain: Input should be greater than 0"):
        parse_config(_raw({"paths": ["x"], "gain": 0}))


def test_a_sensor_key_nobody_registered(tmp_path):
    with pytest.raises(ConfigError, match=r"^<dict>: data\.tb_files\.toy: unknown key$"):
        parse_config(_raw({"paths": ["x"]}))

    @tb_section("toy")  # a section class without a reader: named, not read
    class OnlyConfig(_Strict):
        paths: list[str]

    try:
        cfg = parse_config(_raw({"paths": ["x"]}))
        with pytest.raises(ConfigError, match=r"data\.tb_files\.toy: no TB sensor module registers 'toy'"):
            get_tb_sensor("toy")
        assert [str(p) for p in check_config(cfg) if "no TB sensor" in str(p)] == [
            "data.tb_files.toy: no TB sensor module registers 'toy' (registered: ['amsr2', 'amsre', 'smap', 'smos'])"]
    finally:
        TB_SECTIONS.pop("toy")
