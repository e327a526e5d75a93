"""Physically based twin for CASM: known soil moisture -> brightness temperatures of four sensor eras, 2002-2020.

Real pieces: the daily NLDAS-2 forcing (precipitation, 2 m air temperature,
shortwave) and soils (sand, clay, bulk density, field capacity, NDVI) of the
hydroDL CONUS sample (``../shared/data/conus_smap``, 412 cells, water years
2015-04 .. 2018-03), and EASE-Grid 2.0 M25 cells at the sample's locations.
Synthetic pieces, all from one seed (see docs/casm.md, section "CASM twin"):

1. Forcing 2002-2020 by resampling years: each water year (April-March) of
   the output copies the forcing of one of the three real water years, drawn
   at random (month and day kept; Feb 29 takes Feb 28). The climate is thus
   stationary: the truth has no trend.
2. Truth ``sm_true``: the two-layer bucket of :mod:`smfusion.synthetic.twin`
   (0-5 cm layer), driven by that forcing and the cell's soils.
3. Vegetation water content: a seasonal cycle per cell, amplitude from NDVI
   (VWC_max = 0.2 + 12 NDVI^2 kg/m2, minimum 0.3 VWC_max, peak on day 200),
   scaled each year by 1 + N(0, 0.1^2).
4. Temperatures: T_air (daily mean), diurnal swing A = 6 (1 - 0.4 min(VWC/8, 1)) K,
   T_surf(h) = T_air + A cos(2 pi (h - 14) / 24) at the pass's local hour h,
   T_deep = 30-day mean of T_air, T_eff = T_deep + C (T_surf - T_deep)
   (:class:`~smfusion.synthetic.casm_sensors.SensorSpec` ``teff_c``), canopy
   T_c = T_surf. Frozen days (T_air < 0 C) have no observation.
5. Emission (:mod:`smfusion.synthetic.emission`): Mironov (or Dobson)
   permittivity -> Fresnel -> rough reflectivity (cell roughness
   h ~ U(0.08, 0.2) x the sensor's multiplier, mixing q) -> tau-omega with
   tau = b f VWC (f ~ U(0.8, 1.2) per cell: vegetation structure), per sensor
   frequency and incidence angle; then each sensor's
   bias, drift, noise and RFI (:data:`~smfusion.synthetic.casm_sensors.SENSORS`),
   on the days it passes (probability ``pass_fraction``) within its era.
6. Target ``sm_smap``: a single-channel V-pol retrieval (tau-omega inverted
   for soil moisture) from the SMAP-like TB with imperfect ancillary data (and
   the nominal b, without the cell's factor f):
   T_eff + cell bias N(0, 1.5^2) + daily N(0, 2^2) K, VWC = the climatological
   cycle (no yearly factor) x (1 + N(0, 0.25^2)) per cell, h x (1 + N(0, 0.2^2)),
   clay + N(0, 0.08^2); clipped to SMAP's valid range 0.02-0.5.

:func:`make_casm_twin` returns the canonical ``(site, time)`` Dataset;
:func:`read_casm_twin` is the ``casm_twin`` reader (an entry point of the
``smfusion.readers`` group, so the data layer never imports this module).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import DataError
from smfusion.grids.ease2 import latlon_to_rowcol, rowcol_to_latlon
from smfusion.synthetic.casm_sensors import SENSORS, TARGET, SensorSpec
from smfusion.synthetic.emission import (dobson_permittivity, fresnel_reflectivity, mironov_permittivity,
                                         rough_reflectivity, tau_omega, vegetation_opacity)
from smfusion.synthetic.twin import run_water_balance, soil_params

__all__ = ["resample_years", "vegetation_cycle", "simulate_tb", "retrieve_single_channel", "make_casm_twin",
           "write_casm_twin", "read_casm_twin"]

FORCING = ("APCP_FORA", "TMP_2_FORA", "DSWRF_FORA")
STATIC = ("Sand", "Clay", "Bulk", "Capa", "NDVI")
GRID = "M25"


def resample_years(source_start, n_source_years: int, dates: pd.DatetimeIndex, rng) -> tuple[np.ndarray, np.ndarray]:
    """Index into a daily source series (water years from April of ``source_start``) for each output date.

    Each output water year copies a randomly drawn source water year, keeping
    month and day (Feb 29 -> Feb 28 where the source year has none). Returns
    (index per date, source water year drawn per output water year).
    """
    src0 = pd.Timestamp(source_start)
    wy = dates.year - (dates.month < 4)
    years = np.unique(wy)
    pick = rng.integers(0, n_source_years, years.size)
    sy = src0.year + pick[np.searchsorted(years, wy)]
    cal_year = sy + (dates.month < 4)
    leap = (cal_year % 4 == 0) & ((cal_year % 100 != 0) | (cal_year % 400 == 0))
    day = np.where((dates.month == 2) & (dates.day == 29) & ~leap, 28, dates.day)
    src = pd.to_datetime({"year": cal_year, "month": dates.month, "day": day})
    return (src - src0).dt.days.to_numpy(), src0.year + pick


def vegetation_cycle(ndvi, dates: pd.DatetimeIndex, rng, yearly: bool = True) -> np.ndarray:
    """(cell, day) vegetation water content, kg/m2 (module doc, item 3)."""
    ndvi = np.asarray(ndvi, dtype=float)
    vmax = 0.2 + 12.0 * ndvi**2
    vmin = 0.3 * vmax
    phase = 0.5 * (1 + np.cos(2 * np.pi * (dates.day_of_year.values - 200) / 365.25))
    vwc = vmin[:, None] + (vmax - vmin)[:, None] * phase[None, :]
    if yearly:
        years = np.unique(dates.year)
        factor = 1 + rng.normal(0.0, 0.1, (ndvi.size, years.size))
        vwc = vwc * np.clip(factor, 0.5, 1.5)[:, np.searchsorted(years, dates.year)]
    return vwc


def _permittivity(model: str, freq, sm, soil: dict, cell):
    if model == "mironov":
        return mironov_permittivity(freq, sm, soil["clay"][cell])
    if model == "dobson":
        return dobson_permittivity(freq, sm, soil["sand"][cell], soil["clay"][cell], soil["bulk"][cell])
    raise DataError(f"unknown dielectric model {model!r}; use 'mironov' or 'dobson'", field="dielectric")


def simulate_tb(spec: SensorSpec, sm, t_eff, t_canopy, vwc, soil: dict, h, cell, years, rng,
                dielectric: str = "mironov") -> dict[str, np.ndarray]:
    """TB (K) of every channel and polarisation for observations given as flat vectors.

    ``cell`` indexes the per-cell ``soil`` arrays and ``h``; ``years`` is the
    time since the sensor's era start. Returns {variable name: TB vector}.
    """
    out = {}
    burst = (rng.random(sm.size) < spec.rfi) * rng.uniform(5.0, 30.0, sm.size)
    for ch in spec.channels:
        eps = _permittivity(dielectric, ch.freq_ghz, sm, soil, cell)
        r_h, r_v = fresnel_reflectivity(eps, spec.incidence)
        r_h, r_v = rough_reflectivity(r_h, r_v, spec.incidence, h=h[cell] * spec.h_scale, q=spec.q)
        tau = vegetation_opacity(vwc, ch.b * soil["b_factor"][cell])
        for pol, r, bias in (("h", r_h, spec.bias_h), ("v", r_v, spec.bias_v)):
            tb = tau_omega(r, t_eff, t_canopy, tau, ch.omega, spec.incidence)
            out[spec.var(pol, ch)] = tb + bias + spec.drift * years + rng.normal(0.0, spec.nedt, sm.size) + burst
    return out


def retrieve_single_channel(tb_v, t_eff, tau, omega, theta, h, clay_cell, cell, freq_ghz, n_cells: int,
                            mv_grid=np.linspace(0.0, 0.6, 241)) -> np.ndarray:
    """Soil moisture from V-pol TB by inverting the tau-omega model (T_c = T_eff, q = 0, Mironov).

    r = (TB/T - g - (1 - w)(1 - g)) / (g ((1 - w)(1 - g) - 1)), g = exp(-tau / cos theta); then the
    rough V reflectivity of the cell's soil is inverted on ``mv_grid``. NaN where r is outside [0, 1].
    """
    g = np.exp(-tau / np.cos(np.radians(theta)))
    r = (tb_v / t_eff - g - (1 - omega) * (1 - g)) / (g * ((1 - omega) * (1 - g) - 1))
    out = np.full(tb_v.shape, np.nan)
    for c in range(n_cells):
        k = np.flatnonzero(cell == c)
        if k.size == 0:
            continue
        eps = mironov_permittivity(freq_ghz, mv_grid, clay_cell[c])
        _, rv = rough_reflectivity(*fresnel_reflectivity(eps, theta), theta, h=h[c])
        out[k] = np.interp(r[k], rv, mv_grid)  # reflectivity grows with moisture
    return np.where((r >= 0) & (r <= 1), np.clip(out, 0.02, 0.5), np.nan)


def _cells(src: xr.Dataset, n_cells, rng) -> np.ndarray:
    ok = np.all([np.isfinite(src[v].values) for v in STATIC], axis=0)
    ok &= np.all([np.isfinite(src[v].values).all(axis=1) for v in FORCING], axis=0)
    cand = np.flatnonzero(ok)
    row, col = latlon_to_rowcol(GRID, src["lat"].values[cand], src["lon"].values[cand])
    _, first = np.unique(row * 100_000 + col, return_index=True)
    cand = cand[np.sort(first)]
    if n_cells is not None:
        if n_cells > cand.size:
            raise DataError(f"n_cells {n_cells} exceeds the {cand.size} usable sample cells", field="n_cells")
        cand = np.sort(rng.choice(cand, size=n_cells, replace=False))
    return cand


def _temperatures(tair, vwc, dates, spec: SensorSpec):
    amp = 6.0 * (1 - 0.4 * np.minimum(vwc / 8.0, 1.0))
    t_surf = tair + amp * np.cos(2 * np.pi * (spec.local_hour - 14.0) / 24.0)
    t_deep = pd.DataFrame(tair.T).rolling(30, min_periods=1).mean().to_numpy().T
    return t_deep + spec.teff_c * (t_surf - t_deep), t_surf


def make_casm_twin(root: str | Path | None = None, *, seed: int = 0, start: str = "2002-01-01",
                   end: str = "2020-12-31", n_cells: int | None = 200, sensors: dict | None = None,
                   dielectric: str = "mironov") -> xr.Dataset:
    """The CASM twin as the canonical (site, time) Dataset on EASE-Grid 2.0 M25 cells (see docs/casm.md)."""
    from smfusion.io.hydrodl import read_hydrodl
    from smfusion.settings import conus_dir

    sensors = SENSORS if sensors is None else sensors
    if TARGET not in sensors:
        raise DataError(f"the sensors must include the target {TARGET!r}", field="sensors")
    root = root if root is not None else conus_dir()
    if root is None:
        raise DataError("no CONUS sample: set SMFUSION_DATA_DIR or pass root", field="conus_smap")
    rng = np.random.default_rng(seed)
    src = read_hydrodl(root, dynamic=FORCING, static=STATIC, target=(), start="2015-04-01", end="2018-03-31")
    cand = _cells(src, n_cells, rng)
    src = src.isel(site=cand)
    dates = pd.date_range(start, end, freq="D")
    idx, drawn = resample_years("2015-04-01", 3, dates, rng)
    nc, nt = cand.size, dates.size
    precip = np.asarray(src["APCP_FORA"].values, dtype=float)[:, idx] * 24.0  # kg m-2 h-1 -> mm day-1
    tair = np.asarray(src["TMP_2_FORA"].values, dtype=float)[:, idx]
    sw = np.asarray(src["DSWRF_FORA"].values, dtype=float)[:, idx]
    st = {v: np.asarray(src[v].values, dtype=float) for v in STATIC}
    sm_true = run_water_balance(precip, tair, sw, soil_params(st["Sand"], st["Clay"], st["Capa"], st["NDVI"]))["theta1"]
    soil = {"sand": st["Sand"] / 100, "clay": st["Clay"] / 100, "bulk": st["Bulk"],
            "b_factor": rng.uniform(0.8, 1.2, cand.size)}
    vwc = vegetation_cycle(st["NDVI"], dates, rng)
    h = rng.uniform(0.08, 0.2, nc)
    thawed = tair > 273.15
    data = {}
    t_eff_smap = None
    for name, spec in sensors.items():
        era = (dates >= pd.Timestamp(spec.start)) & (dates <= pd.Timestamp(spec.end))
        mask = era[None, :] & thawed & (rng.random((nc, nt)) < spec.pass_fraction)
        t_eff, t_surf = _temperatures(tair, vwc, dates, spec)
        ci, ti = np.nonzero(mask)
        years = (dates[ti] - pd.Timestamp(spec.start)).days.to_numpy() / 365.25
        tbs = simulate_tb(spec, sm_true[ci, ti], t_eff[ci, ti], t_surf[ci, ti], vwc[ci, ti], soil, h, ci, years,
                          rng, dielectric)
        for var, values in tbs.items():
            full = np.full((nc, nt), np.nan, dtype=np.float32)
            full[ci, ti] = values
            data[var] = (full, spec)
        if name == TARGET:
            t_eff_smap, target_obs = t_eff, (ci, ti, tbs[spec.var("v", spec.channels[0])])
    # --- the target retrieval, with imperfect ancillary data
    spec = sensors[TARGET]
    ch = spec.channels[0]
    ci, ti, tbv = target_obs
    t_anc = t_eff_smap[ci, ti] + rng.normal(0, 1.5, nc)[ci] + rng.normal(0, 2.0, ci.size)
    vwc_anc = vegetation_cycle(st["NDVI"], dates, rng, yearly=False)[ci, ti] * np.clip(
        1 + rng.normal(0, 0.25, nc), 0.3, 2.0)[ci]
    h_anc = h * np.clip(1 + rng.normal(0, 0.2, nc), 0.3, 2.0)
    clay_anc = np.clip(soil["clay"] + rng.normal(0, 0.08, nc), 0.0, 0.9)
    sm_smap = np.full((nc, nt), np.nan, dtype=np.float32)
    sm_smap[ci, ti] = retrieve_single_channel(tbv, t_anc, vegetation_opacity(vwc_anc, ch.b), ch.omega,
                                              spec.incidence, h_anc, clay_anc, ci, ch.freq_ghz, nc)
    return _assemble(src, dates, sm_true, sm_smap, data, vwc, tair, h, soil, st, sensors, drawn, seed, dielectric)


def _assemble(src, dates, sm_true, sm_smap, data, vwc, tair, h, soil, st, sensors, drawn, seed, dielectric):
    row, col = latlon_to_rowcol(GRID, src["lat"].values, src["lon"].values)
    lat, lon = rowcol_to_latlon(GRID, row, col)
    sm_attrs = {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil"}
    dv = {"sm_true": (("site", "time"), sm_true.astype(np.float32), dict(sm_attrs, long_name="twin truth, 0-5 cm")),
          "sm_smap": (("site", "time"), sm_smap, dict(sm_attrs, long_name=f"SMAP-like single-channel V-pol "
                                                      f"retrieval ({sensors[TARGET].start} .. {sensors[TARGET].end})"))}
    for var, (values, spec) in data.items():
        ch = next(c for c in spec.channels if spec.var(var[3], c) == var)
        dv[var] = (("site", "time"), values, {
            "units": "K", "standard_name": "brightness_temperature", "sensor": spec.name,
            "frequency_GHz": ch.freq_ghz, "incidence_angle": spec.incidence, "polarization": var[3].upper(),
            "long_name": f"{spec.name}-like {ch.freq_ghz} GHz {var[3].upper()}-pol TB at {spec.incidence} deg, "
                         f"era {spec.start} .. {spec.end}"})
    dv.update({
        "vwc_true": (("site", "time"), vwc.astype(np.float32), {"units": "kg m-2", "long_name": "vegetation water "
                                                                "content (twin truth)"}),
        "tair": (("site", "time"), tair.astype(np.float32), {"units": "K", "long_name": "2 m air temperature "
                                                             "(NLDAS-2, resampled years)"}),
        "roughness_h": (("site",), h.astype(np.float32), {"long_name": "L-band roughness parameter h"}),
        "b_factor": (("site",), soil["b_factor"].astype(np.float32), {"long_name": "cell factor on the vegetation "
                                                                       "parameter b (tau = b f VWC)"}),
        "clay": (("site",), soil["clay"].astype(np.float32), {"units": "1", "long_name": "clay fraction"}),
        "sand": (("site",), soil["sand"].astype(np.float32), {"units": "1", "long_name": "sand fraction"}),
        "bulk_density": (("site",), soil["bulk"].astype(np.float32), {"units": "g cm-3"}),
        "ndvi": (("site",), st["NDVI"].astype(np.float32), {"units": "1"}),
    })
    attrs = {"title": "smfusion CASM twin: tau-omega brightness temperatures of four sensor eras",
             "ease2_grid": GRID, "seed": seed, "dielectric_model": dielectric, "target": "sm_smap",
             "truth": "sm_true", "sensors": " ".join(sensors),
             "forcing_years": "water years (Apr-Mar) from " + str(dates[0].year - (dates[0].month < 4)) + ": "
                              + " ".join(str(y) for y in drawn),
             "source": "NLDAS-2 forcing and soils of the hydroDL CONUS sample; synthetic truth and sensors"}
    for name, spec in sensors.items():
        attrs[f"era_{name}"] = f"{spec.start}/{spec.end}"
        attrs[f"variables_{name}"] = " ".join(spec.var(p, c) for c in spec.channels for p in ("h", "v"))
    return xr.Dataset(dv, coords={
        "site": ("site", np.arange(row.size)), "time": ("time", dates.values.astype("datetime64[ns]")),
        "lat": ("site", lat, {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("site", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        "row": ("site", row, {"long_name": f"EASE-Grid 2.0 {GRID} row"}),
        "col": ("site", col, {"long_name": f"EASE-Grid 2.0 {GRID} column"}),
        "sample_cell": ("site", np.asarray(src["site"].values), {"long_name": "index in the CONUS sample"})},
        attrs=attrs)


def write_casm_twin(path: str | Path, **options) -> Path:
    """Generate the twin (``options`` as for :func:`make_casm_twin`) and write it as NetCDF-4, atomically."""
    from smfusion.io.atomic import atomic_path

    ds = make_casm_twin(**options)
    encoding = {v: {"zlib": True, "complevel": 1} for v in ds.data_vars if ds[v].ndim == 2}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return Path(path)


_CACHE: dict = {}  # the last twin read (key -> Dataset): train, evaluate and predict ask for it several times


def read_casm_twin(cfg, start: str | None, end: str | None) -> xr.Dataset:
    """Reader ``casm_twin`` (entry point ``smfusion.readers``): the twin of ``cfg.casm_twin`` cut to ``start..end``.

    The twin is generated over its own span (``casm_twin.start..end``: its random
    draws depend on it), or read from ``casm_twin.path``; the last one is kept in
    memory for the next call.
    """
    from smfusion.config import CasmTwinConfig

    tw = cfg.casm_twin or CasmTwinConfig()
    if tw.path is not None:
        path = Path(tw.path).expanduser()
        if not path.is_file():
            raise DataError("CASM twin file not found", path=path)
        key = ("file", str(path.resolve()), path.stat().st_mtime_ns)
    else:
        key = ("make", str(cfg.root), tw.seed, tw.n_cells, tw.start, tw.end, tw.dielectric)
    if key not in _CACHE:
        _CACHE.clear()
        if tw.path is not None:
            with xr.open_dataset(path) as f:
                full = f.load()
            if full.attrs.get("ease2_grid") != GRID or "sm_true" not in full:
                raise DataError("not a CASM twin file (ease2_grid M25, sm_true)", path=path)
        else:
            full = make_casm_twin(cfg.root, seed=tw.seed, start=tw.start, end=tw.end, n_cells=tw.n_cells,
                                  dielectric=tw.dielectric)
        _CACHE[key] = full
    full = _CACHE[key]
    out = full.sel(time=slice(start, end))
    if cfg.sites is not None:
        out = out.sel(site=cfg.sites)
    return out
