"""Point sets: published-layout shards (masking, required fields, labels, unknown fields), CONUS points
by hand (real data), scaler, sensor split with string ids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smfusion.config import DataConfig, SplitConfig
from smfusion.data.loading import load_dataset
from smfusion.data.points import (CONUS_GROUPS, PointSet, SensorSplit, conus_points, fit_scaler, model_inputs,
                                  points_from_examples, points_from_shards, split_by_sensor)
from smfusion.errors import DataError
from smfusion.io.tfrecord import write_examples
from smfusion.synthetic.fusion_shards import make_examples

GROUPS = ["s1", "s2", "dem", "soilgrids", "smap", "gldas", "landcover"]


@pytest.fixture(scope="module")
def examples():
    return make_examples(n_sensors=6, n_times=4, size=6, seed=2, missing={})


def test_values_crop_and_scaling(examples):
    pts = points_from_examples(examples, GROUPS, patch=4)
    ex = examples[0]
    assert len(pts) == 24 and pts.x["s1"].shape == (24, 13, 4, 4) and pts.x["smap"].shape == (24, 1)
    vv = ex["sentinel_1_VV"].reshape(6, 6)[1:5, 1:5].astype(np.float32)
    valid = ex["mask"].reshape(6, 6)[1:5, 1:5] > 0
    assert np.array_equal(np.where(valid, vv, np.nan), pts.x["s1"][0, 0], equal_nan=True)
    assert pts.x["s1"][0, 12, 0, 0] in (0.0, 1.0)  # orbit pass code, broadcast
    assert pts.smap[0] == pytest.approx(ex["smap_sm"][0] / 255) == pytest.approx(pts.x["smap"][0, 0])
    assert pts.model_sm[0] == pytest.approx(ex["gldas_sm"][0] / 255)
    assert pts.dt["smap"][0, 0] == pytest.approx(ex["smap_time_millis_diff"][0] / 86_400_000)
    assert pts.sensor[0] == "SYNTHETIC__S0000__probe" and pts.timestamp[0] == int(ex["timestamp"][0])
    assert pts.x["landcover"][0, :23].sum(axis=0).max() == 1.0  # one-hot over the class codes


def test_missing_optional_source_is_masked(examples):
    exs = [dict(e) for e in examples]
    for e in exs[::3]:
        for k in [k for k in e if k.startswith("sentinel_2_")]:
            del e[k]
    del exs[1]["gldas_temp"]  # one field missing masks the whole group
    exs[2]["some_future_field"] = np.float32([1, 2, 3])  # unknown fields are ignored
    pts = points_from_examples(exs, GROUPS, patch=4)
    assert pts.present["s2"].tolist() == [i % 3 != 0 for i in range(24)]
    assert not pts.present["gldas"][1] and pts.present["gldas"].sum() == 23
    assert np.isnan(pts.x["s2"][0]).all() and np.isnan(pts.dt["s2"][0, 0])
    sc = fit_scaler(pts)
    arrays = model_inputs(pts, sc)
    assert arrays["s2_mask"][:, 0].tolist() == [float(i % 3 != 0) for i in range(24)]
    assert np.all(arrays["s2"][0] == 0) and np.all(np.isfinite(arrays["s2"]))
    assert arrays["gldas_mask"][1, 0] == 0 and np.all(arrays["gldas"][1] == 0)
    only_absent = pts.subset(np.arange(0, 24, 3))
    with pytest.raises(DataError, match="all values missing in the training points \\(group 's2'\\)"):
        fit_scaler(only_absent)


def test_required_fields_labels_and_shards(examples, tmp_path):
    exs = [dict(e) for e in examples[:6]]
    exs[1]["sm_0_5"] = np.float32([0.0])  # published no-data value ...
    exs[1]["sm_5_5"] = np.float32([0.31])  # ... so sm_5_5 is the label
    del exs[2]["sm_0_5"]  # unlabelled (an ISMN example before the merge)
    write_examples(tmp_path / "a.tfrecord.gz", exs)
    pts = points_from_shards(tmp_path, ["smap", "s1"], 4)
    assert len(pts) == 5 and pts.y[1] == pytest.approx(0.31)
    assert len(points_from_shards(tmp_path, ["smap"], 4, require_label=False)) == 6
    write_examples(tmp_path / "u" / "b.tfrecord.gz", [{k: v for k, v in e.items() if not k.startswith("sm_")} for e in exs])
    with pytest.raises(DataError, match="no example carries a label"):
        points_from_shards(tmp_path / "u", ["smap"], 4)
    bad = [dict(e) for e in exs]
    del bad[3]["sensor_id"]
    write_examples(tmp_path / "c" / "c.tfrecord.gz", bad)
    with pytest.raises(DataError, match=r"record 3: missing required field") as exc:
        points_from_shards(tmp_path / "c", ["smap"], 4)
    msg = str(exc.value)
    assert "sensor_id" in msg and "c.tfrecord.gz" in msg and "\n" not in msg
    with pytest.raises(DataError, match="image size 6 smaller than fusion.patch_size 8"):
        points_from_shards(tmp_path / "a.tfrecord.gz", ["s1"], 8)


def test_split_by_string_sensor_ids_round_trips(examples):
    pts = points_from_examples(examples, ["smap"], patch=4)
    sp = split_by_sensor(pts.sensor, SplitConfig(kind="kfold", k=3, fold=0, seed=0, validation_fraction=0.25))
    parts = [set(sp.train.tolist()), set(sp.validation.tolist()), set(sp.test.tolist())]
    assert sum(len(p) for p in parts) == 6 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    back = SensorSplit.from_dict(json.loads(json.dumps(sp.to_dict())))
    assert len(pts.of_sensors(back.test)) == 4 * len(parts[2])
    assert SensorSplit.from_dict({"train": [1, 2], "validation": [], "test": [3]}).train.dtype.kind == "i"


def test_conus_points_by_hand(conus_root):
    pts = conus_points(conus_root, "2015-04-01", "2015-09-30", ["smap", "gldas"], max_lag_days=3)
    ds = load_dataset(DataConfig(root=str(conus_root), dynamic=["APCP_FORA"], target=["SMAP_AM"]),
                      "2015-04-01", "2015-09-30")
    site = int(ds.site.values[5])
    sm = ds["SMAP_AM"].sel(site=site).values
    days = ds.time.values
    mine = pts.sensor == site
    expected = []
    for t in range(60, sm.size):
        prev = [k for k in range(max(0, t - 3), t) if np.isfinite(sm[k])]
        if np.isfinite(sm[t]) and prev:
            expected.append((days[t], sm[t], sm[prev[-1]], prev[-1] - t))
    assert mine.sum() == len(expected) > 10
    got_t = pts.timestamp[mine].astype("datetime64[ms]")
    assert np.array_equal(got_t, np.array([e[0] for e in expected]).astype("datetime64[ms]"))
    assert np.allclose(pts.y[mine], [e[1] for e in expected])
    assert np.allclose(pts.x["smap"][mine, 0], [e[2] for e in expected])
    assert np.allclose(pts.dt["smap"][mine, 0], [e[3] for e in expected])
    assert pts.x["gldas"].shape[1] == len(CONUS_GROUPS["gldas"].channels)


def test_scaler_constant_channel_not_blown_up():
    n = 10
    src = CONUS_GROUPS["modis"]
    p = PointSet(x={"modis": np.full((n, 1), 0.3, np.float32) + np.float32(1e-8) * np.arange(n)[:, None]},
                 dt={}, y=np.linspace(0.1, 0.3, n).astype(np.float32), sensor=np.arange(n), timestamp=np.arange(n),
                 lat=np.zeros(n), lon=np.zeros(n), smap=np.zeros(n), model_sm=np.zeros(n), sources=[src])
    sc = fit_scaler(p)
    assert sc.std["modis_NDVI"] == 1.0
    p.x["modis"][:] = 0.5
    assert np.allclose(model_inputs(p, sc)["modis"], 0.2, atol=1e-6)
    assert np.isclose(model_inputs(p, sc)["y"].std(), 1.0, atol=1e-5)
