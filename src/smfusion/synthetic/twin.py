"""Twin experiment: fine-scale soil-moisture truth, a coarse "satellite" and point "stations".

Real pieces: the EASE-Grid 2.0 nesting (each CONUS-sample cell's M36 cell and
its 16 M09 children), the daily NLDAS-2 forcing and the soil attributes of the
hydroDL CONUS sample (:mod:`smfusion.io.hydrodl`). Synthetic pieces, all drawn
from one seed: sub-cell heterogeneity (precipitation multipliers, temperature
offsets, soil attributes + noise), a two-layer water-balance model giving the
truth, the satellite's errors and gaps, and the stations' representativeness
noise. See ``docs/twin.md`` for every equation and constant.

:func:`make_twin` returns the canonical ``(site, time)`` Dataset where a site is
one fine cell; :func:`run_water_balance` is the model alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import children_rowcol, get_grid, latlon_to_rowcol, nest_factor, rowcol_to_latlon

__all__ = ["SoilParams", "soil_params", "run_water_balance", "make_twin", "FORCING", "STATIC"]

FORCING = ("APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "SPFH_2_FORA")
STATIC = ("Sand", "Clay", "Capa", "NDVI")
D1_MM, D2_MM = 50.0, 450.0  # layer depths: 0-5 cm (what the satellite and the stations see), 5-50 cm


@dataclass
class SoilParams:
    """Per-cell water-balance parameters (arrays of one length)."""

    porosity: np.ndarray  # m3 m-3
    theta_fc: np.ndarray  # field capacity, m3 m-3
    theta_wp: np.ndarray  # wilting point, m3 m-3
    k1: np.ndarray  # fraction of layer-1 water above field capacity drained per day
    k2: np.ndarray  # same for layer 2 (deep drainage)
    ksat: np.ndarray  # infiltration capacity, mm day-1
    bare: np.ndarray  # bare-soil fraction (evaporation from layer 1; the rest transpires from layer 2)
    d1: float = D1_MM
    d2: float = D2_MM


def soil_params(sand, clay, capa, ndvi) -> SoilParams:
    """Pedotransfer used by the twin (percent sand/clay/capa, NDVI 0-1); see docs/twin.md."""
    sand, clay, capa, ndvi = (np.asarray(v, dtype=np.float64) for v in (sand, clay, capa, ndvi))
    por = np.clip(0.50 - 0.0012 * sand + 0.0008 * clay, 0.35, 0.55)
    wp = np.clip(0.02 + 0.0035 * clay, 0.02, 0.25)
    fc = np.clip(wp + capa / 100.0, wp + 0.05, por - 0.05)
    return SoilParams(
        porosity=por,
        theta_fc=fc,
        theta_wp=wp,
        k1=np.clip(0.15 + 0.006 * sand, 0.1, 0.8),
        k2=np.clip(0.02 + 0.002 * sand, 0.01, 0.3),
        ksat=np.clip(20.0 + 3.0 * sand, 10.0, 400.0),
        bare=np.clip(1.0 - 1.2 * ndvi, 0.1, 0.9),
    )


def _pet(tmp_k: np.ndarray, swdown: np.ndarray) -> np.ndarray:
    """Priestley-Taylor potential ET (mm day-1) with net radiation 0.5 x shortwave down."""
    t = tmp_k - 273.15
    es = 0.6108 * np.exp(17.27 * t / (t + 237.3))
    delta = 4098.0 * es / (t + 237.3) ** 2
    rn = 0.5 * np.maximum(swdown, 0.0) * 0.0864  # MJ m-2 day-1
    return np.maximum(1.26 * delta / (delta + 0.066) * rn / 2.45, 0.0)


def run_water_balance(precip: np.ndarray, tmp_k: np.ndarray, swdown: np.ndarray, p: SoilParams,
                      spinup: bool = True) -> dict[str, np.ndarray]:
    """Daily two-layer bucket with snow, for (cell, day) forcing; precip in mm day-1.

    Returns (cell, day) arrays: ``theta1`` (0-5 cm, m3 m-3), ``theta2``, and the
    fluxes ``precip``, ``et``, ``drainage``, ``runoff`` (mm day-1) and end-of-day
    ``storage`` (snow + both layers, mm), with ``storage0`` (cell,) the initial
    storage, so that precip = et + drainage + runoff + storage change exactly
    (up to float64 rounding). ``spinup`` runs the period once first and starts
    from its end state.
    """
    precip = np.asarray(precip, dtype=np.float64)
    n_cell, n_day = precip.shape
    tc = np.asarray(tmp_k, dtype=np.float64) - 273.15
    pet = _pet(np.asarray(tmp_k, dtype=np.float64), np.asarray(swdown, dtype=np.float64))
    sat1, sat2 = p.porosity * p.d1, p.porosity * p.d2
    fc1, fc2 = p.theta_fc * p.d1, p.theta_fc * p.d2
    wp1, wp2 = p.theta_wp * p.d1, p.theta_wp * p.d2
    res1, res2 = 0.5 * wp1, 0.5 * wp2  # evaporation dries layer 1 below wilting point, to half of it

    def step(state, t, out=None):
        snow, w1, w2 = state
        pr = np.maximum(precip[:, t], 0.0)
        frozen = tc[:, t] < 0.0
        snowfall = np.where(frozen, pr, 0.0)
        melt = np.minimum(snow + snowfall, 3.0 * np.maximum(tc[:, t], 0.0))
        snow = snow + snowfall - melt
        water = pr - snowfall + melt
        infil = np.minimum(water, p.ksat)
        runoff = water - infil
        w1 = w1 + infil
        ex1 = np.maximum(w1 - sat1, 0.0)
        q12 = p.k1 * np.maximum(w1 - ex1 - fc1, 0.0)
        w1 = w1 - ex1 - q12
        w2 = w2 + ex1 + q12
        ex2 = np.maximum(w2 - sat2, 0.0)
        runoff = runoff + ex2
        w2 = w2 - ex2
        drain = p.k2 * np.maximum(w2 - fc2, 0.0)
        w2 = w2 - drain
        # diffusion between layers towards equal wetness (conserves water)
        diff = 0.1 * (w2 / p.d2 - w1 / p.d1) * p.d1
        diff = np.clip(diff, -(w1 - res1).clip(0), (w2 - res2).clip(0))
        w1, w2 = w1 + diff, w2 - diff
        beta1 = np.clip((w1 - wp1) / (fc1 - wp1), 0.0, 1.0)
        beta2 = np.clip((w2 - wp2) / (fc2 - wp2), 0.0, 1.0)
        e1 = np.minimum(pet[:, t] * p.bare * np.maximum(beta1, 0.15 * (w1 > res1)), np.maximum(w1 - res1, 0.0))
        e2 = np.minimum(pet[:, t] * (1.0 - p.bare) * beta2, np.maximum(w2 - res2, 0.0))
        w1, w2 = w1 - e1, w2 - e2
        if out is not None:
            out["theta1"][:, t] = w1 / p.d1
            out["theta2"][:, t] = w2 / p.d2
            out["precip"][:, t] = pr
            out["et"][:, t] = e1 + e2
            out["drainage"][:, t] = drain
            out["runoff"][:, t] = runoff
            out["storage"][:, t] = snow + w1 + w2
        return snow, w1, w2

    state = (np.zeros(n_cell), 0.5 * (fc1 + wp1), 0.5 * (fc2 + wp2))
    if spinup:
        for t in range(n_day):
            state = step(state, t)
    out = {k: np.empty((n_cell, n_day)) for k in ("theta1", "theta2", "precip", "et", "drainage", "runoff", "storage")}
    out["storage0"] = state[0] + state[1] + state[2]
    for t in range(n_day):
        state = step(state, t, out)
    return out


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
    sat_noise: float = 0.03,
    sat_gain_loss: float = 0.35,
    sat_missing: float = 0.1,
    revisit: tuple[int, int] = (2, 3),
    station_offset: float = 0.02,
    station_noise: float = 0.015,
    precip_cv: float = 0.4,
    input_errors: float = 0.0,
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
    """
    from smfusion.io.hydrodl import read_hydrodl
    from smfusion.settings import conus_dir

    if root is None:
        root = conus_dir()
        if root is None:
            from smfusion.io.registry import conus_root

            root = conus_root()
    fine, coarse = get_grid(fine_grid), get_grid(coarse_grid)
    k = nest_factor(fine, coarse)
    rng = np.random.default_rng(seed)
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
    src = src.isel(site=cand)
    nc, nt = cand.size, src.sizes["time"]
    crow, ccol = latlon_to_rowcol(coarse, src["lat"].values, src["lon"].values)
    frow, fcol = children_rowcol(fine, coarse, crow, ccol)
    frow, fcol = frow.reshape(nc * k * k), fcol.reshape(nc * k * k)
    parent = np.repeat(np.arange(nc), k * k)
    nf = parent.size
    flat_coarse = (crow * coarse.ncols + ccol)[parent]
    flat_lat, flat_lon = rowcol_to_latlon(fine, frow, fcol)

    # --- sub-cell heterogeneity (fine forcing and soils)
    def per_coarse_mean_one(x):  # rescale so that each coarse cell's fine mean is 1
        m = np.bincount(parent, weights=x, minlength=nc) / (k * k)
        return x / m[parent]

    sigma = np.sqrt(np.log1p(precip_cv**2))
    mult_static = per_coarse_mean_one(rng.lognormal(-0.5 * sigma**2, sigma, nf))
    p_coarse = np.asarray(src["APCP_FORA"].values, dtype=np.float64) * 24.0  # kg m-2 h-1 (daily mean) -> mm day-1
    daily = rng.lognormal(-0.5 * (0.5 * sigma) ** 2, 0.5 * sigma, (nf, nt))
    daily /= (np.add.reduceat(daily, np.arange(0, nf, k * k), axis=0) / (k * k))[parent]
    precip = p_coarse[parent] * mult_static[:, None] * daily
    tmp = np.asarray(src["TMP_2_FORA"].values, dtype=np.float64)[parent] + rng.normal(0.0, 0.7, nf)[:, None]
    sw = np.asarray(src["DSWRF_FORA"].values, dtype=np.float64)[parent]
    q = np.asarray(src["SPFH_2_FORA"].values, dtype=np.float64)[parent]
    stat_c = {v: np.asarray(src[v].values, dtype=np.float64) for v in STATIC}
    noise_sd = {"Sand": 8.0, "Clay": 4.0, "Capa": 2.0, "NDVI": 0.05}
    lims = {"Sand": (1.0, 95.0), "Clay": (1.0, 60.0), "Capa": (3.0, 30.0), "NDVI": (0.02, 0.9)}
    stat_f = {v: np.clip(stat_c[v][parent] + rng.normal(0.0, noise_sd[v], nf), *lims[v]) for v in STATIC}

    # --- model inputs: the truth's drivers, or (input_errors > 0) an erroneous analysis of them.
    # A separate stream, so the truth, satellite and stations are the same for any input_errors.
    if input_errors < 0:
        raise DataError(f"input_errors must be >= 0, got {input_errors}", field="input_errors")
    t_coarse = np.asarray(src["TMP_2_FORA"].values, dtype=np.float64)
    precip_in, tmp_in, stat_in = precip, tmp, stat_f
    err_c = {v: np.zeros(nc) for v in STATIC}  # coarse mean of the soil-map errors (for the land model)
    p_err_c = np.ones((nc, nt))  # multiplicative precipitation error of each coarse cell and day
    t_err_c = np.zeros((nc, nt))
    if input_errors > 0:
        rng_in = np.random.default_rng([seed, 1])
        s_b = np.sqrt(np.log1p((0.25 * input_errors) ** 2))  # persistent bias, CV 0.25 x input_errors
        s_d = np.sqrt(np.log1p((0.5 * input_errors) ** 2))  # day-to-day error, CV 0.5 x input_errors
        p_err_c = (rng_in.lognormal(-0.5 * s_b**2, s_b, nc)[:, None]
                   * rng_in.lognormal(-0.5 * s_d**2, s_d, (nc, nt)))
        t_err_c = rng_in.normal(0.0, 1.0 * input_errors, (nc, nt))
        precip_in = (p_coarse * p_err_c)[parent]
        tmp_in = (t_coarse + t_err_c)[parent]
        map_sd = {"Sand": 8.0, "Clay": 4.0, "Capa": 2.0, "NDVI": 0.03}
        stat_in = {}
        for v in STATIC:
            e = rng_in.normal(0.0, map_sd[v] * input_errors, nf)
            stat_in[v] = np.clip(stat_f[v] + e, *lims[v])
            err_c[v] = np.bincount(parent, weights=stat_in[v] - stat_f[v], minlength=nc) / (k * k)

    # --- truth
    params = soil_params(stat_f["Sand"], stat_f["Clay"], stat_f["Capa"], stat_f["NDVI"])
    wb = run_water_balance(precip, tmp, sw, params)
    truth = wb["theta1"]

    # --- satellite: coarse mean + bias + seasonal error + noise, on a 2-3 day revisit with gaps
    coarse_true = np.add.reduceat(truth, np.arange(0, nf, k * k), axis=0) / (k * k)
    doy = pd.DatetimeIndex(src["time"].values).day_of_year.values
    ndvi_c = stat_c["NDVI"]
    bias_c = -sat_bias * ndvi_c / max(ndvi_c.mean(), 1e-6) + rng.normal(0.0, 0.01, nc)
    season = (sat_seasonal * ndvi_c / max(ndvi_c.mean(), 1e-6))[:, None] * np.sin(2 * np.pi * (doy - 120) / 365.25)
    # vegetation attenuation: the retrieval follows the anomaly with a gain that drops in the growing season
    veg = np.clip(ndvi_c / max(ndvi_c.mean(), 1e-6), 0.0, 2.0)[:, None]
    gain = 1.0 - sat_gain_loss * veg * (0.5 + 0.5 * np.sin(2 * np.pi * (doy - 100) / 365.25))
    anom = coarse_true - coarse_true.mean(axis=1, keepdims=True)
    sat = coarse_true + (gain - 1.0) * anom + bias_c[:, None] + season + rng.normal(0.0, sat_noise, (nc, nt))
    seen = _revisit_mask(nc, nt, rng, revisit) & (rng.random((nc, nt)) >= sat_missing)
    seen &= np.asarray(src["TMP_2_FORA"].values) > 273.15  # no retrieval over frozen ground
    sat = np.where(seen, np.clip(sat, 0.02, 0.6), np.nan)

    # --- stations: truth at a few fine cells + point-scale noise (offset + AR(1))
    station = np.full((nf, nt), np.nan)
    station_id = np.full(nf, "", dtype=object)
    network = np.full(nf, "", dtype=object)
    lon_edges = np.quantile(src["lon"].values, np.linspace(0, 1, n_networks + 1)[1:-1])
    has = np.nonzero(rng.random(nc) < station_fraction)[0]
    for c in has:
        n_st = int(rng.integers(1, max_stations_per_cell + 1))
        for j in rng.choice(k * k, size=n_st, replace=False):
            i = c * k * k + j
            ar = np.zeros(nt)
            e = rng.normal(0.0, station_noise, nt)
            for t in range(1, nt):
                ar[t] = 0.7 * ar[t - 1] + np.sqrt(1 - 0.49) * e[t]
            obs = truth[i] + rng.normal(0.0, station_offset) + ar
            obs[(rng.random(nt) < 0.05) | (tmp[i] < 273.15)] = np.nan
            station[i] = np.clip(obs, 0.0, 0.6)
            station_id[i] = f"TWIN{int(np.searchsorted(lon_edges, flat_lon[i]))}:st{c:03d}{j:02d}"
            network[i] = station_id[i].split(":")[0]

    # --- "land model": the same bucket with wrong parameters and coarse forcing (with the inputs' errors)
    land_soil = {v: (stat_c[v] + err_c[v])[parent] for v in STATIC}
    wrong = soil_params(land_soil["Sand"], land_soil["Clay"], land_soil["Capa"], land_soil["NDVI"])
    wrong.theta_fc = np.maximum(0.8 * wrong.theta_fc, wrong.theta_wp + 0.03)
    wrong.k1, wrong.d1 = 2.0 * wrong.k1, 100.0
    land = run_water_balance((p_coarse * p_err_c)[parent], (t_coarse + t_err_c)[parent], sw, wrong)["theta1"]

    sm = {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil"}
    mm = {"units": "mm day-1"}
    f32 = np.float32
    dv = {
        "APCP_FORA": (("site", "time"), (precip_in / 24.0).astype(f32), {"units": "kg m-2 h-1", "long_name": "precipitation input (daily mean rate)"}),
        "TMP_2_FORA": (("site", "time"), tmp_in.astype(f32), {"units": "K", "long_name": "2 m air temperature input"}),
        "DSWRF_FORA": (("site", "time"), sw.astype(f32), {"units": "W m-2", "long_name": "shortwave down (coarse)"}),
        "SPFH_2_FORA": (("site", "time"), q.astype(f32), {"units": "kg kg-1", "long_name": "specific humidity (coarse)"}),
        "sm_true": (("site", "time"), truth.astype(f32), dict(sm, long_name="twin truth, 0-5 cm, fine cell")),
        "sm_satellite": (("site", "time"), sat[parent].astype(f32), dict(sm, long_name="twin satellite retrieval of the parent coarse cell")),
        "sm_station": (("site", "time"), station.astype(f32), dict(sm, long_name="twin station (point) observation")),
        "sm_land_model": (("site", "time"), land.astype(f32), dict(sm, long_name="water balance with wrong parameters and coarse forcing")),
        "precip": (("site", "time"), wb["precip"], dict(mm, long_name="precipitation")),
        "et": (("site", "time"), wb["et"], dict(mm, long_name="evapotranspiration")),
        "drainage": (("site", "time"), wb["drainage"], dict(mm, long_name="deep drainage")),
        "runoff": (("site", "time"), wb["runoff"], dict(mm, long_name="surface runoff")),
        "storage": (("site", "time"), wb["storage"], {"units": "mm", "long_name": "snow + soil water, end of day"}),
        "storage0": (("site",), wb["storage0"], {"units": "mm", "long_name": "storage before the first day"}),
    }
    for v in STATIC:
        dv[v] = (("site",), stat_in[v].astype(f32), {"long_name": f"{v} input"})
        dv[f"{v}_true"] = (("site",), stat_f[v].astype(f32), {"long_name": f"{v} that drives the truth (coarse cell + fine-scale noise)"})
    ds = xr.Dataset(
        dv,
        coords={
            "site": ("site", np.arange(nf)),
            "time": ("time", src["time"].values),
            "lat": ("site", flat_lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("site", flat_lon, {"units": "degrees_east", "standard_name": "longitude"}),
            "row": ("site", frow, {"long_name": f"EASE-Grid 2.0 {fine.name} row"}),
            "col": ("site", fcol, {"long_name": f"EASE-Grid 2.0 {fine.name} column"}),
            "coarse": ("site", flat_coarse, {"long_name": f"flat index of the parent {coarse.name} cell"}),
            "station_id": ("site", station_id.astype(str)),
            "network": ("site", network.astype(str)),
        },
        attrs={
            "title": "smfusion twin experiment",
            "fine_grid": fine.name,
            "coarse_grid": coarse.name,
            "ease2_grid": fine.name,
            "seed": seed,
            "input_errors": float(input_errors),
            "source": f"NLDAS-2 forcing and soils of the hydroDL CONUS sample ({root}); synthetic truth, satellite, stations",
        },
    )
    return ds
