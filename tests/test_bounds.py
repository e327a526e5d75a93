"""Issue 24, items 4 and 7, table-driven like issue 10's cases: an absurd size or count, an unknown grid
name, an empty date, an input `check` must refuse as `train` does, a product that `validate` cannot use,
a folder that is not a run is refused through the CLI as a subprocess with exactly one ``smfusion:
error:`` line naming file/field and rule, exit 2, before any work, and nothing of the user's changes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from test_cli_errors import CHECK_BAD, PRED, TRAIN_BAD, Case, _fmt, config, replace, run_cli, world  # noqa: E402,F401
from test_cli_errors import test_refused_in_one_line_and_nothing_changes as refused_in_one_line  # noqa: E402

from smfusion import resources  # noqa: E402
from smfusion.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.realdata

OUT = ["--out", "{tmp}/p.nc", "--product"]

VAL = "validate {w}/pred.nc --stations {tmp}/st.csv --out {tmp}/v.csv --min-samples 3"


def _short_year(text: str) -> str:
    return replace("train: [2015-04-01, 2016-03-31]", "train: [2015-04-01, 2015-12-31]")(text) + \
        "descriptors: {climate: [p_mean, t_mean]}\n"


def _text_granules(w: Path, tmp: Path) -> None:
    """A gridded config whose SMAP folder holds text files named as granules."""
    for sub in ("smap", "ismn"):
        (tmp / sub).mkdir()
    for day in ("20150401", "20150402"):
        (tmp / "smap" / f"SMAP_L3_SM_P_{day}_R18290_001.h5").write_text("<html>not found</html>")
    xr.Dataset({"APCP_FORA": (("time",), np.zeros(3))},
               coords={"time": pd.date_range("2015-04-01", periods=3)}).to_netcdf(tmp / "forcing.nc")
    (tmp / "grid.yaml").write_text(GRIDDED.format(tmp=tmp))


def _bad_lat(pred: xr.Dataset) -> xr.Dataset:
    return pred.assign_coords(lat=("site", pred["lat"].values + 100.0))


def _stations(year: int, shift: float, edit=None):
    """A long station CSV at the product's sites (moved ``shift`` degrees), daily over 70 days of ``year``;
    with ``edit``, also tmp/bad.nc: the product edited."""
    def prep(w: Path, tmp: Path) -> None:
        pred = xr.open_dataset(w / "pred.nc").load()
        days = pd.date_range(f"{year}-04-01", periods=70)
        rows = [{"station": f"s{i}", "lat": la + shift, "lon": lo, "time": d.strftime("%Y-%m-%d"),
                 "soil_moisture": 0.2 + 0.001 * k, "depth_from": 0.0, "depth_to": 0.05}
                for i, (la, lo) in enumerate(zip(pred["lat"].values, pred["lon"].values))
                for k, d in enumerate(days)]
        pd.DataFrame(rows).to_csv(tmp / "st.csv", index=False)
        if edit is not None:
            edit(pred).to_netcdf(tmp / "bad.nc")
    return prep


GRIDDED = """\
name: g
data:
  reader: gridded
  dynamic: [APCP_FORA]
  static: []
  target: [sm_station]
  gridded: {{forcing: {tmp}/forcing.nc, smap_dir: {tmp}/smap, ismn_dir: {tmp}/ismn}}
multiscale: {{groups_per_batch: 2, stations_per_batch: 3}}
periods:
  train: [2015-04-01, 2015-04-03]
  warmup_days: 0
"""

CASES = [
    # processes against the machine
    Case("nproc_zero", ["train", "{w}/mini.yaml", "--nproc", "0"], ["--nproc", "at least 1"]),
    Case("nproc_above_cores", ["train", "{w}/mini.yaml", "--nproc", "100000", "--run-dir", "{tmp}/r"],
         ["--nproc 100000", "per CPU core"]),
    Case("workers_above_cores", PRED + OUT + ["--workers", "100000"], ["--workers 100000", "per CPU core"]),
    # model sizes against memory: `check` refuses them as `train` does
    Case("hidden_size_huge_check", CHECK_BAD, ["model.hidden_size 1000000", "of memory"], where="bad.yaml",
         prep=config(replace("hidden_size: 4", "hidden_size: 1000000"))),
    Case("hidden_size_huge_train", TRAIN_BAD, ["model.hidden_size 1000000", "of memory"], where="bad.yaml",
         prep=config(replace("hidden_size: 4", "hidden_size: 1000000"))),
    # names before work
    Case("grid_unknown", PRED + OUT + ["--layout", "grid", "--grid", "M99"], ["--grid", "unknown EASE-Grid 2.0"]),
    # synthetic writers
    # empty dates are config errors naming the key
    Case("date_empty", TRAIN_BAD, ["periods.train.start", "empty date"], where="bad.yaml",
         prep=config(replace("train: [2015-04-01", 'train: [""'))),
    # check refuses what train refuses
    Case("descriptors_short_year_check", CHECK_BAD, ["need a full year", "275 days"], where="periods.train",
         prep=config(_short_year)),
    Case("text_granule_check", ["check", "{tmp}/grid.yaml"], ["not an HDF5 file", "1 more file"],
         where="SMAP_L3_SM_P_20150401_R18290_001.h5", prep=_text_granules),
    Case("text_granule_train", ["train", "{tmp}/grid.yaml", "--run-dir", "{tmp}/r"], ["not an HDF5 file"],
         where="SMAP_L3_SM_P_20150401_R18290_001.h5", prep=_text_granules),
    # report and validate
    Case("report_not_a_run", ["report", "{tmp}/notes", "--out", "{tmp}/rep"], ["not a run directory"],
         where="notes", prep=lambda w, tmp: ((tmp / "notes").mkdir(), (tmp / "notes" / "a.txt").write_text("x"))),
    Case("validate_product_first", ["validate", "{tmp}/fake.nc", "--stations", "{tmp}/missing.csv", "--out",
                                    "{tmp}/v.csv"], ["not"], where="fake.nc",
         prep=lambda w, tmp: (tmp / "fake.nc").write_text("a text file")),
    Case("validate_coords_out_of_range", VAL.replace("{w}/pred.nc", "{tmp}/bad.nc").split(),
         ["coordinates out of range", "lat spans"], where="bad.nc", prep=_stations(2016, 0.0, _bad_lat)),
    Case("validate_no_time_overlap", VAL.split(), ["no overlap in time", "2016-04-01 .. 2016-04-05",
                                                   "2010-04-01 .. 2010-06-09"], where="pred.nc",
         prep=_stations(2010, 0.0)),
    Case("validate_no_space_overlap", VAL.split(), ["no station within 50 km"], where="pred.nc",
         prep=_stations(2016, 30.0)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bounded_in_one_line_before_work(case, world, tmp_path):
    refused_in_one_line(case, world, tmp_path)  # issue 10's check: one line, exit 2, the user's trees unchanged


def test_processes_against_given_cores_and_memory():
    resources.check_processes(4, "--workers", cores=2, memory=8 << 30)  # two per core at most
    with pytest.raises(ConfigError, match="--workers 5 is more than 2 per CPU core of the 2 core"):
        resources.check_processes(5, "--workers", cores=2, memory=8 << 30)
    with pytest.raises(ConfigError, match="--workers 2 x 3 threads"):
        resources.check_processes(2, "--workers", threads=3, cores=2, memory=8 << 30)
    with pytest.raises(ConfigError, match="exceeds the 1.0 GB of memory"):
        resources.check_processes(3, "--nproc", per_process=512 << 20, cores=64, memory=1 << 30)
    with pytest.raises(ConfigError, match="at least 1"):
        resources.check_processes(0, "--nproc")


def test_machine_figures_are_plausible():
    assert 1 <= resources.cpu_count() <= (__import__("os").cpu_count() or 1)
    assert resources.memory_bytes() > 64 << 20
    assert resources.fmt_bytes(3 * 2**30) == "3.0 GB" and resources.fmt_bytes(512) == "512 B"


def test_a_global_1km_window_is_refused_where_memory_is_short(monkeypatch):
    from smfusion.grids.ease2 import get_grid
    from smfusion.products import sizing

    g = get_grid("M01")
    monkeypatch.setattr(resources, "memory_bytes", lambda: 8 << 30)
    with pytest.raises(ConfigError, match=r"--grid M01: one day of the \d+ x \d+ output window"):
        sizing.check_sites_window("M01", [-80.0, 80.0], [-179.0, 179.0])
    sizing.check_sites_window("M36", [-80.0, 80.0], [-179.0, 179.0])  # 406 x 964 cells: fine
    assert (g.nrows, g.ncols) == (14616, 34704)


def test_model_memory_counts_parameters_without_allocating():
    from smfusion.models.memory import count_parameters, training_bytes
    from smfusion.models.registry import build_model

    n = count_parameters(lambda: build_model("lstm", 3, 1, 1, hidden_size=10**6))  # 10^12 weights: meta only
    assert n is not None and n > 4 * 10**12
    small = count_parameters(lambda: build_model("lstm", 3, 1, 1, hidden_size=8))
    assert small == sum(p.numel() for p in build_model("lstm", 3, 1, 1, hidden_size=8).parameters())
    assert training_bytes(small, 4, 30, 4, 8, 1) < 1 << 20


def test_validate_drops_impossible_station_values_with_a_count(world, tmp_path):
    _stations(2016, 0.0)(world, tmp_path)
    st = pd.read_csv(tmp_path / "st.csv")
    st.loc[st.index[10:14], "soil_moisture"] = [-0.1, -0.02, -0.5, -9999.0]  # negative (the last: a fill value)
    st.to_csv(tmp_path / "st.csv", index=False)
    proc = run_cli([_fmt(a, world, tmp_path) for a in VAL.split()], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warns = [line for line in proc.stderr.splitlines() if "dropped" in line]
    assert len(warns) == 1 and "dropped 3 station value(s) of soil_moisture outside 0 .. 1" in warns[0], proc.stderr
    table = pd.read_csv(tmp_path / "v.csv")
    assert (table["n"] > 0).all() and table["status"].eq("ok").all()


@pytest.mark.parametrize("edit, key", [('train: ["NaT", 2016-03-31]', "periods.train.start"),
                                       ("test: [2016-04-01, null]", "periods.test.end"),
                                       ("test: [2016-04-01, '  ']", "periods.test.end")])
def test_empty_dates_name_their_key(world, tmp_path, edit, key):
    from smfusion.config import load_config

    text = (world / "mini.yaml").read_text()
    text = text.replace("train: [2015-04-01, 2016-03-31]", edit) if edit.startswith("train") else \
        text.replace("test: [2016-04-01, 2017-03-31]", edit)
    path = tmp_path / "dates.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"{key}: empty date"):
        load_config(path)


def test_workers_and_scheduler_exclude_each_other_before_the_run_is_read(tmp_path):
    from smfusion.products.longterm import predict_product

    with pytest.raises(ConfigError, match="--workers 2 starts a local cluster, --scheduler tcp://127.0.0.1:9"):
        predict_product(tmp_path / "no_run", "2016-04-01", "2016-04-02", tmp_path / "p.nc", workers=2,
                        scheduler="tcp://127.0.0.1:9")


@pytest.mark.parametrize("sizes, needle", [((40, 400, 8, 4), "--times 400"), ((2, 2, 8, 5), "--shards 5"),
                                           ((40, 30, 10**5, 4), "--size 100000"),
                                           ((10**8, 30, 8, 4), "--sensors 100000000 x --times 30")])
def test_fusion_shard_sizes_are_bounded_before_any_example(tmp_path, sizes, needle):
    from smfusion.synthetic.fusion_shards import check_sizes

    with pytest.raises(ConfigError, match=needle):
        check_sizes(tmp_path / "s", *sizes)
    check_sizes(tmp_path / "s", 40, 30, 8, 4)  # the defaults pass
    assert not (tmp_path / "s").exists()


def test_file_kinds_by_their_first_bytes(tmp_path):
    from smfusion.io.signatures import HDF5_SIGNATURE, wrong_kind

    files = {"a.h5": HDF5_SIGNATURE + b"\0" * 8, "ub.h5": b"\0" * 512 + HDF5_SIGNATURE, "c3.nc": b"CDF\x01rest",
             "n4.nc": HDF5_SIGNATURE, "text.h5": b"<html>404</html>", "text.nc": b"lat,lon\n", "empty.h5": b"",
             "notes.txt": b"anything"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    kinds = {name: wrong_kind(tmp_path / name) for name in files}
    assert [n for n, why in kinds.items() if why is None] == ["a.h5", "ub.h5", "c3.nc", "n4.nc", "notes.txt"]
    assert kinds["text.h5"] == "not an HDF5 file (it starts with '<html>40')"
    assert kinds["text.nc"].startswith("not a NetCDF file") and kinds["empty.h5"] == "not an HDF5 file (it is empty)"
