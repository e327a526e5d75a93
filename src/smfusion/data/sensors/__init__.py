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

from smfusion.data.sensors.base import SENSORS, Sensor, bits_clear, register_sensor
from smfusion.errors import ConfigError

__all__ = ["Sensor", "register_sensor", "get_sensor", "bits_clear"]


def get_sensor(name: str) -> Sensor:
    """The product module registered as ``name`` (the built-in ones are imported on first use)."""
    if not SENSORS:
        from smfusion.data.sensors import ascat, esa_cci, smap_l3, smos_ic, smos_l3  # noqa: F401  (register)
    if name not in SENSORS:
        raise ConfigError(f"sensor {name!r}: no such product module (registered: {sorted(SENSORS)})")
    return SENSORS[name]
