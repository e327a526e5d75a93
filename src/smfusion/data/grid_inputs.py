"""Reader ``grid_inputs``: forcing and statics from gridded stores, sampled to the cells of an EASE-2 grid.

Any xarray-readable store (NetCDF file or glob of files, Zarr, GRIB with
``engine: cfgrib``) in the layout of ERA5-Land, GLDAS or NLDAS (1-D lat/lon
coordinates) or on an EASE-Grid 2.0 grid (projected x/y). The config maps each
model variable to a store variable (by name or CF ``standard_name``) and the
units the model sees (:mod:`smfusion.data.units`). Stores are opened lazily
(no dask: xarray's lazily indexed arrays) and cached per process; a call reads
only the pixels its cells need over the requested days (orthogonal indexing of
the rows and columns they touch), so one cell block of a product or one block
of training sites never loads the whole store.

Sampling (``resample``): every cell value is ``v = sum_p w_p v_p / sum_p w_p [v_p valid]``
over the store pixels p with weight w_p, NaN when the valid weight is below
``min_valid_fraction`` of the cell's:

* ``nearest``: one pixel, the one holding the cell centre (NaN outside the store);
* ``area`` on lat/lon: the cos(lat)-weighted pixels whose centres fall in the cell
  (:func:`smfusion.grids.latlon.bucket_weights`);
* ``area`` on EASE-2: the overlap area of each store cell with the model cell
  (:func:`smfusion.grids.regrid.site_weights`; exact in one projection).

Sub-daily steps become days (``daily``: mean, sum, min or max of the valid
steps of each UTC day). The result is the canonical ``(site, time)`` Dataset;
site ids are positions in the cell list (``cells``), coords ``lat``/``lon``
(cell centres), ``row``/``col``, attribute ``ease2_grid``.
"""

from __future__ import annotations

import functools
import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from smfusion.config import DataConfig, GridInputsConfig, GridStore, GridVariable
from smfusion.data.readers import register_reader
from smfusion.data.units import converter
from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import as_grid, latlon_to_rowcol, rowcol_to_latlon, xy_to_rowcol
from smfusion.io.zarr_codecs import check_zarr_codecs

__all__ = ["read_grid_inputs", "cell_list", "open_store"]

_LAT, _LON = ("lat", "latitude"), ("lon", "longitude")


@register_reader("grid_inputs")
def read_grid_inputs(cfg: DataConfig, start: Optional[str], end: Optional[str]) -> xr.Dataset:
    """The canonical Dataset of ``cfg.dynamic``, ``cfg.static`` and ``cfg.target`` (module docstring)."""
    gc = cfg.section_of("grid_inputs")
    rows, cols, lat, lon = cell_list(gc.grid, gc.cells, gc.land_file, gc.bbox)
    ids = np.arange(rows.size)
    if cfg.sites is not None:
        ids = np.asarray(cfg.sites, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= rows.size):
            raise DataError(f"site id out of range 0..{rows.size - 1}", field="data.sites")
    where = _locate(gc, [*cfg.dynamic, *cfg.static, *cfg.target])
    t0, t1 = _period(gc, where, start, end)
    days = pd.date_range(t0, t1, freq="D")
    out = {}
    for name, (store_cfg, var_cfg) in where.items():
        store = open_store(store_cfg.path, store_cfg.engine)
        geo = _geometry(store, store_cfg, gc, rows[ids], cols[ids])
        out[name] = _read_variable(store, store_cfg, var_cfg, name, geo, days)
    coords = {"site": ("site", ids), "time": ("time", days.values),
              "lat": ("site", lat[ids], {"standard_name": "latitude", "units": "degrees_north"}),
              "lon": ("site", lon[ids], {"standard_name": "longitude", "units": "degrees_east"}),
              "row": ("site", rows[ids], {"long_name": f"EASE-Grid 2.0 {as_grid(gc.grid).name} row"}),
              "col": ("site", cols[ids], {"long_name": f"EASE-Grid 2.0 {as_grid(gc.grid).name} column"})}
    return xr.Dataset(out, coords=coords, attrs={"ease2_grid": as_grid(gc.grid).name,
                                                 "resampling": gc.resample, "reader": "grid_inputs"})


@functools.lru_cache(maxsize=8)
def cell_list(grid: str, cells: str, land_file: Optional[str], bbox) -> tuple[np.ndarray, ...]:
    """Rows, cols, lat, lon of the model cells: every land cell of ``grid`` or the cells of a lat/lon file."""
    g = as_grid(grid)
    if cells == "land":
        from smfusion.grids.land import land_cells

        rows, cols = land_cells(g, land_file)
    else:
        path = Path(cells).expanduser()
        if not path.is_file():
            raise DataError("cell file not found", path=path, field="data.grid_inputs.cells")
        if path.suffix == ".csv":
            tab = pd.read_csv(path)
            lat, lon = tab["lat"].to_numpy(float), tab["lon"].to_numpy(float)
        else:
            with xr.open_dataset(path) as f:
                lat, lon = np.asarray(f["lat"].values, float).ravel(), np.asarray(f["lon"].values, float).ravel()
        rows, cols = latlon_to_rowcol(g, lat, lon)
        if np.any(rows < 0):
            raise DataError(f"{int((rows < 0).sum())} cells lie outside grid {g.name}", path=path, field="lat/lon")
    lat, lon = rowcol_to_latlon(g, rows, cols)
    if bbox is not None:
        keep = (lat >= bbox[0]) & (lat <= bbox[1]) & (lon >= bbox[2]) & (lon <= bbox[3])
        rows, cols, lat, lon = rows[keep], cols[keep], lat[keep], lon[keep]
    if rows.size == 0:
        raise DataError("no model cell selected", field="data.grid_inputs.cells/bbox")
    return (np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(lat, float), np.asarray(lon, float))


@dataclass
class _Store:
    """Opened files of a store (sorted by first time; one entry for a Zarr store or a static file)."""

    path: str
    parts: list[xr.Dataset]
    times: list[Optional[np.ndarray]]

    @property
    def first(self) -> xr.Dataset:
        return self.parts[0]


@functools.lru_cache(maxsize=16)
def open_store(path: str, engine: Optional[str] = None) -> _Store:
    """Open a store lazily (kept open per process): a Zarr folder, a file, or every file of a glob."""
    p = Path(path).expanduser()
    files = [p] if p.exists() else [Path(f) for f in sorted(glob.glob(str(p)))]
    if not files:
        raise DataError("input store not found", path=path)
    parts = []
    for f in files:
        if f.is_dir() or f.suffix == ".zarr":
            check_zarr_codecs(f)
        try:
            if f.is_dir() or f.suffix == ".zarr":
                ds = xr.open_zarr(f, chunks=None, consolidated=None)
            else:
                ds = xr.open_dataset(f, engine=engine, chunks=None)
        except Exception as exc:  # every backend raises its own errors
            raise DataError(f"cannot open input store: {exc.__class__.__name__}: {exc}", path=f) from None
        parts.append(ds)
    times = [pd.DatetimeIndex(d["time"].values).values if "time" in d.dims else None for d in parts]
    order = sorted(range(len(parts)), key=lambda i: times[i][0] if times[i] is not None and times[i].size else 0)
    return _Store(path, [parts[i] for i in order], [times[i] for i in order])


def _locate(gc: GridInputsConfig, names: list[str]) -> dict[str, tuple[GridStore, GridVariable]]:
    where = {}
    for name in names:
        hits = [(s, s.variables[name]) for s in gc.stores if name in s.variables]
        if not hits:
            raise ConfigError(f"data.grid_inputs: no store maps the model variable '{name}'")
        where[name] = hits[0]
    return where


def _period(gc, where, start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    if start is not None and end is not None:
        return pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    spans = [(t[0], t[-1]) for s, _ in where.values() for t in open_store(s.path, s.engine).times if t is not None]
    if not spans:
        raise DataError("no store has a time axis: give a period", field="data.grid_inputs")
    t0 = pd.Timestamp(start) if start is not None else pd.Timestamp(min(a for a, _ in spans))
    t1 = pd.Timestamp(end) if end is not None else pd.Timestamp(max(b for _, b in spans))
    return t0.normalize(), t1.normalize()


@dataclass
class _Geometry:
    """Which store pixels the cells need: orthogonal row/column indices and (cells, pixels) weights."""

    ydim: str
    xdim: str
    iy: np.ndarray
    ix: np.ndarray
    weights: sp.csr_matrix
    need: float


def _coord(ds: xr.Dataset, names: tuple[str, ...]) -> Optional[str]:
    return next((n for n in names if n in ds.coords or n in ds.variables), None)


def _nearest_1d(c: np.ndarray, v: np.ndarray, circle: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest value of coordinate ``c`` to each ``v`` and its distance (longitudes: on a circle)."""
    order = np.argsort(c)
    cs = c[order]
    if circle:
        v = np.mod(v - cs[0], 360.0) + cs[0]
        cs = np.concatenate([cs, [cs[0] + 360.0]])
        order = np.concatenate([order, order[:1]])
    pos = np.clip(np.searchsorted(cs, v), 1, cs.size - 1)
    left = v - cs[pos - 1] <= cs[pos] - v
    pick = np.where(left, pos - 1, pos)
    return order[pick], np.abs(cs[pick] - v)


def _spacing(c: np.ndarray) -> float:
    return float(np.median(np.abs(np.diff(np.sort(c))))) if c.size > 1 else 360.0


def _geometry(store: _Store, sc: GridStore, gc: GridInputsConfig, rows, cols) -> _Geometry:
    ds, g = store.first, as_grid(gc.grid)
    ylat, xlon = _coord(ds, _LAT), _coord(ds, _LON)
    if ylat is not None and xlon is not None and ds[ylat].ndim == 1 and ds[xlon].ndim == 1:
        return _latlon_geometry(ds, ylat, xlon, g, gc, rows, cols, store.path)
    if "x" in ds.dims and "y" in ds.dims:
        return _ease_geometry(ds, sc, g, gc, rows, cols, store.path)
    raise DataError("store has neither 1-D lat/lon coordinates nor EASE-2 x/y", path=store.path)


def _box(flat_y: np.ndarray, flat_x: np.ndarray, i: np.ndarray, w: np.ndarray, n: int):
    """Orthogonal indices of the pixels used and the (cells, box pixels) weight matrix."""
    iy, py = np.unique(flat_y, return_inverse=True)
    ix, px = np.unique(flat_x, return_inverse=True)
    m = sp.csr_matrix((w, (i, py * ix.size + px)), shape=(n, iy.size * ix.size))
    m.sum_duplicates()
    return iy, ix, m


def _latlon_geometry(ds, ylat, xlon, g, gc, rows, cols, path) -> _Geometry:
    lat, lon = np.asarray(ds[ylat].values, float), np.asarray(ds[xlon].values, float)
    clat, clon = rowcol_to_latlon(g, rows, cols)
    n = rows.size
    ydim, xdim = ds[ylat].dims[0], ds[xlon].dims[0]
    if gc.resample == "nearest":
        wrap = lon.max() - lon.min() + _spacing(lon) >= 359.0
        if lon.max() > 180.0:
            clon = np.mod(clon, 360.0)
        iy, dy = _nearest_1d(lat, clat)
        ix, dx = _nearest_1d(lon, clon, circle=wrap)
        inside = (dy <= 0.51 * _spacing(lat)) & (dx <= 0.51 * _spacing(lon))
        i = np.flatnonzero(inside)
        iy_u, ix_u, m = _box(iy[i], ix[i], i, np.ones(i.size), n)
        return _Geometry(ydim, xdim, iy_u, ix_u, m, 0.5)
    from smfusion.grids.latlon import bucket_weights

    try:
        w = bucket_weights(lat, lon, g, rows, cols).tocoo()
    except DataError as exc:
        raise DataError(f"area resampling needs evenly spaced lat/lon: {exc}", path=path) from None
    iy_u, ix_u, m = _box(w.col // lon.size, w.col % lon.size, w.row, w.data, n)
    return _Geometry(ydim, xdim, iy_u, ix_u, m, gc.min_valid_fraction)


def _ease_geometry(ds, sc: GridStore, g, gc, rows, cols, path) -> _Geometry:
    name = sc.grid or ds.attrs.get("ease2_grid")
    if name is None:
        raise DataError("x/y store without an EASE-2 grid: set its 'grid' in data.grid_inputs.stores or the "
                        "ease2_grid attribute", path=path, field="grid")
    s = as_grid(name)
    r0, c0 = (int(v[0]) for v in xy_to_rowcol(s, ds["x"].values[:1], ds["y"].values[:1]))
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    n = rows.size
    clat, clon = rowcol_to_latlon(g, rows, cols)
    if gc.resample == "nearest" or s.name == g.name:
        r, c = latlon_to_rowcol(s, clat, clon)
        inside = r >= 0
        r, c = r - r0, c - c0
        i = np.flatnonzero(inside & (r >= 0) & (r < ny) & (c >= 0) & (c < nx))
        iy_u, ix_u, m = _box(r[i], c[i], i, np.ones(i.size), n)
        return _Geometry("y", "x", iy_u, ix_u, m, 0.5)
    from smfusion.grids.regrid import site_weights

    k = int(np.ceil(g.cell_size / s.cell_size)) + 1
    r, c = latlon_to_rowcol(s, clat, clon)
    rr = (r[:, None, None] + np.arange(-k, k + 1)[None, :, None]).repeat(2 * k + 1, 2).ravel()
    cc = (c[:, None, None] + np.arange(-k, k + 1)[None, None, :]).repeat(2 * k + 1, 1).ravel()
    ok = (rr - r0 >= 0) & (rr - r0 < ny) & (cc - c0 >= 0) & (cc - c0 < nx) & np.repeat(r >= 0, (2 * k + 1) ** 2)
    key = np.unique(rr[ok] * s.ncols + cc[ok])
    src_r, src_c = np.divmod(key, s.ncols)
    w = (site_weights(s, g, src_r, src_c, rows, cols) / g.cell_size**2).tocoo()
    iy_u, ix_u, m = _box(src_r[w.col] - r0, src_c[w.col] - c0, w.row, w.data, n)
    return _Geometry("y", "x", iy_u, ix_u, m, gc.min_valid_fraction)


def _sample(geo: _Geometry, box: np.ndarray) -> np.ndarray:
    """(steps, box rows, box cols) values -> (cells, steps) by the weights (module docstring)."""
    a = box.reshape(box.shape[0], geo.iy.size * geo.ix.size)  # (steps, pixels)
    w = geo.weights
    if np.all(np.diff(w.indptr) <= 1) and np.all(w.data == 1.0):  # one pixel per cell (nearest): a gather
        out = np.full((w.shape[0], a.shape[0]), np.nan, dtype=np.float64)
        has = np.diff(w.indptr) == 1
        out[has] = a[:, w.indices].T
        return out
    a = np.ascontiguousarray(a.T, dtype=np.float64)  # (pixels, steps)
    valid = np.isfinite(a)
    num = w @ np.where(valid, a, 0.0)
    den = w @ valid.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den >= geo.need * (1 - 1e-9), num / den, np.nan)


def _daily(values: np.ndarray, times: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """(cells, steps) at any step -> (cells, days) by ``how`` over each UTC day's valid steps."""
    day = times.astype("datetime64[D]")
    uniq, start = np.unique(day, return_index=True)
    if uniq.size == day.size:
        return values, uniq
    ok = np.isfinite(values)
    filled = np.where(ok, values, {"mean": 0.0, "sum": 0.0, "min": np.inf, "max": -np.inf}[how])
    red = {"min": np.minimum, "max": np.maximum}.get(how, np.add)
    agg = red.reduceat(filled, start, axis=1)
    cnt = np.add.reduceat(ok.astype(np.int64), start, axis=1)
    if how == "mean":
        agg = agg / np.maximum(cnt, 1)
    return np.where(cnt > 0, agg, np.nan), uniq


def _source_var(ds: xr.Dataset, vc: GridVariable, path: str) -> str:
    if vc.name is not None:
        if vc.name not in ds.variables:
            raise DataError("variable not in the input store", path=path, field=vc.name)
        return vc.name
    hits = [n for n, v in ds.data_vars.items() if v.attrs.get("standard_name") == vc.standard_name]
    if len(hits) != 1:
        raise DataError(f"{len(hits)} variables with standard_name {vc.standard_name!r} (need one)", path=path,
                        field=vc.standard_name)
    return str(hits[0])


def _read_variable(store: _Store, sc: GridStore, vc: GridVariable, name: str, geo: _Geometry,
                   days: pd.DatetimeIndex) -> tuple:
    src = _source_var(store.first, vc, store.path)
    attrs = dict(store.first[src].attrs)
    units = vc.source_units or attrs.get("units")
    if vc.units is not None and units is None:
        raise DataError("no units attribute: set source_units to convert", path=store.path, field=src)
    convert = converter(units, vc.units, name, store.path) if vc.units is not None else None
    out_attrs = {k: attrs[k] for k in ("long_name", "standard_name") if k in attrs}
    out_attrs["units"] = vc.units or units or "1"
    idx = {geo.ydim: geo.iy, geo.xdim: geo.ix}
    if "time" not in store.first[src].dims:  # static
        da = store.first[src]
        box = np.asarray(da.isel(idx).transpose(geo.ydim, geo.xdim).values)
        v = _sample(geo, box[None])[:, 0]
        v = convert(v) if convert is not None else v.astype(np.float32)
        return ("site",), v, out_attrs
    lo, hi = days[0].to_datetime64(), (days[-1] + pd.Timedelta(days=1)).to_datetime64()
    pieces, stamps = [], []
    for ds, t in zip(store.parts, store.times):
        if t is None:
            continue
        sel = np.flatnonzero((t >= lo) & (t < hi))
        if sel.size == 0:
            continue
        da = ds[src].isel(time=slice(int(sel[0]), int(sel[-1]) + 1), **idx).transpose("time", geo.ydim, geo.xdim)
        pieces.append(_sample(geo, np.asarray(da.values)))
        stamps.append(t[sel[0]:sel[-1] + 1])
    out = np.full((geo.weights.shape[0], days.size), np.nan, dtype=np.float32)
    if pieces:
        vals, d = _daily(np.concatenate(pieces, axis=1), np.concatenate(stamps), vc.daily)
        pos = ((d - days[0].to_datetime64().astype("datetime64[D]")) / np.timedelta64(1, "D")).astype(np.int64)
        vals = convert(vals) if convert is not None else vals.astype(np.float32)
        if pos.size and pos[-1] - pos[0] + 1 == pos.size:  # contiguous days: a slice
            out[:, pos[0]:pos[-1] + 1] = vals
        else:
            out[:, pos] = vals
    return ("site", "time"), out, out_attrs


def _register_check() -> None:
    from smfusion.data.problems import Problem, register_check

    @register_check("grid_inputs")
    def check_grid_inputs(cfg) -> list:
        """Every store opens, every model variable is mapped and found, its units convert, the cells exist,
        and the stores' dates cover the periods (warning) -- without reading any data."""
        from smfusion.data.splits import span

        gc = cfg.data.section_of("grid_inputs")
        cell_list(gc.grid, gc.cells, gc.land_file, tuple(gc.bbox) if gc.bbox else None)
        out = []
        first = last = None
        for name, (sc, vc) in _locate(gc, [*cfg.data.dynamic, *cfg.data.static, *cfg.data.target]).items():
            store = open_store(sc.path, sc.engine)
            src = _source_var(store.first, vc, store.path)
            units = vc.source_units or store.first[src].attrs.get("units")
            if vc.units is not None:
                if units is None:
                    out.append(Problem(f"{sc.path} [{src}]", "no units attribute", "set source_units to convert"))
                else:
                    converter(units, vc.units, name, store.path)
            for t in store.times:
                if t is not None and t.size:
                    first = t[0] if first is None else min(first, t[0])
                    last = t[-1] if last is None else max(last, t[-1])
        if cfg.periods is not None and first is not None:
            w0, w1 = (pd.Timestamp(v) for v in span(cfg))
            if w0 < pd.Timestamp(first) or w1 > pd.Timestamp(last):
                out.append(Problem("data.grid_inputs.stores", f"the stores cover {pd.Timestamp(first).date()} .. "
                                   f"{pd.Timestamp(last).date()}, the config needs {w0.date()} .. {w1.date()}",
                                   "days outside the stores are missing values", "warning"))
        return out


_register_check()
