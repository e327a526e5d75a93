"""H SAF ASCAT surface soil moisture CDR (H119) swath observations in the WARP5 cell layout (contiguous ragged).

``sm`` is the degree of saturation in %; the reader returns it as a fraction
0..1 (units ``1``: relative, not m3/m3; CASM's transfer maps it to SMAP's
scale). Filters: surface state flag ``ssf`` in ``surface_states`` (default
unknown or unfrozen, QA4SM's FIL_ASCAT_UNFROZEN_UNKNOWN), ``conf_flag`` 0 and
``proc_flag`` 0 (FIL_ASCAT_NO_CONF_FLAGS, FIL_ASCAT_NO_PROC_FLAGS), and
``sm_noise`` at most ``max_noise`` % (this project's limit, not H SAF's).
"""

from __future__ import annotations

import numpy as np

from smfusion.data.sensors.base import Sensor, register_sensor


def _good(df, section) -> np.ndarray:
    keep = np.isfinite(df["sm"].values) & np.isin(df["ssf"].values, section.surface_states)
    if section.conf_flag_zero:
        keep &= np.asarray(df["conf_flag"].values == 0)
    if section.proc_flag_zero:
        keep &= np.asarray(df["proc_flag"].values == 0)
    if section.max_noise is not None:
        with np.errstate(invalid="ignore"):
            keep &= np.asarray(df["sm_noise"].values <= section.max_noise)
    return keep


ASCAT = register_sensor(Sensor(
    name="ascat", variables=("sm", "sm_noise", "ssf", "conf_flag", "proc_flag"), good=_good,
    value=lambda df: df["sm"].values / 100.0, units="1", day="local", error=None))
