"""ISMN reader on every real ISMN file in the shared data folder."""

from __future__ import annotations

import logging
import shutil
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smfusion.errors import DataError
from smfusion.io.ismn import find_ismn_files, read_ismn, read_ismn_file

pytestmark = pytest.mark.realdata

ARM1 = "COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
NARBONNE = "SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm"


def _raw_lines(path):
    """Data lines of an ISMN file as token lists, read without pandas or ismn."""
    text = path.read_bytes().decode("ascii").replace("\r\n", "\n").replace("\r", "\n")
    return [line.split() for line in text.split("\n") if line.strip()]


def _hand_daily(lines, day, value_col, flag_col, flags):
    """Daily mean of hourly means of flag-filtered values for one day: (mean, hours)."""
    hourly = defaultdict(list)
    for tok in lines:
        if tok[0] != day or tok[flag_col] not in flags:
            continue
        hourly[tok[1][:2]].append(float(tok[value_col]))
    means = [sum(v) / len(v) for v in hourly.values()]
    return (sum(means) / len(means) if means else float("nan")), len(means)


def test_every_real_file(ismn_root):
    files = sorted(p for p in ismn_root.rglob("*") if p.is_file() and p.suffix not in (".csv", ".xml"))
    assert len(files) == 16  # 15 data files (4 COSMOS, 8 multinetwork, 3 SMOSMANIA) + the malformed one
    for f in files:
        if f.parent.name == "malformed":
            with pytest.raises(DataError, match=f.name):
                read_ismn_file(f)
            continue
        records = read_ismn_file(f)
        tokens = f.stem.split("_")
        assert records, f
        for rec in records:
            assert rec.meta["network"] == tokens[1]
            assert rec.meta["variable"] == "soil_moisture"
            assert rec.meta["file_format"] in ("header_values", "ceop_sep", "ceop")
            assert -90 <= rec.meta["latitude"] <= 90 and -180 <= rec.meta["longitude"] <= 180
            assert len(rec.data) > 0 and rec.data.index.is_monotonic_increasing
            start, end = pd.Timestamp(tokens[-2]), pd.Timestamp(tokens[-1]) + pd.Timedelta("1D")
            assert start <= rec.data.index[0] and rec.data.index[-1] < end
        if len(tokens) > 6:  # NET_NET_STATION_sm_FROM_TO_SENSOR_START_END: one sensor
            (rec,) = records
            assert rec.meta["sensor"] == "_".join(tokens[6:-2])
            assert rec.meta["depth_from"] == pytest.approx(float(tokens[4]), abs=0.001)
            assert rec.meta["depth_to"] == pytest.approx(float(tokens[5]), abs=0.001)
            assert len(rec.data) == len(_raw_lines(f)) - (rec.meta["file_format"] == "header_values")


def test_multinetwork_stations_depths_dates(ismn_root):
    folder = ismn_root / "multinetwork" / "header_values"
    # these older files carry no 'G' flag at all, so the default keeps nothing
    assert not any(tok[3] == "G" for f in find_ismn_files(folder) for tok in _raw_lines(f)[1:])
    assert read_ismn(folder).sizes["site"] == 0
    ds = read_ismn(folder, good_flags=("G", "U"))
    assert ds.sizes["site"] == 8
    counts = pd.Series(ds["network"].values).value_counts().to_dict()
    assert counts == {"SCAN": 3, "MAQU": 2, "SOILSCAPE": 3}
    np.testing.assert_allclose(ds["depth_from"], 0.05)
    np.testing.assert_allclose(ds["depth_to"], 0.05)
    assert "2007-01-01" <= str(ds["time"].values[0])[:10] and str(ds["time"].values[-1])[:10] <= "2013-12-31"
    # first and last day of one station, by hand: days with >= 12 hours flagged G or U
    abrams = next(f for f in find_ismn_files(folder) if "_Abrams_" in f.name)
    lines = _raw_lines(abrams)[1:]
    days = sorted({t[0] for t in lines})
    good = [d for d in days[:40] + days[-40:] if _hand_daily(lines, d, 2, 3, {"G", "U"})[1] >= 12]
    site = ds["soil_moisture"].isel(site=int(np.nonzero(ds["station"].values == "Abrams")[0][0]))
    valid_days = site["time"].values[np.isfinite(site.values)]
    assert str(valid_days[0])[:10] == good[0].replace("/", "-")
    assert str(valid_days[-1])[:10] == good[-1].replace("/", "-")
    assert ds["soil_moisture"].attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    assert set(ds["station"].values) >= {"AAMU-jtg", "Abrams", "AdamsRanch#1", "CST-01", "node414"}
    assert read_ismn(folder, good_flags=("G", "U"), depth=(0.0, 0.04)).sizes["site"] == 0
    assert read_ismn(folder, good_flags=("G", "U"), networks=["MAQU"]).sizes["site"] == 2


def test_cosmos_both_layouts_metadata_and_one_day_by_hand(ismn_root):
    cosmos = ismn_root / "cosmos"
    assert read_ismn(cosmos).sizes["site"] == 0  # 0-0.19 m probes are not within 0-0.05 m
    assert read_ismn(cosmos, depth_from_only=True).sizes["site"] == 4
    ds = read_ismn(cosmos, depth=(0.0, 0.3))
    assert ds.sizes["site"] == 4
    assert sorted(set(ds["file_format"].values)) == ["ceop_sep", "header_values"]
    hv = ds.isel(site=np.nonzero(ds["file_format"].values == "header_values")[0])
    sep = ds.isel(site=np.nonzero(ds["file_format"].values == "ceop_sep")[0])
    np.testing.assert_array_equal(hv["soil_moisture"].values, sep["soil_moisture"].values)
    arm = ds.isel(site=int(np.nonzero((ds["station"].values == "ARM-1") &
                                      (ds["file_format"].values == "header_values"))[0][0]))
    assert (float(arm["lat"]), float(arm["lon"]), float(arm["elevation"])) == (36.6054, -97.4878, 322.0)
    assert (float(arm["depth_from"]), float(arm["depth_to"])) == (0.0, 0.19)
    assert str(arm["sensor"].values) == "Cosmic-ray-Probe"
    assert float(arm["lc_2010"]) == 130 and str(arm["climate_KG"].values) == "Cfa"
    assert float(arm["clay_fraction"]) == 23.0 and float(arm["sand_fraction"]) == 36.0  # 0-0.3 m layer
    day = arm["soil_moisture"].sel(time="2017-08-10")
    path = cosmos / "Data_seperate_files_header_20170810_20180809" / "COSMOS" / "ARM-1" / ARM1
    mean, hours = _hand_daily(_raw_lines(path)[1:], "2017/08/10", 2, 3, {"G"})
    assert hours >= 12
    assert float(day) == pytest.approx(mean, abs=1e-6)
    assert int(arm["n_hours"].sel(time="2017-08-10")) == hours
    assert str(ds["time"].values[0])[:10] == "2017-08-10" and str(ds["time"].values[-1])[:10] == "2018-08-09"
    # days with fewer good hours than min_hours are dropped
    strict = read_ismn(cosmos, depth=(0.0, 0.3), min_hours=24)
    assert int(strict["soil_moisture"].count()) < int(ds["soil_moisture"].count())
    assert (strict["n_hours"].values[np.isfinite(strict["soil_moisture"].values)] == 24).all()


def test_hourly_output(ismn_root):
    folder = ismn_root / "format_header_values"
    ds = read_ismn(folder, good_flags=("G", "U"), daily=False)
    assert "n_hours" not in ds and ds.sizes["site"] == 1
    lines = _raw_lines(folder / "SMOSMANIA" / NARBONNE)[1:]
    kept = [(t[0], t[1], float(t[2])) for t in lines if t[3] in ("G", "U")]
    assert int(ds["soil_moisture"].count()) == len(kept)
    first = pd.Timestamp(kept[0][0].replace("/", "-") + " " + kept[0][1])
    assert float(ds["soil_moisture"].sel(time=first)[0]) == pytest.approx(kept[0][2])


def test_header_values_and_ceop_sep_agree(ismn_root):
    a = read_ismn(ismn_root / "format_header_values", good_flags=("G", "U"))
    b = read_ismn(ismn_root / "format_ceop_sep", good_flags=("G", "U"))
    np.testing.assert_array_equal(a["soil_moisture"].values, b["soil_moisture"].values)
    np.testing.assert_array_equal(a["time"].values, b["time"].values)
    assert a.sizes["time"] == 31  # January 2007
    mean, hours = _hand_daily(_raw_lines(ismn_root / "format_header_values" / "SMOSMANIA" / NARBONNE)[1:],
                              "2007/01/15", 2, 3, {"G", "U"})
    assert float(a["soil_moisture"].sel(time="2007-01-15")[0]) == pytest.approx(mean, abs=1e-6)
    assert int(a["n_hours"].sel(time="2007-01-15")[0]) == hours


def test_old_ceop_layout(ismn_root):
    folder = ismn_root / "format_ceop"
    records = read_ismn_file(next(folder.rglob("*.stm")))
    assert sorted(r.meta["depth_from"] for r in records) == [0.05, 0.1, 0.2, 0.3]
    assert {r.meta["station"] for r in records} == {"Narbonne"}
    ds = read_ismn(folder, good_flags=("G", "U"), min_hours=1)
    assert ds.sizes["site"] == 1 and float(ds["depth_from"][0]) == 0.05
    lines = _raw_lines(next(folder.rglob("*.stm")))
    at5 = [t for t in lines if float(t[11]) == 0.05]
    mean, hours = _hand_daily(at5, "2010/10/21", 14, 15, {"G", "U"})
    assert float(ds["soil_moisture"].sel(time="2010-10-21")[0]) == pytest.approx(mean, abs=1e-6)
    assert int(ds["n_hours"].sel(time="2010-10-21")[0]) == hours


def test_whole_shared_folder(ismn_root):
    ds = read_ismn(ismn_root, good_flags=("G", "U"), depth=(0.0, 0.3))
    # 8 multinetwork + 4 cosmos + 4 old-CEOP depths + 2 SMOSMANIA single-sensor files
    assert ds.sizes["site"] == 18
    assert ds.attrs["skipped_files"] == ""
    assert len(set(ds["site"].values)) == 18


def test_malformed_file_errors_and_skips(ismn_root, tmp_path, caplog):
    bad = ismn_root / "malformed" / "mal_formed_file.txt"
    with pytest.raises(DataError, match="mal_formed_file.txt"):
        read_ismn(bad)
    with pytest.raises(DataError, match="no ISMN data files"):
        read_ismn(ismn_root / "malformed")
    (tmp_path / "download.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="extract the archive"):
        read_ismn(tmp_path / "download.zip")
    work = tmp_path / "archive"
    shutil.copytree(ismn_root / "format_header_values", work)
    planted = work / "SMOSMANIA" / "SMOSMANIA_SMOSMANIA_Bad_sm_0.050000_0.050000_X_20070101_20070131.stm"
    shutil.copy(bad, planted)
    with caplog.at_level(logging.WARNING, logger="smfusion.io.ismn"):
        ds = read_ismn(work, good_flags=("G", "U"))
    assert ds.sizes["site"] == 1
    assert planted.name in ds.attrs["skipped_files"]
    assert any(planted.name in r.getMessage() for r in caplog.records)
    with pytest.raises(DataError, match=planted.name):
        read_ismn(work, on_error="raise")


@pytest.fixture(scope="module")
def fuzz_source(ismn_root):
    return (ismn_root / "format_header_values" / "SMOSMANIA" / NARBONNE).read_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_garbled_ismn_files(fuzz_source, tmp_path, garbler, data):
    raw = garbler(data, fuzz_source, max_edits=6, max_chunk=24, overwrite=data.draw(st.booleans()))
    path = tmp_path / NARBONNE
    path.write_bytes(raw)
    try:
        ds = read_ismn(path, good_flags=("G", "U"))
    except DataError as exc:
        assert path.name in str(exc)
    else:
        assert ds["soil_moisture"].dims == ("site", "time")
