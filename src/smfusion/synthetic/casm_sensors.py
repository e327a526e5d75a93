"""The sensors of the CASM twin: eras, channels, geometry, overpass, errors, vegetation and roughness parameters.

Eras follow the real missions (AMSR-E 2002-06-19 .. 2011-10-04, AMSR2 from
2012-07-03, SMOS from 2010-01-12, SMAP from 2015-03-31), ending 2020-12-31 as
CASM does. Channel frequencies and incidence angles are the instruments'
(AMSR-E/AMSR2 6.925 and 10.65 GHz at 55 deg; SMOS 1.4135 GHz, here at the
42.5 deg of the fitted L3 TB; SMAP 1.41 GHz at 40 deg). The error model of one
observation of channel c and polarisation p at time t (years since the era start):

    TB_obs = TB_model + bias_p + drift * t + N(0, nedt^2)   (+ an RFI burst U(5, 30) K with probability rfi)

The offsets between AMSR-E and AMSR2 (a few K, as between the real
instruments before inter-calibration) and SMOS vs SMAP, and the drifts, are
twin choices, documented in docs/casm.md; so are the vegetation ``b`` /
``omega`` per frequency (b grows with frequency, Jackson & Schmugge 1991), the
polarisation mixing ``q`` and the roughness multiplier relative to L-band.
``teff_c`` is Choudhury's (1982) C: T_eff = T_deep + C (T_surf - T_deep),
0.246 at L-band, close to 1 at C/X-band (shallower emission depth).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Channel", "SensorSpec", "SENSORS", "TARGET"]


@dataclass(frozen=True)
class Channel:
    """One frequency of a sensor: tag in variable names ('' for single-channel sensors), GHz, b, omega."""

    tag: str
    freq_ghz: float
    b: float  # tau = b * VWC (m2/kg)
    omega: float  # single-scattering albedo


@dataclass(frozen=True)
class SensorSpec:
    """A radiometer of the twin: era (inclusive dates), channels, geometry, sampling and errors."""

    name: str
    start: str
    end: str
    channels: tuple[Channel, ...]
    incidence: float  # deg
    local_hour: float  # local solar time of the pass used
    pass_fraction: float  # probability that a cell has a usable pass on a day
    nedt: float  # K, random error of one observation
    bias_h: float  # K
    bias_v: float  # K
    drift: float  # K per year since the era start
    q: float = 0.0  # polarisation mixing of the rough surface
    h_scale: float = 1.0  # roughness h relative to the L-band value
    teff_c: float = 0.246  # Choudhury's effective-temperature coefficient
    rfi: float = 0.0  # probability of an RFI burst per observation

    def var(self, pol: str, channel: Channel) -> str:
        """Variable name of a TB: ``tb_<pol>_<sensor>[_<tag>]``."""
        return f"tb_{pol}_{self.name}" + (f"_{channel.tag}" if channel.tag else "")


_C = Channel("06", 6.925, b=0.30, omega=0.06)
_X = Channel("10", 10.65, b=0.36, omega=0.07)
_L_SMOS = Channel("", 1.4135, b=0.11, omega=0.05)
_L_SMAP = Channel("", 1.41, b=0.11, omega=0.05)

SENSORS = {
    "amsre": SensorSpec("amsre", "2002-06-19", "2011-10-04", (_C, _X), incidence=55.0, local_hour=1.5,
                        pass_fraction=0.7, nedt=0.5, bias_h=0.0, bias_v=0.0, drift=0.03, q=0.1, h_scale=1.5,
                        teff_c=0.9),
    "amsr2": SensorSpec("amsr2", "2012-07-03", "2020-12-31", (_C, _X), incidence=55.0, local_hour=1.5,
                        pass_fraction=0.7, nedt=0.5, bias_h=4.0, bias_v=2.5, drift=-0.02, q=0.1, h_scale=1.5,
                        teff_c=0.9),
    "smos": SensorSpec("smos", "2010-01-12", "2020-12-31", (_L_SMOS,), incidence=42.5, local_hour=6.0,
                       pass_fraction=0.45, nedt=2.5, bias_h=-2.0, bias_v=-1.5, drift=-0.03, rfi=0.005),
    "smap": SensorSpec("smap", "2015-03-31", "2020-12-31", (_L_SMAP,), incidence=40.0, local_hour=6.0,
                       pass_fraction=0.45, nedt=1.1, bias_h=0.0, bias_v=0.0, drift=0.0),
}
TARGET = "smap"  # the sensor whose single-channel retrieval is the twin's target, sm_smap
