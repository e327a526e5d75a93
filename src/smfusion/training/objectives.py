"""Training objectives by name: ``objective(prediction, data) -> (loss, terms)``.

``prediction`` is the model's output dict (``y_hat``, ...), ``data`` the
minibatch dict (``y``, ...); ``loss`` is the scalar tensor to minimise and
``terms`` a dict of named floats (logged per epoch). A factory registered with
``@register_objective("name")`` builds the objective of a run from
``(cfg, training)``. ``training.loss`` names the objective; an adapter may wrap
it (the multiscale adapter's ``multiscale`` objective applies ``training.loss``
to its coarse-cell and station terms).

Built in: ``mse`` and ``rmse`` (:mod:`smfusion.training.losses`, NaN targets
masked; they serve sequence and point targets alike) and ``multiscale``
(:mod:`smfusion.training.multiscale`).
"""

from __future__ import annotations

import importlib
from typing import Callable, Protocol

import torch

from smfusion.config import RunConfig, TrainingConfig
from smfusion.errors import ConfigError
from smfusion.training.losses import get_loss

__all__ = ["Objective", "register_objective", "get_objective", "available", "build_objective", "MaskedObjective"]


class Objective(Protocol):
    def __call__(self, prediction: dict[str, torch.Tensor], data: dict[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, float]]: ...


Factory = Callable[[RunConfig, TrainingConfig], Objective]
_OBJECTIVES: dict[str, Factory] = {}
_BUILTIN = ("smfusion.training.multiscale",)


def register_objective(name: str) -> Callable[[Factory], Factory]:
    """Decorator registering a factory ``(cfg, training) -> objective`` under ``name``."""

    def deco(factory: Factory) -> Factory:
        _OBJECTIVES[name] = factory
        return factory

    return deco


def _load_builtin() -> None:
    for mod in _BUILTIN:
        importlib.import_module(mod)


def available() -> list[str]:
    _load_builtin()
    return sorted(_OBJECTIVES)


def get_objective(name: str, key: str = "training.loss") -> Factory:
    _load_builtin()
    if name not in _OBJECTIVES:
        raise ConfigError(f"{key}: unknown objective '{name}', registered: {sorted(_OBJECTIVES)}")
    return _OBJECTIVES[name]


def build_objective(cfg: RunConfig, training: TrainingConfig, default: str | None = None) -> Objective:
    """The objective of one member: the adapter's ``default`` when it has one, else ``training.loss``."""
    return get_objective(default or training.loss)(cfg, training)


class MaskedObjective:
    """A masked loss of :mod:`smfusion.training.losses` on ``prediction["y_hat"]`` and ``data["y"]``."""

    def __init__(self, name: str):
        self.name = name
        self.fn = get_loss(name)

    def __call__(self, prediction: dict[str, torch.Tensor], data: dict[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.fn(prediction["y_hat"], data["y"])
        return loss, {self.name: float(loss.detach())}


@register_objective("mse")
def _mse(cfg: RunConfig, training: TrainingConfig) -> Objective:
    return MaskedObjective("mse")


@register_objective("rmse")
def _rmse(cfg: RunConfig, training: TrainingConfig) -> Objective:
    return MaskedObjective("rmse")
