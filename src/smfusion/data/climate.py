"""Static descriptors that exist at every cell without its target: climate indices of the forcing and
smooth location encodings (``descriptors:`` config section; docs/ungauged.md).

Climate indices follow CAMELS (Addor et al. 2017, HESS 21, 5293; Berghuijs et al. 2014 for
seasonality), computed per site from the forcing of the **training period only**, daily values:

* ``p_mean``: mean precipitation P (mm/day); ``t_mean``: mean air temperature (deg C);
* ``pet_mean``: mean Priestley-Taylor PET (mm/day, :func:`priestley_taylor_pet`);
* ``aridity``: ``pet_mean / p_mean``;
* ``p_seasonality``: ``delta_p * sign(delta_t) * cos(2 pi (s_p - s_t) / 365.25)`` from the
  least-squares sine curves ``T(d) = mean(T) + delta_t sin(2 pi (d - s_t) / 365.25)`` and
  ``P(d) = mean(P) (1 + delta_p sin(2 pi (d - s_p) / 365.25))`` (d: day of year, 0-based);
  > 0: precipitation peaks in summer, < 0: in winter;
* ``frac_snow``: share of precipitation on days with T <= 0 deg C;
* ``high_prec_freq`` / ``high_prec_dur``: days per year with P >= 5 x mean daily P, and the mean
  length (days) of runs of such days; ``low_prec_freq`` / ``low_prec_dur``: the same for P < 1 mm/day.

Location encodings (smooth in space): ``xyz`` = the unit vector ``(cos lat cos lon, cos lat sin lon,
sin lat)``; ``fourier`` = ``sin, cos(2 pi x / L)`` and ``sin, cos(2 pi y / L)`` of the EASE-Grid 2.0
(equal-area) coordinates for each wavelength L in ``wavelengths_km``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import xarray as xr

from smfusion.errors import DataError

__all__ = ["CLIMATE_INDICES", "priestley_taylor_pet", "per_day", "celsius", "forcing_pet", "sine_cycle", "mean_run_length", "climate_indices",
           "location_encodings", "descriptor_names", "static_inputs", "add_descriptors"]

CLIMATE_INDICES = ("p_mean", "pet_mean", "aridity", "p_seasonality", "frac_snow", "high_prec_freq",
                   "high_prec_dur", "low_prec_freq", "low_prec_dur", "t_mean")
PREFIX_CLIMATE, PREFIX_LOCATION = "clim_", "loc_"
SIGMA = 5.670374419e-8  # Stefan-Boltzmann, W m-2 K-4
LAMBDA_MJ = 2.45  # latent heat of vaporisation, MJ kg-1 (FAO-56)
YEAR = 365.25
PRECIP_PER_DAY = {"kg m-2 h-1": 24.0, "mm h-1": 24.0, "mm/h": 24.0, "kg m-2 s-1": 86400.0, "mm s-1": 86400.0,
                  "kg m-2 d-1": 1.0, "kg m-2 day-1": 1.0, "mm d-1": 1.0, "mm day-1": 1.0, "mm/day": 1.0}


def priestley_taylor_pet(t_c, sw_down, lw_down, albedo: float = 0.23, emissivity: float = 0.97,
                         alpha: float = 1.26, pressure_kpa: float = 101.3) -> np.ndarray:
    """Daily Priestley-Taylor PET (mm/day) from air temperature (deg C) and down-welling radiation (W m-2).

    ``PET = max(0, alpha * D / (D + g) * Rn / lambda)`` with net radiation
    ``Rn = ((1 - albedo) SW + emissivity (LW - sigma T_K^4)) * 0.0864`` (MJ m-2 day-1; the surface is
    taken at air temperature, soil heat flux 0 over a day), the slope of the saturation vapour pressure
    curve ``D = 4098 * 0.6108 exp(17.27 T / (T + 237.3)) / (T + 237.3)^2`` (kPa/degC, FAO-56 eq. 13),
    ``g = 0.000665 * pressure_kpa`` (FAO-56 eq. 8; sea-level pressure, no elevation in the data) and
    ``lambda = 2.45`` MJ/kg.
    """
    t = np.asarray(t_c, dtype=np.float64)
    rn = ((1.0 - albedo) * np.asarray(sw_down, dtype=np.float64)
          + emissivity * (np.asarray(lw_down, dtype=np.float64) - SIGMA * (t + 273.15) ** 4)) * 0.0864
    es = 0.6108 * np.exp(17.27 * t / (t + 237.3))
    delta = 4098.0 * es / (t + 237.3) ** 2
    gamma = 0.000665 * pressure_kpa
    return np.maximum(alpha * delta / (delta + gamma) * rn / LAMBDA_MJ, 0.0)


def sine_cycle(x: np.ndarray, doy: np.ndarray, relative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude ``delta >= 0`` and phase ``s`` (days) of ``x(d) ~ m + delta sin(2 pi (d - s) / 365.25)`` per
    row of ``x`` (site, time), least squares with ``m`` the row mean (``relative``: ``x / m - 1`` is fitted,
    so ``delta`` is relative). The fit is linear in ``a sin + b cos``: ``delta = hypot(a, b)``,
    ``s = -atan2(b, a) * 365.25 / (2 pi)``."""
    x = np.asarray(x, dtype=np.float64)
    m = np.nanmean(x, axis=1, keepdims=True)
    r = x / m - 1.0 if relative else x - m
    w = 2 * np.pi * np.asarray(doy, dtype=np.float64) / YEAR
    basis = np.stack([np.sin(w), np.cos(w)], axis=1)  # (time, 2)
    delta, phase = np.full(x.shape[0], np.nan), np.full(x.shape[0], np.nan)
    for i in range(x.shape[0]):
        ok = np.isfinite(r[i])
        if ok.sum() < 3:
            continue
        (a, b), *_ = np.linalg.lstsq(basis[ok], r[i, ok], rcond=None)
        delta[i], phase[i] = np.hypot(a, b), -np.arctan2(b, a) * YEAR / (2 * np.pi)
    return delta, phase


def mean_run_length(flag: np.ndarray) -> np.ndarray:
    """Mean length of runs of consecutive True values per row (0 where there is none)."""
    f = np.asarray(flag, dtype=bool)
    pad = np.zeros((f.shape[0], 1), dtype=bool)
    starts = (np.diff(np.concatenate([pad, f], axis=1).astype(int), axis=1) == 1).sum(axis=1)
    out = np.zeros(f.shape[0])
    np.divide(f.sum(axis=1), starts, out=out, where=starts > 0)
    return out


def climate_indices(precip: np.ndarray, temp_c: np.ndarray, pet: np.ndarray, time) -> dict[str, np.ndarray]:
    """Every index of :data:`CLIMATE_INDICES` per row, from daily (site, time) precipitation (mm/day), air
    temperature (deg C) and PET (mm/day) on the dates ``time`` (see the module doc). Missing days are
    left out of means and count as neither high- nor low-precipitation days."""
    p, t = np.asarray(precip, dtype=np.float64), np.asarray(temp_c, dtype=np.float64)
    n_days = np.isfinite(p).sum(axis=1)
    p_mean, pet_mean, t_mean = np.nanmean(p, axis=1), np.nanmean(pet, axis=1), np.nanmean(t, axis=1)
    doy = xr.DataArray(np.asarray(time)).dt.dayofyear.values - 1
    d_t, s_t = sine_cycle(t, doy)
    d_p, s_p = sine_cycle(p, doy, relative=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        seasonality = d_p * np.sign(d_t) * np.cos(2 * np.pi * (s_p - s_t) / YEAR)
        snow = np.where(np.isfinite(p) & (t <= 0.0), p, 0.0).sum(axis=1) / np.nansum(p, axis=1)
        high = np.isfinite(p) & (p >= 5.0 * p_mean[:, None])
        low = np.isfinite(p) & (p < 1.0)
        return {
            "p_mean": p_mean, "pet_mean": pet_mean, "aridity": pet_mean / p_mean, "p_seasonality": seasonality,
            "frac_snow": np.nan_to_num(snow), "high_prec_freq": high.sum(axis=1) / n_days * YEAR,
            "high_prec_dur": mean_run_length(high), "low_prec_freq": low.sum(axis=1) / n_days * YEAR,
            "low_prec_dur": mean_run_length(low), "t_mean": t_mean,
        }


def location_encodings(lat, lon, kind: str, wavelengths_km=()) -> dict[str, np.ndarray]:
    """Smooth location features per site (see the module doc); ``none``: no feature."""
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    if kind == "none":
        return {}
    if kind == "xyz":
        p, lam = np.radians(lat), np.radians(lon)
        return {"x": np.cos(p) * np.cos(lam), "y": np.cos(p) * np.sin(lam), "z": np.sin(p)}
    if kind == "fourier":
        from smfusion.data.regions import equal_area_km

        xy = equal_area_km(lat, lon)
        out = {}
        for wl in wavelengths_km:
            for axis, v in (("x", xy[:, 0]), ("y", xy[:, 1])):
                out[f"sin{axis}{int(wl)}"] = np.sin(2 * np.pi * v / wl)
                out[f"cos{axis}{int(wl)}"] = np.cos(2 * np.pi * v / wl)
        return out
    raise DataError(f"unknown location encoding {kind!r}", field="descriptors.location")


def descriptor_names(desc) -> list[str]:
    """Names of the static variables :func:`add_descriptors` adds for a ``descriptors`` config section."""
    loc = location_encodings([0.0], [0.0], desc.location, desc.wavelengths_km) if desc.location != "none" else {}
    return [PREFIX_CLIMATE + c for c in desc.climate] + [PREFIX_LOCATION + k for k in loc]


def static_inputs(cfg) -> list[str]:
    """The model's static input columns: ``data.static`` then the descriptors."""
    return [*cfg.data.static, *descriptor_names(cfg.descriptors)]


def per_day(da: xr.DataArray, name: str) -> np.ndarray:
    """Precipitation ``da`` (site, time) in mm/day, from the units in its attributes."""
    units = str(da.attrs.get("units", "")).strip()
    if units not in PRECIP_PER_DAY:
        raise DataError(f"precipitation units {units!r} not understood (known: {sorted(PRECIP_PER_DAY)})",
                        field=name)
    return da.transpose("site", "time").values.astype(np.float64) * PRECIP_PER_DAY[units]


def celsius(da: xr.DataArray, name: str) -> np.ndarray:
    """Air temperature ``da`` (site, time) in deg C, from K or deg C (units attribute)."""
    units = str(da.attrs.get("units", "")).strip()
    v = da.transpose("site", "time").values.astype(np.float64)
    if units in ("K", "kelvin"):
        return v - 273.15
    if units in ("degC", "deg C", "C", "celsius"):
        return v
    raise DataError(f"temperature units {units!r} not understood (K or degC)", field=name)


def forcing_pet(ds: xr.Dataset, names) -> tuple[np.ndarray, np.ndarray]:
    """Air temperature (deg C) and Priestley-Taylor PET (mm/day), (site, time), from the forcing of ``ds``
    named by ``names`` (``temperature``, ``shortwave``, ``longwave``, ``albedo`` attributes)."""
    t = celsius(ds[names.temperature], names.temperature)
    pet = priestley_taylor_pet(t, ds[names.shortwave].transpose("site", "time").values,
                               ds[names.longwave].transpose("site", "time").values, albedo=names.albedo)
    return t, pet


def add_descriptors(ds: xr.Dataset, cfg, forcing: Optional[xr.Dataset] = None) -> xr.Dataset:
    """``ds`` with the descriptors of ``cfg.descriptors`` added as ``(site,)`` variables. Climate indices use
    the forcing of ``cfg.periods.train`` only: from ``forcing`` when given (same sites), else from ``ds``
    (which must cover the training period). No target variable is read."""
    desc = cfg.descriptors
    names = descriptor_names(desc)
    if not names:
        return ds
    out = ds.copy()
    if desc.climate:
        src = (forcing if forcing is not None else ds).sel(site=ds["site"].values)
        src = src.sel(time=slice(*cfg.periods.train.as_tuple()))
        use_pet = bool({"pet_mean", "aridity"} & set(desc.climate))  # radiation only for these
        need = [desc.precipitation, desc.temperature] + ([desc.shortwave, desc.longwave] if use_pet else [])
        missing = [v for v in need if v not in src]
        if missing or src.sizes["time"] < 365:
            raise DataError(f"climate descriptors need a year of {need} over the training period"
                            f" (missing {missing}, {src.sizes['time']} days)", field="descriptors")
        if use_pet:
            t, pet = forcing_pet(src, desc)
        else:
            t = celsius(src[desc.temperature], desc.temperature)
            pet = np.full(t.shape, np.nan)
        idx = climate_indices(per_day(src[desc.precipitation], desc.precipitation), t, pet, src["time"].values)
        for c in desc.climate:
            out[PREFIX_CLIMATE + c] = ("site", idx[c].astype(np.float32), {"long_name": f"climate index {c} "
                                       f"of the training period {cfg.periods.train.start}..{cfg.periods.train.end}"})
    for k, v in location_encodings(ds["lat"].values, ds["lon"].values, desc.location, desc.wavelengths_km).items():
        out[PREFIX_LOCATION + k] = ("site", v.astype(np.float32), {"long_name": f"location encoding {k}"})
    return out
