"""Soil-moisture products stored as TU Wien cell files: one module per product, registered by decorator.

A :class:`Sensor` says which variables to read, which observations its
producer recommends keeping (``good``, from the product's config section,
:mod:`smfusion.config.sensors`), how to turn the stored value into soil
moisture (``value``) and how its observations map to days (``day``:
``"local"`` = the local solar day of each observation, for swath and overpass
products; ``"stamp"`` = the file's date, for daily products). The
``sensor_cells`` reader (:mod:`smfusion.data.sensor_cells`) does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd

from smfusion.errors import ConfigError

__all__ = ["Sensor", "register_sensor", "get_sensor", "bits_clear"]


@dataclass(frozen=True)
class Sensor:
    name: str
    variables: tuple[str, ...]  # read from the cell files
    good: Callable[[pd.DataFrame, object], np.ndarray]  # (observations, config section) -> keep mask
    value: Callable[[pd.DataFrame], np.ndarray]  # observations -> soil moisture
    units: str
    day: str  # "local" or "stamp"
    error: Optional[str] = None  # error-estimate variable (same units as value), if any
    extra: tuple[str, ...] = ()  # variables passed through as daily values (e.g. CCI's freqbandID)


_SENSORS: dict[str, Sensor] = {}


def register_sensor(sensor: Sensor) -> Sensor:
    _SENSORS[sensor.name] = sensor
    return sensor


def get_sensor(name: str) -> Sensor:
    if not _SENSORS:
        from smfusion.data.sensors import ascat, esa_cci, smap_l3, smos_ic, smos_l3  # noqa: F401  (register)
    if name not in _SENSORS:
        raise ConfigError(f"sensor {name!r}: no such product module (registered: {sorted(_SENSORS)})")
    return _SENSORS[name]


def bits_clear(flags, bits) -> np.ndarray:
    """True where none of ``bits`` (0-based bit indices) is set in ``flags`` (missing flags: False)."""
    f = np.asarray(flags, dtype=float)
    ok = np.isfinite(f)
    out = ok.copy()
    fi = np.where(ok, f, 0).astype(np.int64)
    for b in bits:
        out &= (fi >> int(b)) & 1 == 0
    return out
