"""Synthetic AMSR2 / AMSR-E L3 brightness-temperature files in the JAXA GCOM-W HDF5 layout.

Layout (JAXA *AMSR2 Higher Level Product Format Specification*, as read by
NASA LISF's ``readGCOMWAMSR2TbANNdata``, nansat's ``mapper_amsr2_l3`` and
published user code for the G-Portal files):

* file ``GW1AM2_<YYYYMMDD>_01D_EQM<A|D>_L3SGT<ff><H|L>A2220220.h5``: daily
  (``01D``; ``01M`` monthly with day ``00``) mean (``M``) of the ascending /
  descending passes on the equirectangular (``EQ``) grid; ``<ff>`` the
  frequency (06, 07, 10, 18, 23, 36, 89 GHz), ``H`` the 0.1 deg grid
  (1800 x 3600), ``L`` the 0.25 deg grid (720 x 1440);
* root datasets ``Brightness Temperature (H)`` and ``Brightness Temperature (V)``:
  uint16 (rows, cols), attribute ``SCALE FACTOR`` 0.01 (K per count) and
  ``UNIT`` "K"; 65535 = missing (error), 65534 = outside the observed area;
* row 0 is the northernmost (90 N edge), column 0 starts at 0 deg E and the
  columns run east to 360 deg;
* global attributes ``PlatformShortName`` (GCOM-W1), ``SensorShortName``
  (AMSR2), ``ProductName`` (AMSR2-L3), ``ObservationStartDateTime``,
  ``ObservationEndDateTime``, ``GeophysicalName``.

JAXA's AMSR-E products (L3 TB version 4) use the same HDF5 format with
``PlatformShortName`` Aqua and ``SensorShortName`` AMSR-E; their file-name
prefix is not pinned here, so AMSR-E files are written with the prefix
``AQUAME`` and the reader takes the sensor from the attributes. Values are
synthetic (smooth field, H < V, frequency-dependent), from ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

__all__ = ["AMSR_FREQUENCIES", "amsr_l3tb_filename", "write_amsr_l3tb"]

AMSR_FREQUENCIES = {"06": 6.925, "07": 7.3, "10": 10.65, "18": 18.7, "23": 23.8, "36": 36.5, "89": 89.0}
_SENSORS = {"AMSR2": ("GW1AM2", "GCOM-W1", "AMSR2-L3"), "AMSR-E": ("AQUAME", "Aqua", "AMSR-E-L3")}
MISSING, OUTSIDE = np.uint16(65535), np.uint16(65534)


def amsr_l3tb_filename(date, freq: str = "06", orbit: str = "A", resolution: float = 0.1,
                       sensor: str = "AMSR2") -> str:
    """JAXA name, e.g. ``GW1AM2_20160610_01D_EQMA_L3SGT06HA2220220.h5``."""
    if freq not in AMSR_FREQUENCIES or orbit not in ("A", "D") or resolution not in (0.1, 0.25) \
            or sensor not in _SENSORS:
        raise ValueError(f"bad freq/orbit/resolution/sensor {freq!r}, {orbit!r}, {resolution!r}, {sensor!r}")
    res = "H" if resolution == 0.1 else "L"
    return f"{_SENSORS[sensor][0]}_{pd.Timestamp(date):%Y%m%d}_01D_EQM{orbit}_L3SGT{freq}{res}A2220220.h5"


def write_amsr_l3tb(directory: str | Path, date, freq: str = "06", orbit: str = "A", *, resolution: float = 0.25,
                    sensor: str = "AMSR2", seed: int = 0, bbox=(-125.0, 25.0, -66.0, 50.0),
                    missing_fraction: float = 0.05, omit: tuple[str, ...] = (), filename: str | None = None,
                    shape: tuple[int, int] | None = None) -> Path:
    """Write one synthetic daily L3 TB file (see the module doc); ``bbox`` is the observed area."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (filename or amsr_l3tb_filename(date, freq, orbit, resolution, sensor))
    nrow, ncol = shape or (int(round(180 / resolution)), int(round(360 / resolution)))
    lat = 90.0 - (np.arange(nrow) + 0.5) * resolution
    lon = (np.arange(ncol) + 0.5) * resolution  # 0 .. 360 east
    lon180 = np.mod(lon + 180.0, 360.0) - 180.0
    rng = np.random.default_rng([seed, int(pd.Timestamp(date).strftime("%Y%m%d")), int(freq), ord(orbit)])
    inside = np.zeros((nrow, ncol), dtype=bool)
    if bbox is not None:
        lon0, lat0, lon1, lat1 = bbox
        inside = ((lat >= lat0) & (lat <= lat1))[:, None] & ((lon180 >= lon0) & (lon180 <= lon1))[None, :]
    else:
        inside[:] = True
    f = AMSR_FREQUENCIES[freq]
    doy = pd.Timestamp(date).day_of_year
    wet = 0.5 + 0.4 * np.sin(np.radians(lat) * 4.0)[:, None] * np.cos(np.radians(lon180) * 3.0 + doy / 40.0)[None, :]
    tbv = 280.0 - 50.0 * wet + 0.3 * f + rng.normal(0.0, 0.5, (nrow, ncol))
    tbh = tbv - 25.0 - 35.0 * wet / np.sqrt(f / 6.9) + rng.normal(0.0, 0.5, (nrow, ncol))
    gap = rng.random((nrow, ncol)) < missing_fraction
    prefix, platform, product = _SENSORS[sensor]
    day = pd.Timestamp(date)
    with h5py.File(path, "w") as h5:
        for pol, tb in (("H", tbh), ("V", tbv)):
            name = f"Brightness Temperature ({pol})"
            if name in omit:
                continue
            counts = np.clip(np.round(tb / 0.01), 0, 65533).astype(np.uint16)
            counts = np.where(inside, np.where(gap, MISSING, counts), OUTSIDE)
            ds = h5.create_dataset(name, data=counts, compression="gzip", compression_opts=1, chunks=True)
            if "SCALE FACTOR" not in omit:
                ds.attrs["SCALE FACTOR"] = np.array([0.01], dtype=np.float32)
            ds.attrs["UNIT"] = np.bytes_("K")
        for key, val in (("PlatformShortName", platform), ("SensorShortName", sensor), ("ProductName", product),
                         ("GeophysicalName", f"Brightness Temperature ({freq}GHz)"),
                         ("ObservationStartDateTime", f"{day:%Y-%m-%d}T00:00:00.000Z"),
                         ("ObservationEndDateTime", f"{day:%Y-%m-%d}T23:59:59.999Z")):
            h5.attrs[key] = np.array([val.encode()], dtype=f"S{len(val)}")
    return path
