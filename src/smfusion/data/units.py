"""Unit conversion of input variables, checked with UDUNITS (``cf_units``).

:func:`converter` returns ``f(x)`` taking values from ``src`` to ``dst`` units:

* any UDUNITS-convertible pair (``K`` -> ``degC``, ``mm s-1`` -> ``mm d-1``,
  ``J m-2 d-1`` -> ``W m-2``, ``Pa`` -> ``hPa``, ``1`` -> ``%``) by cf-units;
* the one physical equivalence UDUNITS cannot know, liquid water equivalent
  (density 1000 kg m-3): a mass per area and a depth of water,
  1 kg m-2 = 1 mm (so ``kg m-2 s-1`` -> ``mm d-1`` multiplies by 86400 and
  ``m`` -> ``kg m-2`` by 1000);
* anything else (``K`` -> ``mm``, an unknown unit string) is refused with a
  DataError naming the variable, before any value is converted.

Values are converted in float64 and returned as float32.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from smfusion.errors import DataError

__all__ = ["converter", "WATER_DENSITY"]

WATER_DENSITY = 1000.0  # kg m-3: 1 kg m-2 of liquid water is 1 mm deep


def _unit(text: str, var: str, path):
    from cf_units import Unit

    try:
        return Unit(text)
    except ValueError as exc:
        raise DataError(f"unknown unit {text!r} ({exc})", path=path, field=var) from None


def converter(src: str, dst: str, var: str = "", path=None) -> Callable[[np.ndarray], np.ndarray]:
    """``f(values in src) -> values in dst`` (module docstring); raises DataError when they do not convert."""
    u_src, u_dst = _unit(src, var, path), _unit(dst, var, path)
    if u_src == u_dst:
        return lambda x: np.asarray(x, dtype=np.float32)
    if u_src.is_convertible(u_dst):
        return lambda x: np.asarray(u_src.convert(np.asarray(x, dtype=np.float64), u_dst), dtype=np.float32)
    density = _unit("kg m-3", var, path)
    depth = u_src / density  # mass per area -> depth of water
    if depth.is_convertible(u_dst):
        return lambda x: np.asarray(depth.convert(np.asarray(x, dtype=np.float64) / WATER_DENSITY, u_dst),
                                    dtype=np.float32)
    mass = u_src * density  # depth of water -> mass per area
    if mass.is_convertible(u_dst):
        return lambda x: np.asarray(mass.convert(np.asarray(x, dtype=np.float64) * WATER_DENSITY, u_dst),
                                    dtype=np.float32)
    raise DataError(f"units {src!r} cannot be converted to {dst!r} (not UDUNITS-convertible, not a water"
                    " equivalent)", path=path, field=var)
