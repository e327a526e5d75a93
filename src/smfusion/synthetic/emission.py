"""Microwave emission of vegetated soil: dielectric models, Fresnel, roughness, the tau-omega model.

Pure numpy, vectorised over any broadcastable arrays. Complex permittivities
are returned as eps' + i eps'' with eps'' >= 0 (the loss); frequencies in GHz,
angles in degrees, temperatures in kelvin.

Soil dielectric models
----------------------
* :func:`mironov_permittivity` (Mironov et al. 2009, IEEE TGRS 47(7), the
  generalised refractive mixing model with clay-dependent spectroscopic
  parameters; 0.045-26.5 GHz). With C the clay fraction (0-1), the dry-soil
  refractive index n_d = 1.634 - 0.539 C + 0.2748 C^2, absorption
  k_d = 0.03952 - 0.04038 C, the maximum bound-water fraction
  m_vt = 0.02863 + 0.30673 C, and bound (b) / free (u) water as Debye media,
  eps_0b = 79.8 - 85.4 C + 32.7 C^2, tau_b = 1.062e-11 + 3.450e-12 C s,
  sigma_b = 0.3112 + 0.467 C S/m, eps_0u = 100, tau_u = 8.5e-12 s,
  sigma_u = 0.3631 + 1.217 C S/m, eps_inf = 4.9:
      eps_x = eps_inf + (eps_0x - eps_inf) / (1 + (2 pi f tau_x)^2)
              + i [(eps_0x - eps_inf) 2 pi f tau_x / (1 + (2 pi f tau_x)^2) + sigma_x / (2 pi eps_0 f)],
      n_x + i k_x = sqrt(eps_x),
      n = n_d + (n_b - 1) min(m_v, m_vt) + (n_u - 1) max(m_v - m_vt, 0),
      k = k_d + k_b min(m_v, m_vt) + k_u max(m_v - m_vt, 0),
      eps_soil = n^2 - k^2 + i 2 n k.
* :func:`dobson_permittivity` (Dobson et al. 1985, IEEE TGRS 23(1), as in Ulaby
  et al. 1986 vol. III; 1.4-18 GHz), alpha = 0.65, rho_s = 2.66 g/cm3,
      eps_s = (1.01 + 0.44 rho_s)^2 - 0.062,
      beta' = 1.2748 - 0.519 S - 0.152 C,  beta'' = 1.33797 - 0.603 S - 0.166 C,
      sigma_eff = 0.0467 + 0.2204 rho_b - 0.4111 S + 0.6614 C  (S/m),
      eps_fw = :func:`water_permittivity` + i sigma_eff (rho_s - rho_b) / (2 pi eps_0 f rho_s m_v),
      eps' = [1 + (rho_b / rho_s)(eps_s^alpha - 1) + m_v^beta' eps_fw'^alpha - m_v]^(1/alpha),
      eps'' = [m_v^beta'' eps_fw''^alpha]^(1/alpha).

Emission
--------
* :func:`fresnel_reflectivity`: r_H = |(cos t - sqrt(eps - sin^2 t)) / (cos t + sqrt(eps - sin^2 t))|^2,
  r_V = |(eps cos t - sqrt(eps - sin^2 t)) / (eps cos t + sqrt(eps - sin^2 t))|^2.
* :func:`rough_reflectivity` (Wang & Choudhury 1981):
  r_p = [(1 - Q) r_p* + Q r_q*] exp(-h cos^N t).
* :func:`tau_omega` (Mo et al. 1982, the zero-order radiative transfer model):
  TB_p = T_s (1 - r_p) g + T_c (1 - omega)(1 - g)(1 + r_p g),  g = exp(-tau / cos t).
* :func:`vegetation_opacity` (Jackson & Schmugge 1991): tau = b * VWC.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EPS_0",
    "water_permittivity",
    "mironov_permittivity",
    "dobson_permittivity",
    "fresnel_reflectivity",
    "rough_reflectivity",
    "vegetation_opacity",
    "tau_omega",
]

EPS_0 = 8.854e-12  # vacuum permittivity, F/m
EPS_W_INF = 4.9


def water_permittivity(freq_ghz, temp_k=293.15):
    """Pure (free) water, single Debye relaxation (Ulaby et al. 1986, Stogryn's fits).

    eps_w0(T) = 88.045 - 0.4147 T + 6.295e-4 T^2 + 1.075e-5 T^3 (T in deg C),
    2 pi tau_w(T) = 1.1109e-10 - 3.824e-12 T + 6.938e-14 T^2 - 5.096e-16 T^3 s,
    eps_w = eps_inf + (eps_w0 - eps_inf) / (1 - i 2 pi f tau_w)  (returned as eps' + i eps'').
    """
    t = np.asarray(temp_k, dtype=float) - 273.15
    f = np.asarray(freq_ghz, dtype=float) * 1e9
    e0 = 88.045 - 0.4147 * t + 6.295e-4 * t**2 + 1.075e-5 * t**3
    two_pi_tau = 1.1109e-10 - 3.824e-12 * t + 6.938e-14 * t**2 - 5.096e-16 * t**3
    x = f * two_pi_tau
    return EPS_W_INF + (e0 - EPS_W_INF) / (1 + x**2) + 1j * (e0 - EPS_W_INF) * x / (1 + x**2)


def _debye_refractive(freq_hz, e0, tau, sigma):
    x = 2 * np.pi * freq_hz * tau
    eps_r = EPS_W_INF + (e0 - EPS_W_INF) / (1 + x**2)
    eps_i = (e0 - EPS_W_INF) * x / (1 + x**2) + sigma / (2 * np.pi * EPS_0 * freq_hz)
    mod = np.sqrt(eps_r**2 + eps_i**2)
    return np.sqrt((mod + eps_r) / 2), np.sqrt((mod - eps_r) / 2)


def mironov_permittivity(freq_ghz, mv, clay):
    """Soil permittivity (Mironov et al. 2009; formulas in the module doc). ``mv`` m3/m3, ``clay`` fraction 0-1."""
    f = np.asarray(freq_ghz, dtype=float) * 1e9
    c = np.asarray(clay, dtype=float)
    mv = np.clip(np.asarray(mv, dtype=float), 0.0, None)
    nd = 1.634 - 0.539 * c + 0.2748 * c**2
    kd = 0.03952 - 0.04038 * c
    mvt = 0.02863 + 0.30673 * c
    nb, kb = _debye_refractive(f, 79.8 - 85.4 * c + 32.7 * c**2, 1.062e-11 + 3.450e-12 * c, 0.3112 + 0.467 * c)
    nu, ku = _debye_refractive(f, 100.0, 8.5e-12, 0.3631 + 1.217 * c)
    bound = np.minimum(mv, mvt)
    free = np.maximum(mv - mvt, 0.0)
    n = nd + (nb - 1) * bound + (nu - 1) * free
    k = kd + kb * bound + ku * free
    return n**2 - k**2 + 1j * 2 * n * k


def dobson_permittivity(freq_ghz, mv, sand, clay, bulk_density=1.3, temp_k=293.15):
    """Soil permittivity (Dobson et al. 1985; formulas in the module doc). Fractions 0-1, density g/cm3."""
    alpha, rho_s = 0.65, 2.66
    f = np.asarray(freq_ghz, dtype=float) * 1e9
    s, c, rho_b = (np.asarray(v, dtype=float) for v in (sand, clay, bulk_density))
    mv = np.clip(np.asarray(mv, dtype=float), 1e-6, None)
    eps_s = (1.01 + 0.44 * rho_s) ** 2 - 0.062
    beta_r = 1.2748 - 0.519 * s - 0.152 * c
    beta_i = 1.33797 - 0.603 * s - 0.166 * c
    sigma = 0.0467 + 0.2204 * rho_b - 0.4111 * s + 0.6614 * c
    ew = water_permittivity(freq_ghz, temp_k)
    ew_i = ew.imag + sigma * (rho_s - rho_b) / (2 * np.pi * EPS_0 * f * rho_s * mv)
    real = (1 + rho_b / rho_s * (eps_s**alpha - 1) + mv**beta_r * ew.real**alpha - mv) ** (1 / alpha)
    imag = (mv**beta_i * ew_i**alpha) ** (1 / alpha)
    return real + 1j * imag


def fresnel_reflectivity(eps, theta_deg):
    """Smooth-surface power reflectivities (r_H, r_V) of a half-space of permittivity ``eps``."""
    t = np.radians(np.asarray(theta_deg, dtype=float))
    eps = np.asarray(eps, dtype=complex)
    cos_t, root = np.cos(t), np.sqrt(eps - np.sin(t) ** 2)
    r_h = np.abs((cos_t - root) / (cos_t + root)) ** 2
    r_v = np.abs((eps * cos_t - root) / (eps * cos_t + root)) ** 2
    return r_h, r_v


def rough_reflectivity(r_h, r_v, theta_deg, h=0.0, q=0.0, n=2.0):
    """Rough-surface reflectivities (Wang & Choudhury 1981): mixing ``q``, roughness ``h``, angle exponent ``n``."""
    loss = np.exp(-np.asarray(h, dtype=float) * np.cos(np.radians(theta_deg)) ** n)
    return ((1 - q) * r_h + q * r_v) * loss, ((1 - q) * r_v + q * r_h) * loss


def vegetation_opacity(vwc, b):
    """Nadir vegetation optical depth tau = b * VWC (``vwc`` kg/m2, ``b`` m2/kg)."""
    return np.asarray(b, dtype=float) * np.asarray(vwc, dtype=float)


def tau_omega(reflectivity, t_soil, t_canopy, tau, omega, theta_deg):
    """Brightness temperature (K) of one polarisation by the tau-omega model (module doc)."""
    g = np.exp(-np.asarray(tau, dtype=float) / np.cos(np.radians(theta_deg)))
    r = np.asarray(reflectivity, dtype=float)
    return t_soil * (1 - r) * g + t_canopy * (1 - omega) * (1 - g) * (1 + r * g)
