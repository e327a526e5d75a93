"""Is a file what its name says? The first bytes of HDF5 and NetCDF files, read before any reader opens them.

A text file named ``SMAP_L3_SM_P_20150401_R18290_001.h5`` is refused by :func:`wrong_kind` in
microseconds, by ``smfusion check`` as by ``train`` (:mod:`smfusion.data.checks`), instead of failing
deep inside a reader after other files were read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

__all__ = ["wrong_kind", "HDF5_SIGNATURE"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)  # the signature follows a user block of 0 or 512 * 2^k bytes
_NETCDF3 = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
_HDF5_SUFFIXES = (".h5", ".he5", ".hdf5", ".h5m")


def _is_hdf5(head: bytes) -> bool:
    return any(head[o:o + 8] == HDF5_SIGNATURE for o in _HDF5_OFFSETS)


def wrong_kind(path: str | Path) -> Optional[str]:
    """Why ``path`` is not the HDF5 (``.h5``...) or NetCDF (``.nc``: HDF5 or classic) file its suffix names;
    None when it is, or when the suffix names neither."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _HDF5_SUFFIXES + (".nc", ".nc4"):
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HDF5_OFFSETS[-1] + 8)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if _is_hdf5(head) or (suffix in (".nc", ".nc4") and head[:4] in _NETCDF3):
        return None
    kind = "HDF5" if suffix in _HDF5_SUFFIXES else "NetCDF"
    what = f"not {'an' if kind == 'HDF5' else 'a'} {kind} file"
    if not head:
        return f"{what} (it is empty)"
    return f"{what} (it starts with {head[:8].decode('ascii', 'replace').encode('unicode_escape').decode()!r})"
