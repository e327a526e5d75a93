"""Multiscale learning from coarse satellite cells and point stations (Liu et al. 2022, GRL 49).

The model predicts at fine cells. A minibatch holds the fine cells of a few
coarse cells (each with its own time window) plus a few station cells::

    loss = w_coarse * loss(agg_{fine cells of c}(y_hat), satellite_c)     over coarse cells c
         + w_site   * loss(y_hat at station cell s, station_s)            over stations s

``agg`` is the mask-aware mean (or median) over the fine cells present; a coarse
cell with fewer than ``min_coverage`` of its fine cells present is left out of
the first term. Either weight may be 0: single-scale training is the special
case with one term. Any registered model works (it only sees fine cells).
With ``coarse_target: anomaly`` both sides of the first term are taken minus
their mean over the window (days with a satellite value), so a biased
satellite shapes the dynamics but not the level (docs/multiscale.md).
With ``multiscale.observation`` the aggregate passes through the member's
learned observation operator (:mod:`smfusion.models.observation`, a seasonal
bias and gain) before it meets the satellite, and its penalty is added: the
network then predicts the truth, the operator the satellite's errors.

With a probabilistic head (an NLL as ``training.loss``) both terms are NLLs:
the station term scores the head's distribution at the station cell, the coarse
term the Gaussian of the aggregate, mean ``m_c = mean_k m_k`` and variance
(:func:`aggregate_variance`) ``var_c = ((1 - rho) sum_k s_k^2 + rho (sum_k s_k)^2) / n^2``
over the n fine cells present: ``rho = uncertainty.fine_error_correlation``
(0: independent fine-cell errors, ``sum s_k^2 / n^2``; 1: fully correlated,
``(mean s_k)^2``). Under the anomaly coarse target the aggregate keeps this
variance (the window mean it loses is known far better than a single day).

The data, sampler and scaler are the ``multiscale`` adapter's
(:mod:`smfusion.data.adapters.multiscale`); this module holds the loss and
registers the ``multiscale`` objective.
"""

from __future__ import annotations

from typing import Callable

import torch

from smfusion.config import MultiscaleConfig, RunConfig, TrainingConfig
from smfusion.errors import ConfigError
from smfusion.training.losses import get_loss
from smfusion.training.objectives import Objective, get_objective, register_objective

__all__ = ["aggregate_groups", "aggregate_variance", "multiscale_loss", "MultiscaleObjective"]


# --------------------------------------------------------------------------- loss


def aggregate_groups(y_hat: torch.Tensor, index: torch.Tensor, mask: torch.Tensor, op: str = "mean") -> torch.Tensor:
    """Aggregate rows of ``y_hat`` (B, T, F) into groups: ``index`` (G, K) row numbers, ``mask`` (G, K)
    which of them count. mean: sum(mask * y) / sum(mask); median: median of the masked rows.
    Groups without a counted row give NaN. Returns (G, T, F)."""
    g, k = index.shape
    rows = y_hat[index.reshape(-1).long()].reshape(g, k, *y_hat.shape[1:])  # (G, K, T, F)
    m = mask.to(torch.bool).reshape(g, k, *([1] * (y_hat.dim() - 1)))
    if op == "mean":
        n = m.sum(dim=1).to(y_hat.dtype)
        total = torch.where(m, rows, torch.zeros_like(rows)).sum(dim=1)
        return torch.where(n > 0, total / n.clamp(min=1), torch.full_like(total, float("nan")))
    if op == "median":
        return torch.nanmedian(torch.where(m, rows, torch.full_like(rows, float("nan"))), dim=1).values
    raise ConfigError(f"unknown aggregation {op!r}; use mean or median")


def aggregate_variance(log_var: torch.Tensor, index: torch.Tensor, mask: torch.Tensor, correlation: float = 0.0
                       ) -> torch.Tensor:
    """Variance of the mask-aware mean over each group's rows (G, T, F), from per-row ``log_var`` (B, T, F):
    ``((1 - rho) sum_k s_k^2 + rho (sum_k s_k)^2) / n^2`` over the n counted rows, errors with a common
    correlation ``rho`` (0: independent, ``sum s_k^2 / n^2``). Groups without a counted row give NaN."""
    g, k = index.shape
    var = torch.exp(log_var)[index.reshape(-1).long()].reshape(g, k, *log_var.shape[1:])
    m = mask.to(torch.bool).reshape(g, k, *([1] * (log_var.dim() - 1)))
    n = m.sum(dim=1).to(var.dtype)
    s2 = torch.where(m, var, torch.zeros_like(var)).sum(dim=1)
    s1 = torch.where(m, var.sqrt(), torch.zeros_like(var)).sum(dim=1)
    out = ((1.0 - correlation) * s2 + correlation * s1**2) / n.clamp(min=1) ** 2
    return torch.where(n > 0, out, torch.full_like(out, float("nan")))


DISTRIBUTION_KEYS = ("log_var", "mix_loc", "mix_log_var", "mix_log_weight")


def multiscale_loss(
    y_hat: torch.Tensor,
    batch: dict[str, torch.Tensor],
    w_coarse: float = 1.0,
    w_site: float = 1.0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = get_loss("rmse"),
    aggregation: str = "mean",
    min_coverage: float = 0.0,
    burn_in: int = 0,
    coarse_target: str = "absolute",
    distribution: dict[str, torch.Tensor] | None = None,
    correlation: float = 0.0,
    operator: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the coarse-cell and station terms (see the module doc) and the terms' values.

    ``batch``: ``group_index``/``group_mask`` (G, K), ``group_coverage`` (G,), ``y_coarse`` (G, T, F),
    ``site_index`` (S,), ``y_site`` (S, T, F). NaN targets are masked; a term with weight 0 is skipped.
    ``coarse_target='anomaly'``: both sides of the coarse term minus their mean over the window's
    days with a satellite value (after ``burn_in``), so the satellite's level (bias) is not learned.
    ``distribution`` (a probabilistic head's ``log_var`` and ``mix_*`` outputs for every row): each term
    is ``loss_fn(y_hat, y, extra)`` with ``extra`` those outputs at the station rows and, for the coarse
    term, ``{"log_var": log var_c}`` (:func:`aggregate_variance` with ``correlation``; mean aggregation only).
    ``operator`` (:class:`~smfusion.models.observation.ObservationOperator`, batch keys ``group_cell`` (G,)
    and ``group_doy`` (G, T)): the coarse term compares ``operator(agg)`` with the satellite, and the
    operator's penalty is added (term ``observation``).
    """
    if distribution is not None and aggregation != "mean":
        raise ConfigError("a probabilistic head needs multiscale.aggregation 'mean' (the median has no variance)")
    total = y_hat.sum() * 0.0
    terms = {}
    t0 = min(burn_in, y_hat.shape[1] - 1)
    if w_coarse > 0 and batch["group_index"].shape[0] > 0:
        agg = aggregate_groups(y_hat, batch["group_index"], batch["group_mask"], aggregation)
        y = batch["y_coarse"]
        covered = (batch["group_coverage"] >= min_coverage).reshape(-1, *([1] * (y.dim() - 1)))
        y = torch.where(covered, y, torch.full_like(y, float("nan")))
        agg = torch.nan_to_num(agg)  # groups with no fine cell: their target is masked below
        if operator is not None:
            agg = operator(agg, batch["group_cell"], batch["group_doy"])
            penalty = operator.penalty(batch["group_cell"], batch["group_doy"][:, t0:])
            terms["observation"] = float(penalty.detach())
            total = total + penalty
        y = torch.where(batch["group_mask"].any(dim=1).reshape(covered.shape), y, torch.full_like(y, float("nan")))
        agg, y = agg[:, t0:], y[:, t0:]
        if coarse_target == "anomaly":
            seen = torch.isfinite(y)
            n = seen.sum(dim=1, keepdim=True).clamp(min=1)
            agg = agg - torch.where(seen, agg, torch.zeros_like(agg)).sum(dim=1, keepdim=True) / n
            y = y - torch.nansum(y, dim=1, keepdim=True) / n
        elif coarse_target != "absolute":
            raise ConfigError(f"unknown coarse_target {coarse_target!r}; use absolute or anomaly")
        if distribution is None:
            term = loss_fn(agg, y)
        else:
            lv = aggregate_variance(distribution["log_var"], batch["group_index"], batch["group_mask"], correlation)
            term = loss_fn(agg, y, {"log_var": torch.log(torch.nan_to_num(lv, nan=1.0))[:, t0:]})
        terms["coarse"] = float(term.detach())
        total = total + w_coarse * term
    if w_site > 0 and batch["site_index"].shape[0] > 0:
        rows = batch["site_index"].long()
        if distribution is None:
            term = loss_fn(y_hat[rows][:, t0:], batch["y_site"][:, t0:])
        else:
            term = loss_fn(y_hat[rows][:, t0:], batch["y_site"][:, t0:],
                           {k: v[rows][:, t0:] for k, v in distribution.items()})
        terms["site"] = float(term.detach())
        total = total + w_site * term
    return total, terms


class MultiscaleObjective:
    """The ``multiscale`` objective: ``(loss, terms)`` of :func:`multiscale_loss`, each term computed by
    the inner objective (``training.loss``) on ``{"y_hat": ...}`` (plus a probabilistic head's outputs) /
    ``{"y": ...}``."""

    def __init__(self, ms: MultiscaleConfig, inner: Objective, correlation: float = 0.0):
        self.ms = ms
        self.inner = inner
        self.correlation = correlation
        self.operator: torch.nn.Module | None = None

    def bind(self, model: torch.nn.Module) -> None:
        """Use the member's learned observation operator (its submodule ``observation``, built by the model
        registry when ``multiscale.observation`` is set; trained with the member, saved in its weights)."""
        if self.ms.observation is not None:
            self.operator = getattr(model, "observation", None)
            if self.operator is None:
                raise ConfigError("multiscale.observation is set but the member has no observation operator")

    def _term(self, y_hat: torch.Tensor, y: torch.Tensor, extra: dict | None = None) -> torch.Tensor:
        return self.inner({"y_hat": y_hat, **(extra or {})}, {"y": y})[0]

    def __call__(self, prediction: dict[str, torch.Tensor], data: dict[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        ms = self.ms
        dist = {k: prediction[k] for k in DISTRIBUTION_KEYS if k in prediction} or None
        return multiscale_loss(prediction["y_hat"], data, ms.w_coarse, ms.w_site, self._term, ms.aggregation,
                               ms.min_coverage, ms.burn_in, ms.coarse_target, dist, self.correlation,
                               self.operator)


@register_objective("multiscale")
def _multiscale(cfg: RunConfig, training: TrainingConfig) -> Objective:
    if cfg.multiscale is None:
        raise ConfigError("the multiscale objective needs a multiscale section in the config")
    if training.loss == "multiscale":
        raise ConfigError("training.loss: name the per-term objective (e.g. rmse), not 'multiscale'")
    return MultiscaleObjective(cfg.multiscale, get_objective(training.loss)(cfg, training),
                               cfg.uncertainty.fine_error_correlation)
