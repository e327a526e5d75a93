"""Reader for SMAP L2 radiometer half-orbit granules (SPL2SMP 36 km, SPL2SMP_E 9 km), and their gridding.

A granule is one half-orbit in HDF5: group ``Soil_Moisture_Retrieval_Data``
holds 1-D datasets, one value per retrieved grid cell, located by
``EASE_row_index`` / ``EASE_column_index`` (uint16) on EASE-Grid 2.0 M36
(SPL2SMP) or M09 (SPL2SMP_E); ``/Metadata/OrbitMeasuredLocation@orbitDirection``
says Ascending (6 pm local solar time) or Descending (6 am); the file name is
``SMAP_L2_SM_P[_E]_<rev>_<A|D>_<YYYYMMDDThhmmss>_<CRID>_<version>.h5``. Field
conventions (fills, valid ranges, flags, J2000 time) are those of
:mod:`smfusion.io.smap_hdf5`; verified on two real SPL2SMP v8 granules.

* :func:`read_l2_granule` -> Dataset with dim ``cell``: the requested fields,
  coords ``row``, ``col`` (grid indices), ``lat``, ``lon`` (the product's cell
  coordinates) and ``time`` (per-cell overpass time, datetime64).
* :func:`grid_l2_granules` -> the daily (time, y, x) cube of the SMAP L3
  layout (``<field>_am`` from descending, ``<field>_pm`` from ascending
  half-orbits, ``overpass_time_am/pm``), on a window of the grid. A cell seen
  by several half-orbits of one UTC day and direction keeps the observation
  whose local solar time (UTC + lon / 15 h) is nearest 6:00 (am) / 18:00 (pm),
  the L3 compositing rule.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import EASE2Grid, get_grid, latlon_to_rowcol
from smfusion.io.ease_cube import cube_coords
from smfusion.io.smap_hdf5 import (CF_ATTRS, FLAG_VARIABLES, TB_FLAG, UINT_FILL, attr_str, mask_float, open_h5,
                                   recommended_quality, seconds_to_datetime, tb_good_quality, var_attrs)

__all__ = ["L2_PRODUCT_GRID", "L2_DEFAULT_VARIABLES", "read_l2_granule", "grid_l2_granules", "find_l2_granules"]

L2_PRODUCT_GRID = {"SPL2SMP": "M36", "SPL2SMP_E": "M09"}
L2_DEFAULT_VARIABLES = ("soil_moisture", "retrieval_qual_flag", "surface_flag", "tb_v_corrected", "tb_h_corrected",
                        "tb_qual_flag_v", "tb_qual_flag_h", "surface_temperature", "vegetation_water_content")
_GROUP = "Soil_Moisture_Retrieval_Data"
_NAME_RE = re.compile(r"SMAP_L2_SM_P_(E_)?(\d{5})_([AD])_(\d{8}T\d{6})_")


def find_l2_granules(folder: str | Path, product: str | None = None) -> list[Path]:
    """SMAP L2 radiometer granules under ``folder`` (recursive), sorted by name (hence revolution)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("SMAP L2 folder not found", path=folder)
    pattern = {"SPL2SMP": "SMAP_L2_SM_P_[0-9]*.h5", "SPL2SMP_E": "SMAP_L2_SM_P_E_*.h5", None: "SMAP_L2_SM_P_*.h5"}
    if product not in pattern:
        raise ValueError(f"unknown product {product!r}")
    return sorted(folder.rglob(pattern[product]), key=lambda p: p.name)


def _product(h5, path: Path) -> str:
    short = attr_str(h5["Metadata/DatasetIdentification"], "shortName") \
        if "Metadata/DatasetIdentification" in h5 else None
    m = _NAME_RE.search(path.name)
    from_name = None if m is None else ("SPL2SMP_E" if m.group(1) else "SPL2SMP")
    if short is not None and short not in L2_PRODUCT_GRID:
        raise DataError(f"shortName {short!r} is not a SMAP L2 radiometer product ({sorted(L2_PRODUCT_GRID)})",
                        path=path, field="Metadata/DatasetIdentification/shortName")
    if short and from_name and short != from_name:
        raise DataError(f"file name says {from_name} but shortName is {short}", path=path,
                        field="Metadata/DatasetIdentification/shortName")
    product = short or from_name
    if product is None:
        raise DataError("not a SMAP L2 granule: no shortName and no NSIDC file name", path=path,
                        field="Metadata/DatasetIdentification/shortName")
    return product


def _direction(h5, path: Path) -> str:
    d = attr_str(h5["Metadata/OrbitMeasuredLocation"], "orbitDirection") \
        if "Metadata/OrbitMeasuredLocation" in h5 else None
    m = _NAME_RE.search(path.name)
    if d is None and m is not None:
        d = {"A": "Ascending", "D": "Descending"}[m.group(3)]
    if d not in ("Ascending", "Descending"):
        raise DataError(f"orbit direction {d!r} is neither Ascending nor Descending", path=path,
                        field="Metadata/OrbitMeasuredLocation/orbitDirection")
    return d


def _read_1d(g, path: Path, name: str, n: int | None) -> tuple[np.ndarray, dict]:
    if name not in g:
        raise DataError("field missing from SMAP L2 granule", path=path, field=f"{_GROUP}/{name}")
    dset = g[name]
    if len(dset.shape) != 1 or (n is not None and dset.shape[0] != n):
        raise DataError(f"expected a 1-D dataset of {n} cells, got shape {dset.shape}", path=path,
                        field=f"{_GROUP}/{name}")
    attrs = {k: dset.attrs[k] for k in ("_FillValue", "valid_min", "valid_max") if k in dset.attrs}
    return dset[()], attrs


def read_l2_granule(path: str | Path, variables: Sequence[str] = L2_DEFAULT_VARIABLES, *,
                    quality: str | None = "recommended", tb_quality: str | None = None) -> xr.Dataset:
    """One half-orbit as a Dataset over dim ``cell`` (see the module doc).

    ``quality='recommended'``: soil moisture only where bit 0 of
    ``retrieval_qual_flag`` is 0; ``tb_quality='good'``: ``tb_h/v_corrected``
    only where bit 0 of ``tb_qual_flag_h/v`` is 0. Cells whose row/column index
    is fill or outside the grid raise DataError.
    """
    path = Path(path)
    if quality not in (None, "recommended") or tb_quality not in (None, "good"):
        raise ValueError(f"quality must be 'recommended'/None and tb_quality 'good'/None, got {quality!r}, "
                         f"{tb_quality!r}")
    unknown = [v for v in variables if v not in CF_ATTRS]
    if unknown:
        raise ValueError(f"unknown SMAP L2 variables {unknown}; known: {sorted(CF_ATTRS)}")
    with open_h5(path, "SMAP L2 granule") as h5:
        try:
            product, direction = _product(h5, path), _direction(h5, path)
            if _GROUP not in h5:
                raise DataError("group missing from SMAP L2 granule", path=path, field=_GROUP)
            g = h5[_GROUP]
            row, rattrs = _read_1d(g, path, "EASE_row_index", None)
            n = row.shape[0]
            col, _ = _read_1d(g, path, "EASE_column_index", n)
            raw = {v: _read_1d(g, path, v, n) for v in (*variables, "tb_time_seconds", "latitude", "longitude")}
            extra = {}
            if quality and "soil_moisture" in variables:
                extra["sm"] = _read_1d(g, path, "retrieval_qual_flag", n)[0]
            for v in variables:
                if tb_quality and v in TB_FLAG:
                    extra[v] = _read_1d(g, path, TB_FLAG[v], n)[0]
            begin = attr_str(h5["Metadata/Extent"], "rangeBeginningDateTime") if "Metadata/Extent" in h5 else None
        except DataError:
            raise
        except Exception as exc:  # corrupt headers, truncated chunks, ...
            raise DataError(f"cannot read SMAP L2 granule (truncated or corrupt?): {exc}", path=path) from exc
    grid = get_grid(L2_PRODUCT_GRID[product])
    bad_idx = (row == UINT_FILL) | (col == UINT_FILL) | (row >= grid.nrows) | (col >= grid.ncols)
    if bad_idx.any():
        raise DataError(f"{int(bad_idx.sum())} cells have a fill or out-of-grid EASE index for {grid.name}",
                        path=path, field=f"{_GROUP}/EASE_row_index")
    data_vars = {}
    for v in variables:
        values, attrs = raw[v]
        if v in FLAG_VARIABLES:
            data_vars[v] = ("cell", values.astype(np.uint16), var_attrs(v, f"{direction.lower()} half-orbit"))
            continue
        arr = mask_float(values, attrs)
        if v == "soil_moisture" and "sm" in extra:
            arr[~recommended_quality(extra["sm"])] = np.nan
        if v in extra:
            arr[~tb_good_quality(extra[v])] = np.nan
        data_vars[v] = ("cell", arr, var_attrs(v, f"{direction.lower()} half-orbit", quality, tb_quality))
    ds = xr.Dataset(data_vars, coords={
        "row": ("cell", row.astype(np.int64), {"long_name": f"EASE-Grid 2.0 {grid.name} row"}),
        "col": ("cell", col.astype(np.int64), {"long_name": f"EASE-Grid 2.0 {grid.name} column"}),
        "lat": ("cell", mask_float(*raw["latitude"]), {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("cell", mask_float(*raw["longitude"]), {"standard_name": "longitude", "units": "degrees_east"}),
        "time": ("cell", seconds_to_datetime(mask_float(*raw["tb_time_seconds"], dtype=np.float64)),
                 {"long_name": "brightness-temperature acquisition time (UTC)"}),
    })
    for name in ds.data_vars:
        if ds[name].dtype == np.uint16:
            ds[name].encoding["_FillValue"] = np.uint16(UINT_FILL)
    ds.attrs.update(product=product, ease2_grid=grid.name, orbit_direction=direction,
                    range_beginning=begin or "", input_files=path.name,
                    source=f"SMAP L2 radiometer half-orbit soil moisture (NSIDC {product})")
    return ds


def _window(grid: EASE2Grid, bbox) -> tuple[int, int, int, int]:
    if bbox is None:
        return 0, grid.nrows, 0, grid.ncols
    lon0, lat0, lon1, lat1 = (float(v) for v in bbox)
    r0, c0 = latlon_to_rowcol(grid, min(lat1, 85.0), lon0)
    r1, c1 = latlon_to_rowcol(grid, max(lat0, -85.0), min(lon1, 179.999999))
    if min(r0, c0, r1, c1) < 0 or r1 < r0 or c1 < c0:
        raise ValueError(f"bbox {bbox} does not overlap the {grid.name} grid")
    return int(r0), int(r1) + 1, int(c0), int(c1) + 1


def grid_l2_granules(paths: Iterable[str | Path], variables: Sequence[str] = L2_DEFAULT_VARIABLES, *,
                     quality: str | None = "recommended", tb_quality: str | None = None,
                     bbox: tuple[float, float, float, float] | None = None) -> xr.Dataset:
    """Half-orbits -> daily (time, y, x) cube in the SMAP L3 layout (see the module doc), in memory."""
    granules = [read_l2_granule(p, variables, quality=quality, tb_quality=tb_quality) for p in paths]
    if not granules:
        raise DataError("no SMAP L2 granules given")
    products = {g.attrs["product"] for g in granules}
    if len(products) > 1:
        raise DataError(f"granules mix products {sorted(products)}", path=granules[0].attrs["input_files"])
    grid = get_grid(granules[0].attrs["ease2_grid"])
    r0, r1, c0, c1 = _window(grid, bbox)
    days = sorted({pd.Timestamp(t).normalize() for g in granules for t in g["time"].values if not pd.isna(t)})
    if not days:
        raise DataError("no cell of the granules has an acquisition time", field="tb_time_seconds")
    day_index = {d: k for k, d in enumerate(days)}
    shape = (len(days), r1 - r0, c1 - c0)
    out = {}
    best = {p: np.full(shape, np.inf) for p in ("am", "pm")}  # distance (h) to the pass's local solar time
    for g in granules:
        pass_ = "pm" if g.attrs["orbit_direction"] == "Ascending" else "am"
        t = g["time"].values
        ok = ~pd.isna(t) & (g["row"].values >= r0) & (g["row"].values < r1) & (g["col"].values >= c0) \
            & (g["col"].values < c1)
        hours = (t[ok] - t[ok].astype("datetime64[D]")) / np.timedelta64(1, "h")
        lst = np.mod(hours + g["lon"].values[ok] / 15.0, 24.0)
        dist = np.abs(lst - (18.0 if pass_ == "pm" else 6.0))
        k = np.array([day_index[pd.Timestamp(x).normalize()] for x in t[ok]], dtype=np.int64)
        i, j = g["row"].values[ok] - r0, g["col"].values[ok] - c0
        take = dist < best[pass_][k, i, j]
        k, i, j = k[take], i[take], j[take]
        best[pass_][k, i, j] = dist[take]
        for v in (*variables, "time"):
            name = f"{'overpass_time' if v == 'time' else v}_{pass_}"
            if name not in out:
                dtype = g[v].dtype
                fill = np.uint16(UINT_FILL) if dtype == np.uint16 else (
                    np.datetime64("NaT") if v == "time" else np.nan)
                out[name] = np.full(shape, fill, dtype=dtype)
            out[name][k, i, j] = g[v].values[ok][take]
    data_vars = {}
    for name, arr in sorted(out.items()):
        base, pass_ = name.rsplit("_", 1)
        attrs = var_attrs("tb_time_seconds" if base == "overpass_time" else base, f"{pass_.upper()} overpass",
                          quality, tb_quality)
        data_vars[name] = (("time", "y", "x"), arr, attrs)
    ds = xr.Dataset(data_vars, coords=cube_coords(grid, (r0, r1, c0, c1), days, "UTC day of the observations"))
    for name in ds.data_vars:
        if ds[name].dtype == np.uint16:
            ds[name].encoding["_FillValue"] = np.uint16(UINT_FILL)
    ds.attrs.update(product=granules[0].attrs["product"], ease2_grid=grid.name,
                    source="SMAP L2 radiometer half-orbits gridded to daily AM/PM (smfusion.io.smap_l2)",
                    compositing="per cell, day and pass: the observation nearest 6:00 (AM) / 18:00 (PM) local "
                                "solar time",
                    input_files=" ".join(g.attrs["input_files"] for g in granules))
    return ds
