"""How an ensemble's predictions combine into one predictive distribution.

Member ``i`` predicts a distribution with mean ``m_i`` and variance ``v_i``
(a probabilistic head; ``v_i = 0`` for a point head). The ensemble's predictive
distribution is the equal-weight mixture of the members' distributions, so by
the law of total variance

* epistemic variance = variance of the member means, ``mean_i (m_i - m)^2``
  with ``m = mean_i m_i`` (ddof 0: zero when the members agree);
* aleatoric variance = mean of the member variances, ``mean_i v_i``;
* total variance = epistemic + aleatoric.

Input-noise runs (``uncertainty.noise_runs``) add the variance of member
``i``'s mean over the noisy runs, averaged over members, to the aleatoric part
(``sqrt(mean_i var_r(q_ir))`` is :func:`aleatoric_std`).

Every member's distribution is a Gaussian mixture with ``K_i`` components
(``K = 1`` for Gaussian and point heads); :func:`ensemble_mixture` flattens the
ensemble into one mixture of ``sum_i K_i`` components with weights ``w_ik / N``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["epistemic_std", "aleatoric_std", "total_std", "mixture_moments", "combine_members", "ensemble_mixture"]


def epistemic_std(members: np.ndarray) -> np.ndarray:
    """Std over axis 0 (members), ddof 0: zero when the members agree."""
    return np.asarray(members, dtype=np.float64).std(axis=0).astype(np.float32)


def aleatoric_std(noisy: np.ndarray) -> np.ndarray:
    """``sqrt(mean over members (axis 0) of the variance over noisy runs (axis 1))``."""
    q = np.asarray(noisy, dtype=np.float64)
    return np.sqrt(q.var(axis=1).mean(axis=0)).astype(np.float32)


def total_std(epistemic: np.ndarray | None, aleatoric: np.ndarray | None) -> np.ndarray:
    """``sqrt(epistemic**2 + aleatoric**2)`` (a missing part counts as zero)."""
    parts = [np.asarray(p, dtype=np.float64) ** 2 for p in (epistemic, aleatoric) if p is not None]
    if not parts:
        raise ValueError("no spread given")
    return np.sqrt(sum(parts))


def mixture_moments(loc: np.ndarray, scale: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``sum_k w_k m_k`` and variance ``sum_k w_k (s_k^2 + (m_k - mean)^2)`` of a Gaussian mixture
    whose components lie on the last axis (weights summing to 1)."""
    loc, scale, weight = (np.asarray(a, dtype=np.float64) for a in (loc, scale, weight))
    mean = (weight * loc).sum(-1)
    var = (weight * (scale**2 + (loc - mean[..., None]) ** 2)).sum(-1)
    return mean, var


def combine_members(means: np.ndarray, variances: np.ndarray | None = None, noise_var: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:
    """Mean, epistemic, aleatoric and total variance of an ensemble (members on axis 0; see the module doc).

    ``variances``: each member's predictive variance (None: point heads, 0); ``noise_var``: the
    input-noise variance (already averaged over members) added to the aleatoric part.
    """
    m = np.asarray(means, dtype=np.float64)
    mean = m.mean(axis=0)
    epi = m.var(axis=0)
    ale = np.zeros_like(mean) if variances is None else np.asarray(variances, dtype=np.float64).mean(axis=0)
    if noise_var is not None:
        ale = ale + np.asarray(noise_var, dtype=np.float64)
    return {"mean": mean, "epistemic_var": epi, "aleatoric_var": ale, "total_var": epi + ale}


def ensemble_mixture(loc: np.ndarray, scale: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
    """Members (axis 0) of mixtures (components on the last axis) -> one mixture over
    ``members * components`` on the last axis, weights divided by the number of members."""
    n = loc.shape[0]

    def flat(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(np.asarray(a), 0, -2).reshape(*a.shape[1:-1], n * a.shape[-1])

    return flat(loc), flat(scale), flat(np.asarray(weight) / n)
