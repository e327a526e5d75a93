"""The published field layout of the fusion examples (Batchu, Nearing & Gulshan 2023).

One ``tf.train.Example`` per (in-situ sensor, time), as in the gzip TFRecord
shards ``gs://eoscience-public/soil_moisture_retrieval_data/data-NNNNN-of-00500.tfrecord.gz``.
Field names are the published ones (the dataset README). Where the published
``run_inference.py`` parses a field, its dtype and shape are taken from there
(``origin="inference script"``): ``sensor_id`` bytes; ``center_lat``,
``center_long``, ``timestamp``, ``sm_0_5``, ``sm_5_5`` float; ``smap_sm``,
``gldas_sm`` int64 scalars divided by 255; the Sentinel-1/2, NASA DEM and
SoilGrids images int64 of ``size x size`` (512 x 512 in the published shards).
For the other fields only the name is published (``origin="README"``): their
dtype and shape here follow the same conventions and are an assumption, so
the reader accepts either numeric kind and checks only the number of values.

This one table drives the reader (:mod:`smfusion.data.points`), the synthetic
writer (:mod:`smfusion.synthetic.fusion_shards`), the fusion model's input
groups (:data:`GROUPS`) and the inputs of the published exported model
(:data:`PUBLISHED_MODEL`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from smfusion.errors import DataError
from smfusion.io.example_proto import PackedVarints

FLOAT, INT64, BYTES = "float", "int64", "bytes"
SCALAR, IMAGE, VECTOR = "scalar", "image", "vector"
SCRIPT, README = "inference script", "README"
BYTE_SCALED = "byte-scaled 0-255 (physical range not published)"


@dataclass(frozen=True)
class Field:
    """One feature of the published examples."""

    name: str
    dtype: str  # FLOAT (float_list, float32) | INT64 (int64_list) | BYTES (bytes_list)
    shape: str  # SCALAR: 1 value | IMAGE: size x size, row-major | VECTOR: any length
    source: str  # heading of the published field list
    units: str
    scaling: str = "none"
    divisor: float = 1.0  # value the model sees = stored value / divisor
    required: bool = False
    origin: str = README  # where dtype and shape come from
    codes: tuple[tuple[str, float], ...] = ()  # bytes fields: text -> number the model sees

    def n_values(self, size: int) -> int | None:
        return {SCALAR: 1, IMAGE: size * size}.get(self.shape)


def _img(name, source, units, scaling=BYTE_SCALED, origin=README):
    return Field(name, INT64, IMAGE, source, units, scaling, origin=origin)


def _times(prefix: str, source: str) -> list[Field]:
    return [
        Field(f"{prefix}_time_millis_diff", FLOAT, SCALAR, source, "ms",
              "source time minus `timestamp` (sign assumed)"),
        Field(f"{prefix}_timestamp", FLOAT, SCALAR, source, "ms since 1970-01-01 UTC"),
    ]


_S1, _S2 = "Sentinel-1", "Sentinel-2"
S1_BANDS = ("VH", "VV", "angle")
S2_BANDS = ("B11", "B12", "B2", "B3", "B4", "B5", "B6", "B7", "B8")
SOILGRIDS = {"bd": "bdod", "clay": "clay", "sand": "sand", "silt": "silt"}


def _build() -> list[Field]:
    f = [
        Field("center_lat", FLOAT, SCALAR, "Properties", "degrees_north", required=True, origin=SCRIPT),
        Field("center_long", FLOAT, SCALAR, "Properties", "degrees_east", required=True, origin=SCRIPT),
        Field("sensor_id", BYTES, SCALAR, "Properties", "<NETWORK>__<STATION>__<SENSOR_TYPE>", required=True,
              origin=SCRIPT),
        Field("size", INT64, SCALAR, "Properties", "pixels (image height = width)"),
        Field("timestamp", FLOAT, SCALAR, "Properties", "ms since 1970-01-01 UTC",
              "float32: steps of 131 s near 2020", required=True, origin=SCRIPT),
        Field("utm_easting_northing_image_polygon", FLOAT, VECTOR, "Properties", "m (easting, northing pairs)"),
        Field("utm_zone", BYTES, SCALAR, "Properties", "text, e.g. 14N"),
        Field("mask", INT64, IMAGE, "Properties", "1 = valid pixel"),
        _img("aster_B13", "ASTER", "thermal infrared band 13"),
        _img("aster_B14", "ASTER", "thermal infrared band 14"),
        *_times("aster", "ASTER"),
        _img("cgls_lc_crops-coverfraction", "Copernicus land cover", "%", "none"),
        _img("cgls_lc_discrete_classification", "Copernicus land cover", "class code", "none"),
        _img("cgls_lc_grass-coverfraction", "Copernicus land cover", "%", "none"),
        _img("cgls_lc_moss-coverfraction", "Copernicus land cover", "%", "none"),
        *_times("cgls_lc", "Copernicus land cover"),
    ]
    for band in ("evaporation", "rainfall", "sm", "snow_depth", "temp"):
        published = band == "sm"
        f.append(Field(f"gldas_{band}", INT64, SCALAR, "GLDAS", "0-10 cm soil moisture" if published else band,
                       "stored / 255" if published else BYTE_SCALED, divisor=255.0 if published else 1.0,
                       origin=SCRIPT if published else README))
    f += _times("gldas", "GLDAS")
    f += [_img("modis_leaf_area_Fpar", "MODIS LAI", "% (MCD15A3H Fpar x 100)", "none"),
          _img("modis_leaf_area_Lai", "MODIS LAI", "m2/m2 x 10 (MCD15A3H Lai)", "none"),
          *_times("modis_leaf_area", "MODIS LAI")]
    f += [_img("nasa_dem_elevation", "NASA DEM", "m", "none (metres)", SCRIPT), *_times("nasa_dem", "NASA DEM")]
    units = {"VH": "backscatter", "VV": "backscatter", "angle": "incidence angle"}
    f += [_img(f"sentinel_1_{b}", _S1, units[b], origin=SCRIPT) for b in S1_BANDS]
    f += [_img(f"sentinel_1_{s}_{b}", _S1, f"{s} of {b} over the last year") for s in ("max", "mean", "min")
          for b in S1_BANDS]
    f.append(Field("sentinel_1_orbit_pass", BYTES, SCALAR, _S1, "ASCENDING or DESCENDING",
                   codes=(("ASCENDING", 1.0), ("DESCENDING", 0.0))))
    f += _times("sentinel_1", _S1)
    f += [_img(f"sentinel_2_{b}", _S2, "surface reflectance", origin=SCRIPT) for b in S2_BANDS]
    f.append(Field("sentinel_2_cloud_percentage", FLOAT, SCALAR, _S2, "%"))
    f += [_img(f"sentinel_2_{s}_{b}", _S2, f"{s} of {b} over the last year") for s in ("max", "mean", "min")
          for b in S2_BANDS + ("sen_2_mask",)]
    f.append(_img("sentinel_2_sen_2_mask", _S2, "cloud mask"))
    f += _times("sentinel_2", _S2)
    f += [Field("smap_sm", INT64, SCALAR, "SMAP", "soil moisture", "stored / 255", divisor=255.0, origin=SCRIPT),
          *_times("smap", "SMAP")]
    for short, prop in SOILGRIDS.items():
        f.append(_img(f"soil_grids_{short}_{prop}_0-5cm_mean", "SoilGrids", f"{prop} 0-5 cm", origin=SCRIPT))
        f += _times(f"soil_grids_{short}", "SoilGrids")
    f += [Field("sm_0_5", FLOAT, SCALAR, "Soil moisture", "m3/m3", "0 = no data", origin=SCRIPT),
          Field("sm_5_5", FLOAT, SCALAR, "Soil moisture", "m3/m3", "0 = no data; label when sm_0_5 is 0",
                origin=SCRIPT)]
    return f


#: Every published field, in the order of the published list.
FIELDS: dict[str, Field] = {fld.name: fld for fld in _build()}
REQUIRED = tuple(n for n, fld in FIELDS.items() if fld.required)
PROPERTY_FIELDS = ("center_lat", "center_long", "sensor_id", "size", "timestamp",
                   "utm_easting_northing_image_polygon", "utm_zone", "mask")
LABEL, LABEL_FALLBACK = "sm_0_5", "sm_5_5"
NO_DATA = 0.0  # the published parser's default for absent float/int features
PUBLISHED_SIZE = 512

#: Copernicus Global Land Cover (100 m) discrete classification codes.
LANDCOVER_CODES = (0, 20, 30, 40, 50, 60, 70, 80, 90, 100, 111, 112, 113, 114, 115, 116,
                   121, 122, 123, 124, 125, 126, 200)


@dataclass(frozen=True)
class Group:
    """One input group of the fusion model: one encoder over these fields."""

    name: str
    kind: str  # "image": CNN over the patch (scalar fields broadcast) | "scalar": MLP
    channels: tuple[str, ...]
    time_source: str | None = None  # prefix whose <prefix>_time_millis_diff is the time input
    categorical: tuple[str, ...] = ()  # channels one-hot encoded over LANDCOVER_CODES
    title: str = ""

    @property
    def timed(self) -> bool:
        return self.time_source is not None

    def time_field(self) -> str | None:
        return f"{self.time_source}_time_millis_diff" if self.timed else None

    def fields(self) -> list[str]:
        """Every stored field the group needs (channels and time delta)."""
        return list(self.channels) + ([self.time_field()] if self.timed else [])


def channel_names(group: Group) -> list[str]:
    """Model channels of a group: one per field, one per class code for categorical fields."""
    out = []
    for ch in group.channels:
        out += [f"{ch}_{code}" for code in LANDCOVER_CODES] if ch in group.categorical else [ch]
    return out


def _s(prefix: str, bands, stats=("min", "mean", "max")) -> tuple[str, ...]:
    return tuple(f"{prefix}_{s}_{b}" for b in bands for s in stats)


_S1_ORDER = ("VV", "VH", "angle")
_S2_ORDER = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B11", "B12")
GROUPS: dict[str, Group] = {g.name: g for g in (
    Group("s1", "image", tuple(f"sentinel_1_{b}" for b in _S1_ORDER) + _s("sentinel_1", _S1_ORDER)
          + ("sentinel_1_orbit_pass",), "sentinel_1", title="S1"),
    Group("s2", "image", tuple(f"sentinel_2_{b}" for b in _S2_ORDER) + ("sentinel_2_sen_2_mask",)
          + _s("sentinel_2", _S2_ORDER + ("sen_2_mask",)) + ("sentinel_2_cloud_percentage",), "sentinel_2", title="S2"),
    Group("dem", "image", ("nasa_dem_elevation",), title="DEM"),
    Group("soilgrids", "image", tuple(f"soil_grids_{k}_{v}_0-5cm_mean" for k, v in SOILGRIDS.items()),
          title="SoilGrids"),
    Group("smap", "scalar", ("smap_sm",), "smap", title="SMAP"),
    Group("gldas", "scalar", ("gldas_sm", "gldas_rainfall", "gldas_temp", "gldas_evaporation", "gldas_snow_depth"),
          "gldas", title="GLDAS"),
    Group("modis", "image", ("modis_leaf_area_Lai", "modis_leaf_area_Fpar"), "modis_leaf_area", title="MODIS"),
    Group("landcover", "image", ("cgls_lc_discrete_classification", "cgls_lc_crops-coverfraction",
                                 "cgls_lc_grass-coverfraction", "cgls_lc_moss-coverfraction"),
          categorical=("cgls_lc_discrete_classification",), title="Land cover"),
    Group("aster", "image", ("aster_B13", "aster_B14"), "aster", title="ASTER"),
)}
GROUP_ORDER = tuple(GROUPS)

#: The paper's ablation (its Table of results), in its order; each row is one fusion.groups.
PAPER_ABLATION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SMAP+GLDAS NN", ("smap", "gldas")),
    ("S1+DEM", ("s1", "dem")),
    ("S1+DEM+S2", ("s1", "dem", "s2")),
    ("S1+DEM+S2+SoilGrids", ("s1", "dem", "s2", "soilgrids")),
    ("S1+DEM+S2+SoilGrids+SMAP+GLDAS", ("s1", "dem", "s2", "soilgrids", "smap", "gldas")),
)
BASELINE_ROWS = ("SMAP alone", "GLDAS alone (rescaled)")


@dataclass(frozen=True)
class PublishedModel:
    """Inputs and output of the published exported model, as ``run_inference.py`` feeds it (batch of 1)."""

    image: tuple[str, ...] = ("sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle", "sentinel_2_B4", "sentinel_2_B3",
                              "sentinel_2_B2", "sentinel_2_B8", "sentinel_2_B11", "sentinel_2_B12",
                              "nasa_dem_elevation")
    low_res_image: tuple[str, ...] = ("soil_grids_sand_sand_0-5cm_mean", "soil_grids_silt_silt_0-5cm_mean",
                                      "soil_grids_clay_clay_0-5cm_mean", "soil_grids_bd_bdod_0-5cm_mean")
    auxiliary: tuple[str, ...] = ("smap_sm", "gldas_sm")  # each divided by 255
    dem_range_m: tuple[float, float] = (0.0, 3000.0)  # DEM -> int(clip((e - lo) / (hi - lo) * 255, 0, 255))
    image_tensor: str = "ImageTensor:0"
    low_res_tensor: str = "LowResImageTensor:0"
    auxiliary_tensor: str = "AuxTensor:0"
    output_tensor: str = "clip_by_value:0"  # soil moisture clipped to [0, 1]
    tags: tuple[str, ...] = ("serve",)


PUBLISHED_MODEL = PublishedModel()


def groups_for(names: Sequence[str]) -> list[Group]:
    """The groups ``names`` in schema order; unknown names raise ValueError."""
    unknown = [g for g in names if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown input group(s) {unknown}; known: {list(GROUPS)}")
    return [GROUPS[g] for g in GROUP_ORDER if g in names]


def example_fields(groups: Sequence[str] = GROUP_ORDER, label: bool = True) -> list[str]:
    """Property fields, the groups' fields and (``label``) ``sm_0_5``: what a writer puts in every example."""
    out = list(PROPERTY_FIELDS)
    for g in groups_for(groups):
        out += [f for f in g.fields() if f not in out]
    return out + ([LABEL] if label else [])


def ablation_rows() -> list[tuple[str, list[str]]]:
    """(row name, groups) of the paper's ablation, in its order (SMAP+GLDAS NN first)."""
    return [(name, list(groups)) for name, groups in PAPER_ABLATION]


def field_values(ex: dict, name: str, size: int, path="<memory>", index: int = 0,
                 take: np.ndarray | None = None) -> np.ndarray | list:
    """Stored values of field ``name`` in a decoded example, checked against the schema.

    Numeric fields: a float64 array divided by the field's divisor (int64 or float
    accepted: most dtypes are not published); ``take``: only the values at these
    positions (a packed field decodes only those). Bytes fields: the list of bytes.
    A wrong kind or number of values raises DataError (file, record, field).
    """
    fld = FIELDS[name]
    v = ex[name]
    if fld.dtype == BYTES:
        if not isinstance(v, list):
            raise DataError(f"record {index}: numbers where the schema has bytes", path=path, field=name)
        return v
    if isinstance(v, list):
        raise DataError(f"record {index}: bytes where the schema has {fld.dtype}", path=path, field=name)
    want = fld.n_values(size)
    if want is not None and v.size != want:
        what = "1" if fld.shape == SCALAR else f"size*size = {want}"
        raise DataError(f"record {index}: {v.size} values, expected {what}", path=path, field=name)
    if isinstance(v, PackedVarints):
        v = v.values() if take is None else v.take(take)
    elif take is not None:
        v = v[take]
    out = v.astype(np.float64)
    return out / fld.divisor if fld.divisor != 1.0 else out


def image_fields() -> list[str]:
    """Names of the size x size fields (left packed when decoding, cropped when read)."""
    return [f.name for f in FIELDS.values() if f.shape == IMAGE]


def decode_codes(name: str, values: list) -> float:
    """The number a bytes field with ``codes`` stands for (NaN for unknown text)."""
    text = values[0].decode("utf-8", "replace").strip().upper() if values else ""
    return dict(FIELDS[name].codes).get(text, np.nan)


def label_value(ex: dict, path="<memory>", index: int = 0) -> float:
    """The label: ``sm_0_5``, else ``sm_5_5`` where ``sm_0_5`` is absent or 0 (no data); NaN when neither."""
    for name in (LABEL, LABEL_FALLBACK):
        if name in ex:
            v = float(field_values(ex, name, 0, path, index)[0])
            if v != NO_DATA and np.isfinite(v):
                return v
    return np.nan
