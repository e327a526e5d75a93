"""Config sections of the brightness-temperature (CASM) path: the twin and real-file TB readers, the ``tb`` adapter.

Variable names are the same for both readers, so one run config works on
either: ``tb_h_<sensor>[_<ff>]`` / ``tb_v_<sensor>[_<ff>]`` (K; sensors
``smos``, ``smap``, ``amsr2``, ``amsre``; ``ff`` the AMSR frequency code, e.g.
``06``, ``10``) and the SMAP target ``sm_smap`` (m3/m3). docs/casm.md.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from smfusion.config.base import Day, _Strict


class CasmTwinConfig(_Strict):
    """Reader ``casm_twin`` (SYNTHETIC; :func:`smfusion.synthetic.casm_twin.make_casm_twin`).

    The twin is always generated over ``start..end`` (its random draws depend on
    the span) and then cut to the period a run asks for. ``path``: a twin written
    by ``smfusion casm-twin --out`` to read instead of generating (its own
    seed and span then apply).
    """

    path: Optional[str] = None
    seed: int = 0
    n_cells: Optional[int] = Field(200, ge=1)  # None: every usable CONUS-sample cell
    start: Day = "2002-01-01"
    end: Day = "2020-12-31"
    dielectric: Literal["mironov", "dobson"] = "mironov"


class SmosFiles(_Strict):
    """SMOS CATDS L3TB files (:func:`smfusion.io.smos_l3tb.open_smos_l3tb`) -> ``tb_h_smos``, ``tb_v_smos``."""

    paths: list[str]  # files or glob patterns
    orbit: Literal["asc", "dsc"] = "asc"  # A files: 6 am local solar time (as SMAP AM)
    angle: float = Field(42.5, gt=0, lt=90)
    mode: Literal["fit", "class"] = "fit"
    max_accuracy: Optional[float] = Field(None, gt=0)
    max_rfi_fraction: Optional[float] = Field(None, ge=0, le=1)
    min_views: int = Field(1, ge=1)


class AmsrFiles(_Strict):
    """JAXA AMSR2 / AMSR-E L3 TB files (:func:`smfusion.io.amsr_l3tb.open_amsr_l3tb`) ->
    ``tb_h_<sensor>_<ff>``, ``tb_v_<sensor>_<ff>`` for each frequency code ``ff``."""

    paths: list[str]
    frequencies: list[str] = Field(default_factory=lambda: ["06", "10"])
    orbit: Literal["asc", "dsc"] = "dsc"  # descending: 1:30 am, nearest thermal equilibrium
    min_valid_fraction: float = Field(0.5, gt=0, le=1)

    @field_validator("frequencies")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        known = ("06", "07", "10", "18", "23", "36", "89")
        bad = [f for f in v if f not in known]
        if bad or not v:
            raise ValueError(f"frequency codes {bad or v} not in {list(known)}")
        return v


class SmapFiles(_Strict):
    """SMAP L3 (SPL3SMP) granules or L2 (SPL2SMP) half-orbits -> ``tb_h_smap``, ``tb_v_smap`` (good-quality
    TB) and ``sm_smap`` (recommended-quality soil moisture), area-weighted from M36 to the reader's grid."""

    paths: list[str]
    level: Literal["l3", "l2"] = "l3"
    overpass: Literal["am", "pm"] = "am"
    min_valid_fraction: float = Field(0.5, gt=0, le=1)


class TBFilesConfig(_Strict):
    """Reader ``tb_files``: real TB files on EASE-Grid 2.0 cells (``grid``), one site per cell.

    Cells: ``rows``/``cols`` of ``grid``, or every cell whose centre lies in
    ``bbox`` = [lon_min, lat_min, lon_max, lat_max] (the readers' order). At least one sensor section.
    """

    grid: str = "M25"
    rows: Optional[list[int]] = None
    cols: Optional[list[int]] = None
    bbox: Optional[tuple[float, float, float, float]] = None
    smos: Optional[SmosFiles] = None
    amsr2: Optional[AmsrFiles] = None
    amsre: Optional[AmsrFiles] = None
    smap: Optional[SmapFiles] = None

    @model_validator(mode="after")
    def _check(self) -> "TBFilesConfig":
        if (self.rows is None) != (self.cols is None) or (self.rows is not None and len(self.rows) != len(self.cols)):
            raise ValueError("rows and cols: give both, of one length")
        if (self.rows is None) == (self.bbox is None):
            raise ValueError("give the cells as rows/cols or as bbox (one of them)")
        if self.bbox is not None and not (-180 <= self.bbox[0] < self.bbox[2] <= 180
                                          and -90 <= self.bbox[1] < self.bbox[3] <= 90):
            raise ValueError(f"bbox must be [lon_min, lat_min, lon_max, lat_max], got {list(self.bbox)}")
        if not any((self.smos, self.amsr2, self.amsre, self.smap)):
            raise ValueError("name at least one sensor section: smos, amsr2, amsre, smap")
        return self


class TBConfig(_Strict):
    """The ``tb`` data adapter (``data.adapter: tb``; :mod:`smfusion.data.adapters.tb`).

    ``composite_days`` N > 1: the inputs (and target) are averaged over the
    passes available in consecutive N-day windows starting at
    ``composite_origin`` (CASM: 3 days) before anything else; the run's time
    step is then N days. A day (window) without a valid value of every dynamic
    input is not trained on and not predicted (NaN). ``target_product``: a
    product file of another run (site layout, e.g. the SMOS-like run over its
    overlap with AMSR-E) whose ``target_layer`` is the target where
    ``data.target`` has no value: how a source without overlap with the target
    is trained through the overlap with a source that has one.
    """

    composite_days: int = Field(1, ge=1, le=31)
    composite_origin: Day = "2002-01-01"
    target_product: Optional[str] = None
    target_layer: str = "sm"
