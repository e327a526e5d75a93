"""TFRecord files of ``tf.train.Example`` records, without TensorFlow.

Framing of one record (all little-endian)::

    uint64 length
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

with ``masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2**32)`` and
CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). Files may be gzip
compressed (detected by the gzip magic bytes, not the name).

``tf.train.Example`` is decoded by a small protobuf reader: ``Example.features``
(field 1) holds ``map<string, Feature>`` entries (key 1, value 2); a ``Feature``
is one of ``bytes_list`` (1), ``float_list`` (2), ``int64_list`` (3), each a
repeated field 1, packed or not. Values come back as numpy arrays (float32,
int64) or lists of ``bytes``.

Every failure (truncated frame, bad CRC, undecodable protobuf, missing
field) raises :class:`~smfusion.errors.DataError` naming the file and the
record index.
"""

from __future__ import annotations

import functools

import gzip
import io
import struct
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from smfusion.errors import DataError
from smfusion.io.atomic import atomic_path

__all__ = [
    "crc32c",
    "masked_crc32c",
    "frame_record",
    "iter_records",
    "write_records",
    "decode_example",
    "encode_example",
    "read_examples",
    "write_examples",
    "list_shards",
    "TFRecordDataset",
]

# --------------------------------------------------------------------------- CRC-32C

_POLY = 0x82F63B78


def _make_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()
_TABLE_NP = np.asarray(_TABLE, dtype=np.uint32)
_LANE_MIN = 2048  # inputs at least this long use the numpy lane-parallel path


def _crc_update_py(state: int, data: bytes) -> int:
    """Raw register update (no pre/post inversion), byte at a time."""
    t = _TABLE
    for b in data:
        state = t[(state ^ b) & 0xFF] ^ (state >> 8)
    return state


# GF(2) 32x32 matrices as lists of 32 column ints (zlib's crc32_combine technique).
def _gf2_times(mat: list[int], vec: int) -> int:
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[i]) for i in range(32)]


def _zeros_operator(n_bytes: int) -> list[int]:
    """Matrix of the register update over ``n_bytes`` zero bytes."""
    one_bit = [_POLY] + [1 << i for i in range(31)]  # one zero bit
    result = [1 << i for i in range(32)]  # identity
    power = _gf2_square(_gf2_square(_gf2_square(one_bit)))  # one zero byte
    n = n_bytes
    while n:
        if n & 1:
            result = [_gf2_times(power, c) for c in result]
        n >>= 1
        if n:
            power = _gf2_square(power)
    return result


_ZEROS_CACHE: dict[int, tuple[list[int], list[list[int]]]] = {}


def _zeros_tables(n_bytes: int) -> tuple[list[int], list[list[int]]]:
    """(matrix, 4 byte-lookup tables) of the zero-run operator for ``n_bytes`` (cached)."""
    hit = _ZEROS_CACHE.get(n_bytes)
    if hit is None:
        mat = _zeros_operator(n_bytes)
        tabs = []
        for k in range(4):
            cols = mat[8 * k : 8 * k + 8]
            tab = [0] * 256
            for v in range(1, 256):
                low = v & -v
                tab[v] = tab[v ^ low] ^ cols[low.bit_length() - 1]
            tabs.append(tab)
        hit = (mat, tabs)
        if len(_ZEROS_CACHE) > 256:
            _ZEROS_CACHE.clear()
        _ZEROS_CACHE[n_bytes] = hit
    return hit


def _crc_update_lanes(data: bytes) -> int:
    """Raw update from state 0 over ``data``: lanes of equal length in parallel (numpy), then combined."""
    n = len(data)
    lane = 1 << max(6, (n.bit_length() + 1) // 2)  # about sqrt(n), a power of two (few cached operators)
    m = -(-n // lane)
    buf = np.zeros(m * lane, dtype=np.uint8)
    buf[m * lane - n :] = np.frombuffer(data, dtype=np.uint8)  # leading zeros leave a zero state unchanged
    block = buf.reshape(m, lane).astype(np.uint32)
    state = np.zeros(m, dtype=np.uint32)
    t = _TABLE_NP
    for j in range(lane):
        state = t[(state ^ block[:, j]) & 0xFF] ^ (state >> 8)
    _, (t0, t1, t2, t3) = _zeros_tables(lane)
    s = 0
    for r in state.tolist():
        s = t0[s & 0xFF] ^ t1[(s >> 8) & 0xFF] ^ t2[(s >> 16) & 0xFF] ^ t3[s >> 24] ^ r
    return s


@functools.lru_cache(maxsize=1)
def _fast_crc32c():
    """The C implementation of ``google-crc32c`` (installed with zarr) when present, else None."""
    try:
        import google_crc32c
    except ImportError:
        return None
    if google_crc32c.implementation != "c":
        return None
    return lambda data, value=0: google_crc32c.extend(value, bytes(data))


def crc32c(data: bytes, value: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, continuing from a previous ``value``.

    crc = ~update(~value, data) with the reflected polynomial 0x82F63B78;
    ``crc32c(b"123456789") == 0xE3069283``.
    """
    fast = _fast_crc32c()
    return fast(data, value) if fast is not None else crc32c_portable(data, value)


def crc32c_portable(data: bytes, value: int = 0) -> int:
    """:func:`crc32c` in Python/numpy (table-driven; long inputs in parallel lanes)."""
    data = bytes(data)
    init = value ^ 0xFFFFFFFF
    if len(data) < _LANE_MIN:
        return _crc_update_py(init, data) ^ 0xFFFFFFFF
    # A start state s equals state 0 with s xor-ed into the first 4 bytes (little-endian).
    head = (int.from_bytes(data[:4], "little") ^ init).to_bytes(4, "little")
    return _crc_update_lanes(head + data[4:]) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 bits, add 0xa282ead8."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --------------------------------------------------------------------------- framing


def frame_record(data: bytes) -> bytes:
    """One TFRecord frame around ``data``."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open(path: Path):
    if not path.is_file():
        raise DataError("TFRecord file not found", path=path)
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _read_exact(fh, n: int, path: Path, index: int, what: str) -> bytes:
    try:
        buf = fh.read(n)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"record {index}: corrupt compressed stream while reading {what}: {exc}", path=path) from None
    if len(buf) != n:
        raise DataError(f"record {index}: truncated {what} ({len(buf)} of {n} bytes)", path=path)
    return buf


def iter_records(path: str | Path, check_crc: bool = True) -> Iterator[bytes]:
    """Payloads of the records of one TFRecord file (gzip or plain), CRCs checked."""
    path = Path(path)
    with _open(path) as fh:
        index = 0
        while True:
            try:
                head = fh.read(8)
            except (EOFError, OSError, zlib.error) as exc:
                raise DataError(f"record {index}: corrupt compressed stream: {exc}", path=path) from None
            if not head:
                return
            if len(head) != 8:
                raise DataError(f"record {index}: truncated length header ({len(head)} of 8 bytes)", path=path)
            (length_crc,) = struct.unpack("<I", _read_exact(fh, 4, path, index, "length CRC"))
            if check_crc and masked_crc32c(head) != length_crc:
                raise DataError(f"record {index}: bad length CRC (corrupt record)", path=path)
            (length,) = struct.unpack("<Q", head)
            data = _read_exact(fh, length, path, index, "data")
            (data_crc,) = struct.unpack("<I", _read_exact(fh, 4, path, index, "data CRC"))
            if check_crc and masked_crc32c(data) != data_crc:
                raise DataError(f"record {index}: bad data CRC (corrupt record)", path=path)
            yield data
            index += 1


def write_records(path: str | Path, records: Iterable[bytes], compress: Optional[bool] = None) -> Path:
    """Write payloads as a TFRecord file atomically; gzip when ``compress`` (default: name ends in .gz)."""
    path = Path(path)
    compress = path.name.endswith(".gz") if compress is None else compress
    with atomic_path(path) as tmp:
        raw = open(tmp, "wb")
        fh = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) if compress else raw
        try:
            for rec in records:
                fh.write(frame_record(rec))
        finally:
            fh.close()
            raw.close()
    return path


# --------------------------------------------------------------------------- protobuf


class _ProtoError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    n = len(buf)
    while True:
        if pos >= n:
            raise _ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _ProtoError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of a message: int for varint/fixed, bytes for length-delimited."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            if pos + 8 > n:
                raise _ProtoError("truncated fixed64")
            val, pos = buf[pos : pos + 8], pos + 8
        elif wt == 2:
            ln, pos = _varint(buf, pos)
            if pos + ln > n:
                raise _ProtoError("truncated length-delimited field")
            val, pos = buf[pos : pos + ln], pos + ln
        elif wt == 5:
            if pos + 4 > n:
                raise _ProtoError("truncated fixed32")
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise _ProtoError(f"unsupported wire type {wt}")
        if num == 0:
            raise _ProtoError("field number 0")
        yield num, wt, val


def _packed_varints(buf: bytes) -> np.ndarray:
    """Packed varints -> int64 (two's complement for negative int64), vectorised."""
    b = np.frombuffer(buf, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, dtype=np.int64)
    if b[-1] & 0x80:
        raise _ProtoError("truncated packed varint")
    ends = np.flatnonzero(b < 0x80)
    starts = np.concatenate([[0], ends[:-1] + 1])
    if np.any(ends - starts >= 10):
        raise _ProtoError("varint too long")
    k = np.arange(b.size) - np.repeat(starts, ends - starts + 1)
    parts = (b & 0x7F).astype(np.uint64) << (7 * k).astype(np.uint64)
    return np.bitwise_or.reduceat(parts, starts).view(np.int64)


def _packed_only(val: bytes):
    """Payload of a list message that is exactly one packed field 1, else None (fast path)."""
    if len(val) < 2 or val[0] != 0x0A:
        return None
    ln, pos = _varint(val, 1)
    return val[pos:] if pos + ln == len(val) else None


def _decode_feature(buf: bytes):
    if len(buf) >= 2 and buf[0] in (0x12, 0x1A):  # float_list / int64_list: try the packed fast path
        ln, pos = _varint(buf, 1)
        if pos + ln == len(buf):
            payload = _packed_only(buf[pos:])
            if payload is not None:
                if buf[0] == 0x12:
                    if len(payload) % 4:
                        raise _ProtoError("packed float list length not a multiple of 4")
                    return np.frombuffer(payload, dtype="<f4").astype(np.float32)
                return _packed_varints(payload)
    kind, value = None, None
    for num, wt, val in _fields(buf):
        if num not in (1, 2, 3) or wt != 2:
            continue
        if kind is not None and kind != num:
            raise _ProtoError("feature sets more than one kind")
        kind = num
        items = list(_fields(val))
        if num == 1:
            value = (value or []) + [v for f, w, v in items if f == 1 and w == 2]
        elif num == 2:
            arrs = [np.frombuffer(v, dtype="<f4") if w == 2 else np.frombuffer(v, dtype="<f4")
                    for f, w, v in items if f == 1 and w in (2, 5)]
            if any(w == 2 and len(v) % 4 for f, w, v in items if f == 1):
                raise _ProtoError("packed float list length not a multiple of 4")
            value = np.concatenate(([value] if value is not None else []) + arrs).astype(np.float32) if arrs else (
                value if value is not None else np.zeros(0, np.float32))
        else:
            arrs = []
            for f, w, v in items:
                if f != 1:
                    continue
                if w == 2:
                    arrs.append(_packed_varints(v))
                elif w == 0:
                    arrs.append(np.asarray([v & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64).view(np.int64))
            value = np.concatenate(([value] if value is not None else []) + arrs).astype(np.int64) if arrs else (
                value if value is not None else np.zeros(0, np.int64))
    if kind is None:
        return np.zeros(0, dtype=np.float32)  # an empty Feature: no kind set
    return value


def decode_example(data: bytes) -> dict[str, object]:
    """``tf.train.Example`` bytes -> {name: float32 array | int64 array | list of bytes}.

    Raises ValueError on malformed input (callers add file and record index).
    """
    out: dict[str, object] = {}
    for num, wt, features in _fields(data):
        if num != 1 or wt != 2:
            continue
        for fnum, fwt, entry in _fields(features):
            if fnum != 1 or fwt != 2:
                continue
            key, value = None, b""
            for enum, ewt, ev in _fields(entry):
                if enum == 1 and ewt == 2:
                    key = ev.decode("utf-8")
                elif enum == 2 and ewt == 2:
                    value = ev
            if key is None:
                raise _ProtoError("feature map entry without a key")
            out[key] = _decode_feature(value)
    return out


def _enc_varint(v: int) -> bytes:
    v &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_ld(num: int, payload: bytes) -> bytes:
    return _enc_varint((num << 3) | 2) + _enc_varint(len(payload)) + payload


def encode_example(features: dict[str, object], packed: bool = True) -> bytes:
    """{name: value} -> ``tf.train.Example`` bytes.

    float arrays -> float_list, integer arrays/ints -> int64_list, bytes/str
    (or lists of them) -> bytes_list. ``packed=False`` writes the repeated
    numeric fields unpacked (as some writers do), for tests of the reader.
    """
    entries = []
    for key, value in features.items():
        if isinstance(value, (bytes, str)):
            value = [value]
        if isinstance(value, list) and value and isinstance(value[0], (bytes, str)):
            items = b"".join(_enc_ld(1, v.encode() if isinstance(v, str) else v) for v in value)
            feat = _enc_ld(1, items)
        else:
            arr = np.asarray(value)
            if arr.dtype.kind == "f":
                f32 = arr.astype("<f4").ravel()
                if packed:
                    items = _enc_ld(1, f32.tobytes()) if f32.size else b""
                else:
                    items = b"".join(b"\x0d" + x.tobytes() for x in f32)
                feat = _enc_ld(2, items)
            elif arr.dtype.kind in "iub":
                ints = arr.astype(np.int64).ravel().tolist()
                if packed:
                    items = _enc_ld(1, b"".join(_enc_varint(v) for v in ints)) if ints else b""
                else:
                    items = b"".join(b"\x08" + _enc_varint(v) for v in ints)
                feat = _enc_ld(3, items)
            else:
                raise TypeError(f"feature '{key}': cannot encode dtype {arr.dtype}")
        entries.append(_enc_ld(1, _enc_ld(1, key.encode()) + _enc_ld(2, feat)))
    return _enc_ld(1, b"".join(entries))


# --------------------------------------------------------------------------- examples


def read_examples(
    path: str | Path, required: Sequence[str] = (), check_crc: bool = True
) -> Iterator[dict[str, object]]:
    """Decoded examples of one file; a missing ``required`` field raises DataError (file, record)."""
    path = Path(path)
    for i, data in enumerate(iter_records(path, check_crc=check_crc)):
        try:
            ex = decode_example(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"record {i}: not a tf.train.Example ({exc})", path=path) from None
        for name in required:
            if name not in ex:
                raise DataError(f"record {i}: missing field", path=path, field=name)
        yield ex


def write_examples(path: str | Path, examples: Iterable[dict[str, object]], compress: Optional[bool] = None) -> Path:
    """Encode and write examples (atomic; gzip for ``*.gz``)."""
    return write_records(path, (encode_example(ex) for ex in examples), compress=compress)


def list_shards(path: str | Path) -> list[Path]:
    """TFRecord shards under a folder (``*.tfrecord*``, ``*.tfr*``), sorted; a file gives itself."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError("TFRecord path not found", path=path)
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                   and (".tfrecord" in p.name or ".tfr" in p.name))
    if not files:
        raise DataError("no TFRecord shards (*.tfrecord, *.tfrecord.gz) in folder", path=path)
    return files


def _torch_iterable():
    from torch.utils.data import IterableDataset

    return IterableDataset


class TFRecordDataset(_torch_iterable()):
    """Streaming ``IterableDataset`` over many shards.

    With ``DataLoader(num_workers=k)`` worker ``i`` reads shards ``i, i+k, ...``
    (``torch.utils.data.get_worker_info``), so each record is read once.
    ``transform(example)`` maps a decoded example to what is yielded.
    """

    def __init__(
        self,
        shards: str | Path | Sequence[str | Path],
        required: Sequence[str] = (),
        transform: Optional[Callable[[dict], object]] = None,
        check_crc: bool = True,
    ):
        super().__init__()
        if isinstance(shards, (str, Path)):
            self.shards = list_shards(shards)
        else:
            self.shards = [Path(p) for p in shards]
        self.required = tuple(required)
        self.transform = transform
        self.check_crc = check_crc

    def my_shards(self) -> list[Path]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is None:
            return list(self.shards)
        return self.shards[info.id :: info.num_workers]

    def __iter__(self):
        for shard in self.my_shards():
            for ex in read_examples(shard, self.required, self.check_crc):
                yield ex if self.transform is None else self.transform(ex)
