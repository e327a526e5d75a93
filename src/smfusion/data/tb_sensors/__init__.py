"""Brightness-temperature sensors of the ``tb_files`` reader: one module per sensor, registered by decorator.

A sensor is one :class:`TBSensor` under the name of its ``data.tb_files`` section: ``read`` (its files at
the output cells, a ``(site, time)`` Dataset, or None when no file lies in the period), ``variables`` (the
names it gives, also when it has no file in the period), ``check`` (what ``smfusion check`` finds before any
work; by default: the section's ``paths`` name existing files of the kind their names say). The section's
class is registered under the same name in :mod:`smfusion.config.tb` (``@tb_section``): the config layer
sits below this one, so it holds the classes and this package the readers (a test asserts the two name
the same sensors). A sensor outside smfusion registers both in its own module (docs/architecture.md).
"""

from __future__ import annotations

import importlib
import pkgutil

from smfusion.data.tb_sensors.base import TB_SENSORS, Cells, TBSensor, check_paths, register_tb_sensor
from smfusion.errors import ConfigError

__all__ = ["TBSensor", "Cells", "register_tb_sensor", "get_tb_sensor", "tb_sensors", "check_paths"]


def _load_builtin() -> None:
    import smfusion.data.tb_sensors as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name != "base":
            importlib.import_module(f"smfusion.data.tb_sensors.{info.name}")


def tb_sensors() -> dict[str, TBSensor]:
    """Every registered TB sensor (the built-in modules imported first)."""
    _load_builtin()
    return dict(TB_SENSORS)


def get_tb_sensor(name: str) -> TBSensor:
    """The sensor registered as ``name``; a ConfigError naming ``data.tb_files.<name>`` when none is."""
    _load_builtin()
    if name not in TB_SENSORS:
        raise ConfigError(f"data.tb_files.{name}: no TB sensor module registers '{name}' "
                          f"(registered: {sorted(TB_SENSORS)})")
    return TB_SENSORS[name]
