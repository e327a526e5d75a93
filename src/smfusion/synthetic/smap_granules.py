"""Synthetic SMAP L3 radiometer granules in the exact SPL3SMP / SPL3SMP_E HDF5 layout.

No real granule is available offline, so tests (and later issues) use files
written here. The layout follows the NSIDC data-field lists of
*SMAP L3 Radiometer Global Daily 36 km EASE-Grid Soil Moisture* (SPL3SMP,
versions 8-9) and its 9 km enhanced twin (SPL3SMP_E, versions 5-6), and the
SMAP L3 product specification (JPL D-72551):

* file name ``SMAP_L3_SM_P_YYYYMMDD_Rnnnnn_vvv.h5`` (``SMAP_L3_SM_P_E_...`` for 9 km);
* groups ``Soil_Moisture_Retrieval_Data_AM`` (descending, 6 am local solar time)
  and ``Soil_Moisture_Retrieval_Data_PM`` (ascending, 6 pm), each holding 2-D
  (rows, cols) datasets on EASE-Grid 2.0 M36 (406 x 964) or M09 (1624 x 3856);
  every PM dataset name carries the suffix ``_pm``;
* float32 fields with ``_FillValue`` -9999.0, uint16 flags and indices with
  ``_FillValue`` 65534, ``units``/``long_name``/``valid_min``/``valid_max`` attrs;
* ``retrieval_qual_flag`` bit 0 = 0 means recommended quality, bit 1 retrieval
  attempted (0 = yes), bit 2 retrieval succeeded (0 = yes), bit 3 freeze/thaw
  retrieval succeeded (0 = yes);
* ``tb_time_seconds``: seconds since 2000-01-01T11:58:55.816Z (J2000);
* ``latitude``/``longitude`` filled only where a retrieval exists, as in the product;
* ``/Metadata/DatasetIdentification`` (``shortName``) and ``/Metadata/Extent``
  (``rangeBeginningDateTime``, ``rangeEndingDateTime``).

The granule carries the fields smfusion reads plus the row/column indices. The
values are synthetic (smooth field + noise), reproducible from ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon

__all__ = [
    "PRODUCT_GRID",
    "J2000_EPOCH",
    "FLOAT_FILL",
    "UINT_FILL",
    "granule_filename",
    "write_granule",
    "truncate_file",
]

PRODUCT_GRID = {"SPL3SMP": "M36", "SPL3SMP_E": "M09"}
J2000_EPOCH = np.datetime64("2000-01-01T11:58:55.816", "ms")
FLOAT_FILL = np.float32(-9999.0)
UINT_FILL = np.uint16(65534)

_GROUP = "Soil_Moisture_Retrieval_Data_{}"
# bit meanings of tb_qual_flag_h / tb_qual_flag_v (bit 0 first), as in the real SPL2SMP v8 granules
TB_FLAG_MEANINGS = ("quality", "range", "RFI_detection", "RFI_correction", "NEDT", "direct_sun_correction",
                    "reflected_sun_correction", "reflected_moon_correction", "direct_galaxy_correction",
                    "reflected_galaxy_correction", "atmosphere_correction", "Faraday_rotation_correction",
                    "null_value_bit", "water_correction", "RFI_check", "RFI_clean")

# name -> (dtype, attrs) for each dataset in a retrieval group (AM names).
_FIELDS = {
    "soil_moisture": ("f4", {
        "long_name": "Representative DCA soil moisture measurement for the Earth based grid cell.",
        "units": "cm**3/cm**3", "valid_min": np.float32(0.02), "valid_max": np.float32(0.5)}),
    "soil_moisture_error": ("f4", {
        "long_name": "Net uncertainty measure of soil moisture measure for the Earth based grid cell.",
        "units": "cm**3/cm**3", "valid_min": np.float32(0.0), "valid_max": np.float32(0.2)}),
    "retrieval_qual_flag": ("u2", {
        "long_name": "Bit flags that record the conditions and the quality of the DCA retrieval algorithms "
                     "that generate soil moisture for the grid cell",
        "flag_masks": np.array([1, 2, 4, 8], dtype="u2"),
        "flag_meanings": "Retrieval_recommended Retrieval_attempted Retrieval_success FT_retrieval_success",
        "valid_min": np.uint16(0), "valid_max": np.uint16(15)}),
    "surface_flag": ("u2", {
        "long_name": "Bit flags that record ambient surface conditions for the grid cell",
        "flag_masks": np.array([1 << b for b in range(13)], dtype="u2"),
        "flag_meanings": "Static_water_body Radar_water_body_detection Coastal_proximity Urban_area "
                         "Precipitation Snow_or_ice Permanent_snow_or_ice Radar_frozen_ground "
                         "Model_frozen_ground Reserved Mountainous_terrain Dense_vegetation Nadir_region",
        "valid_min": np.uint16(0), "valid_max": np.uint16(65533)}),
    "tb_v_corrected": ("f4", {
        "long_name": "Weighted average of L1c_tb_v_corrected_fore and L1c_tb_v_corrected_aft.",
        "units": "Kelvin", "valid_min": np.float32(0.0), "valid_max": np.float32(330.0)}),
    "tb_h_corrected": ("f4", {
        "long_name": "Weighted average of L1c_tb_h_corrected_fore and L1c_tb_h_corrected_aft.",
        "units": "Kelvin", "valid_min": np.float32(0.0), "valid_max": np.float32(330.0)}),
    "tb_qual_flag_v": ("u2", {
        "long_name": "Bit flags that represent the quality of the vertical polarization brightness temperature "
                     "within each grid cell",
        "flag_masks": np.array([1 << b for b in range(16)], dtype="u2"),
        "flag_meanings": " ".join(f"Vertical_polarization_{m}" for m in TB_FLAG_MEANINGS)}),
    "tb_qual_flag_h": ("u2", {
        "long_name": "Bit flags that represent the quality of the horizontal polarization brightness temperature "
                     "within each grid cell",
        "flag_masks": np.array([1 << b for b in range(16)], dtype="u2"),
        "flag_meanings": " ".join(f"Horizontal_polarization_{m}" for m in TB_FLAG_MEANINGS)}),
    "surface_temperature": ("f4", {
        "long_name": "Temperature at land surface based on GMAO GEOS-5 data.",
        "units": "Kelvins", "valid_min": np.float32(0.0), "valid_max": np.float32(350.0)}),
    "vegetation_water_content": ("f4", {
        "long_name": "Representative measure of water in the vegetation within the 36 km grid cell.",
        "units": "kg/m**2", "valid_min": np.float32(0.0), "valid_max": np.float32(30.0)}),
    "tb_time_seconds": ("f8", {
        "long_name": "Arithmetic average of the acquisition time of all of the brightness temperature "
                     "footprints with a center that falls within the EASE grid cell in UTC, in seconds "
                     "since 2000-01-01T11:58:55.816Z (J2000).",
        "units": "seconds", "valid_min": 0.0, "valid_max": 999999999999.0}),
    "latitude": ("f4", {
        "long_name": "Latitude of the center of the Earth based grid cell.",
        "units": "degrees_north", "valid_min": np.float32(-90.0), "valid_max": np.float32(90.0)}),
    "longitude": ("f4", {
        "long_name": "Longitude of the center of the Earth based grid cell.",
        "units": "degrees_east", "valid_min": np.float32(-180.0), "valid_max": np.float32(179.999)}),
    "EASE_row_index": ("u2", {
        "long_name": "The row index of the 36 km EASE grid cell that contains the associated data.",
        "valid_min": np.uint16(0), "valid_max": np.uint16(65533)}),
    "EASE_column_index": ("u2", {
        "long_name": "The column index of the 36 km EASE grid cell that contains the associated data.",
        "valid_min": np.uint16(0), "valid_max": np.uint16(65533)}),
}


def granule_filename(product: str, date, crid: str = "R19240", version: int = 1) -> str:
    """NSIDC file name of a granule, e.g. ``SMAP_L3_SM_P_20150401_R19240_001.h5``."""
    if product not in PRODUCT_GRID:
        raise ValueError(f"unknown product {product!r}; expected one of {sorted(PRODUCT_GRID)}")
    day = pd.Timestamp(date).strftime("%Y%m%d")
    stem = "SMAP_L3_SM_P_E" if product == "SPL3SMP_E" else "SMAP_L3_SM_P"
    return f"{stem}_{day}_{crid}_{version:03d}.h5"


def _window(grid, bbox):
    if bbox is None:
        return 0, grid.nrows, 0, grid.ncols
    lon0, lat0, lon1, lat1 = bbox
    r0, c0 = latlon_to_rowcol(grid, lat1, lon0)
    r1, c1 = latlon_to_rowcol(grid, lat0, lon1)
    r0, c0 = max(int(r0), 0), max(int(c0), 0)
    r1 = int(r1) + 1 if r1 >= 0 else grid.nrows
    c1 = int(c1) + 1 if c1 >= 0 else grid.ncols
    return r0, r1, c0, c1


def _fields(grid, date, overpass: str, rng: np.random.Generator, window, coverage: float):
    """Arrays of one retrieval group (AM names) over the row/col ``window``."""
    r0, r1, c0, c1 = window
    rows = np.arange(r0, r1)
    cols = np.arange(c0, c1)
    lat, lon = rowcol_to_latlon(grid, rows[:, None], cols[None, :])
    lat = np.broadcast_to(lat, (rows.size, cols.size))
    lon = np.broadcast_to(lon, (rows.size, cols.size))
    sub = (rows.size, cols.size)

    observed = rng.random(sub) < coverage
    attempted_fail = observed & (rng.random(sub) < 0.05)
    not_recommended = observed & (rng.random(sub) < 0.25)
    ft_fail = observed & (rng.random(sub) < 0.1)
    flag = (not_recommended | attempted_fail).astype(np.uint16) | (attempted_fail.astype(np.uint16) << 2)
    flag |= ft_fail.astype(np.uint16) << 3
    success = observed & ~attempted_fail

    doy = pd.Timestamp(date).day_of_year
    base = 0.25 + 0.12 * np.sin(np.radians(lat) * 3.0) * np.cos(np.radians(lon) * 2.0 + doy / 58.0)
    sm = np.clip(base + rng.normal(0.0, 0.02, sub), 0.0, 0.6).astype(np.float32)
    tbv = (300.0 - 160.0 * sm + rng.normal(0.0, 1.0, sub)).astype(np.float32)
    tbh = (tbv - 25.0 - 40.0 * sm).astype(np.float32)
    vwc = np.clip(3.0 + 2.5 * np.cos(np.radians(lat) * 2.0) + rng.normal(0, 0.3, sub), 0, 25).astype(np.float32)
    local_hour = 6.0 if overpass == "AM" else 18.0
    utc = (np.datetime64(pd.Timestamp(date).strftime("%Y-%m-%d"), "ms")
           + ((local_hour - lon / 15.0) * 3_600_000).astype("timedelta64[ms]"))
    tsec = (utc - J2000_EPOCH).astype("timedelta64[ms]").astype(np.float64) / 1000.0
    tsec += rng.uniform(-120.0, 120.0, sub)

    out = {}

    def put(name, values, where, fill):
        block = np.full(sub, fill, dtype=values.dtype)
        block[where] = values[where]
        out[name] = block

    f4 = FLOAT_FILL
    put("soil_moisture", sm, success, f4)
    put("soil_moisture_error", np.full(sub, 0.04, np.float32), success, f4)
    put("tb_v_corrected", tbv, observed, f4)
    put("tb_h_corrected", tbh, observed, f4)
    put("vegetation_water_content", vwc, observed, f4)
    put("surface_temperature", (285.0 + 15.0 * np.cos(np.radians(lat)) + rng.normal(0, 2.0, sub)).astype(np.float32),
        observed, f4)
    for pol in ("h", "v"):  # bit 0 (not good) on 5 %, RFI detected (bit 2) on 10 %, water correction (bit 13) on 20 %
        tflag = ((rng.random(sub) < 0.05).astype(np.uint16) | (rng.random(sub) < 0.1).astype(np.uint16) << 2
                 | (rng.random(sub) < 0.2).astype(np.uint16) << 13)
        put(f"tb_qual_flag_{pol}", tflag, observed, UINT_FILL)
    put("tb_time_seconds", tsec, observed, -9999.0)
    put("latitude", lat.astype(np.float32), observed, f4)
    put("longitude", lon.astype(np.float32), observed, f4)
    put("retrieval_qual_flag", flag, observed, UINT_FILL)
    sflag = (rng.random(sub) < 0.1).astype(np.uint16) << 4 | (rng.random(sub) < 0.2).astype(np.uint16) << 11
    put("surface_flag", sflag, observed, UINT_FILL)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    put("EASE_row_index", rr.astype(np.uint16), observed, UINT_FILL)
    put("EASE_column_index", cc.astype(np.uint16), observed, UINT_FILL)
    return out


def write_granule(
    directory: str | Path,
    date,
    product: str = "SPL3SMP",
    *,
    seed: int = 0,
    bbox: tuple[float, float, float, float] | None = None,
    coverage: float = 0.6,
    omit_groups: tuple[str, ...] = (),
    omit_fields: tuple[str, ...] = (),
    shape: tuple[int, int] | None = None,
    filename: str | None = None,
    crid: str = "R19240",
    version: int = 1,
    compression: str | None = "gzip",
) -> Path:
    """Write one synthetic granule into ``directory`` and return its path.

    ``bbox`` (lon_min, lat_min, lon_max, lat_max) limits where data are
    written (elsewhere fill values, as over oceans); ``coverage`` is the
    fraction of cells a pass observes. For error tests: ``omit_groups``
    ("AM"/"PM"), ``omit_fields`` (AM names, dropped from both passes) and
    ``shape`` (write arrays of a wrong size). ``compression``: HDF5 filter
    of the chunked datasets ("gzip" like the product, "lzf", or None: fastest).
    """
    grid = get_grid(PRODUCT_GRID[product]) if product in PRODUCT_GRID else None
    if grid is None:
        raise ValueError(f"unknown product {product!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (filename or granule_filename(product, date, crid, version))
    rng = np.random.default_rng([seed, int(pd.Timestamp(date).strftime("%Y%m%d"))])
    window = _window(grid, bbox)
    day = pd.Timestamp(date).strftime("%Y-%m-%d")
    chunks = (max(1, grid.nrows // 4), max(1, grid.ncols // 4))
    with h5py.File(path, "w") as h5:
        ident = h5.create_group("Metadata/DatasetIdentification")
        ident.attrs["shortName"] = product
        ident.attrs["VersionID"] = "009" if product == "SPL3SMP" else "006"
        ext = h5.create_group("Metadata/Extent")
        ext.attrs["rangeBeginningDateTime"] = f"{day}T00:00:00.000Z"
        ext.attrs["rangeEndingDateTime"] = f"{day}T23:59:59.999Z"
        for overpass in ("AM", "PM"):
            fields = _fields(grid, date, overpass, rng, window, coverage)
            if overpass in omit_groups:
                continue
            grp = h5.create_group(_GROUP.format(overpass))
            suffix = "_pm" if overpass == "PM" else ""
            for name, (dtype, attrs) in _FIELDS.items():
                if name in omit_fields:
                    continue
                full_shape = tuple(shape) if shape is not None else grid.shape
                fill = -9999.0 if dtype == "f8" else (FLOAT_FILL if dtype == "f4" else UINT_FILL)
                ds = grp.create_dataset(
                    name + suffix, shape=full_shape, dtype=dtype, fillvalue=fill,
                    chunks=tuple(max(1, min(c, s)) for c, s in zip(chunks, full_shape)),
                    **({"compression": compression, "shuffle": True} if compression else {}),
                )
                r0, r1, c0, c1 = window
                r1, c1 = min(r1, full_shape[0]), min(c1, full_shape[1])
                if r1 > r0 and c1 > c0:
                    ds[r0:r1, c0:c1] = fields[name][: r1 - r0, : c1 - c0]
                ds.attrs["_FillValue"] = np.array(fill, dtype=dtype)
                for key, val in attrs.items():
                    ds.attrs[key] = val
    return path


def truncate_file(path: str | Path, keep_fraction: float = 0.5) -> Path:
    """Cut a file to ``keep_fraction`` of its bytes (a broken download), in place."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(int(size * keep_fraction))
    return path
