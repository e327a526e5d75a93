"""Label merge by the published combine_ismn_data.py rule, on the real ISMN files (folder and zip)."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from smfusion.cli.main import main
from smfusion.data.merge_labels import IsmnLookup, merge_labels, open_ismn, window_ms
from smfusion.errors import DataError
from smfusion.io.ismn import read_ismn_file
from smfusion.io.tfrecord import iter_records, read_examples, write_examples


def _ex(sensor_id: str, t, **extra):
    ms = float(np.float32(pd.Timestamp(t).value // 10**6))  # the published float32 timestamp
    return {"sensor_id": [sensor_id.encode()], "timestamp": np.float32([ms]), "center_lat": np.float32([1.0]),
            "center_long": np.float32([2.0]), "sentinel_1_VV": np.arange(4, dtype=np.int64), **extra}


@pytest.fixture(scope="module")
def ismn_hv(ismn_root):
    return ismn_root / "multinetwork" / "header_values"


def _reading(ismn_hv, rel: str, k: int):
    data = read_ismn_file(ismn_hv / rel)[0].data  # raw series, flags not filtered (as published)
    return data.index[k], float(data["value"].iloc[k])


def _real_case(ismn_hv):
    t1, v1 = _reading(ismn_hv, "SCAN/AdamsRanch#1/SCAN_SCAN_AdamsRanch#1_sm_0.050800_0.050800_"
                      "Hydraprobe-Analog-(2.5-Volt)_20070101_20131231.stm", 500)
    t2, v2 = _reading(ismn_hv, "MAQU/CST-01/MAQU_MAQU_CST-01_sm_0.050000_0.050000_ECH20-EC-TM_20070101_20131231.stm",
                      3000)
    t3, v3 = _reading(ismn_hv, "SOILSCAPE/node414/SOILSCAPE_SOILSCAPE_node414_sm_0.050000_0.050000_EC5_20070101_"
                      "20131231.stm", 100)
    shard_a = [
        _ex("SCAN__AdamsRanch#1__Hydraprobe", t1),  # success
        _ex("MAQU__CST_01__ECH20", t2 + pd.Timedelta(seconds=90)),  # success: parts of CST-01, within 3 min
        _ex("SOILSCAPE__node414__EC5", t3),  # success
        _ex("SCAN__AdamsRanch#1__Hydraprobe", t1 + pd.Timedelta(minutes=30)),  # lookup: no reading at :30
    ]
    shard_b = [
        _ex("NOPE__A__B", t1),  # lookup: no such network
        _ex("SCAN__Nowhere__x", t1),  # lookup: no such station
        _ex("SCAN__AdamsRanch#1", t1),  # value: not three parts (the published unpacking ValueError)
        _ex("SCAN__Abrams__x", t1, sm_0_5=np.float32([0.123])),  # already labelled: kept as is
    ]
    return shard_a, shard_b, [v1, v2, v3]


def test_merge_on_real_ismn_files_folder_zip_parallel(ismn_hv, tmp_path, capsys):
    shard_a, shard_b, values = _real_case(ismn_hv)
    src = tmp_path / "in"
    write_examples(src / "data-00000-of-00002.tfrecord.gz", shard_a)
    write_examples(src / "data-00001-of-00002.tfrecord", shard_b)
    counts = merge_labels(src, ismn_hv, tmp_path / "out", progress=False)
    assert (counts.success, counts.lookup_failure, counts.value_failure) == (4, 3, 1)
    got = list(read_examples(tmp_path / "out" / "data-00000-of-00002.tfrecord.gz"))
    assert [e["sensor_id"][0] for e in got] == [e["sensor_id"][0] for e in shard_a[:3]]
    assert np.allclose([e["sm_0_5"][0] for e in got], values) and got[0]["sm_0_5"].dtype == np.float32
    assert np.array_equal(got[1]["sentinel_1_VV"], np.arange(4))  # the rest of the example untouched
    # the labelled example passes byte for byte; output names follow the published rule (gzip)
    out_b = tmp_path / "out" / "data-00001-of-00002.tfrecord.gz"
    assert list(iter_records(out_b)) == [list(iter_records(src / "data-00001-of-00002.tfrecord"))[3]]
    # the ISMN download zip gives the same, as does a pool of two workers
    archive = tmp_path / "ismn.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(ismn_hv.rglob("*.stm")):
            zf.write(f, f.relative_to(ismn_hv).as_posix())
    assert main(["merge-labels", "--examples", str(src), "--ismn", str(archive), "--out", str(tmp_path / "z"),
                 "--num-workers", "2"]) == 0
    assert "success=4 lookup_failure=3 value_failure=1" in capsys.readouterr().out
    for name in ("data-00000-of-00002.tfrecord.gz", "data-00001-of-00002.tfrecord.gz"):
        assert list(iter_records(tmp_path / "z" / name)) == list(iter_records(tmp_path / "out" / name))
    assert not any(p.name == "python_metadata" for p in ismn_hv.rglob("*"))  # nothing written into the data


def test_sensor_without_5cm_series_is_a_lookup_failure(ismn_root, tmp_path):
    lookup = IsmnLookup(open_ismn(ismn_root / "cosmos" / "Data_seperate_files_header_20170810_20180809", tmp_path))
    with pytest.raises(LookupError, match="at 5cm depth"):  # cosmic-ray probe 0-0.19 m: no "0.05"
        lookup.sm_5cm("COSMOS__ARM_1__Cosmic", pd.Timestamp("2017-09-01").value // 10**6)


def _ismn_file(folder, station, rows, depth=(0.05, 0.05)):
    d = folder / "NET" / station
    d.mkdir(parents=True, exist_ok=True)
    name = f"NET_NET_{station}_sm_{depth[0]:.6f}_{depth[1]:.6f}_Probe_20100101_20100102.stm"
    lines = [f"NET NET {station} 40.00000 -100.00000 100.00 {depth[0]:.2f} {depth[1]:.2f} Probe"]
    lines += [f"{t} {v:.4f} G M" for t, v in rows]
    (d / name).write_text("\n".join(lines) + "\n")


def test_multiple_readings_in_the_window_is_a_value_failure(tmp_path):
    ismn = tmp_path / "ismn"
    _ismn_file(ismn, "A-1", [("2010/01/01 00:00", 0.21), ("2010/01/01 00:05", 0.22), ("2010/01/01 01:00", 0.25)])
    _ismn_file(ismn, "B", [("2010/01/01 00:00", 0.30)], depth=(0.10, 0.20))
    lookup = IsmnLookup(open_ismn(ismn, tmp_path / "meta"))
    t0 = pd.Timestamp("2010-01-01").value // 10**6
    with pytest.raises(ValueError, match="Multiple"):
        lookup.sm_5cm("NET__A_1__x", t0 + 150_000)  # 00:02:30: both 00:00 and 00:05 within 3 min
    assert lookup.sm_5cm("NET__A1__x", t0 + 3_600_000 + 179_000) == pytest.approx(0.25)  # "A1" in "A-1" without "-"
    with pytest.raises(LookupError):
        lookup.sm_5cm("NET__A_1__x", t0 + 3_600_000 + 181_000)  # 3 min 1 s away
    with pytest.raises(LookupError, match="5cm"):
        lookup.sm_5cm("NET__B__x", t0)  # only a 10-20 cm sensor


def test_window_matches_pandas_string_slicing():
    rng = np.random.default_rng(0)
    base = pd.Timestamp("2016-05-01").value // 10**6
    index = pd.DatetimeIndex(np.sort(base + rng.integers(0, 3_600_000, 400)).astype("datetime64[ms]"))
    series = pd.Series(np.arange(400), index=index)
    for t in base + rng.integers(200_000, 3_400_000, 50):
        dt = pd.Timestamp(int(t), unit="ms")
        lo = (dt - pd.Timedelta(minutes=3)).strftime("%Y-%m-%d %H:%M:%S")
        hi = (dt + pd.Timedelta(minutes=3)).strftime("%Y-%m-%d %H:%M:%S")
        a, b = window_ms(int(t))
        ms = index.values.astype("datetime64[ms]").astype(np.int64)
        assert series[lo:hi].tolist() == series[(ms >= a) & (ms <= b)].tolist()


def test_bad_inputs_are_one_line_errors(tmp_path, ismn_hv):
    write_examples(tmp_path / "in" / "s.tfrecord.gz", [{"timestamp": np.float32([1e12])}])
    with pytest.raises(DataError, match="record 0: missing required field") as exc:
        merge_labels(tmp_path / "in", ismn_hv, tmp_path / "out", progress=False)
    assert "sensor_id" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DataError, match="--out must differ"):
        merge_labels(tmp_path / "in", ismn_hv, tmp_path / "in", progress=False)
    with pytest.raises(DataError, match="not found"):
        merge_labels(tmp_path / "in", tmp_path / "nope.zip", tmp_path / "out", progress=False)
