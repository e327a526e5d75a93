"""What ``validate`` refuses, and in which order: the products first (before any station is read), then
the stations' impossible values, then a product that shares no time or no place with the stations.

* :func:`check_product`: the product opens, its variable and layout are known, its coordinates are
  latitudes in [-90, 90] and longitudes in [-180, 360], it has a time axis -- one DataError naming the file
  and the field otherwise;
* :func:`drop_impossible`: station soil moisture outside [0, 1] m3/m3 (negative, or above saturation by
  any definition) is set missing, and the count is reported as one warning;
* :func:`check_overlap`: a product without any station within the distance (naming it), or whose period
  does not meet the stations' (naming both periods), is a DataError rather than a table of NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError, SmfusionWarning

__all__ = ["check_product", "drop_impossible", "check_overlap", "SM_RANGE"]

SM_RANGE = (0.0, 1.0)  # volumetric soil moisture, m3/m3


def _coord(ds: xr.Dataset, names: tuple[str, ...]):
    return next((ds[n] for n in names if n in ds.variables), None)


def _check_range(values, lo: float, hi: float, where: str, field: str) -> None:
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if ok.any() and (v[ok].min() < lo or v[ok].max() > hi):
        raise DataError(f"coordinates out of range: {field} spans {v[ok].min():g} .. {v[ok].max():g}, "
                        f"outside {lo:g} .. {hi:g}", path=where, field=field,
                        hint="a product's lat/lon must be degrees (check the file's coordinates)")


def check_product(product, variable: str | None = None) -> None:
    """Open ``product`` (path; a Dataset is taken as it is) and refuse it as the module docstring says."""
    from pathlib import Path

    from smfusion.data.extract import _layout, open_product, pick_variable
    from smfusion.io import qa4sm_cells

    if isinstance(product, tuple):
        product = product[1]
    if isinstance(product, xr.Dataset):
        ds, where = product, "dataset"
    elif qa4sm_cells.is_cell_folder(product):
        grid = qa4sm_cells.read_grid(product)
        _check_range(grid["lat"], -90, 90, str(Path(product) / "grid.nc"), "lat")
        _check_range(grid["lon"], -180, 360, str(Path(product) / "grid.nc"), "lon")
        return
    else:
        ds, where = open_product(product), str(product)
    var = pick_variable(ds, variable, where)
    layout = _layout(ds, var, where)
    if "time" not in ds[var].dims or ds.sizes["time"] == 0:
        raise DataError("no time steps", path=where, field="time")
    if layout != "ease2":  # EASE-2 products are placed by their grid's rows and columns
        _check_range(_coord(ds, ("lat", "latitude")).values, -90, 90, where, "lat")
        _check_range(_coord(ds, ("lon", "longitude")).values, -180, 360, where, "lon")


def drop_impossible(stations: xr.Dataset, variable: str) -> xr.Dataset:
    """``stations`` with values of ``variable`` outside :data:`SM_RANGE` set missing (one warning with the count)."""
    v = stations[variable]
    bad = (v < SM_RANGE[0]) | (v > SM_RANGE[1])
    n = int(bad.sum())
    if not n:
        return stations
    sites = int(bad.any("time").sum())
    where = stations.attrs.get("station_path", "stations")
    warnings.warn(f"{where}: dropped {n} station value(s) of {variable} outside {SM_RANGE[0]:g} .. {SM_RANGE[1]:g} "
                  f"m3/m3 (physically impossible) at {sites} station(s)", SmfusionWarning, stacklevel=2)
    return stations.assign({variable: v.where(~bad)})


def _period(times) -> str:
    t = pd.DatetimeIndex(np.asarray(times)).dropna()
    return f"{t.min().date()} .. {t.max().date()}" if len(t) else "no dates"


def check_overlap(name: str, prod: xr.Dataset, stations: xr.Dataset, variable: str,
                  max_distance_km: float | None) -> None:
    """Refuse product ``name`` (its series at the stations, :func:`product_at_stations`) when no station has a
    product point within the distance, or when the product's dates and the stations' never meet."""
    dist = np.asarray(prod["distance_km"].values, dtype=float)
    if not np.isfinite(dist).any():
        lat, lon = np.asarray(stations["lat"].values, float), np.asarray(stations["lon"].values, float)
        raise DataError(f"no station within {max_distance_km:g} km of a point of the product with data "
                        f"(stations at lat {lat.min():.2f} .. {lat.max():.2f}, lon {lon.min():.2f} .. "
                        f"{lon.max():.2f})", path=prod.attrs.get("source", name), field="max_distance",
                        hint="validate over the product's region, or raise --max-distance")
    ptime = pd.DatetimeIndex(prod["time"].values).dropna()
    has = stations[variable].notnull().any("site")
    stime = pd.DatetimeIndex(stations["time"].values[np.asarray(has.values)]).dropna()
    if len(ptime) and len(stime) and (ptime.max().normalize() < stime.min().normalize()
                                      or stime.max().normalize() < ptime.min().normalize()):
        raise DataError(f"no overlap in time: the product covers {_period(ptime)}, the stations' values "
                        f"{_period(stime)}", path=prod.attrs.get("source", name), field="time",
                        hint="validate a product and stations of the same period")
