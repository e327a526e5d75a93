"""SYNTHETIC daily forcing, soils and a soil-moisture target on EASE-2 cells, written as a Zarr store.

For product and training benchmarks at global scale (no real global forcing
is available here). Everything is synthetic; the shapes are realistic:

* **weather field** ``w``: per day, an AR(1) random field on a 5 deg x 5 deg
  lat/lon mesh (lag-1 correlation 0.7: systems persist for days), bilinearly
  interpolated to the cells, so storms are spatially coherent over ~500 km;
* **precipitation** ``precip`` (mm d-1): rain where ``w`` exceeds a threshold
  that depends on latitude (wet tropics and mid-latitude storm tracks, dry
  subtropics), amount ``(w - threshold) x 10 x intensity(lat)``;
* **air temperature** ``tair`` (degC): ``28 - 0.45 |lat|`` plus a seasonal cycle
  of amplitude ``0.35 |lat|`` peaking in mid-July (mid-January south of the equator),
  + 3 K x the weather anomaly, - 2 K on rain days;
* **shortwave** ``swdown`` (W m-2): daily top-of-atmosphere insolation of the
  latitude and day of year (Spencer's declination) x a transmissivity of
  0.75, 0.45 on rain days;
* **specific humidity** ``spfh`` (kg kg-1): saturation at ``tair`` (Tetens) x
  relative humidity 0.5 + 0.4 x wetness, at 1000 hPa;
* statics ``sand``, ``clay`` (fractions): smooth functions of location;
* **target** ``sm`` (m3 m-3): a one-layer bucket driven by the above
  (infiltration of rain, evaporation ~ swdown x (tair > 0), drainage above
  field capacity), starting at 0.25.

:func:`write_forcing_store` writes them per time block (memory: one block of
days x the cells) as ``(time, y, x)`` on the window of an EASE-2 grid that
holds the cells (NaN elsewhere), with CF attributes and ``ease2_grid``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.grids.ease2 import get_grid, rowcol_to_latlon, rowcol_to_xy

__all__ = ["write_forcing_store", "VARIABLES", "STATICS"]

VARIABLES = {"precip": ("mm d-1", "precipitation_flux"), "tair": ("degC", "air_temperature"),
             "swdown": ("W m-2", "surface_downwelling_shortwave_flux_in_air"),
             "spfh": ("kg kg-1", "specific_humidity"), "sm": ("m3 m-3", "volume_fraction_of_condensed_water_in_soil")}
STATICS = {"sand": ("1", None), "clay": ("1", None)}
MESH = 5.0  # degrees of the weather mesh


class _Weather:
    """The AR(1) weather field on a lat/lon mesh and its bilinear interpolation to the cells."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray, rng: np.random.Generator):
        self.rng = rng
        self.mlat = np.arange(-90.0, 90.0 + MESH, MESH)
        self.mlon = np.arange(-180.0, 180.0 + MESH, MESH)
        fy = (lat + 90.0) / MESH
        fx = (lon + 180.0) / MESH
        self.iy = np.clip(np.floor(fy).astype(int), 0, self.mlat.size - 2)
        self.ix = np.clip(np.floor(fx).astype(int), 0, self.mlon.size - 2)
        self.wy, self.wx = fy - self.iy, fx - self.ix
        wy, wx = self.wy, self.wx  # unit variance at every cell: 1 / sqrt(sum of squared weights)
        self.scale = 1.0 / np.sqrt(((1 - wy) * (1 - wx)) ** 2 + ((1 - wy) * wx) ** 2 + (wy * (1 - wx)) ** 2
                                   + (wy * wx) ** 2)
        self.state = rng.standard_normal((self.mlat.size, self.mlon.size))

    def step(self) -> np.ndarray:
        self.state = 0.7 * self.state + np.sqrt(1 - 0.49) * self.rng.standard_normal(self.state.shape)
        s, iy, ix, wy, wx = self.state, self.iy, self.ix, self.wy, self.wx
        return ((1 - wy) * (1 - wx) * s[iy, ix] + (1 - wy) * wx * s[iy, ix + 1] + wy * (1 - wx) * s[iy + 1, ix]
                + wy * wx * s[iy + 1, ix + 1]) * self.scale


def _insolation(lat: np.ndarray, doy: int) -> np.ndarray:
    """Daily mean top-of-atmosphere shortwave (W m-2)."""
    g = 2 * np.pi * (doy - 1) / 365.0
    dec = 0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
    phi = np.radians(lat)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(dec), -1.0, 1.0))
    return 1361.0 / np.pi * (1 + 0.033 * np.cos(g)) * (ws * np.sin(phi) * np.sin(dec)
                                                      + np.cos(phi) * np.cos(dec) * np.sin(ws))


def _day(lat: np.ndarray, doy: int, w: np.ndarray, sm: np.ndarray, cap: np.ndarray) -> tuple[dict, np.ndarray]:
    alat = np.abs(lat)
    wet_band = 0.3 * np.exp(-((alat - 5.0) / 12.0) ** 2) + 0.2 * np.exp(-((alat - 50.0) / 12.0) ** 2)
    threshold = 0.8 - 1.5 * wet_band + 0.5 * np.exp(-((alat - 25.0) / 8.0) ** 2)
    rain = w > threshold
    intensity = 0.6 + 1.5 * np.exp(-((alat - 5.0) / 15.0) ** 2)
    precip = np.where(rain, (w - threshold) * 10.0 * intensity, 0.0)
    phase = np.where(lat >= 0, 196.0, 15.0)
    tair = 28.0 - 0.45 * alat + 0.35 * alat * np.cos(2 * np.pi * (doy - phase) / 365.0) + 3.0 * w - 2.0 * rain
    sw = _insolation(lat, doy) * np.where(rain, 0.45, 0.75)
    es = 6.112 * np.exp(17.67 * tair / (tair + 243.5))  # hPa
    spfh = 0.622 * es * np.clip(0.5 + 0.4 * np.tanh(w), 0.1, 1.0) / 1000.0
    evap = 0.04 * sw / 300.0 * (tair > 0) * sm / cap
    sm = sm + 0.004 * precip * (1.0 - sm / 0.5) - evap
    sm = np.clip(sm - 0.05 * np.maximum(sm - cap, 0.0), 0.02, 0.5)
    return {"precip": precip, "tair": tair, "swdown": sw, "spfh": spfh, "sm": sm}, sm


def write_forcing_store(path: str | Path, rows: np.ndarray, cols: np.ndarray, start: str, end: str, *,
                        grid: str = "M36", seed: int = 0, chunks: tuple = (30, 8, 1024)) -> Path:
    """Write the SYNTHETIC store (module docstring) for cells ``rows``/``cols`` of ``grid``, ``start..end``,
    one time chunk (``chunks``: time, y, x) at a time."""
    g = get_grid(grid)
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    ny, nx = r1 - r0, c1 - c0
    lat, lon = rowcol_to_latlon(g, rows, cols)
    x, _ = rowcol_to_xy(g, np.zeros(nx, int), np.arange(c0, c1))
    _, y = rowcol_to_xy(g, np.arange(r0, r1), np.zeros(ny, int))
    rng = np.random.default_rng(seed)
    weather = _Weather(lat, lon, rng)
    sand = np.clip(0.45 + 0.25 * np.sin(np.radians(3 * lon)) * np.cos(np.radians(2 * lat)), 0.05, 0.95)
    clay = np.clip(0.6 - sand + 0.1 * np.cos(np.radians(5 * lon)), 0.02, 0.7)
    cap = 0.15 + 0.25 * clay
    sm = np.full(rows.size, 0.25)
    days = pd.date_range(start, end, freq="D")
    ct, cy, cx = min(chunks[0], days.size), min(chunks[1], ny), min(chunks[2], nx)
    enc = {v: {"chunks": (ct, cy, cx)} for v in VARIABLES} | {v: {"chunks": (cy, cx)} for v in STATICS}
    first = True
    path = Path(path)
    for b0 in range(0, days.size, ct):
        block = days[b0:b0 + ct]
        cube = {v: np.full((block.size, ny, nx), np.nan, dtype=np.float32) for v in VARIABLES}
        for k, d in enumerate(block):
            vals, sm = _day(lat, d.day_of_year, weather.step(), sm, cap)
            for v in VARIABLES:
                cube[v][k, rows - r0, cols - c0] = vals[v]
        ds = xr.Dataset({v: (("time", "y", "x"), cube[v], {"units": u, "standard_name": sn})
                         for v, (u, sn) in VARIABLES.items()}, coords={"time": block.values, "y": y, "x": x})
        ds.attrs.update(ease2_grid=g.name, title="SYNTHETIC forcing, soils and soil moisture (smfusion)",
                        source="smfusion.synthetic.global_forcing", seed=int(seed))
        if first:
            for v, arr in (("sand", sand), ("clay", clay)):
                grid2 = np.full((ny, nx), np.nan, dtype=np.float32)
                grid2[rows - r0, cols - c0] = arr
                ds[v] = (("y", "x"), grid2, {"units": "1", "long_name": f"{v} fraction (synthetic)"})
            ds.to_zarr(path, mode="w", encoding=enc, zarr_format=2, consolidated=True)
            first = False
        else:
            ds.to_zarr(path, mode="a", append_dim="time", zarr_format=2, consolidated=True)
    return path
