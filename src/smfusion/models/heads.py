"""Output heads by name: the last layer of every model, point or probabilistic.

``model.head`` in the config picks one; every registered model (lstm, mlp,
fusion) builds its output layer with :func:`build_head` and returns the head's
named tensors (normalised target units, each ``(..., n_target)`` unless said):

* ``regression``: ``y_hat`` (a point estimate);
* ``gaussian``: ``y_hat`` = mean mu and ``log_var`` = log sigma^2 of a Gaussian
  (trained with the ``gaussian_nll`` objective; hydroDL's sigma loss, with the
  beta-NLL option);
* ``gmm``: a mixture of ``components`` Gaussians (trained with ``mixture_nll``):
  ``mix_loc``, ``mix_log_var``, ``mix_log_weight`` of shape ``(..., n_target, K)``
  (log weights sum to 0 in probability), plus its moments ``y_hat`` = sum_k w_k mu_k
  and ``log_var`` = log(sum_k w_k (sigma_k^2 + (mu_k - y_hat)^2)).

Each head is a single ``nn.Linear`` (so its ``state_dict`` keys are ``weight``
and ``bias``, as the plain linear output layer was) followed by a fixed
transform. Variances are ``softplus(raw) + VAR_FLOOR`` (smoother than ``exp``
for large errors; the floor keeps the NLL finite).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["register_head", "build_head", "available_heads", "is_probabilistic", "RegressionHead", "GaussianHead",
           "MixtureHead", "VAR_FLOOR"]

VAR_FLOOR = 1e-6  # normalised units: sigma >= 0.001 target std
_HEADS: dict[str, type[nn.Module]] = {}


def register_head(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator registering a head ``cls(n_in, n_target, **options)`` under ``name``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _HEADS and _HEADS[name] is not cls:
            raise ValueError(f"head name '{name}' already registered by {_HEADS[name].__name__}")
        cls.head_name = name
        _HEADS[name] = cls
        return cls

    return deco


def available_heads() -> list[str]:
    return sorted(_HEADS)


def build_head(name: str, n_in: int, n_target: int, **options) -> nn.Module:
    """The head ``name`` mapping ``(..., n_in)`` features to its named outputs."""
    if name not in _HEADS:
        raise KeyError(f"unknown head '{name}', registered: {available_heads()}")
    return _HEADS[name](n_in, n_target, **options)


def is_probabilistic(name: str) -> bool:
    """Whether head ``name`` predicts a distribution (outputs ``log_var``)."""
    return bool(getattr(_HEADS.get(name), "probabilistic", False))


def _variance(raw: torch.Tensor) -> torch.Tensor:
    return F.softplus(raw) + VAR_FLOOR


@register_head("regression")
class RegressionHead(nn.Linear):
    """``y_hat = W h + b``."""

    probabilistic = False

    def __init__(self, n_in: int, n_target: int, **_):
        super().__init__(n_in, n_target)

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"y_hat": super().forward(h)}


@register_head("gaussian")
class GaussianHead(nn.Linear):
    """``[mu, raw] = W h + b``; ``log_var = log(softplus(raw) + VAR_FLOOR)``."""

    probabilistic = True

    def __init__(self, n_in: int, n_target: int, **_):
        super().__init__(n_in, 2 * n_target)
        self.n_target = n_target
        with torch.no_grad():  # start near unit variance (the target is z-scored): softplus(0.54) = 1
            self.bias[n_target:] = 0.5413

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, raw = super().forward(h).split(self.n_target, dim=-1)
        return {"y_hat": mu, "log_var": torch.log(_variance(raw))}


@register_head("gmm")
class MixtureHead(nn.Linear):
    """Gaussian mixture: per target, ``K`` locations, variances and weights (softmax) from one linear layer."""

    probabilistic = True

    def __init__(self, n_in: int, n_target: int, components: int = 3, **_):
        if components < 1:
            raise ValueError(f"components must be >= 1, got {components}")
        super().__init__(n_in, 3 * n_target * components)
        self.n_target, self.k = n_target, components
        with torch.no_grad():  # start: components spread over +-1 target std, unit variance, equal weights
            b = self.bias.view(n_target, 3, components)
            b[:, 0] = torch.linspace(-1.0, 1.0, components) if components > 1 else 0.0
            b[:, 1] = 0.5413
            b[:, 2] = 0.0

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        o = super().forward(h).unflatten(-1, (self.n_target, 3, self.k))
        loc, raw, logit = o.unbind(dim=-2)
        var = _variance(raw)
        log_w = torch.log_softmax(logit, dim=-1)
        w = log_w.exp()
        mean = (w * loc).sum(-1)
        total = (w * (var + (loc - mean.unsqueeze(-1)) ** 2)).sum(-1)  # law of total variance
        return {"y_hat": mean, "log_var": torch.log(total), "mix_loc": loc,
                "mix_log_var": torch.log(var), "mix_log_weight": log_w}
