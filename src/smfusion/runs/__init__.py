"""The inference layer: load any trained run and run its forward passes.

- :mod:`~smfusion.runs.load`: a run directory read back (config, fitted adapter, split, members).
- :mod:`~smfusion.runs.passes`: the one forward loop (clean pass with every head output, noisy passes,
  carried recurrent state) behind evaluation, ``predict`` and product blocks.
- :mod:`~smfusion.runs.ensembles`: the law of total variance over members.
- :mod:`~smfusion.runs.predictive`: the predictive distribution and its recalibration.
- :mod:`~smfusion.runs.run`: :class:`Run`, what evaluation, products, reports and the CLI ask.

``from smfusion.runs import Run`` loads :mod:`smfusion.runs.run` on first use (PEP 562), so this
package's ``__init__`` imports none of its submodules at import time.
"""

from __future__ import annotations

__all__ = ["Run", "Passes", "RECALIBRATION_FILE"]


def __getattr__(name: str):
    if name in __all__:
        from smfusion.runs import run

        return getattr(run, name)
    raise AttributeError(f"module 'smfusion.runs' has no attribute {name!r}")
