"""TFRecord files of ``tf.train.Example`` records, without TensorFlow.

Framing of one record (all little-endian)::

    uint64 length
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

(CRC-32C and its masking in :mod:`smfusion.io.crc32c`). Files may be gzip
compressed (detected by the gzip magic bytes, not the name). The Example
protobuf codec is :mod:`smfusion.io.example_proto`; the streaming torch
dataset over many shards is :mod:`smfusion.io.tfrecord_dataset`, which imports
this module, never the other way round (this module does not import torch, so
label-merge workers start fast).

Every failure (truncated frame, bad CRC, undecodable protobuf, missing
required field) raises :class:`~smfusion.errors.DataError` naming the file and
the record index, on one line.
"""

from __future__ import annotations

import glob
import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from smfusion.errors import DataError
from smfusion.io.atomic import atomic_path
from smfusion.io.crc32c import crc32c, crc32c_portable, masked_crc32c
from smfusion.io.example_proto import ProtoError, append_features, decode_example, encode_example

__all__ = [
    "crc32c",
    "crc32c_portable",
    "masked_crc32c",
    "frame_record",
    "iter_records",
    "iter_frames",
    "write_records",
    "decode_example",
    "encode_example",
    "append_features",
    "decode_record",
    "read_examples",
    "write_examples",
    "list_shards",
]


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


def iter_frames(path: str | Path, check_crc: bool = True, want=None) -> Iterator[tuple[int, int, bytes]]:
    """(record number, byte offset of its frame in the uncompressed stream, payload) of one TFRecord file.

    ``want``: a container of record numbers; the others are skipped unread (their
    data and CRC pass by a seek, no copy, no check). A corrupt frame raises one
    line naming the file and the record.
    """
    path = Path(path)
    with _open(path) as fh:
        index, offset = 0, 0
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
            if want is not None and index not in want:
                _skip(fh, length + 4, path, index)
            else:
                data = _read_exact(fh, length, path, index, "data")
                (data_crc,) = struct.unpack("<I", _read_exact(fh, 4, path, index, "data CRC"))
                if check_crc and masked_crc32c(data) != data_crc:
                    raise DataError(f"record {index}: bad data CRC (corrupt record)", path=path)
                yield index, offset, data
            offset += length + 16
            index += 1


_SKIP_STEP = 1 << 20  # gzip: bytes inflated and dropped per read when skipping (its seek steps by 8 KiB)


def _skip(fh, n: int, path: Path, index: int) -> None:
    """Move ``n`` bytes on (plain file: a seek; gzip: inflated and dropped in pieces of at most 1 MiB);
    DataError when the file ends first."""
    try:
        if isinstance(fh, gzip.GzipFile):
            left = n
            while left:
                got = len(fh.read(min(left, _SKIP_STEP)))
                if not got:
                    raise EOFError
                left -= got
            return
        start = fh.tell()
        if fh.seek(n, 1) - start != n:
            raise EOFError
        if fh.tell() > os.fstat(fh.fileno()).st_size:
            raise EOFError
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"record {index}: truncated or corrupt while skipping it ({type(exc).__name__})",
                        path=path) from None


def iter_records(path: str | Path, check_crc: bool = True) -> Iterator[bytes]:
    """Payloads of the records of one TFRecord file (gzip or plain), CRCs checked."""
    for _, _, data in iter_frames(path, check_crc):
        yield data


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


def decode_record(data: bytes, path: str | Path, index: int, required: Sequence[str] = (),
                  keys: Optional[Iterable[str]] = None, lazy: Iterable[str] = ()) -> dict[str, object]:
    """Decode one record's Example; DataError (file, record, field) if it is not one or lacks a required field.
    ``lazy``: int64 features left packed (:class:`~smfusion.io.example_proto.PackedVarints`)."""
    try:
        ex = decode_example(data, keys=None if keys is None else set(keys) | set(required), lazy=lazy)
    except (ProtoError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"record {index}: not a tf.train.Example ({exc})", path=path) from None
    for name in required:
        if name not in ex:
            raise DataError(f"record {index}: missing required field", path=path, field=name)
    return ex


def read_examples(
    path: str | Path, required: Sequence[str] = (), check_crc: bool = True, keys: Optional[Iterable[str]] = None,
    lazy: Iterable[str] = (),
) -> Iterator[dict[str, object]]:
    """Decoded examples of one file (only ``keys`` plus ``required`` when ``keys`` is given; ``lazy`` int64
    features left packed).

    A missing ``required`` field raises DataError naming the file, record and field.
    """
    path = Path(path)
    keys = None if keys is None else set(keys)
    for i, data in enumerate(iter_records(path, check_crc=check_crc)):
        yield decode_record(data, path, i, required, keys, lazy)


def write_examples(path: str | Path, examples: Iterable[dict[str, object]], compress: Optional[bool] = None) -> Path:
    """Encode and write examples (atomic; gzip for ``*.gz``)."""
    return write_records(path, (encode_example(ex) for ex in examples), compress=compress)


def _is_shard(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and (".tfrecord" in p.name or ".tfr" in p.name)


def list_shards(path: str | Path) -> list[Path]:
    """TFRecord shards: a file gives itself; a folder its ``*.tfrecord*`` / ``*.tfr*`` files; a glob its matches."""
    text = str(path)
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not files:
            raise DataError("no file matches the TFRecord pattern", path=text)
        return files
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError("TFRecord path not found", path=path)
    files = sorted(p for p in path.iterdir() if _is_shard(p))
    if not files:
        raise DataError("no TFRecord shards (*.tfrecord, *.tfrecord.gz) in folder", path=path)
    return files

