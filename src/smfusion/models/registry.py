"""Models by name: ``@register_model("lstm")`` on an ``nn.Module`` class.

Every registered model is built as ``cls(n_dynamic, n_static, n_target, **options)``,
takes a batch dict ``{"x_dynamic": (B, T, Fd), "x_static": (B, Fs)}`` and returns
a dict of named tensors with at least ``"y_hat"`` of shape (B, T, n_target).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

_MODELS: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator registering a model under ``name``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name '{name}' already registered by {_MODELS[name].__name__}")
        _MODELS[name] = cls
        return cls

    return deco


def _load_builtin() -> None:
    # Importing every module of this package runs the decorators of the built-in models.
    import importlib
    import pkgutil

    import smfusion.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name != "registry":
            importlib.import_module(f"smfusion.models.{info.name}")


def available() -> list[str]:
    _load_builtin()
    return sorted(_MODELS)


def get_model_class(name: str) -> type[nn.Module]:
    _load_builtin()
    if name not in _MODELS:
        raise KeyError(f"unknown model '{name}', registered: {sorted(_MODELS)}")
    return _MODELS[name]


def build_model(name: str, n_dynamic: int, n_static: int, n_target: int, observation=None, **options) -> nn.Module:
    """Instantiate a registered model. ``observation`` (a ``(ObservationConfig, features or None)`` pair from
    the multiscale adapter) attaches a learned observation operator as the submodule ``observation``
    (:mod:`smfusion.models.observation`): saved with the weights, unused by the forward pass."""
    model = get_model_class(name)(n_dynamic=n_dynamic, n_static=n_static, n_target=n_target, **options)
    if observation is not None:
        from smfusion.models.observation import ObservationOperator

        model.observation = ObservationOperator(*observation)
    return model
