"""Reader for SMOS L3 brightness temperatures (CATDS L3TB NetCDF, MIR_CDF3TA / CDF3TD) on EASE-Grid 2.0 M25.

Layout: see :mod:`smfusion.synthetic.smos_l3tb` (1-D ``lat`` south to north,
1-D ``lon``, 14 incidence-angle classes, int16 fields with ``scale_factor``,
``add_offset`` and ``_FillValue``). A file already reduced to one angle (``BT_H``
/ ``BT_V`` without an angle dimension, e.g. a product fitted at 42.5 deg) is
read as it is; its angle comes from the ``incidence_angle`` attribute when set.

From multi-angle files the TB at ``angle`` (default 42.5 deg) is either the
angle class itself (``mode='class'``) or, per pixel, the value at ``angle`` of
the weighted least-squares quadratic

    TB(theta) = a + b (theta - angle) + c (theta - angle)^2,   weights = Nviews,

through the valid classes with ``fit_range[0] <= theta <= fit_range[1]``
(theta = the class's mean ``Incidence_Angle``), ``mode='fit'``: needs at least
three classes with angle between the smallest and the largest, so it never
extrapolates; NaN otherwise. Before either, a class is dropped where the
pixel's ``Pixel_Radiometric_Accuracy`` exceeds ``max_accuracy`` (K), where
``Nb_RFI_Flags / Nviews`` exceeds ``max_rfi_fraction``, or ``Nviews`` is below
``min_views``.

Output: a (time, y, x) cube on the M25 window the file covers, variables
``tb_h_<o>``, ``tb_v_<o>`` (K), ``n_classes_<o>`` (classes used),
``overpass_time_<o>`` (UTC, from Days/UTC_Seconds/UTC_Microseconds since
2000-01-01 of the class nearest ``angle``) with ``<o>`` = ``asc`` (A files,
6 am) or ``dsc`` (D files, 6 pm); :func:`smfusion.io.ease_cube.cells_to_sites`
turns it into the canonical (site, time) model. Every problem with a file
raises :class:`~smfusion.errors.DataError` naming the file and variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon
from smfusion.io.ease_cube import cube_coords

__all__ = ["parse_smos_l3tb_name", "read_smos_l3tb", "open_smos_l3tb", "fit_at_angle"]

_NAME_RE = re.compile(r"SM_\w{4}_MIR_CDF3T([AD])_(\d{8})T\d{6}_(\d{8})T\d{6}_")
_GRID = "M25"


def parse_smos_l3tb_name(path: str | Path) -> tuple[str, pd.Timestamp, int]:
    """(orbit 'A'/'D', first day, number of days) from a CATDS L3TB file name."""
    m = _NAME_RE.search(Path(path).name)
    if m is None:
        raise DataError("not a CATDS L3TB file name (SM_xxxx_MIR_CDF3T[AD]_<start>_<end>_...)", path=path)
    t0, t1 = pd.Timestamp(m.group(2)), pd.Timestamp(m.group(3))
    return m.group(1), t0, int((t1 - t0).days) + 1


def fit_at_angle(tb: np.ndarray, theta: np.ndarray, weight: np.ndarray, angle: float,
                 min_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the weighted quadratic fit of ``tb`` against ``theta`` (classes first) evaluated at ``angle``.

    Returns (value, number of classes used); NaN where fewer than
    ``min_classes`` valid classes or ``angle`` outside their range.
    """
    ok = np.isfinite(tb) & np.isfinite(theta) & (weight > 0)
    w = np.where(ok, weight, 0.0)
    d = np.where(ok, (theta - angle) / 10.0, 0.0)  # in tens of degrees: moments of order 1
    y = np.where(ok, tb, 0.0)
    s = [np.sum(w * d**k, axis=0) for k in range(5)]
    t = [np.sum(w * d**k * y, axis=0) for k in range(3)]
    a = np.stack([np.stack([s[0], s[1], s[2]], -1), np.stack([s[1], s[2], s[3]], -1),
                  np.stack([s[2], s[3], s[4]], -1)], -2)
    b = np.stack(t, -1)
    n = ok.sum(axis=0)
    lo = np.where(ok, theta, np.inf).min(axis=0)
    hi = np.where(ok, theta, -np.inf).max(axis=0)
    good = (n >= min_classes) & (lo <= angle) & (hi >= angle)
    a[~good] = np.eye(3)
    good &= np.abs(np.linalg.det(a)) > 1e-9 * np.maximum(s[0], 1e-300) ** 3  # not degenerate (e.g. one angle)
    a[~good] = np.eye(3)
    coef = np.linalg.solve(a, b[..., None])[..., 0]
    return np.where(good, coef[..., 0], np.nan), np.where(good, n, 0)


def _var(ds: xr.Dataset, name: str, path: Path) -> xr.DataArray:
    if name not in ds.variables:
        raise DataError("variable missing from SMOS L3TB file", path=path, field=name)
    return ds[name]


def _rows_cols(ds: xr.Dataset, path: Path):
    """Grid rows/cols of the file's lat/lon, and whether lat runs south to north (checked against M25)."""
    grid = get_grid(_GRID)
    lat = np.asarray(_var(ds, "lat", path).values, dtype=float)
    lon = np.asarray(_var(ds, "lon", path).values, dtype=float)
    if lat.ndim != 1 or lon.ndim != 1 or lat.size < 1 or lon.size < 1:
        raise DataError("expected 1-D lat and lon", path=path, field="lat")
    rows, _ = latlon_to_rowcol(grid, lat, np.zeros_like(lat))
    _, cols = latlon_to_rowcol(grid, np.zeros_like(lon), lon)
    clat = rowcol_to_latlon(grid, rows, np.zeros_like(rows))[0]
    clon = rowcol_to_latlon(grid, np.zeros_like(cols), cols)[1]
    south_first = bool(lat.size > 1 and lat[1] > lat[0])
    step = -1 if south_first else 1
    if (rows < 0).any() or (cols < 0).any() or not np.allclose(lat, clat, atol=0.01) \
            or not np.allclose(lon, clon, atol=0.01) or (np.diff(rows) != step).any() or (np.diff(cols) != 1).any():
        raise DataError("lat/lon are not contiguous EASE-Grid 2.0 M25 cell centres", path=path, field="lat")
    return rows, cols, south_first


def _quality(ds, pol: str, path: Path, max_accuracy, max_rfi_fraction, min_views) -> np.ndarray | None:
    """Boolean (inc, lat, lon) of classes passing the quality limits (None: no limit asked)."""
    keep = None

    def both(m):
        return m if keep is None else keep & m

    if max_accuracy is not None:
        acc = _var(ds, f"Pixel_Radiometric_Accuracy_{pol}", path).values
        keep = both(np.isfinite(acc) & (acc <= max_accuracy))
    if max_rfi_fraction is not None or min_views:
        nv = _var(ds, "Nviews", path).values.astype(float)
        if min_views:
            keep = both(np.isfinite(nv) & (nv >= min_views))
        if max_rfi_fraction is not None:
            rfi = _var(ds, "Nb_RFI_Flags", path).values.astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                keep = both(np.isfinite(rfi) & (rfi <= max_rfi_fraction * nv))
    return keep


def read_smos_l3tb(path: str | Path, *, angle: float = 42.5, mode: str = "fit", fit_range=(30.0, 55.0),
                   max_accuracy: float | None = None, max_rfi_fraction: float | None = None,
                   min_views: int = 1) -> xr.Dataset:
    """One L3TB file as a (time=1, y, x) cube on its M25 window (see the module doc)."""
    path = Path(path)
    if mode not in ("fit", "class"):
        raise ValueError(f"mode must be 'fit' or 'class', got {mode!r}")
    orbit, day, ndays = parse_smos_l3tb_name(path)
    o = "asc" if orbit == "A" else "dsc"
    if not path.is_file():
        raise DataError("SMOS L3TB file not found", path=path)
    try:
        ds = xr.open_dataset(path, mask_and_scale=True, decode_times=False, engine="netcdf4")
    except Exception as exc:  # netCDF/HDF5 errors of every kind
        raise DataError(f"cannot open SMOS L3TB file as NetCDF (truncated or corrupt?): {exc}", path=path) from exc
    try:
        with ds:
            rows, cols, south_first = _rows_cols(ds, path)
            out, n_used, when = _read_fields(ds, path, angle, mode, fit_range, max_accuracy, max_rfi_fraction,
                                             min_views)
    except DataError:
        raise
    except Exception as exc:  # truncated chunks, bad filters, ...
        raise DataError(f"cannot read SMOS L3TB file (truncated or corrupt?): {exc}", path=path) from exc
    flip = (lambda a: a[::-1]) if south_first else (lambda a: a)
    window = (int(rows.min()), int(rows.max()) + 1, int(cols[0]), int(cols[-1]) + 1)
    units = {"units": "K", "standard_name": "brightness_temperature"}
    data_vars = {
        f"tb_h_{o}": (("time", "y", "x"), flip(out["H"])[None].astype(np.float32),
                      dict(units, long_name=f"SMOS H-pol TB at {angle} deg ({mode}), {o} orbit")),
        f"tb_v_{o}": (("time", "y", "x"), flip(out["V"])[None].astype(np.float32),
                      dict(units, long_name=f"SMOS V-pol TB at {angle} deg ({mode}), {o} orbit")),
        f"n_classes_{o}": (("time", "y", "x"), flip(n_used)[None].astype(np.int16),
                           {"long_name": "incidence-angle classes used (V-pol)"}),
        f"overpass_time_{o}": (("time", "y", "x"), flip(when)[None], {"long_name": "acquisition time (UTC)"}),
    }
    cube = xr.Dataset(data_vars, coords=cube_coords(get_grid(_GRID), window, [day], "first UTC day of the file"))
    cube.attrs.update(product="SMOS L3TB (CATDS MIR_CDF3TA/CDF3TD)", ease2_grid=_GRID, orbit=orbit,
                      composite_days=ndays, incidence_angle=float(angle), angle_mode=mode,
                      fit_range=list(fit_range), input_files=path.name)
    return cube


def _read_fields(ds, path, angle, mode, fit_range, max_accuracy, max_rfi_fraction, min_views):
    bt_h = _var(ds, "BT_H", path)
    angle_dims = [d for d in bt_h.dims if d not in ("lat", "lon")]
    if len(angle_dims) > 1 or bt_h.ndim - len(angle_dims) != 2:
        raise DataError(f"BT_H has dims {bt_h.dims}; expected (lat, lon) with at most one angle dim",
                        path=path, field="BT_H")
    out = {}
    if not angle_dims:  # already one angle
        file_angle = float(bt_h.attrs.get("incidence_angle", ds.attrs.get("incidence_angle", angle)))
        if abs(file_angle - angle) > 0.5:
            raise DataError(f"file holds TB at {file_angle} deg, {angle} asked", path=path, field="BT_H")
        for pol in ("H", "V"):
            out[pol] = _var(ds, f"BT_{pol}", path).transpose("lat", "lon").values
        return out, np.isfinite(out["V"]).astype(int), np.full(out["V"].shape, np.datetime64("NaT"), "M8[ns]")
    adim = angle_dims[0]
    centres = np.asarray(ds[adim].values if adim in ds.variables else _var(ds, "inc", path).values, dtype=float)
    theta = _var(ds, "Incidence_Angle", path).transpose(adim, "lat", "lon").values if mode == "fit" else None
    nviews = _var(ds, "Nviews", path).transpose(adim, "lat", "lon").values.astype(float)
    k = int(np.argmin(np.abs(centres - angle)))
    if mode == "class" and abs(centres[k] - angle) > 1e-6:
        raise DataError(f"no angle class at {angle} deg (classes: {centres.tolist()})", path=path, field=adim)
    n_used = None
    for pol in ("H", "V"):
        tb = _var(ds, f"BT_{pol}", path).transpose(adim, "lat", "lon").values.astype(float)
        keep = _quality(ds, pol, path, max_accuracy, max_rfi_fraction, min_views)
        if keep is not None:
            tb = np.where(keep, tb, np.nan)
        if mode == "class":
            out[pol], n_used = tb[k], np.isfinite(tb[k]).astype(int)
        else:
            th = np.where(np.isfinite(theta), theta, centres[:, None, None])
            inside = (th >= fit_range[0]) & (th <= fit_range[1])
            out[pol], n_used = fit_at_angle(np.where(inside, tb, np.nan), th, np.nan_to_num(nviews), angle)
    days = _var(ds, "Days", path).isel({adim: k}).values
    secs = _var(ds, "UTC_Seconds", path).isel({adim: k}).values
    micro = _var(ds, "UTC_Microseconds", path).isel({adim: k}).values
    ok = np.isfinite(days) & np.isfinite(secs) & np.isfinite(micro)
    ints = [np.where(ok, a, 0).astype(np.int64) for a in (days, secs, micro)]  # integer ns: no rounding
    ns = (ints[0] * 86400 + ints[1]) * 1_000_000_000 + ints[2] * 1000
    when = np.datetime64("2000-01-01T00:00:00", "ns") + ns.astype("timedelta64[ns]")
    when[~ok] = np.datetime64("NaT")
    return out, n_used, when


def open_smos_l3tb(paths: Iterable[str | Path], **options) -> xr.Dataset:
    """Many L3TB files (A and/or D, one composite length, one window) as one (time, y, x) cube.

    ``options`` go to :func:`read_smos_l3tb`. Two files of one orbit and date
    are an error; an orbit missing on a date gives NaN there.
    """
    cubes = [read_smos_l3tb(p, **options) for p in paths]
    if not cubes:
        raise DataError("no SMOS L3TB files given")
    ndays = {c.attrs["composite_days"] for c in cubes}
    if len(ndays) > 1:
        raise DataError(f"files mix composite lengths {sorted(ndays)} days", path=cubes[0].attrs["input_files"])
    seen = set()
    for c in cubes:
        if not (np.array_equal(c["x"].values, cubes[0]["x"].values)
                and np.array_equal(c["y"].values, cubes[0]["y"].values)):
            raise DataError("files cover different lat/lon windows", path=c.attrs["input_files"], field="lat")
        key = (c.attrs["orbit"], pd.Timestamp(c["time"].values[0]))
        if key in seen:
            raise DataError(f"two files for orbit {key[0]} on {key[1].date()}", path=c.attrs["input_files"])
        seen.add(key)
    by_orbit = {}
    for c in sorted(cubes, key=lambda c: c["time"].values[0]):
        by_orbit.setdefault(c.attrs["orbit"], []).append(c.drop_attrs())
    parts = [xr.concat(v, dim="time") for v in by_orbit.values()]
    out = xr.merge(parts, join="outer", compat="no_conflicts")
    for name in [n for n in out.data_vars if n.startswith("n_classes_")]:
        out[name] = out[name].fillna(0).astype(np.int16)
    out.attrs.update({k: v for k, v in cubes[0].attrs.items() if k not in ("orbit", "input_files")},
                     orbits=" ".join(sorted(by_orbit)), input_files=" ".join(c.attrs["input_files"] for c in cubes))
    return out
