"""Encodings for the writers of :mod:`smfusion.io.cf`: CF-1.8 types, chunks and compression.

CF-1.8 has no 64-bit integers: :func:`time_encoding` gives datetimes an int32
or float64 encoding that decodes to the same values; :func:`int64_dtype` the
type a 64-bit integer variable is written as. :func:`encoding` is the
per-variable encoding of a NetCDF-4 or Zarr write (fill values, those types,
chunks, zlib or Blosc-zstd compression).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import xarray as xr

__all__ = ["time_encoding", "int64_dtype", "encoding", "dim_chunks", "zarr_v3_library"]


def time_encoding(var: xr.Variable, is_coord: bool) -> dict:
    """CF-1.8 types only (no int64). Whole days in memory: int32 ``days since 1970-01-01``; other times:
    float64 nanoseconds since the first day of the data when they span under 2**53 ns (104 days: exact),
    else microseconds (exact for 285 years). Lazy data are reduced once to find that span."""
    epoch = np.datetime64("1970-01-01T00:00:00", "ns")
    big = np.iinfo(np.int64)
    if isinstance(var.data, np.ndarray):
        v = var.values.astype("datetime64[ns]")
        ok = ~np.isnat(v)
        days = (v[ok] - epoch) / np.timedelta64(1, "D")
        if ok.all() and np.all(days == np.round(days)) and (days.size == 0 or np.abs(days).max() < 2**31 - 1):
            return {"units": "days since 1970-01-01 00:00:00", "dtype": "int32"} | (
                {"_FillValue": None} if is_coord else {})
        i = v[ok].astype(np.int64)
        low, high = (int(i.min()), int(i.max())) if i.size else (0, 0)
    else:
        import dask.array as dsa

        i = var.data.astype("datetime64[ns]").astype(np.int64)
        low = int(dsa.where(i == big.min, big.max, i).min().compute())  # NaT is int64 min
        high = int(i.max().compute())
        low, high = (0, 0) if low == big.max else (low, high)
    first = np.datetime64(low, "ns").astype("datetime64[D]")
    unit = "nanoseconds" if high - first.astype("datetime64[ns]").astype(np.int64) < 2**53 else "microseconds"
    e = {"units": f"{unit} since {first} 00:00:00", "dtype": "float64"}
    e["_FillValue"] = None if is_coord else np.nan
    return e


def int64_dtype(var: xr.Variable) -> str:
    """int32 when every value fits (CF-1.8 has no 64-bit integers), else float64 (exact below 2**53)."""
    if isinstance(var.data, np.ndarray):
        v = var.values
        info = np.iinfo(np.int32)
        if v.size == 0 or (v.min() >= info.min and v.max() <= info.max):
            return "int32"
    return "float64"


def dim_chunks(ds: xr.Dataset, chunks: Mapping[str, int] | None) -> dict[str, int]:
    """Chunk length per dim: defaults (time 366, y/x 128, site 256) overridden by ``chunks``."""
    wanted = {"time": 366, "y": 128, "x": 128, "site": 256, **(chunks or {})}
    return {d: max(1, min(int(wanted.get(d, n)), n)) for d, n in ds.sizes.items()}


def _chunks(ds: xr.Dataset, var: xr.DataArray, chunks: Mapping[str, int] | None) -> tuple[int, ...]:
    per_dim = dim_chunks(ds, chunks)
    return tuple(per_dim[d] for d in var.dims)


def encoding(ds: xr.Dataset, fmt: str, complevel: int, chunks) -> dict:
    enc = {}
    for name, var in ds.variables.items():
        e: dict[str, Any] = {}
        old = var.encoding
        for key in ("_FillValue", "dtype", "units", "calendar", "grid_mapping"):
            if key in old and not (key == "units" and not np.issubdtype(var.dtype, np.datetime64)):
                e[key] = old[key]
        numeric = var.dtype.kind in "fiuMb" and var.ndim > 0
        if var.dtype.kind == "f" and "_FillValue" not in e:
            e["_FillValue"] = np.nan
        if var.dtype.kind in "fiu" and name in ds.coords and var.ndim > 0:
            e["_FillValue"] = None  # CF: coordinates carry no fill value
        if var.dtype.kind == "M":
            e.update(time_encoding(var, name in ds.coords))
        elif var.dtype.kind in "iu" and var.dtype.itemsize == 8:
            e["dtype"] = int64_dtype(var)
        if numeric and var.ndim > 0 and complevel > 0:
            shape = _chunks(ds, var, chunks)
            if fmt == "netcdf":
                e.update(zlib=True, complevel=int(complevel), shuffle=True, chunksizes=shape)
            else:
                e.update(chunks=shape, **_zarr_compressor(complevel))
        enc[name] = e
    return enc


def zarr_v3_library() -> bool:
    import zarr

    return int(zarr.__version__.split(".")[0]) >= 3


def _zarr_compressor(complevel: int) -> dict:
    from numcodecs import Blosc

    codec = Blosc(cname="zstd", clevel=int(complevel), shuffle=Blosc.SHUFFLE)
    return {"compressors": (codec,)} if zarr_v3_library() else {"compressor": codec}
