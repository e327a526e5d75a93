"""The twin's two-layer water-balance model (bucket with snow, infiltration, drainage, ET).

:func:`soil_params` maps soil attributes to parameters; :func:`run_water_balance`
integrates one day at a time and closes the balance per day. Equations and
constants: docs/twin.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SoilParams", "soil_params", "run_water_balance", "D1_MM", "D2_MM"]

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
    coupling: float = 0.1  # fraction of the layers' wetness difference exchanged per day
    bypass: float = 0.0  # fraction of the day's infiltration that passes layer 1 into layer 2 within the day
    evap_scale: float = 1.0  # soil evaporation from layer 1 = evap_scale x bare fraction x PET x stress


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
        w1 = w1 + (1.0 - p.bypass) * infil
        ex1 = np.maximum(w1 - sat1, 0.0)
        q12 = p.k1 * np.maximum(w1 - ex1 - fc1, 0.0)
        w1 = w1 - ex1 - q12
        w2 = w2 + ex1 + q12 + p.bypass * infil
        ex2 = np.maximum(w2 - sat2, 0.0)
        runoff = runoff + ex2
        w2 = w2 - ex2
        drain = p.k2 * np.maximum(w2 - fc2, 0.0)
        w2 = w2 - drain
        # diffusion between layers towards equal wetness (conserves water)
        diff = p.coupling * (w2 / p.d2 - w1 / p.d1) * p.d1
        diff = np.clip(diff, -(w1 - res1).clip(0), (w2 - res2).clip(0))
        w1, w2 = w1 + diff, w2 - diff
        beta1 = np.clip((w1 - wp1) / (fc1 - wp1), 0.0, 1.0)
        beta2 = np.clip((w2 - wp2) / (fc2 - wp2), 0.0, 1.0)
        e1 = np.minimum(p.evap_scale * pet[:, t] * p.bare * np.maximum(beta1, 0.15 * (w1 > res1)),
                        np.maximum(w1 - res1, 0.0))
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
