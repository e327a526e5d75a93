"""Product output formats, chosen by the output's suffix in this one table (a new format is one entry).

=========  ======  =====================================================
suffix     kind    writer
=========  ======  =====================================================
``.zarr``  dir     :func:`smfusion.io.cf.write_zarr` (CF Zarr store)
other      file    :func:`smfusion.io.cf.write_netcdf` (CF NetCDF-4)
=========  ======  =====================================================

Every writer takes ``(ds, path, *, grid, title, config, inputs, chunks, overwrite, protect)`` and writes
atomically (:mod:`smfusion.io.atomic`); ``kind`` is what :func:`smfusion.io.ownership.check_output` checks
before any work (a folder or a file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import xarray as xr

from smfusion.io import cf

__all__ = ["OutputFormat", "FORMATS", "DEFAULT", "output_format", "output_kind", "write_product"]


@dataclass(frozen=True)
class OutputFormat:
    name: str
    kind: str  # "dir" or "file"
    write: Callable[..., Path]


FORMATS: dict[str, OutputFormat] = {".zarr": OutputFormat("zarr", "dir", cf.write_zarr)}
DEFAULT = OutputFormat("netcdf", "file", cf.write_netcdf)


def output_format(path: str | Path) -> OutputFormat:
    """The format an output named ``path`` is written in (by its suffix; NetCDF-4 by default)."""
    return FORMATS.get(Path(path).suffix.lower(), DEFAULT)


def output_kind(path: str | Path) -> str:
    """``dir`` or ``file``: what ``path`` will be once written."""
    return output_format(path).kind


def write_product(ds: xr.Dataset, path: str | Path, **kw) -> Path:
    """Write ``ds`` to ``path`` in the format its suffix names (keywords as :func:`smfusion.io.cf.write_netcdf`)."""
    return output_format(path).write(ds, path, **kw)
