"""SMOS-IC (INRA-CESBIO, v105, ascending) in the QA4SM cell layout (orthogonal).

Filters: ``Quality_Flag`` above ``max_quality_flag`` dropped (0 = recommended,
QA4SM's FIL_SMOS_QUAL_RECOMMENDED); ``Scene_Flags`` bits set -> dropped
(default bit 3, frozen; QA4SM's FIL_SMOS_UNFROZEN). Negative soil moisture is NaN.
"""

from __future__ import annotations

import numpy as np

from smfusion.data.sensors.base import Sensor, bits_clear, register_sensor


def _good(df, section) -> np.ndarray:
    sm = df["Soil_Moisture"].values
    q = df["Quality_Flag"].values
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(sm) & (sm >= 0) & np.isfinite(q) & (q <= section.max_quality_flag)
    return keep & bits_clear(df["Scene_Flags"].values, section.scene_flag_bits)


SMOS_IC = register_sensor(Sensor(
    name="smos_ic", variables=("Soil_Moisture", "Soil_Moisture_StdError", "Quality_Flag", "Scene_Flags"),
    good=_good, value=lambda df: df["Soil_Moisture"].values, units="m3 m-3", day="stamp",
    error="Soil_Moisture_StdError"))
