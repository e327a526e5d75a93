"""Synthetic SMAP L2 radiometer half-orbit granules in the exact SPL2SMP / SPL2SMP_E HDF5 layout.

Layout checked against two real SPL2SMP v8 granules (``../shared/data/smap_l2``):

* file name ``SMAP_L2_SM_P_<rev:05d>_<A|D>_<YYYYMMDDThhmmss>_<CRID>_<vvv>.h5``
  (``SMAP_L2_SM_P_E_...`` for the 9 km enhanced product);
* group ``Soil_Moisture_Retrieval_Data`` with 1-D datasets, one value per
  retrieved cell: the fields of :mod:`smfusion.synthetic.smap_granules` (same
  dtypes, fills and attributes; no ``_pm`` suffix), ``EASE_row_index`` /
  ``EASE_column_index`` (uint16, fill 65534), ``latitude``/``longitude``
  (float32 without fill), ``tb_time_utc`` (24-byte ISO strings);
* ``/Metadata/DatasetIdentification@shortName`` (SPL2SMP / SPL2SMP_E),
  ``/Metadata/OrbitMeasuredLocation@orbitDirection`` (Ascending / Descending)
  and ``@revNumber``, ``/Metadata/Extent@rangeBeginningDateTime`` /
  ``@rangeEndingDateTime``.

Values are synthetic (the L3 generator's fields on the cells of ``bbox``
observed with probability ``coverage``), reproducible from ``seed``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from smfusion.grids.ease2 import get_grid
from smfusion.synthetic.smap_granules import _FIELDS, _fields, _window, FLOAT_FILL, J2000_EPOCH, UINT_FILL

__all__ = ["L2_PRODUCT_GRID", "l2_granule_filename", "write_l2_granule"]

L2_PRODUCT_GRID = {"SPL2SMP": "M36", "SPL2SMP_E": "M09"}


def l2_granule_filename(product: str, start, rev: int, direction: str, crid: str = "R18290",
                        version: int = 1) -> str:
    """NSIDC name, e.g. ``SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5``."""
    if product not in L2_PRODUCT_GRID or direction not in ("A", "D"):
        raise ValueError(f"unknown product {product!r} or direction {direction!r}")
    stem = "SMAP_L2_SM_P_E" if product == "SPL2SMP_E" else "SMAP_L2_SM_P"
    return f"{stem}_{rev:05d}_{direction}_{pd.Timestamp(start).strftime('%Y%m%dT%H%M%S')}_{crid}_{version:03d}.h5"


def write_l2_granule(directory: str | Path, start, product: str = "SPL2SMP", *, direction: str = "D",
                     rev: int = 2801, seed: int = 0, bbox=(-125.0, 25.0, -66.0, 50.0), coverage: float = 0.6,
                     omit_fields: tuple[str, ...] = (), bad_index: bool = False, filename: str | None = None,
                     compression: str | None = "gzip") -> Path:
    """Write one synthetic half-orbit granule and return its path.

    ``direction`` "A" (ascending, 6 pm local solar time) or "D" (descending,
    6 am); ``start`` the half-orbit start (UTC); ``bbox`` (lon_min, lat_min,
    lon_max, lat_max) the area whose cells it observes. For error tests:
    ``omit_fields`` and ``bad_index`` (one cell's row index set to fill).
    """
    grid = get_grid(L2_PRODUCT_GRID[product]) if product in L2_PRODUCT_GRID else None
    if grid is None:
        raise ValueError(f"unknown product {product!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (filename or l2_granule_filename(product, start, rev, direction))
    day = pd.Timestamp(start).normalize()
    rng = np.random.default_rng([seed, rev])
    fields = _fields(grid, day, "AM" if direction == "D" else "PM", rng, _window(grid, bbox), coverage)
    cells = fields["EASE_row_index"] != UINT_FILL
    flat = {k: v[cells] for k, v in fields.items()}
    if bad_index and flat["EASE_row_index"].size:
        flat["EASE_row_index"][0] = UINT_FILL
    secs = flat["tb_time_seconds"]
    utc = (J2000_EPOCH + (secs * 1000).astype("timedelta64[ms]")).astype("datetime64[ms]")
    times = np.array([f"{str(t)[:23]}Z".encode() for t in utc], dtype="S24")
    n = secs.size
    with h5py.File(path, "w") as h5:
        ident = h5.create_group("Metadata/DatasetIdentification")
        ident.attrs["shortName"] = product
        ident.attrs["SMAPShortName"] = "L2_SM_P_E" if product == "SPL2SMP_E" else "L2_SM_P"
        orbit = h5.create_group("Metadata/OrbitMeasuredLocation")
        orbit.attrs["orbitDirection"] = "Ascending" if direction == "A" else "Descending"
        orbit.attrs["revNumber"] = np.int32(rev)
        ext = h5.create_group("Metadata/Extent")
        t0 = pd.Timestamp(start)
        ext.attrs["rangeBeginningDateTime"] = t0.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        ext.attrs["rangeEndingDateTime"] = (t0 + pd.Timedelta(minutes=53)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        grp = h5.create_group("Soil_Moisture_Retrieval_Data")
        opts = {"compression": compression, "shuffle": True, "chunks": (max(1, min(n, 4096)),)} \
            if compression and n else {}
        for name, (dtype, attrs) in _FIELDS.items():
            if name in omit_fields:
                continue
            ds = grp.create_dataset(name, data=flat[name].astype(dtype), **opts)
            if name not in ("latitude", "longitude"):  # the product's lat/lon carry no fill value
                fill = -9999.0 if dtype == "f8" else (FLOAT_FILL if dtype == "f4" else UINT_FILL)
                ds.attrs["_FillValue"] = np.array(fill, dtype=dtype)
            for key, val in attrs.items():
                if name in ("latitude", "longitude") and key in ("valid_min", "valid_max"):
                    continue
                ds.attrs[key] = val
        if "tb_time_utc" not in omit_fields:
            grp.create_dataset("tb_time_utc", data=times)
    return path
