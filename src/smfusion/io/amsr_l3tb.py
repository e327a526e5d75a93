"""Reader for JAXA AMSR2 and AMSR-E L3 brightness temperatures (GCOM-W HDF5, 0.1 or 0.25 deg, daily, A/D).

Layout: see :mod:`smfusion.synthetic.amsr_l3tb` (root datasets ``Brightness
Temperature (H)`` / ``(V)``, uint16 counts times the ``SCALE FACTOR``
attribute (0.01 K), 65535 missing and 65534 outside the observed area; row 0 at
90 N, column 0 at 0 deg E running east; frequency, orbit direction and grid in
the file name ``<prefix>_<YYYYMMDD>_01D_EQM<A|D>_L3SGT<ff><H|L>...h5``; sensor in
the ``SensorShortName`` global attribute, AMSR2 or AMSR-E, which share the format).

:func:`read_amsr_l3tb` gives a (time=1, lat, lon) Dataset with longitudes
rolled to -180..180 (ascending) and latitudes north to south, variables
``tb_h_<ff>_<o>`` / ``tb_v_<ff>_<o>`` (K; ``<o>`` = ``asc`` or ``dsc``; AMSR2
ascending = 1:30 pm, descending = 1:30 am local solar time);
:func:`open_amsr_l3tb` stacks many files (frequencies, orbits, days);
:func:`smfusion.grids.latlon.latlon_to_cells` puts them on EASE-Grid 2.0 cells
in the canonical (site, time) model. Bad files raise
:class:`~smfusion.errors.DataError` naming the file and dataset.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.io.smap_hdf5 import attr_str, open_h5

__all__ = ["AMSR_FREQUENCIES_GHZ", "parse_amsr_l3tb_name", "read_amsr_l3tb", "open_amsr_l3tb"]

AMSR_FREQUENCIES_GHZ = {"06": 6.925, "07": 7.3, "10": 10.65, "18": 18.7, "23": 23.8, "36": 36.5, "89": 89.0}
MISSING, OUTSIDE = 65535, 65534
_NAME_RE = re.compile(r"^(\w{6})_(\d{8})_(01D)_EQ([MO])([AD])_L3SGT(\d{2})([HL])\w*\.h5$")
_SENSORS = ("AMSR2", "AMSR-E")


def parse_amsr_l3tb_name(path: str | Path) -> dict:
    """Date, orbit ('A'/'D'), frequency code ('06', ...) and resolution (0.1 / 0.25 deg) from a JAXA L3 TB name."""
    m = _NAME_RE.match(Path(path).name)
    if m is None or m.group(6) not in AMSR_FREQUENCIES_GHZ:
        raise DataError("not a JAXA daily L3 TB file name (<sat>_<YYYYMMDD>_01D_EQM<A|D>_L3SGT<ff><H|L>...h5)",
                        path=path)
    return {"date": pd.Timestamp(m.group(2)), "orbit": m.group(5), "freq": m.group(6),
            "resolution": 0.1 if m.group(7) == "H" else 0.25}


def _scale(dset, path: Path, name: str) -> float:
    val = dset.attrs.get("SCALE FACTOR")
    if val is None:
        raise DataError("attribute 'SCALE FACTOR' missing", path=path, field=name)
    scale = float(np.asarray(val).ravel()[0])
    if not np.isfinite(scale) or scale <= 0:
        raise DataError(f"bad SCALE FACTOR {scale}", path=path, field=name)
    return scale


def _rows(lat: np.ndarray, bbox) -> slice:
    if bbox is None:
        return slice(0, lat.size)
    lat0, lat1 = float(bbox[1]), float(bbox[3])
    idx = np.flatnonzero((lat >= lat0 - 1.0) & (lat <= lat1 + 1.0))
    if idx.size == 0:
        raise ValueError(f"bbox {bbox} does not overlap the latitudes of the grid")
    return slice(int(idx[0]), int(idx[-1]) + 1)


def read_amsr_l3tb(path: str | Path, *, bbox: tuple[float, float, float, float] | None = None) -> xr.Dataset:
    """One daily L3 TB file as a (time=1, lat, lon) Dataset (see the module doc).

    ``bbox`` (lon_min, lat_min, lon_max, lat_max) keeps that area plus a 1 deg margin.
    """
    path = Path(path)
    info = parse_amsr_l3tb_name(path)
    res = info["resolution"]
    nrow, ncol = int(round(180 / res)), int(round(360 / res))
    lat = 90.0 - (np.arange(nrow) + 0.5) * res
    lon_file = (np.arange(ncol) + 0.5) * res  # 0 .. 360 east
    rows = _rows(lat, bbox)
    o = "asc" if info["orbit"] == "A" else "dsc"
    data = {}
    with open_h5(path, "AMSR L3 TB file") as h5:
        try:
            sensor = attr_str(h5, "SensorShortName")
            if sensor not in _SENSORS:
                raise DataError(f"SensorShortName {sensor!r} is neither AMSR2 nor AMSR-E", path=path,
                                field="SensorShortName")
            for pol in ("H", "V"):
                name = f"Brightness Temperature ({pol})"
                if name not in h5:
                    raise DataError("dataset missing from AMSR L3 TB file", path=path, field=name)
                dset = h5[name]
                if tuple(dset.shape) != (nrow, ncol) or dset.dtype != np.uint16:
                    raise DataError(f"expected uint16 {nrow} x {ncol} for the {res} deg grid, got {dset.dtype} "
                                    f"{dset.shape}", path=path, field=name)
                counts = dset[rows, :]
                tb = counts.astype(np.float32) * np.float32(_scale(dset, path, name))
                tb[(counts == MISSING) | (counts == OUTSIDE)] = np.nan
                data[pol] = tb
        except DataError:
            raise
        except Exception as exc:  # truncated chunks, bad filters, ...
            raise DataError(f"cannot read AMSR L3 TB file (truncated or corrupt?): {exc}", path=path) from exc
    lon = np.mod(lon_file + 180.0, 360.0) - 180.0
    order = np.argsort(lon, kind="stable")
    lon = lon[order]
    cols = slice(None)
    if bbox is not None:
        keep = np.flatnonzero((lon >= float(bbox[0]) - 1.0) & (lon <= float(bbox[2]) + 1.0))
        cols = slice(int(keep[0]), int(keep[-1]) + 1) if keep.size else slice(0, 0)
    f = AMSR_FREQUENCIES_GHZ[info["freq"]]
    units = {"units": "K", "standard_name": "brightness_temperature", "frequency_GHz": f}
    ds = xr.Dataset(
        {f"tb_{pol.lower()}_{info['freq']}_{o}": (("time", "lat", "lon"), data[pol][:, order][None, :, cols],
                                                  dict(units, long_name=f"{sensor} {f} GHz {pol}-pol TB, {o}"))
         for pol in ("H", "V")},
        coords={"time": pd.DatetimeIndex([info["date"]]).values.astype("datetime64[ns]"), "lat": ("lat", lat[rows], {"units": "degrees_north"}),
                "lon": ("lon", lon[cols], {"units": "degrees_east"})},
        attrs={"sensor": sensor, "product": f"{sensor} L3 TB (JAXA)", "grid": f"{res} deg equirectangular",
               "input_files": path.name})
    return ds


def open_amsr_l3tb(paths: Iterable[str | Path], *, bbox=None, sensor: str | None = None) -> xr.Dataset:
    """Many daily files of one sensor and grid as one (time, lat, lon) Dataset (variables by freq and orbit).

    Two files of one date, frequency and orbit are an error; mixing sensors or
    grid resolutions too (``sensor`` asserts which one is expected).
    """
    parts = [read_amsr_l3tb(p, bbox=bbox) for p in paths]
    if not parts:
        raise DataError("no AMSR L3 TB files given")
    sensors = {p.attrs["sensor"] for p in parts}
    grids = {p.attrs["grid"] for p in parts}
    if len(sensors) > 1 or len(grids) > 1 or (sensor is not None and sensors != {sensor}):
        raise DataError(f"files mix sensors {sorted(sensors)} or grids {sorted(grids)} (expected {sensor})",
                        path=parts[0].attrs["input_files"])
    by_var: dict[str, list[xr.Dataset]] = {}
    for p in parts:
        key = tuple(sorted(p.data_vars))
        for q in by_var.get(key, []):
            if q["time"].values[0] == p["time"].values[0]:
                raise DataError(f"two files for {key[0]} on {pd.Timestamp(p['time'].values[0]).date()}",
                                path=p.attrs["input_files"])
        by_var.setdefault(key, []).append(p)
    stacks = [xr.concat(sorted(v, key=lambda d: d["time"].values[0]), dim="time", combine_attrs="drop")
              for v in by_var.values()]
    out = xr.merge(stacks, join="outer", combine_attrs="drop")
    out.attrs.update(sensor=sensors.pop(), grid=grids.pop(), product=parts[0].attrs["product"],
                     input_files=" ".join(p.attrs["input_files"] for p in parts))
    return out
