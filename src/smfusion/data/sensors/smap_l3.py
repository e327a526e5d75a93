"""SMAP L3 passive (SPL3SMP v9) in the QA4SM cell layout: AM and PM passes in one indexed-ragged file.

``Overpass`` 1 is the descending 6 am pass, 2 the ascending 6 pm pass (local
solar time); a section keeps one of them, so AM and PM never mix. NSIDC's
recommended quality: ``retrieval_qual_flag`` bit 0 clear ("retrieval
recommended"; ``quality: success`` keeps every successful retrieval, bit 2
clear, for islands and coasts where bit 0 is set everywhere); ``soil_moisture`` outside 0.02..0.5 (its valid range) is NaN.
"""

from __future__ import annotations

import numpy as np

from smfusion.data.sensors.base import Sensor, bits_clear, register_sensor

OVERPASS = {"am": 1, "pm": 2}


def _good(df, section) -> np.ndarray:
    keep = np.asarray(df["Overpass"].values == OVERPASS[section.overpass]) & np.isfinite(df["soil_moisture"].values)
    if section.quality != "none":
        keep &= bits_clear(df["retrieval_qual_flag"].values, [0] if section.quality == "recommended" else [2])
    return keep


SMAP_L3 = register_sensor(Sensor(
    name="smap_l3", variables=("soil_moisture", "soil_moisture_error", "retrieval_qual_flag", "Overpass"),
    good=_good, value=lambda df: df["soil_moisture"].values, units="m3 m-3", day="local",
    error="soil_moisture_error"))
