"""Synthetic SMOS L3 brightness-temperature files in the CATDS L3TB NetCDF layout (MIR_CDF3TA / CDF3TD).

No SMOS file can be downloaded here. The layout follows what readers of the
real product pin down (ESA/Brockmann FIDUCEO ``SmosL1CDailyGriddedReader`` and
its tests on ``SM_RE07_MIR_CDF3TA_20160610T000000_20160610T235959_330_001_7``):

* file ``SM_<RE07|OPER>_MIR_CDF3T<A|D>_<YYYYMMDDThhmmss>_<YYYYMMDDThhmmss>_<vvv>_<vvv>_<n>.DBL.nc``,
  one UTC day (a 3-day aggregate has an end date two days later); A = ascending
  (6 am), D = descending (6 pm) half-orbits;
* EASE-Grid 2.0 global 25 km: 1-D ``lat`` (584, **south to north**, -83.517 ..
  83.517) and ``lon`` (1388, -179.870 .. 179.870); 14 incidence-angle classes
  ``inc`` (centres 2.5, 7.5, ..., 37.5, 40.0, 42.5, 47.5, ..., 62.5 deg) with
  half-widths ``dinc``;
* per angle class (dims ``inc, lat, lon``), int16 with ``scale_factor`` /
  ``add_offset`` and ``_FillValue`` -32768: ``BT_H``, ``BT_V`` (K, scale
  200/32767, offset 200), ``BT_3``, ``BT_4`` (scale 50/32767, offset 0),
  ``Pixel_Radiometric_Accuracy_H/V`` and ``Pixel_BT_Standard_Deviation_H/V``
  (K, scale 25/32767, offset 25), ``Incidence_Angle`` (deg), ``Nviews``,
  ``Nb_RFI_Flags``, ``Nb_SUN_Flags`` (counts, no scaling), and int32 ``Days``,
  ``UTC_Seconds``, ``UTC_Microseconds`` (fill -2147483647; days since
  2000-01-01 UTC, the EE CFI transport time);
* 2-D ``X_Swath`` (float32 m, fill 9.96921e36) and ``Grid_Point_Mask`` (byte).

Scale factors of BT, BT_3/4, standard deviation and footprint variables are
those of the real file; the others are written with self-consistent values
(the reader applies whatever the attributes say). ``bbox`` writes a window of
the grid (the lat/lon coords are then that window's), ``bbox=None`` the whole
grid. Values: a smooth synthetic TB field, H < V, dropping with angle in H and
rising in V, with RFI-flagged views and gaps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon

__all__ = ["ANGLE_CLASSES", "smos_l3tb_filename", "write_smos_l3tb"]

ANGLE_CLASSES = np.array([2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 32.5, 37.5, 40.0, 42.5, 47.5, 52.5, 57.5, 62.5])
_HALF_WIDTH = np.array([2.5] * 7 + [1.25, 1.25, 1.25] + [2.5] * 4)
I16_FILL = np.int16(-32768)
I32_FILL = np.int32(-2147483647)

# name -> (scale_factor, add_offset, units, long_name)
_SCALED = {
    "BT_H": (200 / 32767, 200.0, "K", "Angle class averaged Brightness temperature in H-pol over current Earth "
                                      "fixed grid point, obtained by polarisation rotation from L1c data"),
    "BT_V": (200 / 32767, 200.0, "K", "Angle class averaged Brightness temperature in V-pol over current Earth "
                                      "fixed grid point, obtained by polarisation rotation from L1c data"),
    "BT_3": (50 / 32767, 0.0, "K", "Angle class averaged Brightness temperature 3rd Stokes parameter"),
    "BT_4": (50 / 32767, 0.0, "K", "Angle class averaged Brightness temperature 4th Stokes parameter"),
    "Pixel_Radiometric_Accuracy_H": (25 / 32767, 25.0, "K", "Angle class averaged radiometric accuracy, H-pol"),
    "Pixel_Radiometric_Accuracy_V": (25 / 32767, 25.0, "K", "Angle class averaged radiometric accuracy, V-pol"),
    "Pixel_BT_Standard_Deviation_H": (25 / 32767, 25.0, "K", "Angle class BT standard deviation, H-pol"),
    "Pixel_BT_Standard_Deviation_V": (25 / 32767, 25.0, "K", "Angle class BT standard deviation, V-pol"),
    "Incidence_Angle": (90 / 32767, 0.0, "deg", "Angle class averaged incidence angle"),
    "Azimuth_Angle": (360 / 32767, 0.0, "deg", "Angle class averaged azimuth angle"),
    "Footprint_Axis1": (100 / 65534, 50.0, "km", "Angle class averaged Elliptical footprint major semi-axis value"),
    "Footprint_Axis2": (100 / 65534, 50.0, "km", "Angle class averaged Elliptical footprint minor semi-axis value"),
}
_COUNTS = {
    "Nviews": "Number of views used to compute Angle class averages",
    "Nb_RFI_Flags": "Number of views flagged as potentially contaminated by RFI used to compute Angle class averages",
    "Nb_SUN_Flags": "Number of views flagged as potentially contaminated by Sun used to compute Angle class averages",
}


def smos_l3tb_filename(date, orbit: str = "A", days: int = 1, processing: str = "RE07") -> str:
    """CATDS name, e.g. ``SM_RE07_MIR_CDF3TA_20160610T000000_20160610T235959_330_001_7.DBL.nc``."""
    if orbit not in ("A", "D"):
        raise ValueError(f"orbit must be 'A' or 'D', got {orbit!r}")
    t0 = pd.Timestamp(date).normalize()
    t1 = t0 + pd.Timedelta(days=days) - pd.Timedelta(seconds=1)
    return f"SM_{processing}_MIR_CDF3T{orbit}_{t0:%Y%m%dT%H%M%S}_{t1:%Y%m%dT%H%M%S}_330_001_7.DBL.nc"


def _window(grid, bbox):
    if bbox is None:
        return 0, grid.nrows, 0, grid.ncols
    lon0, lat0, lon1, lat1 = bbox
    r0, c0 = latlon_to_rowcol(grid, lat1, lon0)
    r1, c1 = latlon_to_rowcol(grid, lat0, lon1)
    return int(r0), int(r1) + 1, int(c0), int(c1) + 1


def _truth(lat, lon, date, orbit, rng, shape):
    """Synthetic TB_H, TB_V per angle class (inc, lat, lon), and the pixel fields."""
    doy = pd.Timestamp(date).day_of_year
    wet = 0.5 + 0.4 * np.sin(np.radians(lat) * 4.0) * np.cos(np.radians(lon) * 3.0 + doy / 40.0)
    th = np.radians(ANGLE_CLASSES)[:, None, None]
    tbh = 270.0 - 90.0 * wet - 40.0 * np.sin(th) ** 2 * wet
    tbv = 275.0 - 70.0 * wet + 30.0 * np.sin(th) ** 2 * wet
    noise = rng.normal(0.0, 1.5, (2, *shape))
    nviews = rng.integers(0, 12, shape).astype(np.int16)
    nviews[(ANGLE_CLASSES > 55)[:, None, None] & (rng.random(shape) < 0.5)] = 0
    rfi = np.minimum(nviews, rng.binomial(3, 0.05, shape)).astype(np.int16)
    return tbh + noise[0], tbv + noise[1], nviews, rfi


def _fields(lat, lon, date, orbit, rng) -> dict[str, np.ndarray]:
    """Every (inc, lat, lon) field of a file, physical units, rows north to south."""
    shape = (ANGLE_CLASSES.size, lat.size, lon.size)
    tbh, tbv, nviews, rfi = _truth(lat[None, :, None], lon[None, None, :], date, orbit, rng, shape)
    local = 6.0 if orbit == "A" else 18.0
    utc_h = np.mod(local - lon / 15.0, 24.0)[None, None, :] + rng.uniform(-0.1, 0.1, shape)
    return {
        "BT_H": tbh, "BT_V": tbv, "BT_3": rng.normal(0, 2, shape), "BT_4": rng.normal(0, 2, shape),
        "Pixel_Radiometric_Accuracy_H": 2.0 + 4.0 / np.sqrt(np.maximum(nviews, 1)),
        "Pixel_Radiometric_Accuracy_V": 2.2 + 4.0 / np.sqrt(np.maximum(nviews, 1)),
        "Pixel_BT_Standard_Deviation_H": rng.uniform(1, 5, shape),
        "Pixel_BT_Standard_Deviation_V": rng.uniform(1, 5, shape),
        "Incidence_Angle": ANGLE_CLASSES[:, None, None] + rng.uniform(-1, 1, shape) * _HALF_WIDTH[:, None, None] * 0.8,
        "Azimuth_Angle": rng.uniform(0, 359, shape),
        "Footprint_Axis1": rng.uniform(20, 60, shape), "Footprint_Axis2": rng.uniform(20, 40, shape),
        "micro": rng.integers(0, 999_999, shape), "nviews": nviews, "rfi": rfi, "seen": nviews > 0,
        "secs": np.floor(utc_h * 3600.0),
    }


def write_smos_l3tb(directory: str | Path, date, orbit: str = "A", *, seed: int = 0,
                    bbox: tuple[float, float, float, float] | None = (-125.0, 25.0, -66.0, 50.0),
                    days: int = 1, omit_variables: tuple[str, ...] = (), filename: str | None = None,
                    lat_order: str = "south_first", compression: bool = True) -> Path:
    """Write one synthetic L3TB file (see the module doc) and return its path."""
    import netCDF4

    grid = get_grid("M25")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (filename or smos_l3tb_filename(date, orbit, days))
    r0, r1, c0, c1 = _window(grid, bbox)
    rows, cols = np.arange(r0, r1), np.arange(c0, c1)
    lat = rowcol_to_latlon(grid, rows, np.zeros_like(rows))[0]
    lon = rowcol_to_latlon(grid, np.zeros_like(cols), cols)[1]
    rng = np.random.default_rng([seed, int(pd.Timestamp(date).strftime("%Y%m%d")), ord(orbit)])
    fields = _fields(lat, lon, date, orbit, rng)
    day0 = (pd.Timestamp(date).normalize() - pd.Timestamp("2000-01-01")).days
    if lat_order == "south_first":  # the same physical field, rows stored south to north
        lat = lat[::-1]
        fields = {k: v[:, ::-1] for k, v in fields.items()}
    nviews, rfi, seen, secs, micro = (fields.pop(k) for k in ("nviews", "rfi", "seen", "secs", "micro"))
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("inc", ANGLE_CLASSES.size)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        for name, values, attrs in (("inc", ANGLE_CLASSES, {"units": "deg", "long_name": "incidence angle class"}),
                                    ("dinc", _HALF_WIDTH, {"units": "deg", "long_name": "class half-width"})):
            v = nc.createVariable(name, "f4", ("inc",))
            v[:] = values
            v.setncatts(attrs)
        for name, values in (("lat", lat), ("lon", lon)):
            v = nc.createVariable(name, "f4", (name,))
            v[:] = values
            v.setncatts({"units": f"degrees_{'north' if name == 'lat' else 'east'}", "standard_name":
                         "latitude" if name == "lat" else "longitude"})
        opts = {"zlib": compression, "complevel": 1}
        dims3 = ("inc", "lat", "lon")
        for name, (scale, offset, units, long_name) in _SCALED.items():
            if name in omit_variables:
                continue
            v = nc.createVariable(name, "i2", dims3, fill_value=I16_FILL, **opts)
            v.set_auto_maskandscale(False)
            raw = np.clip(np.round((fields[name] - offset) / scale), -32767, 32767).astype(np.int16)
            v[:] = np.where(seen, raw, I16_FILL)
            v.setncatts({"units": units, "long_name": long_name, "scale_factor": np.float64(scale),
                         "add_offset": np.float64(offset)})
        for name, long_name in _COUNTS.items():
            if name in omit_variables:
                continue
            v = nc.createVariable(name, "i2", dims3, fill_value=I16_FILL, **opts)
            v.set_auto_maskandscale(False)
            counts = {"Nviews": nviews, "Nb_RFI_Flags": rfi, "Nb_SUN_Flags": np.zeros(nviews.shape, np.int16)}[name]
            v[:] = np.where(seen, counts, I16_FILL)
            v.setncatts({"units": "NA", "long_name": long_name})
        for name, values in (("Days", np.full(nviews.shape, day0)), ("UTC_Seconds", secs),
                             ("UTC_Microseconds", micro)):
            if name in omit_variables:
                continue
            v = nc.createVariable(name, "i4", dims3, fill_value=I32_FILL, **opts)
            v.set_auto_maskandscale(False)
            v[:] = np.where(seen, values, I32_FILL).astype(np.int32)
            v.setncatts({"units": {"Days": "dd", "UTC_Seconds": "s", "UTC_Microseconds": "10-6s"}[name],
                         "long_name": f"UTC Time at which the averaged BT was taken, in EE CFI transport time "
                                      f"format. {name}"})
        v = nc.createVariable("X_Swath", "f4", ("lat", "lon"), fill_value=np.float32(9.96921e36), **opts)
        v[:] = np.broadcast_to(np.abs(lon - lon.mean())[None, :] * 1e4, (lat.size, lon.size)).astype(np.float32)
        v.setncatts({"units": "m", "long_name": "Minimum distance of grid point to the sub satellite point track"})
        v = nc.createVariable("Grid_Point_Mask", "i1", ("lat", "lon"), **opts)
        v[:] = np.full((lat.size, lon.size), 25, dtype=np.int8)
        nc.setncatts({"title": "SMOS L3 brightness temperatures (synthetic, smfusion)",
                      "geospatial_grid": "EASE-Grid 2.0 global 25 km"})
    return path
