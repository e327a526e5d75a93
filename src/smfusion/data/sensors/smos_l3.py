"""SMOS CATDS L3 soil moisture (v339, one orbit direction per product) in the QA4SM cell layout (orthogonal).

Filters (each a field of :class:`smfusion.config.sensors.SmosL3Cells`):
``Science_Flags`` bits set -> dropped (default: 3 strong topography, 6/7/8
snow, 11 frost, 12 ice: the flags QA4SM marks mandatory plus its frozen-ground
set); ``Rfi_Prob`` above ``max_rfi_prob``; ``Chi_2`` above ``max_chi2``;
``Soil_Moisture_Dqx`` (the retrieval's uncertainty) above ``max_dqx`` (off by default).
Negative soil moisture (fill) is NaN.
"""

from __future__ import annotations

import numpy as np

from smfusion.data.sensors.base import Sensor, bits_clear, register_sensor


def _good(df, section) -> np.ndarray:
    sm = df["Soil_Moisture"].values
    keep = np.isfinite(sm) & (sm >= 0) & bits_clear(df["Science_Flags"].values, section.science_flag_bits)
    with np.errstate(invalid="ignore"):
        for var, limit in (("Rfi_Prob", section.max_rfi_prob), ("Chi_2", section.max_chi2),
                           ("Soil_Moisture_Dqx", section.max_dqx)):
            if limit is not None:
                keep &= np.asarray(df[var].values <= limit)
    return keep


SMOS_L3 = register_sensor(Sensor(
    name="smos_l3", variables=("Soil_Moisture", "Soil_Moisture_Dqx", "Chi_2", "Science_Flags", "Rfi_Prob"),
    good=_good, value=lambda df: df["Soil_Moisture"].values, units="m3 m-3", day="stamp",
    error="Soil_Moisture_Dqx"))
