"""TFRecord framing, CRC-32C, Example protobuf decoding, corrupt input, streaming dataset."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smfusion.errors import DataError
from smfusion.io import crc32c as crcmod
from smfusion.io import tfrecord as tfr
from smfusion.io.tfrecord_dataset import TFRecordDataset


@pytest.mark.parametrize("crc", [tfr.crc32c, tfr.crc32c_portable], ids=["crc32c", "portable"])
def test_crc32c_published_vectors(crc):
    # RFC 3720 (iSCSI) appendix B.4 and the common check value
    assert crc(b"123456789") == 0xE3069283
    assert crc(b"\x00" * 32) == 0x8A9136AA
    assert crc(b"\xff" * 32) == 0x62A8AB43
    assert crc(bytes(range(32))) == 0x46DD794E
    assert crc(bytes(range(31, -1, -1))) == 0x113FDB5C
    assert crc(b"") == 0


def test_crc32c_lane_path_matches_bytewise():
    rng = np.random.default_rng(0)
    for n in (2047, 2048, 2049, 5000, 40_000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        ref = crcmod._crc_update_py(0xFFFFFFFF, data) ^ 0xFFFFFFFF
        assert tfr.crc32c_portable(data) == ref == tfr.crc32c(data)  # crc32c may use the C library
    # continuation: crc(a + b) == crc(b, crc(a))
    a, b = b"hello ", b"world" * 1000
    for crc in (tfr.crc32c, tfr.crc32c_portable):
        assert crc(a + b) == crc(b, crc(a))


def test_frame_of_known_bytes():
    # empty record: 8 zero length bytes, masked CRC of them, no data, masked CRC of b"" = 0xa282ead8
    assert tfr.frame_record(b"").hex() == "0000000000000000" + "29039807" + "d8ea82a2"
    # masked CRC by hand for b"123456789": rotate 0xE3069283 right by 15, add 0xa282ead8
    c = 0xE3069283
    assert tfr.masked_crc32c(b"123456789") == (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    frame = tfr.frame_record(b"abc")
    assert frame[:8] == struct.pack("<Q", 3) and frame[12:15] == b"abc" and len(frame) == 8 + 4 + 3 + 4


def test_hand_made_file_plain_and_gzip(tmp_path):
    raw = tfr.frame_record(b"first") + tfr.frame_record(b"") + tfr.frame_record(b"third record")
    (tmp_path / "a.tfrecord").write_bytes(raw)
    (tmp_path / "a.tfrecord.gz").write_bytes(gzip.compress(raw))
    for name in ("a.tfrecord", "a.tfrecord.gz"):
        assert list(tfr.iter_records(tmp_path / name)) == [b"first", b"", b"third record"]


def test_example_round_trip_all_kinds(tmp_path):
    ex = {
        "f": np.array([1.5, -2.25, 3e-8], dtype=np.float32),
        "i": np.array([0, 1, -1, 2**40, -(2**62), 127, 128], dtype=np.int64),
        "b": [b"14N", b"", b"\x00\xff"],
        "one": np.float32([0.25]),
    }
    for packed in (True, False):
        out = tfr.decode_example(tfr.encode_example(ex, packed=packed))
        assert out["f"].dtype == np.float32 and np.array_equal(out["f"], ex["f"])
        assert out["i"].dtype == np.int64 and np.array_equal(out["i"], ex["i"])
        assert out["b"] == ex["b"]
        assert out["one"][0] == 0.25
    path = tfr.write_examples(tmp_path / "x.tfrecord.gz", [ex, ex])
    got = list(tfr.read_examples(path, required=["f", "i", "b"]))
    assert len(got) == 2 and np.array_equal(got[1]["i"], ex["i"])


def test_hand_encoded_protobuf_bytes():
    # Example{features{feature{key:"a" value{int64_list{value:[1,300]}}}}} written byte by byte
    int_list = b"\x0a\x03\x01\xac\x02"  # packed field 1: varints 1 and 300
    feature = b"\x1a" + bytes([len(int_list)]) + int_list
    entry = b"\x0a\x01a" + b"\x12" + bytes([len(feature)]) + feature
    features = b"\x0a" + bytes([len(entry)]) + entry
    example = b"\x0a" + bytes([len(features)]) + features
    assert example == tfr.encode_example({"a": np.array([1, 300])})
    assert tfr.decode_example(example)["a"].tolist() == [1, 300]
    # float 1.0 unpacked (wire type 5): tag 0x0d then 00 00 80 3f
    fl = b"\x0d\x00\x00\x80\x3f"
    feat = b"\x12" + bytes([len(fl)]) + fl
    entry = b"\x0a\x01x\x12" + bytes([len(feat)]) + feat
    ex = b"\x0a" + bytes([len(entry) + 2]) + b"\x0a" + bytes([len(entry)]) + entry
    assert tfr.decode_example(ex)["x"].tolist() == [1.0]


def _write(tmp_path, payloads, name="s.tfrecord"):
    path = tmp_path / name
    path.write_bytes(b"".join(tfr.frame_record(p) for p in payloads))
    return path


def test_bad_crc_names_file_and_record(tmp_path):
    good = tfr.encode_example({"a": np.float32([1.0])})
    path = _write(tmp_path, [good, good, good])
    raw = bytearray(path.read_bytes())
    frame = len(tfr.frame_record(good))
    raw[2 * frame + 12 + 3] ^= 0x01  # flip a data bit of record 2
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"record 2: bad data CRC") as exc:
        list(tfr.read_examples(path))
    assert str(path) in str(exc.value)
    raw = bytearray(path.read_bytes())
    raw[frame + 1] ^= 0x10  # corrupt the length of record 1
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"record 1: bad length CRC"):
        list(tfr.iter_records(path))


def test_truncated_plain_and_gzip(tmp_path):
    good = tfr.encode_example({"a": np.float32(np.arange(100))})
    raw = b"".join(tfr.frame_record(good) for _ in range(3))
    (tmp_path / "t.tfrecord").write_bytes(raw[:-10])
    with pytest.raises(DataError, match=r"record 2: truncated data"):
        list(tfr.iter_records(tmp_path / "t.tfrecord"))
    (tmp_path / "h.tfrecord").write_bytes(raw[: len(raw) // 3 + 5])
    with pytest.raises(DataError, match=r"record 1: truncated length header"):
        list(tfr.iter_records(tmp_path / "h.tfrecord"))
    gz = gzip.compress(raw)
    (tmp_path / "t.tfrecord.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataError, match=r"record \d+: .*(truncated|corrupt)"):
        list(tfr.iter_records(tmp_path / "t.tfrecord.gz"))


def test_skipped_records_of_a_gzip_file_are_passed_by_and_a_truncated_one_named(tmp_path, monkeypatch):
    monkeypatch.setattr(tfr, "_SKIP_STEP", 64)  # several pieces per skipped record
    recs = [tfr.encode_example({"a": np.float32(np.arange(100) + i)}) for i in range(4)]
    raw = b"".join(tfr.frame_record(r) for r in recs)
    (tmp_path / "s.tfrecord.gz").write_bytes(gzip.compress(raw))
    got = list(tfr.iter_frames(tmp_path / "s.tfrecord.gz", want={0, 3}))
    assert [(i, d) for i, _, d in got] == [(0, recs[0]), (3, recs[3])]
    assert got[1][1] == 3 * (len(recs[0]) + 16)  # offset in the uncompressed stream
    (tmp_path / "t.tfrecord.gz").write_bytes(gzip.compress(raw[: len(raw) - len(recs[3]) - 30]))
    with pytest.raises(DataError, match=r"record 2: truncated or corrupt while skipping it"):
        list(tfr.iter_frames(tmp_path / "t.tfrecord.gz", want={0}))


def test_garbage_protobuf_and_missing_field(tmp_path):
    path = _write(tmp_path, [tfr.encode_example({"a": np.float32([1])}), b"\x0a\xff\xff\xff"])
    with pytest.raises(DataError, match=r"record 1: not a tf.train.Example"):
        list(tfr.read_examples(path))
    path = _write(tmp_path, [tfr.encode_example({"a": np.float32([1])})] * 2, "m.tfrecord")
    with pytest.raises(DataError, match=r"record 0: missing required field") as exc:
        list(tfr.read_examples(path, required=["a", "sm_0_5"]))
    assert "sm_0_5" in str(exc.value) and "m.tfrecord" in str(exc.value)


def test_iterable_dataset_worker_sharding(tmp_path):
    for k in range(4):
        tfr.write_examples(tmp_path / f"p-{k}.tfrecord.gz",
                           [{"id": np.int64([10 * k + j])} for j in range(3)])
    ds = TFRecordDataset(tmp_path, transform=lambda ex: int(ex["id"][0]))
    assert sorted(ds) == sorted(10 * k + j for k in range(4) for j in range(3))
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    got = [int(v) for v in loader]
    assert sorted(got) == sorted(10 * k + j for k in range(4) for j in range(3))  # each record once


def test_decode_selected_keys_and_append_features(tmp_path):
    ex = {"big": np.arange(10_000, dtype=np.int64), "a": np.float32([1.5]), "s": [b"x"]}
    raw = tfr.encode_example(ex)
    got = tfr.decode_example(raw, keys={"a", "s", "absent"})
    assert set(got) == {"a", "s"} and got["s"] == [b"x"]
    # appending a serialized Example merges it (protobuf rule): a new key added, a repeated key replaced
    merged = tfr.append_features(raw, {"label": np.float32([0.25]), "a": np.float32([2.0])})
    assert merged.startswith(raw)
    back = tfr.decode_example(merged)
    assert back["label"][0] == 0.25 and back["a"][0] == 2.0 and np.array_equal(back["big"], ex["big"])
    path = tfr.write_records(tmp_path / "m.tfrecord.gz", [merged])
    (one,) = list(tfr.read_examples(path, required=["label"], keys=["label"]))
    assert set(one) == {"label"}


def test_list_shards_file_folder_glob(tmp_path):
    for k in range(3):
        tfr.write_examples(tmp_path / f"data-{k:05d}-of-00003.tfrecord.gz", [{"i": np.int64([k])}])
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in tfr.list_shards(tmp_path)] == [f"data-{k:05d}-of-00003.tfrecord.gz" for k in range(3)]
    assert len(tfr.list_shards(str(tmp_path / "data-0000[01]-*.tfrecord.gz"))) == 2
    with pytest.raises(DataError, match="no file matches"):
        tfr.list_shards(str(tmp_path / "nothing-*.gz"))


_FUZZ_GOOD = tfr.encode_example({"a": np.float32(np.arange(50)), "s": [b"abc"], "i": np.arange(30)})
_FUZZ_RAW = gzip.compress(b"".join(tfr.frame_record(_FUZZ_GOOD) for _ in range(4)), mtime=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupt_shard_errors_are_one_line(tmp_path, garbler, data):
    path = tmp_path / "c.tfrecord.gz"
    path.write_bytes(garbler(data, _FUZZ_RAW, max_edits=3, max_chunk=8))
    try:
        got = list(tfr.read_examples(path))
    except DataError as exc:
        assert "\n" not in str(exc) and "c.tfrecord.gz" in str(exc)
    else:
        assert len(got) <= 4


def test_packed_varints_decode_on_demand():
    from smfusion.io.example_proto import PackedVarints, ProtoError

    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.integers(0, 256, 500), rng.integers(-2**62, 2**62, 50), [0, -1, 2**63 - 1, -2**63]])
    raw = tfr.encode_example({"img": vals.astype(np.int64), "x": np.float32([1.0])})
    lazy = tfr.decode_example(raw, lazy={"img"})
    assert isinstance(lazy["img"], PackedVarints) and lazy["img"].size == vals.size
    idx = rng.integers(0, vals.size, 200)
    np.testing.assert_array_equal(lazy["img"].take(idx), vals[idx])
    np.testing.assert_array_equal(lazy["img"].values(), tfr.decode_example(raw)["img"])
    with pytest.raises(ProtoError):
        PackedVarints(b"\x01\x81")


def test_lazy_crop_equals_eager_crop(tmp_path):
    from smfusion.data.points import LAZY, points_from_examples
    from smfusion.synthetic.fusion_shards import make_examples

    raw = [tfr.encode_example(ex) for ex in make_examples(2, 3, size=16, seed=1)]
    groups = ["s1", "s2", "dem", "landcover", "smap"]
    eager = points_from_examples([tfr.decode_example(r) for r in raw], groups, 6)
    lazy = points_from_examples([tfr.decode_example(r, lazy=LAZY) for r in raw], groups, 6)
    for g in eager.x:
        np.testing.assert_array_equal(lazy.x[g], eager.x[g])


def test_packed_varints_short_values_fast_path():
    from smfusion.io.example_proto import PackedVarints

    vals = np.arange(0, 16384, 7, dtype=np.int64)  # one and two bytes each
    lazy = tfr.decode_example(tfr.encode_example({"img": vals}), lazy={"img"})["img"]
    assert isinstance(lazy, PackedVarints)
    np.testing.assert_array_equal(lazy.take(np.arange(vals.size)[::-3]), vals[::-3])
