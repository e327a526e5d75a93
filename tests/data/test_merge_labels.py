"""Label merge: counters and values on a small hand-made case."""

from __future__ import annotations

import numpy as np

from smfusion.cli import main
from smfusion.data.merge_labels import haversine_m, merge_labels
from smfusion.io.tfrecord import read_examples, write_examples

T0 = 1262304000000  # 2010-01-01T00:00Z in ms
H = 3_600_000


def _ismn_file(folder, station, lat, lon, rows, depth=(0.05, 0.05)):
    d = folder / "NET" / station
    d.mkdir(parents=True, exist_ok=True)
    name = f"NET_NET_{station}_sm_{depth[0]:.6f}_{depth[1]:.6f}_Probe_20100101_20100102.stm"
    lines = [f"NET NET {station} {lat:.5f} {lon:.5f} 100.00 {depth[0]:.2f} {depth[1]:.2f} Probe"]
    lines += [f"{t} {v:.4f} {f} M" for t, v, f in rows]
    (d / name).write_text("\n".join(lines) + "\n")


def _ex(lat, lon, t):
    return {"center_lat": np.float32([lat]), "center_long": np.float32([lon]), "timestamp": np.int64([t]),
            "sensor_id": np.int64([1]), "s1_VV": np.float32([-10.0, -11.0, -12.0, -13.0])}


def test_haversine_one_degree_latitude():
    assert abs(haversine_m(0.0, 0.0, 1.0, 0.0) - 111_195) < 5


def test_merge_counts_and_values(tmp_path, capsys):
    ismn = tmp_path / "ismn"
    _ismn_file(ismn, "A", 40.0, -100.0, [("2010/01/01 00:00", 0.21, "G"), ("2010/01/01 06:00", 0.25, "G"),
                                        ("2010/01/01 12:00", 0.30, "D02"), ("2010/01/02 00:00", 0.27, "G")])
    _ismn_file(ismn, "B", 35.0, -90.0, [("2010/01/01 00:00", 1.50, "G")])
    _ismn_file(ismn, "C", 45.0, -95.0, [("2010/01/01 00:00", 0.40, "G")], depth=(0.2, 0.2))  # too deep: ignored
    ex_dir = tmp_path / "ex"
    examples = [
        _ex(40.0, -100.0, T0 + 5 * H),       # nearest 06:00 -> 0.25 success
        _ex(40.001, -100.0, T0 + 1 * H),     # 111 m away, nearest 00:00 -> 0.21 success
        _ex(40.0, -100.0, T0 + 12 * H),      # nearest 12:00 flagged D02 -> value failure
        _ex(35.0, -90.0, T0),                # value 1.5 out of range -> value failure
        _ex(45.0, -95.0, T0),                # only a 20 cm sensor there -> lookup failure
        _ex(40.0, -100.0, T0 + 24 * 5 * H),  # 4 days after the last reading -> lookup failure
        _ex(10.0, 10.0, T0),                 # nothing near -> lookup failure
    ]
    write_examples(ex_dir / "a.tfrecord.gz", examples[:4])
    write_examples(ex_dir / "b.tfrecord", examples[4:])
    counts = merge_labels(ex_dir, ismn, tmp_path / "out", tolerance_hours=12, max_distance_m=1000, progress=False)
    assert (counts.success, counts.lookup_failure, counts.value_failure) == (2, 3, 2)
    got = list(read_examples(tmp_path / "out" / "a.tfrecord.gz", required=["sm_0_5", "s1_VV"]))
    assert [round(float(e["sm_0_5"][0]), 4) for e in got] == [0.25, 0.21]
    assert np.array_equal(got[0]["s1_VV"], examples[0]["s1_VV"])
    assert list(read_examples(tmp_path / "out" / "b.tfrecord")) == []
    rc = main(["merge-labels", "--examples", str(ex_dir), "--ismn", str(ismn), "--out", str(tmp_path / "o2")])
    assert rc == 0 and "success=2 lookup_failure=3 value_failure=2" in capsys.readouterr().out
