"""Reader ``sensor_cells``: soil-moisture retrievals of several products (TU Wien cell files) collocated onto sites.

``data.sensor_cells`` (:class:`smfusion.config.SensorCellsConfig`) names the
sites (the stored points of one product, e.g. SMAP L3's EASE-2 36 km points,
or EASE-2 M36/M25 cell centres in a bbox) and the products, one section each
(``sensor``: ``smap_l3``, ``smos_l3``, ``smos_ic``, ``ascat``, ``esa_cci``;
:mod:`smfusion.data.sensors`). For each product and site: the nearest stored
point within the distance limit with at least ``min_valid_days`` valid days in
its record (the same point whatever period is read; found with pygeogrids, distance reported as great circle), its observations read in whatever layout the file has
(:mod:`smfusion.io.ts_cells`), the producer's recommended filters applied, the
valid observations of a day averaged (local solar day for swath and overpass
products, the file's date for daily products).

The result is the canonical ``(site, time)`` Dataset, daily: ``sm_<name>``
(and ``sm_<name>_error``, ``<name>_freqbandID`` where the product has them),
coords ``lat``/``lon`` (the sites) and per product ``<name>_gpi`` and
``<name>_distance_km`` (-1 and NaN where no point lies within the limit).
These are retrievals, not brightness temperatures (docs/casm.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.config import DataConfig
from smfusion.data.collocation import haversine_km
from smfusion.data.readers import register_reader
from smfusion.data.sensors import Sensor, get_sensor
from smfusion.errors import DataError
from smfusion.io.qa4sm_cells import cell_files
from smfusion.io.ts_cells import cell_locations, read_cell_series

__all__ = ["read_sensor_cells", "product_folder", "product_points", "near_cells", "sites_of", "candidates", "daily_series"]

NO_POINT = -1


def product_folder(path: str) -> Path:
    """The folder of cell files: ``path`` itself when absolute, else under ``smfusion.settings.data_dir()``."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        from smfusion.settings import data_dir

        root = data_dir()
        if root is None:
            raise DataError(f"relative product path {path!r} needs a data folder (SMFUSION_DATA_DIR)", field="path")
        p = root / p
    return p


def near_cells(lat, lon, max_km: float) -> set[int]:
    """TU Wien 5-degree cells (cell = 36 * lon index + lat index, from -180 / -90) within ``max_km`` of the points."""
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    dlat = max_km / 111.0 + 0.01
    dlon = dlat / max(np.cos(np.radians(min(np.abs(lat).max() + dlat, 89.0))), 0.01)
    out = set()
    for a, b in zip(lat, lon):
        for la in np.arange(a - dlat, a + dlat + 5, 5.0):
            for lo in np.arange(b - dlon, b + dlon + 5, 5.0):
                la_c, lo_c = min(la, a + dlat), min(lo, b + dlon)
                out.add(int(((lo_c + 180.0) % 360.0) // 5) * 36 + int(np.clip((la_c + 90.0) // 5, 0, 35)))
    return out


def product_points(folder: Path, bbox=None, field: str = "path", cells=None) -> pd.DataFrame:
    """Stored points of the cell files in ``folder`` (all, or those of ``cells``): columns gpi, lat, lon, file;
    optionally only those inside ``bbox``."""
    files = cell_files(folder) if folder.is_dir() else {}
    if not files:
        raise DataError("no NNNN.nc cell files in the folder", path=folder, field=field)
    if cells is not None:
        files = {c: p for c, p in files.items() if c in cells}
    if not files:
        return pd.DataFrame({"gpi": np.array([], dtype=np.int64), "lat": [], "lon": [], "row": [], "file": []})
    pts = pd.concat([cell_locations(p).assign(file=p.name) for p in files.values()], ignore_index=True)
    if bbox is not None:
        lon0, lat0, lon1, lat1 = bbox
        pts = pts[(pts.lon >= lon0) & (pts.lon <= lon1) & (pts.lat >= lat0) & (pts.lat <= lat1)]
    return pts.reset_index(drop=True)


def sites_of(sc) -> pd.DataFrame:
    """The sites: columns lat, lon (and row/col for a grid, gpi for product points)."""
    if sc.points is not None:
        section = sc.products[sc.points]
        pts = product_points(product_folder(section.path), sc.bbox, f"data.sensor_cells.products.{sc.points}.path")
        if pts.empty:
            raise DataError(f"product {sc.points!r} stores no point inside bbox {sc.bbox}", field="data.sensor_cells.bbox")
        return pts[["gpi", "lat", "lon"]].drop_duplicates("gpi").sort_values("gpi").reset_index(drop=True)
    from smfusion.data.tb_files import tb_cells
    from smfusion.grids.ease2 import get_grid, rowcol_to_latlon

    rows, cols = tb_cells(SimpleNamespace(grid=sc.grid, rows=None, cols=None, bbox=sc.bbox))
    lat, lon = rowcol_to_latlon(get_grid(sc.grid), rows, cols)
    return pd.DataFrame({"row": rows, "col": cols, "lat": lat, "lon": lon})


def candidates(points: pd.DataFrame, lat, lon, max_km: float, k: int = 8) -> pd.DataFrame:
    """Per site the ``k`` nearest stored points within ``max_km`` (great circle), nearest first.

    Columns site, gpi, file, distance_km (pygeogrids' KD-tree finds them; its
    distance is the chord, so the search is a little wider and then cut on the arc).
    """
    from pygeogrids.grids import BasicGrid

    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    cols = {"site": [], "gpi": [], "file": [], "distance_km": []}
    if not points.empty:
        grid = BasicGrid(points.lon.values.copy(), points.lat.values.copy(), gpis=np.arange(len(points)),
                         transform_lon=True)
        k = min(k, len(points))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "less than k points found": beyond the limit
            idx, _ = grid.find_k_nearest_gpi(lon.copy(), lat.copy(), max_dist=max_km * 1000.0 * 1.01, k=k)
        idx = np.asarray(idx, dtype=np.int64).reshape(lat.size, k)
        for i in range(lat.size):
            j = idx[i][idx[i] < len(points)]
            d = haversine_km(lat[i], lon[i], points.lat.values[j], points.lon.values[j])
            order = np.argsort(d, kind="stable")
            for jj, dd in zip(j[order], d[order]):
                if dd <= max_km:
                    cols["site"].append(i), cols["gpi"].append(int(points.gpi.values[jj]))
                    cols["file"].append(points.file.values[jj]), cols["distance_km"].append(float(dd))
    return pd.DataFrame(cols).astype({"site": np.int64, "gpi": np.int64, "distance_km": float})


def daily_series(df: pd.DataFrame, sensor: Sensor, section, lon: float) -> pd.DataFrame:
    """One point's observations -> filtered daily means (index: dates; columns sm, error, extras)."""
    keep = sensor.good(df, section)
    obs = df[keep]
    cols = {"sm": np.asarray(sensor.value(obs), dtype=float)}
    if sensor.error is not None:
        err = np.asarray(obs[sensor.error].values, dtype=float)
        cols["error"] = np.where(err >= 0, err, np.nan)
    for v in sensor.extra:
        cols[v] = np.asarray(obs[v].values, dtype=float)
    t = obs.index
    if sensor.day == "local":
        t = t + pd.to_timedelta(lon / 15.0, unit="h")
    return pd.DataFrame(cols, index=t.floor("D")).groupby(level=0).mean()


def _nearest_valid(cand: pd.DataFrame, folder: Path, sensor: Sensor, section, sites: pd.DataFrame, times,
                   min_days: int):
    """Per site: (gpi, distance_km, daily frame on ``times``) of the nearest candidate with at least ``min_days``
    valid days in its whole record: the same point whatever period is read (training and prediction see one
    point per site), and not a point with a handful of values where a neighbour has years of them."""
    series = {}
    for file, group in cand.groupby("file"):
        series.update(read_cell_series(folder / file, sorted(set(group.gpi)), sensor.variables))
    out = {}
    for i, group in cand.groupby("site", sort=True):
        for gpi, dist in zip(group.gpi, group.distance_km):
            day = daily_series(series[int(gpi)], sensor, section, float(sites.lon.values[i]))
            if np.isfinite(day["sm"].values).sum() >= min_days:
                out[int(i)] = (int(gpi), float(dist), day.reindex(times))
                break
    return out


def _product(name: str, section, sc, sites: pd.DataFrame, times: pd.DatetimeIndex) -> xr.Dataset:
    sensor = get_sensor(section.sensor)
    folder = product_folder(section.path)
    max_km = section.max_distance_km or sc.max_distance_km
    pts = product_points(folder, None, f"data.sensor_cells.products.{name}.path",
                         near_cells(sites.lat.values, sites.lon.values, max_km))
    cand = candidates(pts, sites.lat.values, sites.lon.values, max_km)
    names = [f"sm_{name}"] + ([f"sm_{name}_error"] if sensor.error else []) + [f"{name}_{v}" for v in sensor.extra]
    out = {n: np.full((len(sites), times.size), np.nan, np.float32) for n in names}
    gpi, dist = np.full(len(sites), NO_POINT, dtype=np.int64), np.full(len(sites), np.nan)
    for i, (g, d, day) in _nearest_valid(cand, folder, sensor, section, sites, times, sc.min_valid_days).items():
        gpi[i], dist[i] = g, d
        for n, col in zip(names, day.columns):
            out[n][i] = day[col].values
    ds = xr.Dataset({n: (("site", "time"), v) for n, v in out.items()},
                    coords={f"{name}_gpi": ("site", gpi), f"{name}_distance_km": ("site", dist)})
    ds[f"sm_{name}"].attrs = {"units": sensor.units, "sensor": sensor.name, "source": str(folder),
                              "long_name": f"{sensor.name} retrieval, filtered as its producer recommends, daily mean"}
    return ds


@register_reader("sensor_cells")
def read_sensor_cells(cfg: DataConfig, start: Optional[str], end: Optional[str]) -> xr.Dataset:
    """The products of ``cfg.sensor_cells`` at its sites, daily over ``start..end`` (module doc)."""
    sc = cfg.section_of("sensor_cells")
    if start is None or end is None:
        raise DataError("reader sensor_cells needs a period (start and end dates)", field="periods")
    times = pd.date_range(start, end, freq="D")
    sites = sites_of(sc)
    parts = [_product(name, section, sc, sites, times) for name, section in sc.products.items()]
    ds = xr.merge(parts).assign_coords(site=np.arange(len(sites)), time=times.values.astype("datetime64[ns]"),
                                       lat=("site", sites.lat.values), lon=("site", sites.lon.values))
    for c in ("gpi", "row", "col"):
        if c in sites:
            ds = ds.assign_coords({c: ("site", sites[c].values)})
    ds.attrs = {"source": "TU Wien cell files (smfusion.data.sensor_cells)", "products": " ".join(sc.products),
                "kind": "soil-moisture retrievals (not brightness temperatures)"}
    if sc.grid is not None:
        ds.attrs["ease2_grid"] = sc.grid
    if cfg.sites is not None:
        ds = ds.sel(site=cfg.sites)
    return ds.transpose("site", "time")


def _register_check() -> None:
    from smfusion.data.problems import Problem, register_check

    @register_check("sensor_cells")
    def check_sensor_cells(cfg) -> list:
        """Every product folder holds cell files with the product's variables; the sites exist; each product has
        a point within its distance limit of at least one site (warning otherwise) -- without reading series."""
        from smfusion.io.ts_cells import cell_layout, open_cell

        sc = cfg.data.section_of("sensor_cells")
        sites = sites_of(sc)
        out = []
        for name, section in sc.products.items():
            field = f"data.sensor_cells.products.{name}.path"
            folder = product_folder(section.path)
            max_km = section.max_distance_km or sc.max_distance_km
            pts = product_points(folder, None, field, near_cells(sites.lat.values, sites.lon.values, max_km))
            sensor = get_sensor(section.sensor)
            for path in cell_files(folder).values():
                with open_cell(path) as ds:
                    cell_layout(ds)
                    lacking = [v for v in sensor.variables if v not in ds.variables]
                if lacking:
                    out.append(Problem(field, f"{path.name} lacks {lacking} ({section.sensor} files need them)"))
            cand = candidates(pts, sites.lat.values, sites.lon.values, max_km)
            if cand.empty:
                out.append(Problem(field, f"no stored point within the distance limit of any of the {len(sites)} sites",
                                   "check the folder and max_distance_km", "warning"))
        return out


_register_check()
