"""Training objectives by name: ``objective(prediction, data) -> (loss, terms)``.

``prediction`` is the model's output dict (``y_hat``, ...), ``data`` the
minibatch dict (``y``, ...); ``loss`` is the scalar tensor to minimise and
``terms`` a dict of named floats (logged per epoch). A factory registered with
``@register_objective("name")`` builds the objective of a run from
``(cfg, training)``. ``training.loss`` names the objective; an adapter may wrap
it (the multiscale adapter's ``multiscale`` objective applies ``training.loss``
to its coarse-cell and station terms).

Built in: ``mse`` and ``rmse`` (:mod:`smfusion.training.losses`, NaN targets
masked; they serve sequence and point targets alike), ``nse`` (NSE*: squared
errors over each site's training-period target std; sequence runs), ``gaussian_nll`` and
``mixture_nll`` (probabilistic heads, :mod:`smfusion.models.heads`; with the
beta-NLL option ``uncertainty.beta_nll``) and ``multiscale``
(:mod:`smfusion.training.multiscale`).
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Callable, Protocol

import torch

from smfusion.config import RunConfig, TrainingConfig
from smfusion.errors import ConfigError
from smfusion.training.losses import get_loss, masked_nse_star

__all__ = ["Objective", "register_objective", "get_objective", "available", "build_objective", "MaskedObjective",
           "gaussian_nll", "mixture_nll", "NLLObjective", "NSEObjective", "check_head", "NLL_HEADS"]


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


class NSEObjective:
    """NSE* (:func:`smfusion.training.losses.masked_nse_star`) on ``prediction["y_hat"]``, ``data["y"]`` and
    ``data["y_std"]``, each minibatch site's training-period target std (the sequence sampler adds it when
    ``training.loss`` is ``nse``)."""

    def __call__(self, prediction: dict[str, torch.Tensor], data: dict[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        if "y_std" not in data:
            raise ConfigError("training.loss nse needs the per-site target std in the minibatch (sequence adapter)")
        loss = masked_nse_star(prediction["y_hat"], data["y"], data["y_std"])
        return loss, {"nse": float(loss.detach())}


@register_objective("nse")
def _nse(cfg: RunConfig, training: TrainingConfig) -> Objective:
    return NSEObjective()


# --------------------------------------------------------------------------- probabilistic heads

LOG_2PI = math.log(2.0 * math.pi)
#: the NLL objectives and the heads each one trains
NLL_HEADS = {"gaussian_nll": ("gaussian",), "mixture_nll": ("gmm", "gaussian")}


def _masked_mean(values: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """sum over targets (last dim) of the mean over valid entries; a target without any adds 0."""
    dims = tuple(range(values.dim() - 1))
    n = ok.sum(dim=dims)
    total = torch.where(ok, values, torch.zeros_like(values)).sum(dim=dims)
    return torch.where(n > 0, total / n.clamp(min=1), torch.zeros_like(total)).sum()


def gaussian_nll(y_hat: torch.Tensor, log_var: torch.Tensor, y: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
    """Masked Gaussian negative log-likelihood (beta-NLL for beta > 0), per target summed over targets.

    nll_i = 0.5 * (log(2 pi) + log s_i^2 + (y_i - m_i)^2 / s_i^2); loss = mean over valid i of
    ``stopgrad(s_i^2)^beta * nll_i`` (Seitzer et al. 2022: beta = 0 is the plain NLL, beta = 1 gives the
    mean the gradient of the MSE; 0.5 is their recommendation against variance collapse).
    """
    ok = ~torch.isnan(y)
    diff = torch.where(ok, y_hat - torch.nan_to_num(y), torch.zeros_like(y_hat))
    nll = 0.5 * (LOG_2PI + log_var + diff**2 * torch.exp(-log_var))
    if beta:
        nll = nll * torch.exp(beta * log_var.detach())
    return _masked_mean(nll, ok)


def mixture_nll(loc: torch.Tensor, log_var: torch.Tensor, log_weight: torch.Tensor, y: torch.Tensor,
                beta: float = 0.0, total_log_var: torch.Tensor | None = None) -> torch.Tensor:
    """Masked Gaussian-mixture NLL: -log sum_k w_k N(y; m_k, s_k^2); components on the last dim of
    ``loc``/``log_var``/``log_weight`` (..., n_target, K), ``y`` (..., n_target). With ``beta`` > 0 each
    value is weighted by ``stopgrad(total variance)^beta`` (``total_log_var``: the mixture's log variance)."""
    ok = ~torch.isnan(y)
    yy = torch.nan_to_num(y).unsqueeze(-1)
    comp = log_weight - 0.5 * (LOG_2PI + log_var + (yy - loc) ** 2 * torch.exp(-log_var))
    nll = -torch.logsumexp(comp, dim=-1)
    if beta:
        if total_log_var is None:
            raise ValueError("beta-NLL of a mixture needs its total log variance")
        nll = nll * torch.exp(beta * total_log_var.detach())
    return _masked_mean(nll, ok)


class NLLObjective:
    """``gaussian_nll`` or ``mixture_nll`` on a probabilistic head's outputs and ``data["y"]``.

    ``mixture_nll`` scores the mixture (``mix_*`` outputs) when the prediction has one, else the Gaussian
    of ``y_hat``/``log_var`` (the multiscale coarse term hands it the aggregate's moments).
    """

    def __init__(self, name: str, beta: float = 0.0):
        self.name, self.beta = name, float(beta)

    def __call__(self, prediction: dict[str, torch.Tensor], data: dict[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        if "log_var" not in prediction:
            raise ConfigError(f"training.loss {self.name} needs a probabilistic head (model.head gaussian or gmm)")
        if self.name == "mixture_nll" and "mix_loc" in prediction:
            loss = mixture_nll(prediction["mix_loc"], prediction["mix_log_var"], prediction["mix_log_weight"],
                               data["y"], self.beta, prediction["log_var"])
        else:
            loss = gaussian_nll(prediction["y_hat"], prediction["log_var"], data["y"], self.beta)
        return loss, {self.name: float(loss.detach())}


@register_objective("gaussian_nll")
def _gaussian_nll(cfg: RunConfig, training: TrainingConfig) -> Objective:
    return NLLObjective("gaussian_nll", cfg.uncertainty.beta_nll)


@register_objective("mixture_nll")
def _mixture_nll(cfg: RunConfig, training: TrainingConfig) -> Objective:
    return NLLObjective("mixture_nll", cfg.uncertainty.beta_nll)


def check_head(model, training, key: str = "model.head") -> None:
    """Refuse a head no registry knows, a model that takes no head, and a head/objective pair that cannot
    train (a probabilistic head with a point loss, an NLL with a point head, the Gaussian NLL on a mixture)."""
    from smfusion.models import heads
    from smfusion.models.registry import get_model_class

    if model.head not in heads.available_heads():
        raise ConfigError(f"{key}: unknown head '{model.head}', registered: {heads.available_heads()}")
    if model.head != "regression":
        params = inspect.signature(get_model_class(model.name).__init__).parameters
        if "head" not in params:
            raise ConfigError(f"{key}: model '{model.name}' takes no head option (its output layer is fixed)")
    loss = training.loss
    prob = heads.is_probabilistic(model.head)
    if loss in NLL_HEADS and model.head not in NLL_HEADS[loss]:
        raise ConfigError(f"training.loss {loss} needs model.head {' or '.join(NLL_HEADS[loss])}, got '{model.head}'")
    if prob and loss in ("mse", "rmse"):
        raise ConfigError(f"{key} '{model.head}' predicts a distribution: train it with training.loss "
                          f"{'mixture_nll' if model.head == 'gmm' else 'gaussian_nll'}, not {loss}")
