"""Emission physics against closed forms and published reference values."""

from __future__ import annotations

import numpy as np
import pytest

from smfusion.synthetic.emission import (dobson_permittivity, fresnel_reflectivity, mironov_permittivity,
                                         rough_reflectivity, tau_omega, vegetation_opacity, water_permittivity)


def test_fresnel_normal_incidence_and_brewster_angle():
    # normal incidence: r = ((1 - n) / (1 + n))^2 for both polarisations; eps = 4 -> 1/9, eps = 25 -> 4/9
    for eps, r in ((4.0, 1 / 9), (25.0, 4 / 9)):
        r_h, r_v = fresnel_reflectivity(eps, 0.0)
        assert r_h == pytest.approx(r, rel=1e-12) and r_v == pytest.approx(r, rel=1e-12)
    # V-pol vanishes at the Brewster angle tan(theta_B) = sqrt(eps); H-pol there is ((eps - 1) / (eps + 1))^2
    r_h, r_v = fresnel_reflectivity(4.0, np.degrees(np.arctan(2.0)))
    assert r_v == pytest.approx(0.0, abs=1e-15) and r_h == pytest.approx((3 / 5) ** 2, rel=1e-12)
    theta = np.linspace(1, 89, 50)
    r_h, r_v = fresnel_reflectivity(15.0 + 2.0j, theta)
    assert np.all(r_h > r_v) and np.all(np.diff(r_h) > 0) and np.all((r_v >= 0) & (r_h <= 1))
    r_h, _ = fresnel_reflectivity(15.0, 90.0)
    assert r_h == pytest.approx(1.0)


def test_mironov_reference_value_and_dry_soil():
    # Mironov et al. (2009) as implemented in S. Chan's MATLAB code: the test vector of the mwrtms package
    eps = mironov_permittivity(5.405, 0.25, 0.3)
    assert eps.real == pytest.approx(11.24896653310607, abs=1e-9)
    assert eps.imag == pytest.approx(2.5254712378593664, abs=1e-9)
    # dry soil: eps = n_d^2 - k_d^2 + 2 i n_d k_d with n_d = 1.634 - 0.539 C + 0.2748 C^2, k_d = 0.03952 - 0.04038 C
    c = 0.2
    nd, kd = 1.634 - 0.539 * c + 0.2748 * c**2, 0.03952 - 0.04038 * c
    dry = mironov_permittivity(1.4, 0.0, c)
    assert dry.real == pytest.approx(nd**2 - kd**2) and dry.imag == pytest.approx(2 * nd * kd)
    wet = mironov_permittivity(1.4, np.linspace(0.0, 0.5, 11), c)
    assert np.all(np.diff(wet.real) > 0) and np.all(np.diff(wet.imag) > 0)


def test_dobson_solid_permittivity_and_agreement_with_mironov():
    # Dobson et al. (1985): eps_s = (1.01 + 0.44 rho_s)^2 - 0.062 = 4.70 for rho_s = 2.66; at m_v -> 0 the mixing
    # formula leaves the dry soil: eps^0.65 = 1 + (rho_b / rho_s)(eps_s^0.65 - 1)
    eps_s = (1.01 + 0.44 * 2.66) ** 2 - 0.062
    assert eps_s == pytest.approx(4.7, abs=0.01)  # the paper quotes 4.7
    dry = dobson_permittivity(1.4, 1e-9, 0.4, 0.2, 1.4)
    assert dry.real == pytest.approx((1 + 1.4 / 2.66 * (eps_s**0.65 - 1)) ** (1 / 0.65), rel=1e-4)
    # both models are fits to the same laboratory soils: at L-band for a loam they agree within ~20 %
    mv = np.array([0.15, 0.25, 0.35])
    d = dobson_permittivity(1.4, mv, 0.4, 0.2, 1.4).real
    m = mironov_permittivity(1.4, mv, 0.2).real
    np.testing.assert_allclose(d, m, rtol=0.25)
    assert np.all(np.diff(d) > 0)


def test_water_permittivity_limits():
    static = water_permittivity(1e-6, 293.15)
    assert static.real == pytest.approx(88.045 - 0.4147 * 20 + 6.295e-4 * 400 + 1.075e-5 * 8000, rel=1e-6)
    assert water_permittivity(1e6, 293.15).real == pytest.approx(4.9, abs=1e-3)
    assert 0 < water_permittivity(1.4, 293.15).imag < water_permittivity(10.65, 293.15).imag


def test_tau_omega_limits():
    eps = mironov_permittivity(1.41, 0.2, 0.2)
    r_h, r_v = fresnel_reflectivity(eps, 40.0)
    # bare smooth soil: TB = T (1 - r)
    assert tau_omega(r_v, 300.0, 290.0, 0.0, 0.0, 40.0) == pytest.approx(300.0 * (1 - r_v))
    # opaque canopy: TB = T_c (1 - omega)
    assert tau_omega(r_h, 300.0, 290.0, 50.0, 0.05, 40.0) == pytest.approx(290.0 * 0.95, rel=1e-9)
    # omega = 0 and uniform temperature: the layer is a grey body, TB = T (1 - r g^2)
    g = np.exp(-0.3 / np.cos(np.radians(40.0)))
    assert tau_omega(r_h, 300.0, 300.0, 0.3, 0.0, 40.0) == pytest.approx(300.0 * (1 - r_h * g**2), rel=1e-12)
    # vegetation and roughness both warm the soil signal
    bare = tau_omega(r_h, 300.0, 300.0, 0.0, 0.05, 40.0)
    assert tau_omega(r_h, 300.0, 300.0, vegetation_opacity(3.0, 0.11), 0.05, 40.0) > bare
    rough_h, rough_v = rough_reflectivity(r_h, r_v, 40.0, h=0.15, q=0.1)
    assert rough_h < r_h and rough_v > (1 - 0.1) * r_v * np.exp(-0.15 * np.cos(np.radians(40)) ** 2) - 1e-12
    assert rough_reflectivity(r_h, r_v, 40.0) == (r_h, r_v)
