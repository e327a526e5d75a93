"""JAXA AMSR2 and AMSR-E L3 TB (:func:`smfusion.io.amsr_l3tb.open_amsr_l3tb`; 0.1/0.25 degree lat/lon onto the
cells by :func:`smfusion.grids.latlon.latlon_to_cells`) -> ``tb_h_<sensor>_<ff>``, ``tb_v_<sensor>_<ff>`` (K)
for each frequency code ``ff``. One module, two sensors: ``amsr2`` and ``amsre`` (section
:class:`smfusion.config.tb.AmsrFiles` each)."""

from __future__ import annotations

import pandas as pd

from smfusion.data.tb_sensors.base import around, expand_paths, register_tb_sensor
from smfusion.errors import DataError

PRODUCT = {"amsr2": "AMSR2", "amsre": "AMSR-E"}  # sensor -> the name in the files


def _variables(name: str, section) -> list[str]:
    return [f"tb_{p}_{name}_{f}" for f in section.frequencies for p in ("h", "v")]


@register_tb_sensor("amsre", variables=_variables)
@register_tb_sensor("amsr2", variables=_variables)
def read_amsr(sensor: str, s, cells, start, end):
    from smfusion.grids.latlon import latlon_to_cells
    from smfusion.io.amsr_l3tb import open_amsr_l3tb, parse_amsr_l3tb_name

    orbit = "A" if s.orbit == "asc" else "D"
    lo, hi = pd.Timestamp(start or "1900-01-01"), pd.Timestamp(end or "2200-01-01")
    paths = []
    for p in expand_paths(s.paths, f"tb_files.{sensor}.paths"):
        info = parse_amsr_l3tb_name(p)
        if info["orbit"] == orbit and info["freq"] in s.frequencies and lo <= info["date"] <= hi:
            paths.append(p)
    if not paths:
        return None
    cube = open_amsr_l3tb(paths, bbox=around(cells), sensor=PRODUCT[sensor])
    sites = latlon_to_cells(cube, cells.grid, cells.rows, cells.cols, min_valid_fraction=s.min_valid_fraction)
    names = {f"tb_{p}_{f}_{s.orbit}": f"tb_{p}_{sensor}_{f}" for f in s.frequencies for p in ("h", "v")}
    missing = [v for v in names if v not in sites]
    if missing:
        raise DataError(f"{sensor} files give no {missing}", field=f"tb_files.{sensor}.frequencies")
    return sites[list(names)].rename(names)
