"""Learned observation operator of the multiscale coarse term (config ``multiscale.observation``).

The network predicts true soil moisture at fine cells; a satellite retrieval of
coarse cell ``c`` on day ``t`` is modelled as a seasonal bias plus a seasonal
gain on the aggregate of those predictions (all in the scaler's z-units)::

    sat_hat_c(t) = b_c(t) + (1 + g_c(t)) * agg_c(t)
    [b_c(t), g_c(t)] = (features_c @ W) . season(t),
    season(t) = [1, sin(2 pi k doy / 365.25), cos(2 pi k doy / 365.25)]_{k = 1..harmonics}

``features_c`` is the one-hot row of cell ``c`` (``kind: cell``: free per-cell
coefficients) or ``[1, mean static inputs of the cell's fine cells]``
(``kind: static``: bias and gain as a linear function of soil and vegetation).
``W`` starts at zero (the identity operator: the previous scheme) and is
trained with the network, penalised by :meth:`ObservationOperator.penalty`;
the stored ``weight`` is ``W / lr_scale`` (Adam's steps are scale-free, so the
operator learns ``lr_scale`` times faster than the network).
The module is attached to the member as ``observation`` so that its
parameters are saved in the member's ``state_dict`` (``model.pt``); the
network's forward pass does not use it, so predictions are the truth estimate.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import nn

from smfusion.config import ObservationConfig

__all__ = ["ObservationOperator", "season_basis"]


def season_basis(doy: torch.Tensor, harmonics: int) -> torch.Tensor:
    """``[1, sin(2 pi k doy / 365.25), cos(...)]`` for k = 1..``harmonics``: (..., 1 + 2 harmonics)."""
    cols = [torch.ones_like(doy)]
    for k in range(1, harmonics + 1):
        w = 2.0 * math.pi * k * doy / 365.25
        cols += [torch.sin(w), torch.cos(w)]
    return torch.stack(cols, dim=-1)


class ObservationOperator(nn.Module):
    """See the module docstring. ``features`` (C, P): one row per coarse cell of the training arrays (None:
    an empty operator whose shapes are taken from the state_dict it is loaded from)."""

    def __init__(self, cfg: ObservationConfig, features: Optional[np.ndarray] = None):
        super().__init__()
        self.cfg = cfg
        self.n_season = 1 + 2 * cfg.harmonics
        self.n_out = 2 if cfg.gain else 1
        feats = torch.zeros(0, 0) if features is None else torch.as_tensor(np.asarray(features), dtype=torch.float32)
        self.register_buffer("features", feats)
        self.weight = nn.Parameter(torch.zeros(feats.shape[1], self.n_out, self.n_season))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Take the stored shapes (the number of coarse cells or static inputs is the training data's)."""
        for name in ("features", "weight"):
            stored = state_dict.get(prefix + name)
            if stored is not None and stored.shape != getattr(self, name).shape:
                if name == "weight":
                    self.weight = nn.Parameter(torch.zeros_like(stored))
                else:
                    self.features = torch.zeros_like(stored)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def coefficients(self, cell: torch.Tensor, doy: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Bias and gain offset (None without ``gain``) of cells ``cell`` (G,) on days ``doy`` (G, T): (G, T)."""
        coef = torch.einsum("gp,pos->gos", self.features[cell.long()], self.weight * self.cfg.lr_scale)
        out = torch.einsum("gos,gts->got", coef, season_basis(doy.to(coef.dtype), self.cfg.harmonics))
        return out[:, 0], (out[:, 1] if self.cfg.gain else None)

    def forward(self, agg: torch.Tensor, cell: torch.Tensor, doy: torch.Tensor) -> torch.Tensor:
        """``b + (1 + g) * agg`` for ``agg`` (G, T, F) of cells ``cell`` (G,) on days ``doy`` (G, T)."""
        b, g = self.coefficients(cell, doy)
        out = agg + b.unsqueeze(-1)
        return out if g is None else out + g.unsqueeze(-1) * agg

    def penalty(self, cell: torch.Tensor, doy: torch.Tensor) -> torch.Tensor:
        """``l2 * mean(b^2 + g^2)`` over the given cells and days (0 without a penalty)."""
        if self.cfg.l2 == 0 or cell.numel() == 0:
            return self.weight.sum() * 0.0
        b, g = self.coefficients(cell, doy)
        sq = b**2 if g is None else b**2 + g**2
        return self.cfg.l2 * sq.mean()
