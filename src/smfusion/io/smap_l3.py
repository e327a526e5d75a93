"""Reader for SMAP L3 radiometer soil-moisture granules: SPL3SMP (36 km) and SPL3SMP_E (9 km).

A granule is one UTC day in HDF5 with groups ``Soil_Moisture_Retrieval_Data_AM``
and ``Soil_Moisture_Retrieval_Data_PM`` (PM dataset names end in ``_pm``), each
holding 2-D fields on EASE-Grid 2.0 M36 (406 x 964) or M09 (1624 x 3856); see
:mod:`smfusion.synthetic.smap_granules` and ``docs/formats.md`` for the layout.

Output is an :class:`xarray.Dataset` cube with dims (time, y, x): ``time`` is
the granule date, ``x``/``y`` the EASE-2 projected cell centres (m), with
``lat(y)`` and ``lon(x)`` (the global grid is cylindrical). Each field is split
per overpass: ``soil_moisture_am``, ``soil_moisture_pm``, ... and
``tb_time_seconds`` becomes ``overpass_time_am/pm`` (datetime64). Float fields
have fill values and out-of-valid-range values set to NaN; flags stay uint16
with 65534 meaning no data. By default soil moisture is kept only where the
``retrieval_qual_flag`` recommended-quality bit (bit 0) is 0; with
``tb_quality='good'`` the brightness temperatures only where bit 0 of
``tb_qual_flag_h``/``_v`` is 0. Shared conventions: :mod:`smfusion.io.smap_hdf5`;
cube coordinates and site extraction: :mod:`smfusion.io.ease_cube`.

Every problem with a file (unreadable, truncated, a missing group or field, a
wrong grid size) raises :class:`smfusion.errors.DataError` naming the file and field.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import EASE2Grid, get_grid, latlon_to_rowcol, rowcol_to_latlon
from smfusion.io.ease_cube import cube_coords, extract_sites  # noqa: F401  (extract_sites: public here too)
from smfusion.io.smap_hdf5 import (CF_ATTRS, FLAG_VARIABLES, J2000_EPOCH, TB_FLAG, UINT_FILL, attr_str,  # noqa: F401
                                   mask_float, open_h5, recommended_quality, seconds_to_datetime, tb_good_quality,
                                   var_attrs)

log = logging.getLogger(__name__)

__all__ = [
    "PRODUCT_GRID",
    "DEFAULT_VARIABLES",
    "GranuleInfo",
    "granule_info",
    "find_granules",
    "recommended_quality",
    "read_granule",
    "open_granules",
    "extract_sites",
]

PRODUCT_GRID = {"SPL3SMP": "M36", "SPL3SMP_E": "M09"}
DEFAULT_VARIABLES = (
    "soil_moisture",
    "retrieval_qual_flag",
    "surface_flag",
    "tb_v_corrected",
    "tb_h_corrected",
    "vegetation_water_content",
    "tb_time_seconds",
)
_GROUP = "Soil_Moisture_Retrieval_Data_{}"
_NAME_RE = re.compile(r"SMAP_L3_SM_P_(E_)?(\d{8})_")


@dataclass(frozen=True)
class GranuleInfo:
    """What a granule is: its path, product, date, grid and overpass groups present."""

    path: Path
    product: str
    date: pd.Timestamp
    grid: EASE2Grid
    passes: tuple[str, ...]


def _dataset_name(var: str, overpass: str) -> str:
    return f"{_GROUP.format(overpass)}/{var}{'_pm' if overpass == 'PM' else ''}"


def _out_name(var: str, overpass: str) -> str:
    base = "overpass_time" if var == "tb_time_seconds" else var
    return f"{base}_{overpass.lower()}"


def granule_info(path: str | Path, passes: Sequence[str] = ("AM", "PM"),
                 variables: Sequence[str] = DEFAULT_VARIABLES) -> GranuleInfo:
    """Open a granule's header and check it: groups, fields and grid size. Reads no data.

    Raises DataError (naming the file and field) for an unreadable file, a
    missing group or field, or arrays that match neither SPL3SMP nor SPL3SMP_E.
    """
    path = Path(path)
    passes = _check_passes(passes)
    with open_h5(path) as h5:
        try:
            return _info(h5, path, passes, variables)
        except DataError:
            raise
        except Exception as exc:  # corrupt object headers surface here
            raise DataError(f"corrupt SMAP granule: {exc}", path=path) from exc


def _check_passes(passes) -> tuple[str, ...]:
    passes = tuple(p.upper() for p in ([passes] if isinstance(passes, str) else passes))
    if not passes or any(p not in ("AM", "PM") for p in passes):
        raise ValueError(f"passes must be 'AM' and/or 'PM', got {passes}")
    return passes


def _info(h5, path: Path, passes, variables) -> GranuleInfo:
    present = tuple(p for p in ("AM", "PM") if _GROUP.format(p) in h5)
    for p in passes:
        if p not in present:
            raise DataError(f"granule has no {p} retrieval group", path=path, field=_GROUP.format(p))
    shape = None
    for p in passes:
        for var in variables:
            name = _dataset_name(var, p)
            if name not in h5:
                raise DataError("field missing from SMAP granule", path=path, field=name)
            dset = h5[name]
            if not hasattr(dset, "shape") or len(dset.shape) != 2:
                raise DataError("expected a 2-D (rows, cols) dataset", path=path, field=name)
            if shape is None:
                shape = tuple(dset.shape)
            elif tuple(dset.shape) != shape:
                raise DataError(f"shape {dset.shape} differs from {shape} of the other fields", path=path, field=name)
    by_shape = {get_grid(g).shape: prod for prod, g in PRODUCT_GRID.items()}
    if shape not in by_shape:
        expected = ", ".join(f"{prod} {get_grid(g).nrows}x{get_grid(g).ncols}" for prod, g in PRODUCT_GRID.items())
        raise DataError(f"grid size {shape[0]}x{shape[1]} matches no SMAP L3 product ({expected})",
                        path=path, field=_dataset_name(variables[0], passes[0]))
    product = by_shape[shape]
    short = attr_str(h5["Metadata/DatasetIdentification"], "shortName") \
        if "Metadata/DatasetIdentification" in h5 else None
    if short is not None and short in PRODUCT_GRID and short != product:
        raise DataError(f"shortName {short} but arrays are {shape[0]}x{shape[1]} ({product})",
                        path=path, field="Metadata/DatasetIdentification/shortName")
    m = _NAME_RE.search(path.name)
    if m is not None:
        if bool(m.group(1)) != (product == "SPL3SMP_E"):
            raise DataError(f"file name says {'SPL3SMP_E' if m.group(1) else 'SPL3SMP'} but arrays are {product}",
                            path=path, field=_dataset_name(variables[0], passes[0]))
        date = pd.Timestamp(m.group(2))
    else:
        begin = attr_str(h5["Metadata/Extent"], "rangeBeginningDateTime") if "Metadata/Extent" in h5 else None
        try:
            date = pd.Timestamp(begin).tz_localize(None).normalize() if begin else None
        except (ValueError, TypeError):
            date = None
        if date is None:
            raise DataError("no date: neither an NSIDC file name nor Metadata/Extent/rangeBeginningDateTime",
                            path=path, field="Metadata/Extent/rangeBeginningDateTime")
    return GranuleInfo(path, product, date, get_grid(PRODUCT_GRID[product]), present)


def find_granules(folder: str | Path, product: str | None = None) -> list[Path]:
    """SMAP L3 granules under ``folder`` (recursive), sorted by name (hence date)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("SMAP folder not found", path=folder)
    pattern = {"SPL3SMP": "SMAP_L3_SM_P_[0-9]*.h5", "SPL3SMP_E": "SMAP_L3_SM_P_E_*.h5", None: "SMAP_L3_SM_P_*.h5"}
    if product not in pattern:
        raise ValueError(f"unknown product {product!r}")
    return sorted(folder.rglob(pattern[product]), key=lambda p: p.name)


def _window(grid: EASE2Grid, bbox) -> tuple[int, int, int, int]:
    """Row/col window (r0, r1, c0, c1) covering bbox = (lon_min, lat_min, lon_max, lat_max)."""
    if bbox is None:
        return 0, grid.nrows, 0, grid.ncols
    lon0, lat0, lon1, lat1 = (float(v) for v in bbox)
    if not (lon0 < lon1 and lat0 < lat1):
        raise ValueError(f"bbox must be (lon_min, lat_min, lon_max, lat_max), got {bbox}")
    lat_top = min(lat1, float(rowcol_to_latlon(grid, 0, 0)[0]))
    lat_bot = max(lat0, float(rowcol_to_latlon(grid, grid.nrows - 1, 0)[0]))
    r0, c0 = latlon_to_rowcol(grid, lat_top, lon0)
    r1, c1 = latlon_to_rowcol(grid, lat_bot, min(lon1, 179.999999))
    if min(r0, c0, r1, c1) < 0 or r1 < r0 or c1 < c0:
        raise ValueError(f"bbox {bbox} does not overlap the {grid.name} grid")
    return int(r0), int(r1) + 1, int(c0), int(c1) + 1


def _load(path: Path, var: str, overpass: str, window, quality: str | None, surface_mask: int,
          tb_quality: str | None = None) -> np.ndarray:
    """Read one field of one overpass over ``window`` and apply fill/range/quality masks."""
    r0, r1, c0, c1 = window
    name = _dataset_name(var, overpass)
    with open_h5(path) as h5:
        try:
            dset = h5[name]
            raw = dset[r0:r1, c0:c1]
            attrs = {k: dset.attrs[k] for k in ("_FillValue", "valid_min", "valid_max") if k in dset.attrs}
            qflag = sflag = tflag = None
            if var == "soil_moisture" and quality is not None:
                qflag = h5[_dataset_name("retrieval_qual_flag", overpass)][r0:r1, c0:c1]
            if var == "soil_moisture" and surface_mask:
                sflag = h5[_dataset_name("surface_flag", overpass)][r0:r1, c0:c1]
            if var in TB_FLAG and tb_quality is not None:
                tflag = h5[_dataset_name(TB_FLAG[var], overpass)][r0:r1, c0:c1]
        except KeyError as exc:
            raise DataError("field missing from SMAP granule", path=path, field=name) from exc
        except DataError:
            raise
        except Exception as exc:  # truncated chunks, bad filters, ...
            raise DataError(f"cannot read field (file truncated or corrupt?): {exc}", path=path, field=name) from exc
    if var in FLAG_VARIABLES:
        return raw.astype(np.uint16)
    data = mask_float(raw, attrs, np.float64 if var == "tb_time_seconds" else np.float32)
    bad = np.zeros(data.shape, dtype=bool)
    if qflag is not None:
        bad |= ~recommended_quality(qflag)
    if sflag is not None:
        bad |= (sflag == UINT_FILL) | ((sflag.astype(np.uint32) & int(surface_mask)) != 0)
    if tflag is not None:
        bad |= ~tb_good_quality(tflag)
    data[bad] = np.nan
    if var == "tb_time_seconds":
        return seconds_to_datetime(data)
    return data


def _finish(ds: xr.Dataset, infos: list[GranuleInfo], quality) -> xr.Dataset:
    grid = infos[0].grid
    for name in ds.data_vars:
        if ds[name].dtype == np.uint16:
            ds[name].encoding["_FillValue"] = np.uint16(UINT_FILL)
    ds.attrs.update(
        product=infos[0].product,
        ease2_grid=grid.name,
        source="SMAP L3 radiometer soil moisture (NSIDC " + infos[0].product + ")",
        quality_masking="recommended (retrieval_qual_flag bit 0)" if quality else "none",
        input_files=" ".join(i.path.name for i in infos),
    )
    return ds


def read_granule(
    path: str | Path,
    *,
    passes: Sequence[str] = ("AM", "PM"),
    variables: Sequence[str] = DEFAULT_VARIABLES,
    quality: str | None = "recommended",
    surface_mask: int = 0,
    bbox: tuple[float, float, float, float] | None = None,
    tb_quality: str | None = None,
) -> xr.Dataset:
    """Read one granule into memory as a (time=1, y, x) cube; see the module doc for names.

    ``quality='recommended'`` keeps soil moisture only where bit 0 of the
    retrieval flag is 0 (None: no flag masking). ``surface_mask``: surface_flag
    bits whose cells are masked too. ``bbox`` (lon_min, lat_min, lon_max,
    lat_max) reads only the covering window. ``tb_quality='good'`` keeps
    ``tb_h/v_corrected`` only where bit 0 of ``tb_qual_flag_h/v`` is 0.
    """
    return open_granules([path], passes=passes, variables=variables, quality=quality,
                         surface_mask=surface_mask, bbox=bbox, lazy=False, tb_quality=tb_quality)


def open_granules(
    paths: Iterable[str | Path],
    *,
    passes: Sequence[str] = ("AM", "PM"),
    variables: Sequence[str] = DEFAULT_VARIABLES,
    quality: str | None = "recommended",
    surface_mask: int = 0,
    bbox: tuple[float, float, float, float] | None = None,
    lazy: bool = True,
    tb_quality: str | None = None,
) -> xr.Dataset:
    """Open many daily granules as one (time, y, x) cube, lazily with Dask by default.

    Headers are checked at once (a bad file raises DataError here); data are
    read per granule and field when computed, and read errors then also raise
    DataError. Files must share one product; two files of the same date are an
    error.
    """
    import dask
    import dask.array as dsa

    if quality not in (None, "recommended"):
        raise ValueError(f"quality must be 'recommended' or None, got {quality!r}")
    if tb_quality not in (None, "good"):
        raise ValueError(f"tb_quality must be 'good' or None, got {tb_quality!r}")
    passes = _check_passes(passes)
    variables = tuple(variables)
    unknown = [v for v in variables if v not in CF_ATTRS]
    if unknown:
        raise ValueError(f"unknown SMAP L3 variables {unknown}; known: {sorted(CF_ATTRS)}")
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no SMAP granules given")
    needed = variables + tuple(
        v for v, on in (("retrieval_qual_flag", quality is not None), ("surface_flag", bool(surface_mask)))
        if on and "soil_moisture" in variables and v not in variables)
    needed += tuple(TB_FLAG[v] for v in variables if tb_quality and v in TB_FLAG and TB_FLAG[v] not in variables)
    infos = [granule_info(p, passes, needed) for p in paths]
    products = {i.product for i in infos}
    if len(products) > 1:
        raise DataError(f"granules mix products {sorted(products)}", path=paths[0])
    infos.sort(key=lambda i: i.date)
    for a, b in zip(infos, infos[1:]):
        if a.date == b.date:
            raise DataError(f"two granules for {a.date.date()}: {a.path.name} and {b.path.name}", path=b.path)
    grid = infos[0].grid
    window = _window(grid, bbox)
    shape = (window[1] - window[0], window[3] - window[2])
    data_vars = {}
    for overpass in passes:
        for var in variables:
            if var in FLAG_VARIABLES:
                dtype = np.dtype(np.uint16)
            elif var == "tb_time_seconds":
                dtype = np.dtype("datetime64[ns]")
            else:
                dtype = np.dtype(np.float32)
            args = (var, overpass, window, quality, surface_mask, tb_quality)
            if lazy:
                arrays = [dsa.from_delayed(dask.delayed(_load, pure=True)(i.path, *args), shape=shape, dtype=dtype)
                          for i in infos]
                stacked = dsa.stack(arrays, axis=0)
            else:
                stacked = np.stack([_load(i.path, *args) for i in infos], axis=0)
            data_vars[_out_name(var, overpass)] = (("time", "y", "x"), stacked, var_attrs(var, f"{overpass} overpass", quality, tb_quality))
    ds = xr.Dataset(data_vars, coords=cube_coords(grid, window, [i.date for i in infos]))
    return _finish(ds, infos, quality)
