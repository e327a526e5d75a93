"""Real-format multiscale inputs for tests and the example config: a gridded forcing file and SMAP granules.

The real ISMN sample (2007-2013) does not overlap the NLDAS sample (2015-04..2018-03),
so :func:`write_forcing_grid` *re-dates* real NLDAS-2 forcing: day ``d`` of the
requested period takes the sample's forcing of the same month and day in the
sample year ``2015-04-01..2016-03-31`` (29 Feb takes 28 Feb). The values are real
NLDAS weather, but of another year: they are a format stand-in, not the weather
the stations saw. Each fine cell takes the nearest CONUS-sample cell's forcing and
soils. The SMAP granules are :mod:`smfusion.synthetic.smap_granules` files (synthetic
values in the real layout). A real run replaces both with real files (docs/multiscale.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.grids.ease2 import children_rowcol, get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy

__all__ = ["write_forcing_grid", "write_real_format_inputs", "SAMPLE_YEAR_START"]

SAMPLE_YEAR_START = "2015-04-01"
VARIABLES = ("APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "SPFH_2_FORA")
STATICS = ("Sand", "Clay", "Capa", "NDVI")


def _sample_dates(dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Same month/day in the sample year 2015-04-01..2016-03-31."""
    out = []
    for d in dates:
        year = 2015 if d.month >= 4 else 2016
        day = min(d.day, 28) if d.month == 2 else d.day
        out.append(pd.Timestamp(year=year, month=d.month, day=day))
    return pd.DatetimeIndex(out)


def write_forcing_grid(path: str | Path, lat, lon, start: str, end: str, *, root=None, fine_grid: str = "M09",
                       coarse_grid: str = "M36") -> Path:
    """Write a CF NetCDF (time, y, x) of re-dated real NLDAS forcing + soils on ``fine_grid``.

    Filled cells: every fine cell of the coarse cells that contain the points
    ``lat``/``lon`` (e.g. station locations); the rest of the bounding window is NaN.
    """
    from smfusion.io.cf import write_netcdf
    from smfusion.io.hydrodl import read_hydrodl
    from smfusion.settings import conus_dir

    fine, coarse = get_grid(fine_grid), get_grid(coarse_grid)
    root = root or conus_dir()
    if root is None:
        from smfusion.io.registry import conus_root

        root = conus_root()
    src = read_hydrodl(root, dynamic=VARIABLES, static=STATICS, target=(), start="2015-04-01", end="2016-03-31")
    crow, ccol = latlon_to_rowcol(coarse, np.atleast_1d(lat), np.atleast_1d(lon))
    keep = crow >= 0
    cells = np.unique(np.stack([crow[keep], ccol[keep]], axis=1), axis=0)
    fr, fc = children_rowcol(fine, coarse, cells[:, 0], cells[:, 1])
    fr, fc = fr.reshape(-1), fc.reshape(-1)
    r0, c0 = fr.min(), fc.min()
    ny, nx = fr.max() - r0 + 1, fc.max() - c0 + 1
    flat, flon = rowcol_to_latlon(fine, fr, fc)
    # nearest sample cell with complete data (plain lat/lon distance is enough to pick a donor)
    ok = np.all([np.isfinite(src[v].values) for v in STATICS], axis=0)
    ok &= np.all([np.isfinite(src[v].values).all(axis=1) for v in VARIABLES], axis=0)
    cand = np.nonzero(ok)[0]
    d2 = (src["lat"].values[cand][None, :] - flat[:, None]) ** 2 + (src["lon"].values[cand][None, :] - flon[:, None]) ** 2
    donor = cand[np.argmin(d2, axis=1)]
    dates = pd.date_range(start, end, freq="D")
    t_idx = pd.DatetimeIndex(src["time"].values).get_indexer(_sample_dates(dates))
    x, _ = rowcol_to_xy(fine, np.zeros(nx, dtype=int), c0 + np.arange(nx))
    _, y = rowcol_to_xy(fine, r0 + np.arange(ny), np.zeros(ny, dtype=int))
    from smfusion.grids.ease2 import xy_to_latlon

    ds = xr.Dataset(coords={"time": dates.values, "y": ("y", y), "x": ("x", x),
                            "lat": ("y", xy_to_latlon(fine, np.zeros_like(y), y)[0]),
                            "lon": ("x", xy_to_latlon(fine, x, np.zeros_like(x))[1])},
                    attrs={"ease2_grid": fine.name, "title": "re-dated NLDAS-2 forcing on EASE-Grid 2.0",
                           "source": f"NLDAS-2 daily forcing of the hydroDL CONUS sample {root}, year 2015-04..2016-03, "
                                     f"re-dated to {start}..{end} (same month/day); nearest sample cell"})
    for v in VARIABLES:
        cube = np.full((dates.size, ny, nx), np.nan, dtype=np.float32)
        cube[:, fr - r0, fc - c0] = src[v].values[donor][:, t_idx].T
        ds[v] = (("time", "y", "x"), cube, dict(src[v].attrs))
    for v in STATICS:
        grid = np.full((ny, nx), np.nan, dtype=np.float32)
        grid[fr - r0, fc - c0] = src[v].values[donor]
        ds[v] = (("y", "x"), grid, dict(src[v].attrs))
    return write_netcdf(ds, path, grid=fine)


def write_real_format_inputs(out_dir: str | Path, ismn_dir: str | Path, start: str, end: str, *, seed: int = 0,
                             ismn_kwargs: dict | None = None) -> dict[str, Path]:
    """Forcing grid around the ISMN stations of ``ismn_dir`` and daily SPL3SMP granules over their window,
    both for ``start..end``: ``{"forcing": file, "smap_dir": folder}``."""
    from smfusion.io.ismn import read_ismn
    from smfusion.synthetic.smap_granules import write_granule

    out_dir = Path(out_dir)
    st = read_ismn(ismn_dir, **(ismn_kwargs or {}))
    lat, lon = st["lat"].values, st["lon"].values
    forcing = write_forcing_grid(out_dir / "forcing_M09.nc", lat, lon, start, end)
    bbox = (float(lon.min()) - 1, float(lat.min()) - 1, float(lon.max()) + 1, float(lat.max()) + 1)
    smap_dir = out_dir / "smap"
    for day in pd.date_range(start, end, freq="D"):
        write_granule(smap_dir, day, "SPL3SMP", seed=seed, bbox=bbox, coverage=0.6, compression="lzf")
    return {"forcing": forcing, "smap_dir": smap_dir}


if __name__ == "__main__":  # python -m smfusion.synthetic.forcing_grid OUT_DIR ISMN_DIR START END
    import sys

    paths = write_real_format_inputs(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4],
                                     ismn_kwargs={"good_flags": ("G", "U")})
    print({k: str(v) for k, v in paths.items()})
