"""A site-layout product (one site per cell of an EASE-2 grid) onto any EASE-2 grid, area-weighted.

Each site's series goes into its cell of the source grid (sites sharing a
cell are averaged); the source window (bounding box of the cells, the rest
NaN) is regridded with :class:`smfusion.grids.regrid.Regridder`: the identity
on the same grid, the block mean where the source grid nests in the output
grid, overlap-area weights where it does not (M36 -> M25). The area mean is
conserved: with ``min_valid_fraction=0``, sum_i a_i v_i = sum_j A_j v_j, a_i the
part of output cell i covered by valid source cells, A_j a source cell's area.
A cell covered less than ``min_valid_fraction`` is NaN. Every float layer is
regridded this way (spread layers: the area-weighted mean of the std); an
integer ``source`` layer is rebuilt from the per-time era index ``source_era``
where ``sm`` has a value.
Work is streamed over time chunks into a Zarr store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import as_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy
from smfusion.grids.regrid import Regridder

__all__ = ["SOURCE_FILL", "site_cells", "regrid_site_product"]

SOURCE_FILL = -1


def site_cells(ds: xr.Dataset, grid) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of ``grid`` holding each site's lat/lon (raises if one lies outside)."""
    rows, cols = latlon_to_rowcol(as_grid(grid), ds["lat"].values, ds["lon"].values)
    if np.any(rows < 0):
        raise DataError(f"{int((rows < 0).sum())} sites lie outside grid {as_grid(grid).name}", field="lat/lon")
    return np.asarray(rows), np.asarray(cols)


def _field(values: np.ndarray, r: np.ndarray, c: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """(site, time) -> (time, ny, nx), sites sharing a cell averaged, NaN where no valid value."""
    nt = values.shape[1]
    flat = r * nx + c
    ok = np.isfinite(values)
    s = np.zeros((ny * nx, nt))
    n = np.zeros((ny * nx, nt))
    np.add.at(s, flat, np.where(ok, values, 0.0))
    np.add.at(n, flat, ok.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return out.T.reshape(nt, ny, nx)


def regrid_site_product(ds: xr.Dataset, src_grid, dst_grid, store: Path, *, min_valid_fraction: float = 0.5,
                        chunk_steps: int = 366) -> xr.Dataset:
    """(site, time) layers of ``ds`` on ``src_grid`` cells -> (time, y, x) on ``dst_grid``, written to the Zarr
    ``store`` chunk by chunk; returns the store opened lazily with x, y, lat, lon coords (module doc)."""
    src, dst = as_grid(src_grid), as_grid(dst_grid)
    rows, cols = site_cells(ds, src)
    win = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
    rg = Regridder.create(src, dst, src_window=win)
    ny, nx = win[1] - win[0], win[3] - win[2]
    r, c = rows - win[0], cols - win[2]
    layers = [v for v in ds.data_vars if ds[v].dims == ("site", "time") and ds[v].dtype.kind == "f"]
    src_layer = ds["source_era"] if "source_era" in ds else None
    nt = ds.sizes["time"]
    covered = np.isfinite(rg(np.ones((1, ny, nx)) * np.where(_field(np.ones((len(r), 1)), r, c, ny, nx) > 0, 1.0,
                                                           np.nan), min_valid_fraction))
    if not covered.any():
        raise DataError(f"no {dst.name} cell is covered to min_valid_fraction {min_valid_fraction} by the "
                        f"{src.name} cells of the sites (sparse sites on a coarser grid: lower it)",
                        field="min_valid_fraction")
    for i, a in enumerate(range(0, nt, chunk_steps)):
        sl = slice(a, min(a + chunk_steps, nt))
        part = {}
        for name in layers:
            vals = np.asarray(ds[name].isel(time=sl).transpose("site", "time").values, dtype=float)
            part[name] = (("time", "y", "x"), rg(_field(vals, r, c, ny, nx), min_valid_fraction).astype(np.float32))
        if src_layer is not None and "sm" in part:
            era = np.asarray(src_layer.isel(time=sl).values, dtype=np.int8)
            has = np.isfinite(part["sm"][1])
            part["source"] = (("time", "y", "x"), np.where(has, era[:, None, None], SOURCE_FILL).astype(np.int8))
        piece = xr.Dataset(part, coords={"time": ds["time"].values[sl]})
        piece.to_zarr(store, mode="w" if i == 0 else "a", zarr_format=2, consolidated=False,
                      **({} if i == 0 else {"append_dim": "time"}))
    r0, r1, c0, c1 = rg.dst_window
    rr, cc = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
    glat, glon = rowcol_to_latlon(dst, rr, cc)
    x, _ = rowcol_to_xy(dst, np.zeros(c1 - c0, dtype=int), np.arange(c0, c1))
    _, y = rowcol_to_xy(dst, np.arange(r0, r1), np.zeros(r1 - r0, dtype=int))
    out = xr.open_zarr(store, consolidated=False)
    out = out.assign_coords(x=("x", x), y=("y", y), lat=(("y", "x"), glat), lon=(("y", "x"), glon))
    for name in out.data_vars:
        if name in ds:
            out[name].attrs = dict(ds[name].attrs)
    attrs = {k: v for k, v in ds.attrs.items() if k != "featureType"}
    out.attrs = dict(attrs, ease2_grid=dst.name, regridded_from=src.name,
                     regridding=f"area-weighted from {src.name} cells (smfusion.grids.regrid), "
                            f"min_valid_fraction {min_valid_fraction}")
    return out

