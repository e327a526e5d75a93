"""The published exported model path: its inputs from an example, and (with TensorFlow) a tiny SavedModel
with the published signature run through ``predict-points --saved-model``; TensorFlow-side parsing of our shards."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from smfusion.cli.main import main
from smfusion.errors import DataError
from smfusion.io.fusion_schema import PUBLISHED_MODEL
from smfusion.io.saved_model import published_inputs
from smfusion.io.tfrecord import append_features, iter_records, write_examples
from smfusion.synthetic.fusion_shards import make_examples

SIZE = 6


@pytest.fixture(scope="module")
def examples():
    return make_examples(n_sensors=2, n_times=3, size=SIZE, seed=5, missing={})


def _expected(ex: dict):
    """The published decode_images_in_example, written out by hand."""
    img = [ex[n].reshape(SIZE, SIZE).astype(np.float64) for n in PUBLISHED_MODEL.image]
    img[-1] = np.floor(np.clip(img[-1] / 3000.0 * 255.0, 0, 255))  # DEM metres -> 0..255, truncated
    low = [ex[n].reshape(SIZE, SIZE).astype(np.float64) for n in PUBLISHED_MODEL.low_res_image]
    aux = [ex["smap_sm"][0] / 255.0, ex["gldas_sm"][0] / 255.0]
    return np.stack(img, -1), np.stack(low, -1), np.asarray(aux)


def test_published_inputs(examples):
    ex = dict(examples[0])
    ex["nasa_dem_elevation"] = np.linspace(-50, 4000, SIZE * SIZE).astype(np.int64)  # below 0 and above 3000 m
    got = published_inputs(ex)
    img, low, aux = _expected(ex)
    assert got["image"].shape == (SIZE, SIZE, 10) and got["image"].dtype == np.float32
    np.testing.assert_array_equal(got["image"], img.astype(np.float32))
    assert got["image"][..., 9].min() == 0 and got["image"][..., 9].max() == 255
    np.testing.assert_array_equal(got["low_res_image"], low.astype(np.float32))
    np.testing.assert_allclose(got["auxiliary"], aux, rtol=1e-6)
    assert PUBLISHED_MODEL.image[:3] == ("sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle")
    del ex["smap_sm"]
    assert published_inputs(ex)["auxiliary"][0] == 0.0  # the published parser's default
    del ex["sentinel_2_B8"]
    with pytest.raises(DataError, match="missing field the exported model needs") as exc:
        published_inputs(ex, "x.tfrecord.gz", 4)
    assert "sentinel_2_B8" in str(exc.value) and "record 4" in str(exc.value)


def test_saved_model_path_without_tensorflow_says_so(tmp_path, examples, capsys):
    try:
        import tensorflow  # noqa: F401
        pytest.skip("TensorFlow is installed")
    except ImportError:
        pass
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "saved_model.pb").write_bytes(b"")
    write_examples(tmp_path / "s.tfrecord.gz", examples)
    assert main(["predict-points", "--input", str(tmp_path / "s.tfrecord.gz"), "--saved-model", str(tmp_path / "m"),
                 "--out", str(tmp_path / "p.csv")]) != 0
    assert "needs TensorFlow: pip install 'smfusion[tensorflow]'" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def _tiny_model(tf, path):
    """A SavedModel with the published signature: mean image/low-res channels and aux, weighted, clipped."""
    v1 = tf.compat.v1
    g = v1.Graph()
    with g.as_default():
        img = v1.placeholder(tf.float32, [1, None, None, 10], name="ImageTensor")
        low = v1.placeholder(tf.float32, [1, None, None, 4], name="LowResImageTensor")
        aux = v1.placeholder(tf.float32, [1, 2], name="AuxTensor")
        w_img = v1.Variable(np.linspace(1e-4, 1e-3, 10).astype(np.float32))
        w_low = v1.Variable(np.linspace(-2e-4, 2e-4, 4).astype(np.float32))
        w_aux = v1.Variable(np.asarray([0.4, 0.3], np.float32))
        y = (tf.reduce_sum(tf.reduce_mean(img, axis=[1, 2]) * w_img, -1)
             + tf.reduce_sum(tf.reduce_mean(low, axis=[1, 2]) * w_low, -1) + tf.reduce_sum(aux * w_aux, -1))
        assert tf.clip_by_value(y, 0.0, 1.0).name == PUBLISHED_MODEL.output_tensor
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            b = v1.saved_model.builder.SavedModelBuilder(str(path))
            b.add_meta_graph_and_variables(sess, list(PUBLISHED_MODEL.tags))
            b.save()
    return np.linspace(1e-4, 1e-3, 10), np.linspace(-2e-4, 2e-4, 4), np.asarray([0.4, 0.3])


def test_tiny_saved_model_through_predict_points(tmp_path, examples):
    tf = pytest.importorskip("tensorflow")
    w_img, w_low, w_aux = _tiny_model(tf, tmp_path / "model")
    shard = write_examples(tmp_path / "data-00000-of-00001.tfrecord.gz", examples)
    out = tmp_path / "pred.csv"
    assert main(["predict-points", "--input", str(shard), "--saved-model", str(tmp_path / "model"), "--out", str(out),
                 "--num-inference-samples", "3", "--num-skip-samples", "2"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3
    for row, ex in zip(rows, examples[2:5]):
        img, low, aux = _expected(ex)
        want = np.clip(img.mean((0, 1)) @ w_img + low.mean((0, 1)) @ w_low + aux @ w_aux, 0, 1)
        assert float(row["sm_0_5_pred"]) == pytest.approx(want, abs=2e-5)
        assert row["sensor_id"] == ex["sensor_id"][0].decode() and float(row["sm_0_5"]) == pytest.approx(
            float(ex["sm_0_5"][0]), abs=1e-5)


def test_tensorflow_reads_our_shards_with_the_published_parser(tmp_path, examples):
    tf = pytest.importorskip("tensorflow")
    shard = write_examples(tmp_path / "s.tfrecord.gz", examples)
    m = PUBLISHED_MODEL
    spec = {"sensor_id": tf.io.FixedLenFeature([], tf.string)}
    spec.update({n: tf.io.FixedLenFeature([], tf.float32, default_value=0.0)
                 for n in ("center_lat", "center_long", "timestamp", "sm_0_5", "sm_5_5")})
    spec.update({n: tf.io.FixedLenFeature([], tf.int64, default_value=0) for n in m.auxiliary})
    spec.update({n: tf.io.FixedLenFeature((SIZE, SIZE), tf.int64) for n in m.image + m.low_res_image})
    raw = list(iter_records(shard))
    raw[0] = append_features(raw[0], {"sm_0_5": np.float32([0.4321])})  # a label appended as merge-labels does
    for rec, ex in zip(raw, examples):
        got = tf.io.parse_single_example(rec, spec)
        assert got["sensor_id"].numpy() == ex["sensor_id"][0]
        assert got["smap_sm"].numpy() == ex["smap_sm"][0]
        np.testing.assert_array_equal(got["sentinel_2_B11"].numpy().ravel(), ex["sentinel_2_B11"])
    assert tf.io.parse_single_example(raw[0], spec)["sm_0_5"].numpy() == pytest.approx(0.4321)
    # and a file TensorFlow wrote, with every kind of feature, reads back here
    feats = {"sensor_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"A__B__C"])),
             "timestamp": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5e12])),
             "nasa_dem_elevation": tf.train.Feature(int64_list=tf.train.Int64List(value=list(range(-3, 33))))}
    path = str(tmp_path / "tf.tfrecord.gz")
    with tf.io.TFRecordWriter(path, "GZIP") as w:
        w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    from smfusion.io.tfrecord import read_examples

    (back,) = list(read_examples(path))
    assert back["sensor_id"] == [b"A__B__C"] and back["timestamp"][0] == np.float32(1.5e12)
    assert back["nasa_dem_elevation"].tolist() == list(range(-3, 33))
