"""Names of the layers of predictions and products, built here and nowhere else: ``<variable><suffix>``.

=====================  ==========================================================================
suffix                 layer
=====================  ==========================================================================
``""``                 the ensemble mean
``_std``               total predictive standard deviation (:data:`STD`)
``_epistemic_std``     spread of the members' means (:data:`EPISTEMIC_STD`)
``_aleatoric_std``     members' predictive variances and input noise (:data:`ALEATORIC_STD`)
``_q<level>``          predictive quantile (:func:`quantile_suffix`)
``_ensemble_std``      standard deviation of the member predictions (:data:`ENSEMBLE_STD`)
``_climatology``       the run's day-of-year target climatology (:data:`CLIMATOLOGY`, products)
``_obs``               the observed target beside test predictions (:data:`OBSERVED`)
=====================  ==========================================================================

Quantile layers are ``<variable>_q<level>``. The level is the quantile in percent, two digits at least, a decimal point written ``p``: 0.05 ->
``_q05``, 0.5 -> ``_q50``, 0.025 -> ``_q02p5``. :func:`quantile_suffix` writes it and
:func:`split_quantile` reads it back, so that writers and readers agree on one rule.
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["quantile_suffix", "split_quantile", "layer", "STD", "EPISTEMIC_STD", "ALEATORIC_STD", "ENSEMBLE_STD",
           "CLIMATOLOGY", "OBSERVED", "DISTRIBUTION_SUFFIXES"]

STD = "_std"
EPISTEMIC_STD = "_epistemic_std"
ALEATORIC_STD = "_aleatoric_std"
ENSEMBLE_STD = "_ensemble_std"
CLIMATOLOGY = "_climatology"
OBSERVED = "_obs"
DISTRIBUTION_SUFFIXES = (STD, EPISTEMIC_STD, ALEATORIC_STD)  # the std layers, in the order they are listed

_QUANTILE = re.compile(r"^(.*)_q(\d+(?:p\d+)?)$")


def quantile_suffix(q: float) -> str:
    """Layer suffix of quantile level ``q``: 0.05 -> ``_q05``, 0.5 -> ``_q50``, 0.025 -> ``_q02p5``."""
    pct = round(100 * float(q), 6)
    return f"_q{int(pct):02d}" if pct == int(pct) else "_q" + f"{pct:g}".replace(".", "p").zfill(4)


def split_quantile(name: str) -> Optional[tuple[str, float]]:
    """``(variable, level in percent)`` of a quantile layer's name (``sm_q02p5`` -> ``("sm", 2.5)``; a bare
    suffix gives ``""``), None for any other name."""
    m = _QUANTILE.match(name)
    return (m.group(1), float(m.group(2).replace("p", "."))) if m else None


def layer(var: str, suffix: str = "") -> str:
    """The layer of ``var`` with ``suffix`` (one of this module's suffixes, or :func:`quantile_suffix`)."""
    return f"{var}{suffix}"
