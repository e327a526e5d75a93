"""Data adapters by name: ``@register_adapter("sequence")`` on an :class:`Adapter` subclass.

The config picks one: ``data.adapter`` when given, else ``points`` for the point
readers (``tfrecord``, ``points``), ``multiscale`` when the config has a
``multiscale`` section, else ``sequence``. Built-in adapters are registered the
first time the registry is asked (no import-time side effects); an adapter
defined anywhere else registers itself when its module is imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from smfusion.config import RunConfig
from smfusion.data.adapters.base import Adapter, Batches, Sampler
from smfusion.errors import ConfigError

__all__ = ["Adapter", "Batches", "Sampler", "register_adapter", "get_adapter", "adapter_name", "adapter_for",
           "available"]

_ADAPTERS: dict[str, type[Adapter]] = {}


def register_adapter(name: str) -> Callable[[type[Adapter]], type[Adapter]]:
    """Class decorator registering an adapter under ``name``."""

    def deco(cls: type[Adapter]) -> type[Adapter]:
        if name in _ADAPTERS and _ADAPTERS[name] is not cls:
            raise ValueError(f"adapter name '{name}' already registered by {_ADAPTERS[name].__name__}")
        cls.name = name
        _ADAPTERS[name] = cls
        return cls

    return deco


def _load_builtin() -> None:
    import smfusion.data.adapters as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name != "base":
            importlib.import_module(f"smfusion.data.adapters.{info.name}")


def available() -> list[str]:
    _load_builtin()
    return sorted(_ADAPTERS)


def get_adapter(name: str) -> type[Adapter]:
    _load_builtin()
    if name not in _ADAPTERS:
        raise ConfigError(f"data.adapter: unknown adapter '{name}', registered: {sorted(_ADAPTERS)}")
    return _ADAPTERS[name]


def adapter_name(cfg: RunConfig) -> str:
    """The adapter a config asks for (see the module docstring)."""
    if cfg.data.adapter:
        return cfg.data.adapter
    if cfg.data.point_reader:
        return "points"
    if cfg.multiscale is not None:
        return "multiscale"
    return "sequence"


def adapter_for(cfg: RunConfig) -> Adapter:
    """A fresh adapter instance for ``cfg``."""
    return get_adapter(adapter_name(cfg))(cfg)
