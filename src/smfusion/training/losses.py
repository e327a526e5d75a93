"""Masked losses: NaN in the target marks days without an observation."""

from __future__ import annotations

from typing import Callable

import torch

_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {}


def register_loss(name: str):
    def deco(fn):
        _LOSSES[name] = fn
        return fn

    return deco


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name not in _LOSSES:
        raise KeyError(f"unknown loss '{name}', registered: {sorted(_LOSSES)}")
    return _LOSSES[name]


def _masked_sq(y_hat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of squared errors and count of valid values per target (last dim)."""
    mask = ~torch.isnan(y)
    diff = torch.where(mask, y_hat - torch.nan_to_num(y), torch.zeros_like(y_hat))
    dims = tuple(range(y.dim() - 1))
    return (diff**2).sum(dim=dims), mask.sum(dim=dims)


@register_loss("mse")
def masked_mse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sum_k mean_{valid i}(y_hat_ik - y_ik)^2 over targets k; targets with no valid value add 0."""
    sse, n = _masked_sq(y_hat, y)
    per_target = torch.where(n > 0, sse / n.clamp(min=1), torch.zeros_like(sse))
    return per_target.sum()


@register_loss("rmse")
def masked_rmse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sum_k sqrt(mean_{valid i}(y_hat_ik - y_ik)^2) over targets k (hydroDL's RmseLoss)."""
    sse, n = _masked_sq(y_hat, y)
    mse = sse / n.clamp(min=1)
    # sqrt has an infinite gradient at 0: add a tiny epsilon inside.
    per_target = torch.where(n > 0, torch.sqrt(mse + 1e-12), torch.zeros_like(sse))
    return per_target.sum()


NSE_EPS = 0.1  # Kratzert et al. (2019): keeps cells with a near-constant target from dominating


def masked_nse_star(y_hat: torch.Tensor, y: torch.Tensor, y_std: torch.Tensor, eps: float = NSE_EPS) -> torch.Tensor:
    """NSE* (Kratzert et al. 2019, HESS 23, 5089): ``sum_k mean_{valid i}((y_hat_ik - y_ik) / (s_bk + eps))^2``
    with ``s_bk`` the training-period std of target k at the site of row b (``y_std``: (batch, target)), so
    every site weighs by its relative, not absolute, error; targets with no valid value add 0."""
    r = (1.0 / (y_std + eps)).reshape(y_std.shape[0], *([1] * (y.dim() - 2)), y_std.shape[-1])
    return masked_mse(y_hat * r, y * r)
