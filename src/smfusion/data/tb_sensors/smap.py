"""SMAP L3 (SPL3SMP, :func:`smfusion.io.smap_l3.open_granules`) granules or L2 (SPL2SMP,
:func:`smfusion.io.smap_l2.grid_l2_granules`) half-orbits, M36, one overpass -> ``tb_h_smap``, ``tb_v_smap``
(good-quality TB, K) and ``sm_smap`` (recommended-quality retrieval, m3/m3), area-weighted onto the cells.
Section: :class:`smfusion.config.tb.SmapFiles`."""

from __future__ import annotations

from smfusion.data.tb_sensors.base import around, dated, expand_paths, register_tb_sensor, to_cells
from smfusion.errors import DataError

DATE_IN_NAME = {"l3": r"_(\d{8})_", "l2": r"_[AD]_(\d{8})T"}


def _variables(name: str, section) -> list[str]:
    return ["tb_h_smap", "tb_v_smap", "sm_smap"]


@register_tb_sensor("smap", variables=_variables)
def read_smap(name: str, s, cells, start, end):
    paths = dated(expand_paths(s.paths, "tb_files.smap.paths"), DATE_IN_NAME[s.level], start, end,
                  "tb_files.smap.paths")
    if not paths:
        return None
    variables = ("soil_moisture", "tb_h_corrected", "tb_v_corrected")
    bbox = around(cells)
    if s.level == "l3":
        from smfusion.io.smap_l3 import open_granules

        cube = open_granules(paths, passes=(s.overpass.upper(),), variables=variables, tb_quality="good", bbox=bbox,
                             lazy=False)
    else:
        from smfusion.io.smap_l2 import L2_DEFAULT_VARIABLES, grid_l2_granules

        cube = grid_l2_granules(paths, L2_DEFAULT_VARIABLES, tb_quality="good", bbox=bbox)
    o = s.overpass
    names = {f"soil_moisture_{o}": "sm_smap", f"tb_h_corrected_{o}": "tb_h_smap", f"tb_v_corrected_{o}": "tb_v_smap"}
    missing = [v for v in names if v not in cube]
    if missing:
        raise DataError(f"SMAP files give no {missing} (overpass {o})", field="tb_files.smap.overpass")
    return to_cells(cube, names, cells, s.min_valid_fraction)
