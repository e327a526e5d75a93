"""The reader registry: ``@register_reader("name")`` on ``f(cfg: DataConfig, start, end) -> Dataset``.

Reader modules (:mod:`smfusion.data.gridded`, :mod:`smfusion.data.tb_files`, :mod:`smfusion.data.grid_inputs`,
or any package's module declared under the ``smfusion.readers`` entry points) register here;
:func:`smfusion.data.loading.get_reader` resolves a name (importing the built-in reader modules first), so this
module imports no reader and no reader imports the module that resolves them.
"""

from __future__ import annotations

from typing import Callable, Optional

import xarray as xr

from smfusion.config import DataConfig

__all__ = ["Reader", "register_reader", "READERS", "ENTRY_POINT_GROUP"]

Reader = Callable[[DataConfig, Optional[str], Optional[str]], xr.Dataset]
READERS: dict[str, Reader] = {}
ENTRY_POINT_GROUP = "smfusion.readers"  # readers of other packages (and of smfusion.synthetic: the twin)


def register_reader(name: str) -> Callable[[Reader], Reader]:
    """Decorator registering ``f(cfg: DataConfig, start, end) -> canonical (site, time) Dataset``."""

    def deco(fn: Reader) -> Reader:
        READERS[name] = fn
        return fn

    return deco


