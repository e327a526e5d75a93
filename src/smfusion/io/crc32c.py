"""CRC-32C (Castagnoli), as TFRecord framing uses it, without TensorFlow.

crc = ~update(~value, data) with the reflected polynomial 0x82F63B78;
``crc32c(b"123456789") == 0xE3069283``. The C code of ``google-crc32c``
(installed with zarr) is used when present; the portable version is
table-driven Python, with long inputs run as parallel numpy lanes whose
states are combined by GF(2) zero-run operators (zlib's crc32_combine idea).
TFRecord stores ``masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2**32)``.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["crc32c", "crc32c_portable", "masked_crc32c"]


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
