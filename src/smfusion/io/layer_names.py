"""Names of the predictive quantile layers of predictions and products: ``<variable>_q<level>``.

The level is the quantile in percent, two digits at least, a decimal point written ``p``: 0.05 ->
``_q05``, 0.5 -> ``_q50``, 0.025 -> ``_q02p5``. :func:`quantile_suffix` writes it and
:func:`split_quantile` reads it back, so that writers and readers agree on one rule.
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["quantile_suffix", "split_quantile"]

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
