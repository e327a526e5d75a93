"""SMOS CATDS L3TB (:func:`smfusion.io.smos_l3tb.open_smos_l3tb`; M25, angle class or quadratic fit at
``angle``), one orbit direction -> ``tb_h_smos``, ``tb_v_smos`` (K). Section: :class:`smfusion.config.tb.SmosFiles`."""

from __future__ import annotations

from smfusion.data.tb_sensors.base import dated, expand_paths, register_tb_sensor, to_cells


def _variables(name: str, section) -> list[str]:
    return ["tb_h_smos", "tb_v_smos"]


@register_tb_sensor("smos", variables=_variables)
def read_smos(name: str, s, cells, start, end):
    from smfusion.io.smos_l3tb import open_smos_l3tb, parse_smos_l3tb_name

    paths = [p for p in expand_paths(s.paths, "tb_files.smos.paths")
             if parse_smos_l3tb_name(p)[0] == ("A" if s.orbit == "asc" else "D")]
    paths = dated(paths, r"_CDF3T[AD]_(\d{8})T", start, end, "tb_files.smos.paths")
    if not paths:
        return None
    cube = open_smos_l3tb(paths, angle=s.angle, mode=s.mode, max_accuracy=s.max_accuracy,
                          max_rfi_fraction=s.max_rfi_fraction, min_views=s.min_views)
    o = s.orbit
    return to_cells(cube, {f"tb_h_{o}": "tb_h_smos", f"tb_v_{o}": "tb_v_smos"}, cells, 0.5)
