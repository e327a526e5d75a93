"""Field layout of the multi-source fusion examples (after Batchu, Nearing & Gulshan 2023).

One ``tf.train.Example`` per (sensor, time):

* property fields: ``center_lat``, ``center_long`` (float, degrees),
  ``sensor_id`` (int64), ``size`` (int64, patch side in pixels),
  ``timestamp`` (int64, ms since 1970, UTC), ``utm_zone`` (bytes, e.g. ``14N``),
  ``mask`` (size x size int64, 1 where the patch is valid);
* per source and band ``<source>_<band>``: a size x size float array, row-major;
* per time-varying source ``<source>_timestamp`` (int64 ms) and
  ``<source>_time_millis_diff`` (int64 ms, source time minus ``timestamp``);
* the label ``sm_0_5`` (float, in-situ soil moisture 0-5 cm, m3/m3), absent
  in unlabelled shards.

Sources with ``kind="scalar"`` (SMAP, GLDAS) are coarse products stored as
size x size arrays like the rest; the model reads their centre pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

_S2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B11", "B12")


def _yearly(bands: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{b}_{s}" for b in bands for s in ("min", "mean", "max"))


@dataclass(frozen=True)
class Source:
    """One input source: its bands, whether it is an image or a scalar, whether it has a time."""

    name: str
    bands: tuple[str, ...]
    kind: str = "image"  # "image": CNN encoder; "scalar": centre pixel -> MLP encoder
    timed: bool = True  # has <name>_timestamp and <name>_time_millis_diff
    categorical: bool = False  # one band of class codes (one-hot encoded by the model)

    def fields(self) -> list[str]:
        return [f"{self.name}_{b}" for b in self.bands]

    def time_fields(self) -> list[str]:
        return [f"{self.name}_timestamp", f"{self.name}_time_millis_diff"] if self.timed else []


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("s1", ("VV", "VH", "angle") + _yearly(("VV", "VH", "angle"))),
        Source("s2", _S2_BANDS + ("cloud_mask",) + _yearly(_S2_BANDS)),
        Source("dem", ("elevation",), timed=False),
        Source("soilgrids", ("bdod", "clay", "sand", "silt"), timed=False),
        Source("smap", ("sm",), kind="scalar"),
        Source("gldas", ("soil_moisture", "rainfall", "temperature", "evaporation", "snow_depth"), kind="scalar"),
        Source("modis", ("lai", "fpar")),
        Source("landcover", ("class",), timed=False, categorical=True),
    )
}

#: Copernicus Global Land Cover (100 m) discrete classification codes.
LANDCOVER_CODES = (0, 20, 30, 40, 50, 60, 70, 80, 90, 100, 111, 112, 113, 114, 115, 116,
                   121, 122, 123, 124, 125, 126, 200)

PROPERTY_FIELDS = ("center_lat", "center_long", "sensor_id", "size", "timestamp", "utm_zone", "mask")
LABEL = "sm_0_5"

#: Ablation order: the SMAP+GLDAS baseline, then one source group added per row.
GROUP_ORDER = ("smap", "gldas", "s1", "s2", "dem", "soilgrids", "modis", "landcover")

#: Human-readable band descriptions (units as in the published shards' sources).
DESCRIPTIONS = {
    "s1": "Sentinel-1 C-band backscatter (dB) VV, VH, incidence angle (deg), and their yearly min/mean/max",
    "s2": "Sentinel-2 surface reflectance B2-B8, B11, B12, cloud mask, and yearly min/mean/max of each band",
    "dem": "NASA DEM elevation (m)",
    "soilgrids": "SoilGrids 0-5 cm bulk density (cg/cm3), clay, sand, silt (g/kg)",
    "smap": "SMAP soil moisture (m3/m3)",
    "gldas": "GLDAS soil moisture 0-10 cm (kg/m2), rainfall (kg/m2/s), temperature (K), evaporation, snow depth (m)",
    "modis": "MODIS LAI (m2/m2) and FPAR (1)",
    "landcover": "Copernicus land cover class code",
}


def sources_for(groups: list[str] | tuple[str, ...]) -> list[Source]:
    """The sources of ``groups`` in schema order; unknown names raise ValueError."""
    unknown = [g for g in groups if g not in SOURCES]
    if unknown:
        raise ValueError(f"unknown input group(s) {unknown}; known: {list(SOURCES)}")
    return [SOURCES[g] for g in GROUP_ORDER if g in groups]


def example_fields(groups=tuple(GROUP_ORDER), label: bool = True) -> list[str]:
    """Every field an example needs for ``groups`` (property fields, bands, times, label)."""
    out = list(PROPERTY_FIELDS)
    for src in sources_for(groups):
        out += src.fields() + src.time_fields()
    if label:
        out.append(LABEL)
    return out


def ablation_rows(order=GROUP_ORDER) -> list[tuple[str, list[str]]]:
    """(row name, groups) with groups added one by one after SMAP+GLDAS."""
    rows = []
    for k in range(2, len(order) + 1):
        groups = list(order[:k])
        rows.append(("SMAP+GLDAS NN" if k == 2 else f"+ {order[k - 1]}", groups))
    return rows
