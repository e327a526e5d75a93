"""Report a learned multiscale observation operator beside the satellite's actual errors.

The operator (:mod:`smfusion.models.observation`) maps the aggregated prediction
``x_c(t)`` of coarse cell ``c`` to the retrieval in z-units,
``z_sat = b(t) + (1 + g(t)) z_x``. In physical units (scaler mean ``mu``, std
``sd`` of the satellite) this is ``sat = x + sd b(t) + g(t) (x - mu)``, so its
bias on day t is ``sd b(t) + g(t) (x(t) - mu)`` and its gain ``1 + g(t)``.
The same form is fitted by least squares to a satellite against a known truth
(:func:`fitted_errors`, the twin's true satellite errors in the operator's
form). Both are summarised per cell as the mean bias and mean gain over the
days with a retrieval, evaluated at the same ``x`` (the coarse-mean truth on a
twin), so the two are comparable cell by cell.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["learned_errors", "fitted_errors", "coarse_means"]


def _season(doy: np.ndarray, harmonics: int) -> np.ndarray:
    from smfusion.models.observation import season_basis

    return season_basis(torch.as_tensor(np.asarray(doy, dtype=np.float64)), harmonics).numpy()


def coarse_means(values: np.ndarray, coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coarse ids sorted, (C, T) NaN-aware mean of the rows of ``values`` (N, T) over each coarse id)."""
    ids, inv = np.unique(np.asarray(coarse), return_inverse=True)
    out = np.full((ids.size, values.shape[1]), np.nan)
    for c in range(ids.size):
        rows = values[inv == c]
        n = np.isfinite(rows).sum(axis=0)
        out[c] = np.where(n > 0, np.nansum(rows, axis=0) / np.maximum(n, 1), np.nan)
    return ids, out


def learned_errors(operator: torch.nn.Module, x: np.ndarray, sat: np.ndarray, doy: np.ndarray, mu: float, sd: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Mean bias ``sd b + g (x - mu)`` and mean gain ``1 + g`` of the learned operator per cell (C,), over the
    days where ``sat`` (C, T) is finite; ``x`` (C, T) the evaluation points (physical units), rows in the
    operator's cell order."""
    n_cell = x.shape[0]
    with torch.no_grad():
        cell = torch.arange(n_cell)
        b, g = operator.coefficients(cell, torch.as_tensor(np.broadcast_to(doy, x.shape).copy(), dtype=torch.float32))
    b = b.numpy().astype(np.float64)
    g = np.zeros_like(b) if g is None else g.numpy().astype(np.float64)
    seen = np.isfinite(sat) & np.isfinite(x)
    bias = np.where(seen, sd * b + g * (x - mu), np.nan)
    gain = np.where(seen, 1.0 + g, np.nan)
    n = np.maximum(seen.sum(axis=1), 1)
    return np.nansum(bias, axis=1) / n, np.nansum(gain, axis=1) / n


def fitted_errors(x: np.ndarray, sat: np.ndarray, doy: np.ndarray, harmonics: int = 1
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The operator's form fitted by least squares per cell, ``sat - x = beta . S(t) + gamma . S(t) x``
    (``S`` the seasonal basis), summarised as :func:`learned_errors` does: mean bias ``beta . S + gamma . S x``
    and mean gain ``1 + gamma . S`` over the days with a retrieval. (C,) each; NaN for a cell with too few days."""
    s = _season(doy, harmonics)  # (T, H)
    bias = np.full(x.shape[0], np.nan)
    gain = np.full(x.shape[0], np.nan)
    for c in range(x.shape[0]):
        seen = np.isfinite(sat[c]) & np.isfinite(x[c])
        if seen.sum() < 4 * s.shape[1]:
            continue
        design = np.concatenate([s[seen], s[seen] * x[c, seen, None]], axis=1)
        coef = np.linalg.lstsq(design, sat[c, seen] - x[c, seen], rcond=None)[0]
        beta, gamma = coef[: s.shape[1]], coef[s.shape[1]:]
        bias[c] = float(np.mean(s[seen] @ beta + (s[seen] @ gamma) * x[c, seen]))
        gain[c] = float(np.mean(1.0 + s[seen] @ gamma))
    return bias, gain
