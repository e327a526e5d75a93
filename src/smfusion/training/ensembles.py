"""How an ensemble's predictions combine: the mean and its spread.

* epistemic std: spread of the members' (clean) predictions,
  ``sqrt(mean_i (p_i - mean(p))**2)`` over members ``i``;
* aleatoric std: spread caused by input noise, ``sqrt(mean_i var_r(q_ir))``
  where ``q_ir`` is member ``i``'s prediction in noisy run ``r`` (the
  within-member variance over runs, averaged over members);
* total std: ``sqrt(epistemic**2 + aleatoric**2)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["epistemic_std", "aleatoric_std", "total_std"]


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
