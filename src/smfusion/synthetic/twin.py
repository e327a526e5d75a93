"""Twin experiment: fine-scale soil-moisture truth, a coarse "satellite" and point "stations".

Real pieces: the EASE-Grid 2.0 nesting (each CONUS-sample cell's M36 cell and
its 16 M09 children), the daily NLDAS-2 forcing and the soil attributes of the
hydroDL CONUS sample (:mod:`smfusion.io.hydrodl`). Synthetic pieces, all drawn
from one seed: sub-cell heterogeneity (precipitation multipliers, temperature
offsets, soil attributes + noise), a two-layer water-balance model giving the
truth, the satellite's errors and gaps, and the stations' representativeness
noise. See ``docs/twin.md`` for every equation and constant.

:func:`make_twin` returns the canonical ``(site, time)`` Dataset where a site is
one fine cell; :func:`read_twin` is the ``twin`` reader (an entry point of the
``smfusion.readers`` group, so the data layer never imports this module);
:mod:`smfusion.synthetic.water_balance` is the model alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import children_rowcol, get_grid, latlon_to_rowcol, nest_factor, rowcol_to_latlon
from smfusion.synthetic.water_balance import D1_MM, D2_MM, SoilParams, run_water_balance, soil_params

__all__ = ["SoilParams", "soil_params", "run_water_balance", "make_twin", "read_twin", "FORCING", "STATIC", "D1_MM", "D2_MM"]

FORCING = ("APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "SPFH_2_FORA")
STATIC = ("Sand", "Clay", "Capa", "NDVI")
# Layer-1 dynamics of the water balance, persistence (lag-1 autocorrelation) of the stations' AR(1) errors and
# their first day (drawn from the stationary distribution, or 0 as the twin before issue 27 started them).
# "calibrated" (the default since issue 27) gives daily 0-5 cm series as persistent as real ones (USCRN, Hawaii
# SCAN; docs/twin.md "Calibration against real data"); "original" is the twin before it (fast 0-5 cm layer),
# value for value.
DYNAMICS = {
    "calibrated": {"water": {"d2": 200.0, "coupling": 0.5, "bypass": 0.7, "evap_scale": 0.5}, "station_ar": 0.95,
                   "stationary_start": True},
    "original": {"water": {}, "station_ar": 0.7, "stationary_start": False},
}


def _revisit_mask(n_cell: int, n_day: int, rng: np.random.Generator, revisit=(2, 3)) -> np.ndarray:
    """Overpass days: gaps alternate between ``revisit`` lengths from a random phase per cell."""
    mask = np.zeros((n_cell, n_day), dtype=bool)
    pattern = np.resize(np.asarray(revisit), n_day)
    days = np.cumsum(pattern) - pattern[0]
    for i in range(n_cell):
        d = days + int(rng.integers(0, max(revisit)))
        mask[i, d[d < n_day]] = True
    return mask


def make_twin(
    root: str | Path | None = None,
    *,
    seed: int = 0,
    start: str = "2015-04-01",
    end: str = "2016-03-31",
    n_coarse: int | None = 24,
    station_fraction: float = 0.75,
    max_stations_per_cell: int = 2,
    n_networks: int = 4,
    fine_grid: str = "M09",
    coarse_grid: str = "M36",
    sat_bias: float = 0.06,
    sat_seasonal: float = 0.04,
    sat_noise: float = 0.02,
    sat_gain_loss: float = 0.35,
    sat_missing: float = 0.1,
    revisit: tuple[int, int] = (2, 3),
    station_offset: float = 0.02,
    station_noise: float = 0.015,
    precip_cv: float = 0.4,
    input_errors: float = 0.0,
    dynamics: str = "calibrated",
    land_dynamics: str | None = None,
) -> xr.Dataset:
    """Generate the twin over ``start..end`` (inclusive) from the CONUS sample at ``root``.

    ``n_coarse`` CONUS-sample cells (seeded choice; None: all 412) give their
    M36 (``coarse_grid``) cells, each split into its ``fine_grid`` children (16
    M09 cells). A site is one fine cell. Variables: the forcing ``FORCING``
    at fine scale, statics ``STATIC`` (+ noise), ``sm_true`` (0-5 cm truth),
    ``sm_satellite`` (the parent coarse cell's retrieval, repeated on its fine
    cells), ``sm_station`` (NaN except at station cells), ``sm_land_model``
    (the same water balance with wrong parameters and coarse forcing), and the
    water-balance terms ``precip, et, drainage, runoff, storage`` (mm) with
    ``storage0``. Coords: ``lat, lon, row, col`` (fine cell), ``coarse`` (flat
    index of the coarse cell), ``station_id`` and ``network`` ('' off stations).

    ``input_errors`` (0: off, the default; 1: the documented realistic level)
    makes the model's inputs differ from what drives the truth: the inputs then
    carry coarse-cell precipitation (no sub-cell pattern) with a persistent and
    a day-to-day multiplicative error, coarse temperature with a daily error,
    and soil attributes with map errors; error sizes scale with the value. The
    truth, satellite and stations do not change (separate random stream); the
    true statics are kept as ``<name>_true`` and the true precipitation as
    ``precip``. See docs/twin.md.

    ``dynamics`` (a key of :data:`DYNAMICS`) sets the truth's layer-1 dynamics and the persistence of the
    stations' errors: ``calibrated`` (default) or ``original`` (the twin before issue 27); ``land_dynamics``
    those of the land-model baseline (default: the truth's; another value is a diagnostic of how much that
    baseline owes to sharing the truth's equations).
    """
    land_dynamics = dynamics if land_dynamics is None else land_dynamics
    for name, value in (("dynamics", dynamics), ("land_dynamics", land_dynamics)):
        if value not in DYNAMICS:
            raise DataError(f"{name} must be one of {sorted(DYNAMICS)}, got {value!r}", field=name)
    fine, coarse = get_grid(fine_grid), get_grid(coarse_grid)
    k = nest_factor(fine, coarse)
    rng = np.random.default_rng(seed)
    root, src = _sample_cells(root, start, end, coarse, n_coarse, rng)
    cells = _cells(src, fine, coarse, k)
    drv = _fine_drivers(src, cells, rng, precip_cv)
    inputs = _model_inputs(src, cells, drv, seed, input_errors)

    wb = run_water_balance(drv["precip"], drv["tmp"], drv["sw"], _soil(drv["stat_f"], dynamics))
    truth = wb["theta1"]
    sat = _satellite(src, cells, truth, rng, sat_bias, sat_seasonal, sat_noise, sat_gain_loss, sat_missing, revisit)
    station, station_id, network = _stations(src, cells, truth, drv["tmp"], rng, n_networks, station_fraction,
                                             max_stations_per_cell, station_offset, station_noise,
                                             DYNAMICS[dynamics])
    land = _land_model(cells, drv, inputs, land_dynamics)
    return _assemble(src, cells, drv, inputs, wb, sat, station, station_id, network, land, root,
                     {"seed": seed, "input_errors": float(input_errors), "dynamics": dynamics})


def _soil(stat: dict, dynamics: str) -> SoilParams:
    """Water-balance parameters of the soils ``stat`` with the layer-1 dynamics of ``DYNAMICS[dynamics]``."""
    p = soil_params(stat["Sand"], stat["Clay"], stat["Capa"], stat["NDVI"])
    for name, value in DYNAMICS[dynamics]["water"].items():
        setattr(p, name, value)
    return p


@dataclass
class _Cells:
    """Fine cells of the chosen coarse cells: grid rows/cols, parent index, flat coarse index, centres."""

    fine: object
    coarse: object
    k: int
    nc: int
    nt: int
    frow: np.ndarray
    fcol: np.ndarray
    parent: np.ndarray
    flat_coarse: np.ndarray
    lat: np.ndarray
    lon: np.ndarray

    @property
    def nf(self) -> int:
        return self.parent.size

    def coarse_mean(self, x: np.ndarray) -> np.ndarray:
        """Mean over the fine cells of each coarse cell (rows are grouped by parent)."""
        kk = self.k * self.k
        return np.add.reduceat(x, np.arange(0, self.nf, kk), axis=0) / kk


def _sample_cells(root, start, end, coarse, n_coarse, rng) -> tuple:
    """(root, source Dataset): CONUS-sample cells with complete forcing and soils, one per coarse cell,
    ``n_coarse`` of them (seeded choice; None: all)."""
    from smfusion.io.hydrodl import read_hydrodl
    from smfusion.settings import conus_dir

    if root is None:
        root = conus_dir()
        if root is None:
            from smfusion.io.registry import conus_root

            root = conus_root()
    src = read_hydrodl(root, dynamic=FORCING, static=STATIC, target=(), start=start, end=end)
    ok = np.all([np.isfinite(src[v].values) for v in STATIC], axis=0)
    ok &= np.all([np.isfinite(src[v].values).all(axis=1) for v in FORCING], axis=0)
    cand = np.nonzero(ok)[0]
    crow, ccol = latlon_to_rowcol(coarse, src["lat"].values[cand], src["lon"].values[cand])
    _, first = np.unique(crow * coarse.ncols + ccol, return_index=True)
    cand = cand[np.sort(first)]  # one sample cell per coarse cell
    if n_coarse is not None:
        if n_coarse > cand.size:
            raise DataError(f"n_coarse {n_coarse} exceeds the {cand.size} usable sample cells", field="n_coarse")
        cand = np.sort(rng.choice(cand, size=n_coarse, replace=False))
    return root, src.isel(site=cand)


def _cells(src: xr.Dataset, fine, coarse, k: int) -> _Cells:
    nc, nt = src.sizes["site"], src.sizes["time"]
    crow, ccol = latlon_to_rowcol(coarse, src["lat"].values, src["lon"].values)
    frow, fcol = children_rowcol(fine, coarse, crow, ccol)
    frow, fcol = frow.reshape(nc * k * k), fcol.reshape(nc * k * k)
    parent = np.repeat(np.arange(nc), k * k)
    lat, lon = rowcol_to_latlon(fine, frow, fcol)
    return _Cells(fine, coarse, k, nc, nt, frow, fcol, parent, (crow * coarse.ncols + ccol)[parent], lat, lon)


LIMS = {"Sand": (1.0, 95.0), "Clay": (1.0, 60.0), "Capa": (3.0, 30.0), "NDVI": (0.02, 0.9)}


def _fine_drivers(src: xr.Dataset, c: _Cells, rng, precip_cv: float) -> dict:
    """Sub-cell heterogeneity: fine precipitation (static and daily multipliers with coarse mean 1),
    temperature offsets and soil noise; coarse shortwave and humidity."""
    parent, nf, nt, kk = c.parent, c.nf, c.nt, c.k * c.k

    def per_coarse_mean_one(x):  # rescale so that each coarse cell's fine mean is 1
        m = np.bincount(parent, weights=x, minlength=c.nc) / kk
        return x / m[parent]

    sigma = np.sqrt(np.log1p(precip_cv**2))
    mult_static = per_coarse_mean_one(rng.lognormal(-0.5 * sigma**2, sigma, nf))
    p_coarse = np.asarray(src["APCP_FORA"].values, dtype=np.float64) * 24.0  # kg m-2 h-1 (daily mean) -> mm day-1
    daily = rng.lognormal(-0.5 * (0.5 * sigma) ** 2, 0.5 * sigma, (nf, nt))
    daily /= (np.add.reduceat(daily, np.arange(0, nf, kk), axis=0) / kk)[parent]
    tmp = np.asarray(src["TMP_2_FORA"].values, dtype=np.float64)[parent] + rng.normal(0.0, 0.7, nf)[:, None]
    stat_c = {v: np.asarray(src[v].values, dtype=np.float64) for v in STATIC}
    noise_sd = {"Sand": 8.0, "Clay": 4.0, "Capa": 2.0, "NDVI": 0.05}
    stat_f = {v: np.clip(stat_c[v][parent] + rng.normal(0.0, noise_sd[v], nf), *LIMS[v]) for v in STATIC}
    return {
        "p_coarse": p_coarse,
        "precip": p_coarse[parent] * mult_static[:, None] * daily,
        "tmp": tmp,
        "t_coarse": np.asarray(src["TMP_2_FORA"].values, dtype=np.float64),
        "sw": np.asarray(src["DSWRF_FORA"].values, dtype=np.float64)[parent],
        "q": np.asarray(src["SPFH_2_FORA"].values, dtype=np.float64)[parent],
        "stat_c": stat_c,
        "stat_f": stat_f,
    }


def _model_inputs(src: xr.Dataset, c: _Cells, drv: dict, seed: int, input_errors: float) -> dict:
    """The model's inputs: the truth's drivers, or (``input_errors`` > 0) an erroneous analysis of them,
    drawn from a separate stream so that truth, satellite and stations do not depend on it."""
    if input_errors < 0:
        raise DataError(f"input_errors must be >= 0, got {input_errors}", field="input_errors")
    nc, nt, nf, parent = c.nc, c.nt, c.nf, c.parent
    out = {"precip": drv["precip"], "tmp": drv["tmp"], "stat": drv["stat_f"],
           "err_c": {v: np.zeros(nc) for v in STATIC},  # coarse mean of the soil-map errors (for the land model)
           "p_err_c": np.ones((nc, nt)),  # multiplicative precipitation error of each coarse cell and day
           "t_err_c": np.zeros((nc, nt))}
    if input_errors == 0:
        return out
    rng_in = np.random.default_rng([seed, 1])
    s_b = np.sqrt(np.log1p((0.25 * input_errors) ** 2))  # persistent bias, CV 0.25 x input_errors
    s_d = np.sqrt(np.log1p((0.5 * input_errors) ** 2))  # day-to-day error, CV 0.5 x input_errors
    out["p_err_c"] = rng_in.lognormal(-0.5 * s_b**2, s_b, nc)[:, None] * rng_in.lognormal(-0.5 * s_d**2, s_d, (nc, nt))
    out["t_err_c"] = rng_in.normal(0.0, 1.0 * input_errors, (nc, nt))
    out["precip"] = (drv["p_coarse"] * out["p_err_c"])[parent]
    out["tmp"] = (drv["t_coarse"] + out["t_err_c"])[parent]
    map_sd = {"Sand": 8.0, "Clay": 4.0, "Capa": 2.0, "NDVI": 0.03}
    out["stat"] = {}
    for v in STATIC:
        e = rng_in.normal(0.0, map_sd[v] * input_errors, nf)
        out["stat"][v] = np.clip(drv["stat_f"][v] + e, *LIMS[v])
        out["err_c"][v] = np.bincount(parent, weights=out["stat"][v] - drv["stat_f"][v], minlength=nc) / (c.k * c.k)
    return out


def _satellite(src, c: _Cells, truth, rng, sat_bias, sat_seasonal, sat_noise, sat_gain_loss, sat_missing,
               revisit) -> np.ndarray:
    """Coarse mean + bias + seasonal error + gain loss + noise, on a 2-3 day revisit with gaps; (coarse, time)."""
    nc, nt = c.nc, c.nt
    coarse_true = c.coarse_mean(truth)
    doy = pd.DatetimeIndex(src["time"].values).day_of_year.values
    ndvi_c = np.asarray(src["NDVI"].values, dtype=np.float64)
    bias_c = -sat_bias * ndvi_c / max(ndvi_c.mean(), 1e-6) + rng.normal(0.0, 0.01, nc)
    season = (sat_seasonal * ndvi_c / max(ndvi_c.mean(), 1e-6))[:, None] * np.sin(2 * np.pi * (doy - 120) / 365.25)
    # vegetation attenuation: the retrieval follows the anomaly with a gain that drops in the growing season
    veg = np.clip(ndvi_c / max(ndvi_c.mean(), 1e-6), 0.0, 2.0)[:, None]
    gain = 1.0 - sat_gain_loss * veg * (0.5 + 0.5 * np.sin(2 * np.pi * (doy - 100) / 365.25))
    anom = coarse_true - coarse_true.mean(axis=1, keepdims=True)
    sat = coarse_true + (gain - 1.0) * anom + bias_c[:, None] + season + rng.normal(0.0, sat_noise, (nc, nt))
    seen = _revisit_mask(nc, nt, rng, revisit) & (rng.random((nc, nt)) >= sat_missing)
    seen &= np.asarray(src["TMP_2_FORA"].values) > 273.15  # no retrieval over frozen ground
    return np.where(seen, np.clip(sat, 0.02, 0.6), np.nan)


def _stations(src, c: _Cells, truth, tmp, rng, n_networks, station_fraction, max_stations_per_cell,
              station_offset, station_noise, dynamics: dict) -> tuple:
    """Truth at a few fine cells + point-scale noise (offset + AR(1) with lag-1 ``dynamics["station_ar"]``,
    its first day stationary or 0 by ``dynamics["stationary_start"]``): (values, station_id, network)."""
    station_ar, stationary = dynamics["station_ar"], dynamics["stationary_start"]
    nf, nt, kk = c.nf, c.nt, c.k * c.k
    station = np.full((nf, nt), np.nan)
    station_id = np.full(nf, "", dtype=object)
    network = np.full(nf, "", dtype=object)
    lon_edges = np.quantile(src["lon"].values, np.linspace(0, 1, n_networks + 1)[1:-1])
    has = np.nonzero(rng.random(c.nc) < station_fraction)[0]
    for cc in has:
        n_st = int(rng.integers(1, max_stations_per_cell + 1))
        for j in rng.choice(kk, size=n_st, replace=False):
            i = cc * kk + j
            e = rng.normal(0.0, station_noise, nt)
            ar = e.copy() if stationary else np.zeros(nt)
            for t in range(1, nt):
                ar[t] = station_ar * ar[t - 1] + np.sqrt(1 - station_ar**2) * e[t]
            obs = truth[i] + rng.normal(0.0, station_offset) + ar
            obs[(rng.random(nt) < 0.05) | (tmp[i] < 273.15)] = np.nan
            station[i] = np.clip(obs, 0.0, 0.6)
            station_id[i] = f"TWIN{int(np.searchsorted(lon_edges, c.lon[i]))}:st{cc:03d}{j:02d}"
            network[i] = station_id[i].split(":")[0]
    return station, station_id.astype(str), network.astype(str)


def _land_model(c: _Cells, drv: dict, inputs: dict, dynamics: str) -> np.ndarray:
    """The same bucket with wrong parameters and coarse forcing (with the inputs' errors)."""
    parent = c.parent
    wrong = _soil({v: (drv["stat_c"][v] + inputs["err_c"][v])[parent] for v in STATIC}, dynamics)
    wrong.theta_fc = np.maximum(0.8 * wrong.theta_fc, wrong.theta_wp + 0.03)
    wrong.k1, wrong.d1 = 2.0 * wrong.k1, 100.0
    precip = (drv["p_coarse"] * inputs["p_err_c"])[parent]
    return run_water_balance(precip, (drv["t_coarse"] + inputs["t_err_c"])[parent], drv["sw"], wrong)["theta1"]


def _assemble(src, c: _Cells, drv, inputs, wb, sat, station, station_id, network, land, root, attrs) -> xr.Dataset:
    sm = {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil"}
    mm = {"units": "mm day-1"}
    f32 = np.float32
    st = ("site", "time")
    dv = {
        "APCP_FORA": (st, (inputs["precip"] / 24.0).astype(f32),
                      {"units": "kg m-2 h-1", "long_name": "precipitation input (daily mean rate)"}),
        "TMP_2_FORA": (st, inputs["tmp"].astype(f32), {"units": "K", "long_name": "2 m air temperature input"}),
        "DSWRF_FORA": (st, drv["sw"].astype(f32), {"units": "W m-2", "long_name": "shortwave down (coarse)"}),
        "SPFH_2_FORA": (st, drv["q"].astype(f32), {"units": "kg kg-1", "long_name": "specific humidity (coarse)"}),
        "sm_true": (st, wb["theta1"].astype(f32), dict(sm, long_name="twin truth, 0-5 cm, fine cell")),
        "sm_satellite": (st, sat[c.parent].astype(f32),
                         dict(sm, long_name="twin satellite retrieval of the parent coarse cell")),
        "sm_station": (st, station.astype(f32), dict(sm, long_name="twin station (point) observation")),
        "sm_land_model": (st, land.astype(f32),
                          dict(sm, long_name="water balance with wrong parameters and coarse forcing")),
        "precip": (st, wb["precip"], dict(mm, long_name="precipitation")),
        "et": (st, wb["et"], dict(mm, long_name="evapotranspiration")),
        "drainage": (st, wb["drainage"], dict(mm, long_name="deep drainage")),
        "runoff": (st, wb["runoff"], dict(mm, long_name="surface runoff")),
        "storage": (st, wb["storage"], {"units": "mm", "long_name": "snow + soil water, end of day"}),
        "storage0": (("site",), wb["storage0"], {"units": "mm", "long_name": "storage before the first day"}),
    }
    for v in STATIC:
        dv[v] = (("site",), inputs["stat"][v].astype(f32), {"long_name": f"{v} input"})
        dv[f"{v}_true"] = (("site",), drv["stat_f"][v].astype(f32),
                           {"long_name": f"{v} that drives the truth (coarse cell + fine-scale noise)"})
    fine, coarse = c.fine, c.coarse
    coords = {
        "site": ("site", np.arange(c.nf)),
        "time": ("time", src["time"].values),
        "lat": ("site", c.lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("site", c.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        "row": ("site", c.frow, {"long_name": f"EASE-Grid 2.0 {fine.name} row"}),
        "col": ("site", c.fcol, {"long_name": f"EASE-Grid 2.0 {fine.name} column"}),
        "coarse": ("site", c.flat_coarse, {"long_name": f"flat index of the parent {coarse.name} cell"}),
        "station_id": ("site", station_id),
        "network": ("site", network),
    }
    return xr.Dataset(dv, coords=coords, attrs={
        "title": "smfusion twin experiment", "fine_grid": fine.name, "coarse_grid": coarse.name,
        "ease2_grid": fine.name, **attrs,
        "source": f"NLDAS-2 forcing and soils of the hydroDL CONUS sample ({root}); synthetic truth, satellite, stations",
    })


def read_twin(cfg, start: Optional[str], end: Optional[str]) -> xr.Dataset:
    """Reader ``twin`` (entry point ``smfusion.readers``): :func:`make_twin` with ``cfg.twin`` over ``start..end``."""
    from smfusion.config import TwinConfig

    tw = cfg.twin or TwinConfig()
    return make_twin(cfg.root, start=start or "2015-04-01", end=end or "2016-03-31", **tw.model_dump())
