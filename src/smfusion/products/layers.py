"""The long-term product's prediction layers of one block: mean and predictive-distribution layers.

:func:`distribution_layers` is what :mod:`smfusion.products.longterm` calls per
(cell block x time block): the run's predictive distribution
(:meth:`smfusion.runs.Run.predict_block`, recalibrated as the run's config says
unless overridden, composited over days before the spread is taken) as layers
named ``<prefix><suffix>`` (:meth:`~smfusion.runs.predictive.Predictive.layers`):
the mean, ``_std`` (total), ``_epistemic_std``, ``_aleatoric_std`` and the
quantile layers. :func:`layer_attrs` gives their CF attributes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from smfusion.io.cf import SOIL_MOISTURE_STANDARD_NAME
from smfusion.io.layer_names import DISTRIBUTION_SUFFIXES, layer, split_quantile
from smfusion.runs import Run
from smfusion.runs.predictive import layer_attrs as _dist_attrs

__all__ = ["distribution_layers", "layer_attrs", "applied_recalibration", "ancillary_of", "DISTRIBUTION_SUFFIXES"]


def distribution_layers(dist: dict, names: dict[str, str], quantiles) -> dict[str, np.ndarray]:
    """Layers (``names[var] + suffix`` -> (site, time')) of one block's predictive distributions
    (target -> :class:`~smfusion.runs.predictive.Predictive`); ``names``: target -> prefix."""
    out = {}
    for var, prefix in names.items():
        for suffix, arr in dist[var].layers(quantiles).items():
            out[layer(prefix, suffix)] = arr
    return out


def applied_recalibration(run: Run, method: Optional[str], noise_runs: int) -> str:
    """The recalibration the product's layers get (``method`` None: the run's config): fitted now when not
    saved yet; ``none`` when off or when the run has no validation data."""
    recals = run.recalibration(method, noise_runs=noise_runs)
    return next(iter(recals.values())).method if recals else "none"


def ancillary_of(prefix: str, var: str, names, units: str = "") -> str:
    """The ``ancillary_variables`` of layer ``prefix``: its distribution layers among ``names``, std layers
    first (total, epistemic, aleatoric), then quantiles by level."""
    found = [n for n in map(str, names) if n.startswith(prefix + "_")
             and layer_attrs(n[len(prefix):], var, units) is not None]

    def key(n: str):
        suffix = n[len(prefix):]
        if suffix in DISTRIBUTION_SUFFIXES:
            return (0, DISTRIBUTION_SUFFIXES.index(suffix))
        return (1, split_quantile(suffix)[1])

    return " ".join(sorted(found, key=key))


def layer_attrs(suffix: str, var: str, units: str, recal: str = "none") -> Optional[dict]:
    """CF attributes of a distribution layer of the soil-moisture product; None for other suffixes."""
    quantile = split_quantile(suffix)
    if suffix in DISTRIBUTION_SUFFIXES or quantile is not None and quantile[0] == "":
        attrs = _dist_attrs(suffix, var, units, SOIL_MOISTURE_STANDARD_NAME, recal)
        if quantile is not None:
            attrs["standard_name"] = SOIL_MOISTURE_STANDARD_NAME
        return attrs
    return None
