"""ESA CCI SM v09.x (passive or combined) in the QA4SM cell layout (orthogonal), daily, 0.25 degree.

Filter: ``flag`` in ``flags_allowed`` (default 0 = no flag, QA4SM's
FIL_C3S_FLAG_0); ``sm`` -9999 (fill) is NaN. ``freqbandID`` (the bands merged
on the day: the sensor mix, AMSR-E 2002-2011, AMSR2 from 2012, SMOS) is passed
through as the daily variable ``<name>_freqbandID``.
"""

from __future__ import annotations

import numpy as np

from smfusion.data.sensors.base import Sensor, register_sensor


def _good(df, section) -> np.ndarray:
    sm = df["sm"].values
    return np.isfinite(sm) & (sm >= 0) & np.isin(df["flag"].values, section.flags_allowed)


ESA_CCI = register_sensor(Sensor(
    name="esa_cci", variables=("sm", "sm_uncertainty", "flag", "freqbandID"), good=_good,
    value=lambda df: df["sm"].values, units="m3 m-3", day="stamp", error="sm_uncertainty",
    extra=("freqbandID",)))
