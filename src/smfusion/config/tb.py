"""Config sections of the brightness-temperature (CASM) path: the twin and real-file TB readers, the ``tb`` adapter.

Variable names are the same for both readers, so one run config works on
either: ``tb_h_<sensor>[_<ff>]`` / ``tb_v_<sensor>[_<ff>]`` (K; sensors
``smos``, ``smap``, ``amsr2``, ``amsre``; ``ff`` the AMSR frequency code, e.g.
``06``, ``10``) and the SMAP target ``sm_smap`` (m3/m3). docs/casm.md.

The sensor sections of ``data.tb_files`` are a registry (:data:`TB_SECTIONS`,
filled by :func:`tb_section` on each section class): a key of ``tb_files`` that
is not a geometry field is validated by the class registered under that name,
and refused as an unknown key when none is. The data layer registers the
sensor's reader under the same name (:mod:`smfusion.data.tb_sensors`); a test
asserts that the two registries name the same sensors.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Optional

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_serializer, model_validator
from pydantic_core import InitErrorDetails

from smfusion.config.base import Day, _Strict

#: TB sensor name -> the class of its ``data.tb_files.<name>`` section (registration order = reading order)
TB_SECTIONS: dict[str, type[_Strict]] = {}
_GEOMETRY = ("grid", "rows", "cols", "bbox")  # the fields of TBFilesConfig: no sensor's name
#: the sections of the layout before the registry (fixed fields then): written as ``null`` when absent, so that
#: the configs of then keep their dump and hash (:meth:`smfusion.config.RunConfig.hash`)
LISTED_WHEN_ABSENT = ("smos", "amsr2", "amsre", "smap")


def tb_section(name: str) -> Callable[[type[_Strict]], type[_Strict]]:
    """Class decorator: ``data.tb_files.<name>`` is validated by the decorated section class (a sensor that
    keeps the default input check needs a ``paths`` field: files or glob patterns)."""

    def deco(cls: type[_Strict]) -> type[_Strict]:
        if name in TB_SECTIONS and TB_SECTIONS[name] is not cls:
            raise ValueError(f"TB sensor section '{name}' already registered by {TB_SECTIONS[name].__name__}")
        if name in _GEOMETRY or not name.replace("_", "").isalnum():
            raise ValueError(f"TB sensor section '{name}': a geometry field's name, or not letters, digits and _")
        TB_SECTIONS[name] = cls
        return cls

    return deco


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


@tb_section("smos")
class SmosFiles(_Strict):
    """SMOS CATDS L3TB files (:func:`smfusion.io.smos_l3tb.open_smos_l3tb`) -> ``tb_h_smos``, ``tb_v_smos``."""

    paths: list[str]  # files or glob patterns
    orbit: Literal["asc", "dsc"] = "asc"  # A files: 6 am local solar time (as SMAP AM)
    angle: float = Field(42.5, gt=0, lt=90)
    mode: Literal["fit", "class"] = "fit"
    max_accuracy: Optional[float] = Field(None, gt=0)
    max_rfi_fraction: Optional[float] = Field(None, ge=0, le=1)
    min_views: int = Field(1, ge=1)


@tb_section("amsre")  # registered second (decorators apply bottom up)
@tb_section("amsr2")
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


@tb_section("smap")
class SmapFiles(_Strict):
    """SMAP L3 (SPL3SMP) granules or L2 (SPL2SMP) half-orbits -> ``tb_h_smap``, ``tb_v_smap`` (good-quality
    TB) and ``sm_smap`` (recommended-quality soil moisture), area-weighted from M36 to the reader's grid."""

    paths: list[str]
    level: Literal["l3", "l2"] = "l3"
    overpass: Literal["am", "pm"] = "am"
    min_valid_fraction: float = Field(0.5, gt=0, le=1)


def _details(exc: ValidationError, prefix: tuple = ()) -> list[InitErrorDetails]:
    return [InitErrorDetails(type=e["type"], loc=(*prefix, *e["loc"]), input=e["input"], ctx=e.get("ctx", {}))
            for e in exc.errors()]


class TBFilesConfig(_Strict):
    """Reader ``tb_files``: real TB files on EASE-2 cells (``grid``), one site per cell.

    Cells: ``rows``/``cols`` of ``grid``, or every cell whose centre lies in
    ``bbox`` = [lon_min, lat_min, lon_max, lat_max] (the readers' order). At least one sensor section: a key
    registered in :data:`TB_SECTIONS` (built in: ``smos``, ``amsr2``, ``amsre``, ``smap``), read back as
    :attr:`sections` or as an attribute (``cfg.smos``; None when absent).
    """

    grid: str = "M25"
    rows: Optional[list[int]] = None
    cols: Optional[list[int]] = None
    bbox: Optional[tuple[float, float, float, float]] = None
    _sections: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _sensor_sections(cls, data: Any, handler) -> "TBFilesConfig":
        """Each registered sensor key validated by its section class (an error keeps its key path, e.g.
        ``amsr2.frequencies``); the other keys by the fields (an unknown key is refused as one)."""
        if not isinstance(data, dict):
            return handler(data)
        sections, errors = {}, []
        for name in TB_SECTIONS:
            if data.get(name) is not None:
                try:
                    sections[name] = TB_SECTIONS[name].model_validate(data[name])
                except ValidationError as exc:
                    errors += _details(exc, (name,))
        try:
            out = handler({k: v for k, v in data.items() if k not in TB_SECTIONS})
        except ValidationError as exc:
            errors = _details(exc) + errors
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        if not sections:
            raise ValueError(f"name at least one sensor section: {', '.join(TB_SECTIONS)}")
        out._sections = sections  # registry order
        return out

    @model_serializer(mode="wrap")
    def _dump(self, handler, info) -> dict:
        out = handler(self)
        for name in dict.fromkeys([*LISTED_WHEN_ABSENT, *self._sections]):
            section = self._sections.get(name)
            out[name] = None if section is None else section.model_dump(mode=info.mode)
        return out

    @property
    def sections(self) -> dict[str, Any]:
        """The sensor sections given: name -> section, in registration order."""
        return dict(self._sections)

    def __getattr__(self, name: str) -> Any:
        if name in TB_SECTIONS:
            return self._sections.get(name)
        return super().__getattr__(name)

    @model_validator(mode="after")
    def _check(self) -> "TBFilesConfig":
        if (self.rows is None) != (self.cols is None) or (self.rows is not None and len(self.rows) != len(self.cols)):
            raise ValueError("rows and cols: give both, of one length")
        if (self.rows is None) == (self.bbox is None):
            raise ValueError("give the cells as rows/cols or as bbox (one of them)")
        if self.bbox is not None and not (-180 <= self.bbox[0] < self.bbox[2] <= 180
                                          and -90 <= self.bbox[1] < self.bbox[3] <= 90):
            raise ValueError(f"bbox must be [lon_min, lat_min, lon_max, lat_max], got {list(self.bbox)}")
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
