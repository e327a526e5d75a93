"""``tf.train.Example`` protobuf encoding and decoding, without TensorFlow.

``Example.features`` (field 1) holds ``map<string, Feature>`` entries (key 1,
value 2); a ``Feature`` is one of ``bytes_list`` (1), ``float_list`` (2),
``int64_list`` (3), each a repeated field 1, packed or not. Decoded values are
numpy arrays (float32, int64) or lists of ``bytes``.

A serialized message followed by another serialized ``Example`` parses as
their merge (protobuf's rule for repeated embedded messages; a repeated key
takes the later value), so :func:`append_features` adds fields to an example
without decoding it.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Optional

import numpy as np

__all__ = ["decode_example", "encode_example", "append_features", "ProtoError", "PackedVarints"]


class ProtoError(ValueError):
    """Malformed protobuf bytes."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    n = len(buf)
    while True:
        if pos >= n:
            raise ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtoError("varint too long")


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
                raise ProtoError("truncated fixed64")
            val, pos = buf[pos : pos + 8], pos + 8
        elif wt == 2:
            ln, pos = _varint(buf, pos)
            if pos + ln > n:
                raise ProtoError("truncated length-delimited field")
            val, pos = buf[pos : pos + ln], pos + ln
        elif wt == 5:
            if pos + 4 > n:
                raise ProtoError("truncated fixed32")
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ProtoError(f"unsupported wire type {wt}")
        if num == 0:
            raise ProtoError("field number 0")
        yield num, wt, val


def _packed_varints(buf: bytes) -> np.ndarray:
    """Packed varints -> int64 (two's complement for negative int64), vectorised."""
    b = np.frombuffer(buf, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, dtype=np.int64)
    if b[-1] & 0x80:
        raise ProtoError("truncated packed varint")
    ends = np.flatnonzero(b < 0x80)
    starts = np.concatenate([[0], ends[:-1] + 1])
    if np.any(ends - starts >= 10):
        raise ProtoError("varint too long")
    k = np.arange(b.size) - np.repeat(starts, ends - starts + 1)
    parts = (b & 0x7F).astype(np.uint64) << (7 * k).astype(np.uint64)
    return np.bitwise_or.reduceat(parts, starts).view(np.int64)


class PackedVarints:
    """An int64 list left packed: values are decoded on demand, e.g. only the centre crop of a 512 x 512
    image (:meth:`take`); ``size`` counts them from the terminating bytes without decoding any."""

    def __init__(self, payload):
        self.b = np.frombuffer(payload, dtype=np.uint8)
        if self.b.size and self.b[-1] & 0x80:
            raise ProtoError("truncated packed varint")
        self.ends = np.flatnonzero(self.b < 0x80)

    @property
    def size(self) -> int:
        return int(self.ends.size)

    def take(self, idx: np.ndarray) -> np.ndarray:
        """The int64 values at positions ``idx`` (two's complement for negatives)."""
        idx = np.asarray(idx, dtype=np.int64)
        ends = self.ends[idx]
        starts = np.where(idx > 0, self.ends[np.maximum(idx - 1, 0)] + 1, 0)
        n = ends - starts + 1
        longest = int(n.max()) if n.size else 0
        if longest > 10:
            raise ProtoError("varint too long")
        if longest <= 2:  # the common case (byte-scaled images): one or two bytes each
            hi = np.where(n == 2, self.b[ends].astype(np.int64), 0)
            return (self.b[starts].astype(np.int64) & 0x7F) | (hi << 7)
        out = np.zeros(idx.shape, dtype=np.uint64)
        for j in range(longest):
            on = j < n
            byte = self.b[np.where(on, starts + j, 0)].astype(np.uint64) & np.uint64(0x7F)
            out |= np.where(on, byte << np.uint64(7 * j), np.uint64(0))
        return out.view(np.int64)

    def values(self) -> np.ndarray:
        return self.take(np.arange(self.size))


def _packed_only(val: bytes):
    """Payload of a list message that is exactly one packed field 1, else None (fast path)."""
    if len(val) < 2 or val[0] != 0x0A:
        return None
    ln, pos = _varint(val, 1)
    return val[pos:] if pos + ln == len(val) else None


def _decode_feature(buf: bytes, lazy: bool = False):
    if len(buf) >= 2 and buf[0] in (0x12, 0x1A):  # float_list / int64_list: try the packed fast path
        ln, pos = _varint(buf, 1)
        if pos + ln == len(buf):
            payload = _packed_only(buf[pos:])
            if payload is not None:
                if buf[0] == 0x12:
                    if len(payload) % 4:
                        raise ProtoError("packed float list length not a multiple of 4")
                    return np.frombuffer(payload, dtype="<f4").astype(np.float32)
                return PackedVarints(payload) if lazy else _packed_varints(payload)
    kind, value = None, None
    for num, wt, val in _fields(buf):
        if num not in (1, 2, 3) or wt != 2:
            continue
        if kind is not None and kind != num:
            raise ProtoError("feature sets more than one kind")
        kind = num
        items = list(_fields(val))
        if num == 1:
            value = (value or []) + [bytes(v) for f, w, v in items if f == 1 and w == 2]
        elif num == 2:
            arrs = [np.frombuffer(v, dtype="<f4") if w == 2 else np.frombuffer(v, dtype="<f4")
                    for f, w, v in items if f == 1 and w in (2, 5)]
            if any(w == 2 and len(v) % 4 for f, w, v in items if f == 1):
                raise ProtoError("packed float list length not a multiple of 4")
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


def decode_example(data: bytes, keys: Optional[Iterable[str]] = None,
                   lazy: Iterable[str] = ()) -> dict[str, object]:
    """``tf.train.Example`` bytes -> {name: float32 array | int64 array | list of bytes}.

    ``keys``: decode only these features (others are skipped undecoded, which
    matters for examples carrying many 512 x 512 images). ``lazy``: packed int64
    features of these names come as :class:`PackedVarints` (decoded on demand).
    Raises :class:`ProtoError` (a ValueError) on malformed input; callers add the
    file and record index.
    """
    want = None if keys is None else {k.encode("utf-8") for k in keys}
    lazy = {k.encode("utf-8") for k in lazy}
    out: dict[str, object] = {}
    for num, wt, features in _fields(memoryview(data)):  # memoryview: sub-messages are not copied
        if num != 1 or wt != 2:
            continue
        for fnum, fwt, entry in _fields(features):
            if fnum != 1 or fwt != 2:
                continue
            key, value = None, b""
            for enum, ewt, ev in _fields(entry):
                if enum == 1 and ewt == 2:
                    key = ev
                elif enum == 2 and ewt == 2:
                    value = ev
            if key is None:
                raise ProtoError("feature map entry without a key")
            key = bytes(key)
            if want is not None and key not in want:
                continue
            out[key.decode("utf-8")] = _decode_feature(value, key in lazy)
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


def _enc_varints(values: np.ndarray) -> bytes:
    """Packed varints of int64 values (negatives as 10-byte two's complement), vectorised."""
    if values.size == 1:
        return _enc_varint(int(values[0]))
    v = values.astype(np.int64)
    if v.min() >= 0 and v.max() < 1 << 14:  # common case (byte-scaled images): at most two bytes each
        lo, hi = (v & 0x7F).astype(np.uint8), (v >> 7).astype(np.uint8)
        two = hi > 0
        pairs = np.stack([lo | (two.astype(np.uint8) << 7), hi], axis=1)
        return pairs[np.stack([np.ones_like(two), two], axis=1)].tobytes()
    v = v.view(np.uint64)
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
    groups = (v[:, None] >> shifts[None, :]) & np.uint64(0x7F)
    nbytes = np.maximum(1, 10 - np.argmax((v[:, None] >> shifts[None, :])[:, ::-1] != 0, axis=1))
    nbytes = np.where(v == 0, 1, nbytes)
    k = np.arange(10)[None, :]
    out = groups.astype(np.uint8) | np.where(k < nbytes[:, None] - 1, 0x80, 0).astype(np.uint8)
    return out[k < nbytes[:, None]].tobytes()


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
                ints = arr.astype(np.int64).ravel()
                if packed:
                    items = _enc_ld(1, _enc_varints(ints)) if ints.size else b""
                else:
                    items = b"".join(b"\x08" + _enc_varint(v) for v in ints.tolist())
                feat = _enc_ld(3, items)
            else:
                raise TypeError(f"feature '{key}': cannot encode dtype {arr.dtype}")
        entries.append(_enc_ld(1, _enc_ld(1, key.encode()) + _enc_ld(2, feat)))
    return _enc_ld(1, b"".join(entries))


def append_features(example: bytes, features: dict[str, object]) -> bytes:
    """``example`` with ``features`` added (or replaced), leaving its other bytes untouched."""
    return bytes(example) + encode_example(features)
