"""The product description (:class:`Sensor`), its registry and the flag helper shared by the product modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd

__all__ = ["Sensor", "SENSORS", "register_sensor", "bits_clear"]


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


SENSORS: dict[str, Sensor] = {}


def register_sensor(sensor: Sensor) -> Sensor:
    SENSORS[sensor.name] = sensor
    return sensor


def bits_clear(flags, bits) -> np.ndarray:
    """True where none of ``bits`` (0-based bit indices) is set in ``flags`` (missing flags: False)."""
    f = np.asarray(flags, dtype=float)
    ok = np.isfinite(f)
    out = ok.copy()
    fi = np.where(ok, f, 0).astype(np.int64)
    for b in bits:
        out &= (fi >> int(b)) & 1 == 0
    return out
