"""CF-1.8 product files: NetCDF-4 and Zarr writer and reader for gridded and site data.

Two data layouts are supported:

* gridded: dims (time, y, x) on an EASE-Grid 2.0 grid, ``x``/``y`` projected
  cell centres (m), optional ``lat(y)``/``lon(x)`` (or 2-D) auxiliary coords,
  and a scalar ``crs`` grid-mapping variable built by pyproj from the grid's EPSG;
* site: dims (site, time), ``lat``/``lon`` on ``site``, CF discrete-sampling
  ``featureType = timeSeries`` with the ``site`` coordinate as ``timeseries_id``.

:func:`to_cf` adds the CF attributes (units, long_name, standard_name
``volume_fraction_of_condensed_water_in_soil`` for soil-moisture variables,
axis/standard_name of coordinates, grid_mapping) and provenance (software
version, config hash, inputs, history). :func:`write_netcdf` and
:func:`write_zarr` write compressed, chunked files atomically (temp + rename);
:func:`read_product` opens them; :func:`cf_problems` lists what a dataset
lacks for CF.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import xarray as xr

from smfusion import __version__
from smfusion.errors import DataError
from smfusion.grids.ease2 import EASE2Grid, get_grid
from smfusion.io.atomic import atomic_path
from smfusion.io.cf_encoding import dim_chunks as _dim_chunks, encoding as _encoding, zarr_v3_library as _zarr_v3_library
from smfusion.io.zarr_codecs import check_zarr_codecs

__all__ = [
    "CONVENTIONS",
    "SOIL_MOISTURE_STANDARD_NAME",
    "config_hash",
    "is_soil_moisture",
    "to_cf",
    "cf_problems",
    "write_netcdf",
    "write_zarr",
    "read_product",
]

CONVENTIONS = "CF-1.8"
SOIL_MOISTURE_STANDARD_NAME = "volume_fraction_of_condensed_water_in_soil"
_SM_UNITS = "m3 m-3"
_CRS_NAME = "crs"
_COORD_ATTRS = {
    "time": {"standard_name": "time", "axis": "T"},
    "x": {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"},
    "y": {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"},
    "lat": {"standard_name": "latitude", "units": "degrees_north"},
    "lon": {"standard_name": "longitude", "units": "degrees_east"},
}
_FLAG_KEYS = ("flag_meanings", "flag_values", "flag_masks")


def config_hash(config: Any) -> str:
    """SHA-256 hex digest of a config: a mapping (canonical JSON), text, bytes, or a file path."""
    if config is None:
        return "none"
    if isinstance(config, Path):
        data = config.read_bytes()
    elif isinstance(config, bytes):
        data = config
    elif isinstance(config, str):
        data = config.encode("utf-8")
    else:
        data = json.dumps(config, sort_keys=True, default=str, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def is_soil_moisture(name: str, attrs: Mapping | None = None) -> bool:
    """True for a volumetric soil-moisture variable (by standard_name or name: soil_moisture*, sm, sm_*);
    False for a standard name with a modifier (``... standard_error``)."""
    attrs = attrs or {}
    if attrs.get("standard_name") == SOIL_MOISTURE_STANDARD_NAME:
        return True
    if str(attrs.get("standard_name", "")).startswith(SOIL_MOISTURE_STANDARD_NAME + " "):
        return False  # with a CF modifier (e.g. standard_error): a statistic of soil moisture, not soil moisture
    n = name.lower()
    return n.startswith("soil_moisture") and "error" not in n or n == "sm" or n.startswith("sm_")


def _layout(ds: xr.Dataset) -> str:
    if "y" in ds.dims and "x" in ds.dims:
        return "grid"
    if "site" in ds.dims:
        return "site"
    raise DataError(f"dataset has neither (time, y, x) nor (site, time) dims: {tuple(ds.dims)}", field="dims")


def _grid_of(ds: xr.Dataset, grid) -> EASE2Grid:
    if grid is not None:
        return grid if isinstance(grid, EASE2Grid) else get_grid(grid)
    name = ds.attrs.get("ease2_grid")
    if name is None:
        raise DataError("gridded data need an EASE-2 grid: pass grid= or set attrs['ease2_grid']", field="ease2_grid")
    return get_grid(name)


def _crs_attrs(grid: EASE2Grid | None) -> dict:
    from pyproj import CRS

    crs = grid.crs if grid is not None else CRS.from_epsg(4326)
    attrs = {k: v for k, v in crs.to_cf().items() if v is not None}
    attrs["long_name"] = grid.long_name + " grid mapping" if grid is not None else "WGS 84"
    if grid is not None:
        attrs["epsg_code"] = f"EPSG:{grid.epsg}"
        attrs["ease2_grid"] = grid.name
        attrs["cell_size_m"] = float(grid.cell_size)
    return attrs


def to_cf(
    ds: xr.Dataset,
    *,
    grid: EASE2Grid | str | None = None,
    title: str | None = None,
    config: Any = None,
    inputs: Iterable[str | Path] = (),
) -> xr.Dataset:
    """A copy of ``ds`` with CF-1.8 attributes, a ``crs`` grid mapping and provenance.

    Existing attributes are kept; missing ``units`` default to ``1`` (``m3 m-3``
    for soil moisture) except on flag variables, missing ``long_name`` to the
    variable name. ``config`` is hashed into ``config_hash``; ``inputs`` are
    listed in ``inputs``.
    """
    layout = _layout(ds)
    out = ds.copy()
    g = _grid_of(ds, grid) if layout == "grid" else None
    for name, extra in _COORD_ATTRS.items():
        if name in out.coords:
            attrs = dict(out[name].attrs)
            for k, v in extra.items():
                attrs.setdefault(k, v)
            if name in ("x", "y") and g is not None:
                attrs.setdefault("long_name", f"{name} of {g.long_name} cell centre")
            attrs.setdefault("long_name", {"time": "time (UTC)", "lat": "latitude", "lon": "longitude"}.get(name, name))
            out[name].attrs = attrs
    for name in out.coords:  # CF 3.3: every variable has a long_name or a standard_name
        if name not in _COORD_ATTRS and not {"long_name", "standard_name"} & set(out[name].attrs):
            out[name].attrs = {**out[name].attrs, "long_name": str(name).replace("_", " ")}
    if layout == "site":
        out["site"].attrs = {**out["site"].attrs, "cf_role": "timeseries_id",
                             "long_name": out["site"].attrs.get("long_name", "site identifier")}
    for name in out.data_vars:
        if name == _CRS_NAME:
            continue
        var = out[name]
        attrs = dict(var.attrs)
        attrs.pop("grid_mapping", None)
        if is_soil_moisture(str(name), attrs):
            attrs.setdefault("standard_name", SOIL_MOISTURE_STANDARD_NAME)
            attrs.setdefault("units", _SM_UNITS)
        is_flag = any(k in attrs for k in _FLAG_KEYS)
        if not is_flag and not np.issubdtype(var.dtype, np.datetime64) and var.dtype.kind in "fiu":
            attrs.setdefault("units", "1")
        attrs.setdefault("long_name", str(name).replace("_", " "))
        var.attrs = attrs
        if layout == "grid" and {"y", "x"} <= set(var.dims) or layout == "site":
            var.encoding["grid_mapping"] = _CRS_NAME
    out[_CRS_NAME] = xr.DataArray(np.int32(0), attrs=_crs_attrs(g))
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    history = f"{now}: written by smfusion {__version__} (smfusion.io.cf)"
    prev = out.attrs.get("history")
    in_list = [str(p) for p in inputs]
    out.attrs.update(
        Conventions=CONVENTIONS,
        title=title or out.attrs.get("title", "smfusion soil-moisture product"),
        institution=out.attrs.get("institution", "smfusion"),
        source=out.attrs.get("source", f"smfusion {__version__}"),
        history=f"{prev}\n{history}" if prev else history,
        smfusion_version=__version__,
        config_hash=config_hash(config) if not (isinstance(config, str) and _is_hex64(config)) else config,
        inputs="; ".join(in_list) if in_list else out.attrs.get("inputs", "none"),
        date_created=now,
    )
    if layout == "site":
        out.attrs["featureType"] = "timeSeries"
    if g is not None:
        out.attrs["ease2_grid"] = g.name
    return out


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _grid_mapping_of(var: xr.DataArray) -> str | None:
    return var.attrs.get("grid_mapping") or var.encoding.get("grid_mapping")


def cf_problems(ds: xr.Dataset) -> list[str]:
    """What keeps ``ds`` from being a CF-1.8 smfusion product; an empty list when nothing.

    Checks the attributes that matter here: Conventions, provenance, units and
    long/standard names of data variables, the soil-moisture standard name,
    grid_mapping links, and axis/standard_name/units of coordinates.
    """
    problems = []
    if not str(ds.attrs.get("Conventions", "")).startswith("CF-1.8"):
        problems.append("global attribute Conventions is not CF-1.8")
    for key in ("smfusion_version", "config_hash", "inputs", "history"):
        if key not in ds.attrs:
            problems.append(f"global attribute {key} missing")
    try:
        layout = _layout(ds)
    except DataError as exc:
        return problems + [str(exc)]
    if layout == "site":
        if ds.attrs.get("featureType") != "timeSeries":
            problems.append("site data need featureType = timeSeries")
        if ds["site"].attrs.get("cf_role") != "timeseries_id":
            problems.append("site coordinate lacks cf_role = timeseries_id")
    for name, want in _COORD_ATTRS.items():
        if name not in ds.variables:
            continue
        attrs = ds[name].attrs
        for k, v in want.items():
            if k == "units" and name in ("time",):
                continue
            if attrs.get(k) != v:
                problems.append(f"coordinate {name}: {k} should be {v!r}, is {attrs.get(k)!r}")
    for req in (("time",) if layout == "site" else ("time", "x", "y")):
        if req not in ds.coords:
            problems.append(f"coordinate {req} missing")
    if layout == "site" and not {"lat", "lon"} <= set(ds.variables):
        problems.append("site data need lat and lon")
    for name, var in ds.data_vars.items():
        if name == _CRS_NAME:
            continue
        attrs = var.attrs
        if "long_name" not in attrs and "standard_name" not in attrs:
            problems.append(f"{name}: no long_name or standard_name")
        is_flag = any(k in attrs for k in _FLAG_KEYS)
        numeric = var.dtype.kind in "fiu" and not np.issubdtype(var.dtype, np.datetime64)
        if numeric and not is_flag and "units" not in attrs:
            problems.append(f"{name}: no units")
        if is_soil_moisture(str(name), attrs) and attrs.get("standard_name") != SOIL_MOISTURE_STANDARD_NAME:
            problems.append(f"{name}: soil moisture without standard_name {SOIL_MOISTURE_STANDARD_NAME}")
        gm = _grid_mapping_of(var)
        if layout == "grid" and {"y", "x"} <= set(var.dims):
            if gm is None:
                problems.append(f"{name}: no grid_mapping")
        if gm is not None and (gm not in ds.variables or "grid_mapping_name" not in ds[gm].attrs):
            problems.append(f"{name}: grid_mapping {gm!r} is not a grid-mapping variable")
    return problems


def _prepare(ds, grid, title, config, inputs):
    cf = to_cf(ds, grid=grid, title=title, config=config, inputs=inputs)
    problems = cf_problems(cf)
    if problems:
        raise DataError("dataset is not CF-complete: " + "; ".join(problems), field=problems[0].split(":")[0])
    return cf


def write_netcdf(
    ds: xr.Dataset,
    path: str | Path,
    *,
    grid: EASE2Grid | str | None = None,
    title: str | None = None,
    config: Any = None,
    inputs: Iterable[str | Path] = (),
    complevel: int = 4,
    chunks: Mapping[str, int] | None = None,
    overwrite: bool | None = None,
    protect: Iterable[str | Path] = (),
) -> Path:
    """Write ``ds`` as CF-1.8 NetCDF-4 (zlib level ``complevel``, chunked) atomically; return the path.

    ``overwrite``/``protect`` as in :func:`smfusion.io.atomic.atomic_path`: pass
    ``False`` or ``True`` for outputs a user names; the attribute
    ``smfusion_version`` makes the file recognisable as smfusion's later.
    """
    cf = _prepare(ds, grid, title, config, inputs)
    enc = _encoding(cf, "netcdf", complevel, chunks)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite, protect=protect) as tmp:
        cf.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=enc)
    return path


def write_zarr(
    ds: xr.Dataset,
    path: str | Path,
    *,
    grid: EASE2Grid | str | None = None,
    title: str | None = None,
    config: Any = None,
    inputs: Iterable[str | Path] = (),
    complevel: int = 4,
    chunks: Mapping[str, int] | None = None,
    overwrite: bool | None = None,
    protect: Iterable[str | Path] = (),
) -> Path:
    """Write ``ds`` as a CF-attributed Zarr store (format 2, Blosc/zstd, chunked) atomically; return the path.

    ``overwrite``/``protect`` as in :func:`write_netcdf`; the store also gets the
    ``.smfusion-output`` marker.

    Zarr format 2 because its string and consolidated-metadata support is
    specified and readable by every Zarr library, unlike format 3's so far.
    """
    cf = _prepare(ds, grid, title, config, inputs)
    enc = _encoding(cf, "zarr", complevel, chunks)
    for name, var in cf.variables.items():  # zarr keeps no netCDF-only keys
        cf[name].encoding = {}
        if var.dtype.kind in "OU":
            enc[name] = {}
    for name in enc:
        enc[name].pop("grid_mapping", None)
    for name in cf.data_vars:
        if name != _CRS_NAME and (_layout(cf) == "site" or {"y", "x"} <= set(cf[name].dims)):
            cf[name].attrs["grid_mapping"] = _CRS_NAME
    if any(v.chunks for v in cf.variables.values()):  # dask chunks must match the Zarr chunks
        cf = cf.chunk({d: n for d, n in _dim_chunks(cf, chunks).items() if n > 0})
    path = Path(path)
    with atomic_path(path, overwrite=overwrite, protect=protect) as tmp:
        fmt = {"zarr_format": 2} if _zarr_v3_library() else {}
        cf.to_zarr(tmp, mode="w", encoding=enc, consolidated=True, **fmt)
    return path


def read_product(path: str | Path, *, chunks: Mapping[str, int] | None = None, require_cf: bool = True,
                 load: bool = False) -> xr.Dataset:
    """Open a product written by :func:`write_netcdf` or :func:`write_zarr` (``.zarr`` or a folder).

    Variables are decoded (fill values to NaN, times to datetime64); ``crs`` and
    ``lat``/``lon`` become coordinates and ``grid_mapping`` moves to each
    variable's encoding, as xarray does with ``decode_coords='all'``. Data are
    read lazily unless ``load`` (then read errors surface here too). Raises
    DataError naming the file when it cannot be opened or read, or is not CF.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("product not found", path=path)
    if path.is_dir() or path.suffix == ".zarr":
        check_zarr_codecs(path)
    try:
        if path.is_dir() or path.suffix == ".zarr":
            ds = xr.open_zarr(path, chunks=chunks, decode_coords="all", consolidated=None)
        else:
            ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks, decode_coords="all")
    except Exception as exc:
        raise DataError(f"cannot open product: {exc.__class__.__name__}: {exc}", path=path) from None
    if require_cf and not str(ds.attrs.get("Conventions", "")).startswith("CF-"):
        ds.close()
        raise DataError("not a CF product (no Conventions attribute)", path=path, field="Conventions")
    for name, var in ds.data_vars.items():  # flags back to their integer type, fill value kept
        dtype = np.dtype(var.encoding.get("dtype", var.dtype))
        fill = var.encoding.get("_FillValue")
        if var.dtype.kind == "f" and dtype.kind in "iu" and fill is not None and "flag_masks" in var.attrs:
            ds[name] = var.fillna(fill).astype(dtype)
            ds[name].encoding = dict(var.encoding)
    if load:
        try:
            ds = ds.load()
        except Exception as exc:
            ds.close()
            raise DataError(f"cannot read product data: {exc.__class__.__name__}: {exc}", path=path) from None
        finally:
            ds.close()
    return ds
