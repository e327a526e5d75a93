"""Config of the ``sensor_cells`` reader: soil-moisture retrievals in TU Wien cell files, collocated onto points.

One section per product under ``data.sensor_cells.products``; its key ``K``
names the variables the reader writes (``sm_K``, and ``sm_K_error`` where the
product has an error estimate). ``sensor`` picks the product's module
(:mod:`smfusion.data.sensors`) and so the fields below: each field's default
is the product's recommended filter (docs/casm.md, "Real sensor records over
Hawaii", says where each comes from and which are this project's choices).
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, model_validator

from smfusion.config.base import _Strict


class _Cells(_Strict):
    path: str  # folder of NNNN.nc cell files; relative paths are under smfusion.settings.data_dir()
    max_distance_km: Optional[float] = Field(None, gt=0)  # default: the section's max_distance_km


class SmapL3Cells(_Cells):
    """SMAP L3 passive (SPL3SMP v9, AM and PM in one indexed-ragged file): one overpass per section."""

    sensor: Literal["smap_l3"]
    overpass: Literal["am", "pm"]  # Overpass 1 = descending 6 am, 2 = ascending 6 pm (local solar time)
    # retrieval_qual_flag: "recommended" = bit 0 clear (NSIDC's recommended quality); "success" = bit 2 clear
    # (retrieval attempted and successful, recommended or not: coastal and island pixels); "none"
    quality: Literal["recommended", "success", "none"] = "recommended"


class SmosL3Cells(_Cells):
    """SMOS CATDS L3 SM (orthogonal): Science_Flags bits set -> dropped; RFI probability, Chi-2, DQX limits."""

    sensor: Literal["smos_l3"]
    science_flag_bits: list[int] = Field(default_factory=lambda: [3, 6, 7, 8, 11, 12])
    max_rfi_prob: Optional[float] = Field(0.2, ge=0, le=1)
    max_chi2: Optional[float] = Field(3.0, gt=0)
    max_dqx: Optional[float] = Field(None, gt=0)  # Soil_Moisture_Dqx limit (off: no producer threshold)


class SmosIcCells(_Cells):
    """SMOS-IC (orthogonal): Quality_Flag 0 (recommended) and Scene_Flags bits set -> dropped."""

    sensor: Literal["smos_ic"]
    max_quality_flag: int = Field(0, ge=0, le=2)
    scene_flag_bits: list[int] = Field(default_factory=lambda: [3])  # bit 3: frozen


class AscatCells(_Cells):
    """ASCAT H119 swath observations (contiguous ragged), degree of saturation (%) -> fraction 0..1."""

    sensor: Literal["ascat"]
    surface_states: list[int] = Field(default_factory=lambda: [0, 1])  # ssf: unknown, unfrozen
    conf_flag_zero: bool = True  # no confidence flag set (surface state, topography, wetland, noise, sensitivity)
    proc_flag_zero: bool = True
    max_noise: Optional[float] = Field(15.0, gt=0)  # sm_noise, % saturation


class EsaCciCells(_Cells):
    """ESA CCI SM passive / combined (orthogonal): ``flag`` 0 only; ``freqbandID`` kept as ``K_freqbandID``."""

    sensor: Literal["esa_cci"]
    flags_allowed: list[int] = Field(default_factory=lambda: [0])


SensorSection = Annotated[Union[SmapL3Cells, SmosL3Cells, SmosIcCells, AscatCells, EsaCciCells],
                          Field(discriminator="sensor")]


class SensorCellsConfig(_Strict):
    """Reader ``sensor_cells``: the sites and the products collocated onto them.

    Sites: the stored points of the product named by ``points`` (e.g. the SMAP
    L3 points, ``points: smap_am``), or the centres of the EASE-2 ``grid``
    cells (M36 or M25) inside ``bbox`` = [lon_min, lat_min, lon_max, lat_max].
    ``bbox`` also limits the product points. Each product contributes its
    nearest stored point to a site within ``max_distance_km`` (great circle)
    that has at least ``min_valid_days`` valid (filtered) days in its record,
    else NaN. Days: the local solar day of each observation (UTC + lon/15 h)
    for swath and overpass products, the file's date for daily products; the
    mean of a day's valid observations.
    """

    products: dict[str, SensorSection]
    points: Optional[str] = None
    grid: Optional[Literal["M36", "M25"]] = None
    bbox: Optional[tuple[float, float, float, float]] = None
    max_distance_km: float = Field(30.0, gt=0)
    min_valid_days: int = Field(100, ge=1)  # a product point needs this many valid days in its record

    @model_validator(mode="after")
    def _check(self) -> "SensorCellsConfig":
        if (self.points is None) == (self.grid is None):
            raise ValueError("give the sites as points (a product name) or as grid + bbox (one of them)")
        if self.points is not None and self.points not in self.products:
            raise ValueError(f"points names {self.points!r}, not one of products {sorted(self.products)}")
        if self.grid is not None and self.bbox is None:
            raise ValueError("grid needs a bbox [lon_min, lat_min, lon_max, lat_max]")
        if self.bbox is not None and not (-180 <= self.bbox[0] < self.bbox[2] <= 180
                                          and -90 <= self.bbox[1] < self.bbox[3] <= 90):
            raise ValueError(f"bbox must be [lon_min, lat_min, lon_max, lat_max], got {list(self.bbox)}")
        bad = [k for k in self.products if not k.replace("_", "").isalnum()]
        if bad:
            raise ValueError(f"product names {bad}: letters, digits and _ only (they name variables sm_<name>)")
        return self
