"""An ensemble's predictive distribution of one target, in physical units, and its recalibration.

:class:`Predictive` holds, at every (row, time) point, the member means
``means`` (N, ...) and, for probabilistic heads, each member's Gaussian
mixture ``loc``/``scale``/``weight`` (N, ..., K) (K = 1 for the Gaussian
head), plus the input-noise variance ``noise_var`` when noisy runs were made.
Its distribution is the equal-weight mixture over members
(:mod:`smfusion.runs.ensembles`); for point heads (no member variance) it
is the Gaussian with the ensemble mean and the total std, as the ensemble
spread was always read.

Recalibration (:class:`Recalibration`, fitted on held-out validation data only):

1. variance scaling: the epistemic part is stretched by ``a`` and the aleatoric
   part by ``b`` around the mean: component ``k`` of member ``i`` moves to
   ``m + a (m_i - m) + b (loc_ik - m_i)`` with scale ``b s_ik`` (noise variance
   times ``b^2``), so epistemic var -> ``a^2`` epistemic, aleatoric -> ``b^2``
   aleatoric; ``a``, ``b`` maximise the validation likelihood;
2. isotonic PIT map (Kuleshov et al. 2018): ``R`` = the empirical CDF of the
   validation PIT values after step 1, a monotone piecewise-linear map of
   [0, 1] onto itself; the recalibrated CDF is ``R(F(y))`` and the quantile of
   level ``tau`` is ``F^-1(R^-1(tau))``. The std layers reflect step 1 only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from scipy.optimize import minimize
from scipy.special import ndtr

from smfusion.io.atomic import write_text
from smfusion.io.layer_names import ALEATORIC_STD, EPISTEMIC_STD, STD, quantile_suffix
from smfusion.runs.ensembles import combine_members, ensemble_mixture

__all__ = ["Predictive", "Recalibration", "mixture_cdf", "mixture_logpdf", "mixture_quantile", "fit_recalibration",
           "quantile_suffix", "layer_attrs", "concat_rows"]

TINY = 1e-9  # smallest component scale (physical units)


def mixture_cdf(y, loc, scale, weight) -> np.ndarray:
    """``sum_k w_k Phi((y - m_k) / s_k)``; components on the last axis, ``y`` without it."""
    y = np.asarray(y, dtype=np.float64)[..., None]
    return (weight * ndtr((y - loc) / np.maximum(scale, TINY))).sum(-1)


def mixture_logpdf(y, loc, scale, weight) -> np.ndarray:
    """``log sum_k w_k N(y; m_k, s_k^2)`` (log-sum-exp over the last axis)."""
    y = np.asarray(y, dtype=np.float64)[..., None]
    s = np.maximum(scale, TINY)
    with np.errstate(divide="ignore"):
        comp = np.log(weight) - 0.5 * np.log(2 * np.pi) - np.log(s) - 0.5 * ((y - loc) / s) ** 2
    top = comp.max(-1)
    return top + np.log(np.exp(comp - top[..., None]).sum(-1))


def mixture_quantile(tau, loc, scale, weight, iterations: int = 60) -> np.ndarray:
    """Level ``tau`` (scalar or broadcastable to the points) of the mixture CDF, by bisection."""
    s = np.maximum(scale, TINY)
    lo = (loc - 10 * s).min(-1)
    hi = (loc + 10 * s).max(-1)
    tau = np.broadcast_to(np.asarray(tau, dtype=np.float64), lo.shape)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(mid, loc, s, weight) < tau
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


@dataclass
class Recalibration:
    """Fitted recalibration of one target (see the module doc); identity by default."""

    method: str = "none"
    epistemic_factor: float = 1.0  # a
    aleatoric_factor: float = 1.0  # b
    pit_x: Optional[list[float]] = None  # knots of R: R(pit_x) = pit_y, both from 0 to 1, increasing
    pit_y: Optional[list[float]] = None
    info: dict = field(default_factory=dict)

    def pit_map(self, p: np.ndarray) -> np.ndarray:
        return p if self.pit_x is None else np.interp(p, self.pit_x, self.pit_y)

    def pit_inverse(self, tau: np.ndarray) -> np.ndarray:
        return tau if self.pit_x is None else np.interp(tau, self.pit_y, self.pit_x)

    def to_dict(self) -> dict:
        return {"method": self.method, "epistemic_factor": self.epistemic_factor,
                "aleatoric_factor": self.aleatoric_factor, "pit_x": self.pit_x, "pit_y": self.pit_y, "info": self.info}

    @classmethod
    def from_dict(cls, d: dict) -> "Recalibration":
        return cls(d["method"], float(d["epistemic_factor"]), float(d["aleatoric_factor"]), d.get("pit_x"),
                   d.get("pit_y"), dict(d.get("info") or {}))


def save_recalibrations(path: Path, recals: dict[str, Recalibration], meta: dict) -> Path:
    return write_text(path, json.dumps({"meta": meta, "targets": {v: r.to_dict() for v, r in recals.items()}},
                                       indent=1))


def load_recalibrations(path: Path) -> tuple[dict[str, Recalibration], dict]:
    """A recalibration file of the run (JSON); :class:`DataError` naming it when it is not one."""
    from smfusion.errors import DataError

    try:
        d = json.loads(Path(path).read_text())
        return {v: Recalibration.from_dict(r) for v, r in d["targets"].items()}, dict(d.get("meta", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"not a recalibration file ({type(exc).__name__})", path=path,
                        hint="smfusion recalibrate writes it again") from None


@dataclass
class Predictive:
    """One target's ensemble predictive distribution at some points (see the module doc)."""

    means: np.ndarray  # (N, ...) member means
    loc: Optional[np.ndarray] = None  # (N, ..., K) member mixtures (None: point heads)
    scale: Optional[np.ndarray] = None
    weight: Optional[np.ndarray] = None
    noise_var: Optional[np.ndarray] = None  # (...) input-noise variance, averaged over members
    recal: Recalibration = field(default_factory=Recalibration)

    @property
    def n_members(self) -> int:
        return int(self.means.shape[0])

    @property
    def probabilistic(self) -> bool:
        return self.loc is not None

    def member_variances(self) -> Optional[np.ndarray]:
        if self.loc is None:
            return None
        m = self.means[..., None]
        return (self.weight * (self.scale**2 + (self.loc - m) ** 2)).sum(-1)

    def moments(self) -> dict[str, np.ndarray]:
        """mean, epistemic_var, aleatoric_var, total_var after variance scaling (float64)."""
        out = combine_members(self.means, self.member_variances(), self.noise_var)
        a2, b2 = self.recal.epistemic_factor**2, self.recal.aleatoric_factor**2
        out["epistemic_var"] = a2 * out["epistemic_var"]
        out["aleatoric_var"] = b2 * out["aleatoric_var"]
        out["total_var"] = out["epistemic_var"] + out["aleatoric_var"]
        return out

    def mixture(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ensemble's mixture (loc, scale, weight), components on the last axis, variance-scaled."""
        a, b = self.recal.epistemic_factor, self.recal.aleatoric_factor
        means = np.asarray(self.means, dtype=np.float64)
        mean = means.mean(0)
        if self.loc is None:  # point heads: the Gaussian of the ensemble mean and total std
            mom = self.moments()
            return mean[..., None], np.sqrt(mom["total_var"])[..., None], np.ones(mean.shape + (1,))
        centre = (mean + a * (means - mean))[..., None]
        loc = centre + b * (self.loc - means[..., None])
        var = b**2 * self.scale.astype(np.float64) ** 2
        if self.noise_var is not None:
            var = var + b**2 * np.asarray(self.noise_var, dtype=np.float64)[..., None]
        return ensemble_mixture(loc, np.sqrt(var), self.weight)

    def with_recalibration(self, recal: Recalibration) -> "Predictive":
        return replace(self, recal=recal)

    def cdf(self, y) -> np.ndarray:
        """The predictive CDF at ``y`` (the PIT of observations), after both recalibration steps."""
        return self.recal.pit_map(mixture_cdf(y, *self.mixture()))

    def quantile(self, tau: float) -> np.ndarray:
        return mixture_quantile(self.recal.pit_inverse(np.asarray(tau)), *self.mixture())

    def logpdf(self, y) -> np.ndarray:
        """Log density after variance scaling (the isotonic step is not in it)."""
        return mixture_logpdf(y, *self.mixture())

    def layers(self, quantiles=()) -> dict[str, np.ndarray]:
        """Layer suffix -> float32 array: ``""`` the ensemble mean; ``_std`` the total std, ``_epistemic_std``
        (N > 1) and ``_aleatoric_std`` (probabilistic heads or noise runs) when the run has that spread;
        ``_qNN`` the predictive quantiles (:func:`quantile_suffix`), recalibrated."""
        mom = self.moments()
        out = {"": mom["mean"].astype(np.float32)}
        epi, ale = self.n_members > 1, self.probabilistic or self.noise_var is not None
        if not (epi or ale):
            return out
        out[STD] = np.sqrt(mom["total_var"]).astype(np.float32)
        if epi:
            out[EPISTEMIC_STD] = np.sqrt(mom["epistemic_var"]).astype(np.float32)
        if ale:
            out[ALEATORIC_STD] = np.sqrt(mom["aleatoric_var"]).astype(np.float32)
        if quantiles:
            mix = self.mixture()
            for q in quantiles:
                out[quantile_suffix(q)] = mixture_quantile(self.recal.pit_inverse(np.asarray(q)), *mix).astype(
                    np.float32)
        return out

    def materialised(self) -> "Predictive":
        """The variance-scaled ensemble mixture as one member (the PIT map kept), e.g. to put predictions
        recalibrated by different fits side by side (:func:`concat_rows`)."""
        loc, scale, w = self.mixture()
        recal = Recalibration(self.recal.method, pit_x=self.recal.pit_x, pit_y=self.recal.pit_y)
        return Predictive(self.moments()["mean"][None], loc[None], scale[None], w[None], recal=recal)

    def select(self, fn: Callable[[np.ndarray], np.ndarray]) -> "Predictive":
        """The same distribution with ``fn`` applied to every array with the point axes first (a row or
        time selection such as ``lambda a: a[mask]``, or a composite over days along axis 1); the member
        and component axes are moved behind the point axes for ``fn`` and back after it."""
        def member_array(a):
            return None if a is None else np.moveaxis(fn(np.moveaxis(a, 0, -1)), -1, 0)

        return replace(self, means=member_array(self.means), loc=member_array(self.loc),
                       scale=member_array(self.scale), weight=member_array(self.weight),
                       noise_var=None if self.noise_var is None else fn(self.noise_var))


def concat_rows(preds: list[Predictive]) -> Predictive:
    """Materialised predictions (:meth:`Predictive.materialised`) of disjoint rows joined along the row axis;
    fewer components are padded with zero weight. Their PIT maps must agree (none, or one shared fit)."""
    mats = [p.materialised() for p in preds]
    if any(m.recal.pit_x != mats[0].recal.pit_x for m in mats):
        raise ValueError("cannot join predictions with different isotonic PIT maps")
    k = max(m.loc.shape[-1] for m in mats)

    def pad(a, fill):
        return np.concatenate([a, np.full(a.shape[:-1] + (k - a.shape[-1],), fill)], -1)

    return Predictive(np.concatenate([m.means for m in mats], 1), np.concatenate([pad(m.loc, 0.0) for m in mats], 1),
                      np.concatenate([pad(m.scale, 1.0) for m in mats], 1),
                      np.concatenate([pad(m.weight, 0.0) for m in mats], 1), recal=mats[0].recal)


def layer_attrs(suffix: str, var: str, units: str, standard_name: str = "", recal: str = "none") -> dict:
    """CF attributes of a distribution layer (``suffix`` as in :meth:`Predictive.layers`); the std layers carry
    the standard-name modifier ``standard_error`` when the variable has a standard name."""
    what = {STD: "total predictive standard deviation (epistemic and aleatoric)",
            EPISTEMIC_STD: "epistemic standard deviation (spread of the ensemble members' means)",
            ALEATORIC_STD: "aleatoric standard deviation (mean of the members' predictive variances"
                              " and input noise)"}
    if suffix in what:
        attrs = {"long_name": f"{what[suffix]} of {var}"}
        if standard_name:
            attrs["standard_name"] = f"{standard_name} standard_error"
    else:
        level = float(suffix[2:].replace("p", ".")) / 100.0
        attrs = {"long_name": f"{level:g} quantile of the predictive distribution of {var}", "quantile": level}
    if units:
        attrs["units"] = units
    if recal != "none":
        attrs["comment"] = f"recalibrated on held-out validation data ({recal})"
    return attrs


def _nll(pred: Predictive, y: np.ndarray, a: float, b: float) -> float:
    r = replace(pred.recal, epistemic_factor=a, aleatoric_factor=b)
    return float(-np.mean(pred.with_recalibration(r).logpdf(y)))


def fit_recalibration(pred: Predictive, obs: np.ndarray, method: str = "isotonic", knots: int = 101
                      ) -> Recalibration:
    """Fit the recalibration of ``pred`` (validation points) to the observations ``obs`` (same shape as a
    member's means, NaN where none): variance factors by maximum likelihood, then (``isotonic``) the PIT map."""
    if method == "none":
        return Recalibration()
    ok = np.isfinite(obs) & np.isfinite(pred.means).all(axis=0)
    if ok.sum() < 20:
        raise ValueError(f"recalibration needs validation observations: {int(ok.sum())} found")
    sub = pred.select(lambda a: a[ok])
    sub.recal = Recalibration()
    y = np.asarray(obs, dtype=np.float64)[ok]
    mom = sub.moments()
    free_a = sub.n_members > 1 and mom["epistemic_var"].mean() > 0
    free_b = mom["aleatoric_var"].mean() > 0
    if not (free_a or free_b):
        raise ValueError("the predictions have no spread to recalibrate (one point-head member, no noise runs)")

    def f(x):
        a = float(np.exp(x[0])) if free_a else 1.0
        b = float(np.exp(x[-1])) if free_b else 1.0
        return _nll(sub, y, a, b)

    x0 = np.zeros(int(free_a) + int(free_b))
    res = minimize(f, x0, method="L-BFGS-B", bounds=[(np.log(0.02), np.log(50.0))] * x0.size)
    a = float(np.exp(res.x[0])) if free_a else 1.0
    b = float(np.exp(res.x[-1])) if free_b else 1.0
    info = {"n_points": int(ok.sum()), "nll_before": _nll(sub, y, 1.0, 1.0), "nll_after": _nll(sub, y, a, b)}
    recal = Recalibration("variance", a, b, info=info)
    if method == "isotonic":
        pit = np.sort(sub.with_recalibration(recal).cdf(y))
        n = min(knots, pit.size)
        levels = np.linspace(0.0, 1.0, n)
        x = np.quantile(pit, levels)
        x[0], x[-1] = 0.0, 1.0
        x = np.maximum.accumulate(x + np.arange(n) * 1e-9)  # strictly increasing: R is invertible
        x = (x - x[0]) / (x[-1] - x[0])
        recal = Recalibration("isotonic", a, b, x.tolist(), levels.tolist(), info=info)
    elif method != "variance":
        raise ValueError(f"unknown recalibration {method!r}; use none, variance or isotonic")
    return recal
