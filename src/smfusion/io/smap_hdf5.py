"""What the SMAP L2 and L3 radiometer HDF5 readers share: opening, masking, flags, time, CF attributes.

Conventions of the SMAP products (JPL D-72551 / D-72547 product specifications,
NSIDC data-field lists of SPL2SMP and SPL3SMP):

* float fields have ``_FillValue`` -9999 and ``valid_min``/``valid_max``;
  anything at the fill value, at or below -9999, outside the valid range or not
  finite is missing (NaN);
* flags are uint16 with 65534 meaning no data;
* ``retrieval_qual_flag`` bit 0 = 0: soil moisture of recommended quality;
* ``tb_qual_flag_h``/``tb_qual_flag_v`` bit 0 = 0: brightness temperature of
  good quality (bits 1-15: range, RFI detection/correction, NEDT, sun/moon/
  galaxy/atmosphere/Faraday/water corrections, null value, RFI check/clean);
* ``tb_time_seconds``: seconds since 2000-01-01T11:58:55.816Z (J2000; leap
  seconds ignored).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smfusion.errors import DataError

__all__ = [
    "UINT_FILL",
    "J2000_EPOCH",
    "FLAG_VARIABLES",
    "CF_ATTRS",
    "open_h5",
    "attr_str",
    "recommended_quality",
    "tb_good_quality",
    "mask_float",
    "seconds_to_datetime",
    "var_attrs",
]

UINT_FILL = 65534
J2000_EPOCH = np.datetime64("2000-01-01T11:58:55.816", "ns")
FLAG_VARIABLES = ("retrieval_qual_flag", "surface_flag", "tb_qual_flag_h", "tb_qual_flag_v")
TB_FLAG = {"tb_v_corrected": "tb_qual_flag_v", "tb_h_corrected": "tb_qual_flag_h"}

_TB_FLAG_MEANINGS = ("quality range RFI_detection RFI_correction NEDT direct_sun_correction "
                     "reflected_sun_correction reflected_moon_correction direct_galaxy_correction "
                     "reflected_galaxy_correction atmosphere_correction Faraday_rotation_correction null_value_bit "
                     "water_correction RFI_check RFI_clean")

# CF names for what the products call cm**3/cm**3, Kelvin, kg/m**2; {pass_} is the overpass (or half-orbit).
CF_ATTRS = {
    "soil_moisture": {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil",
                      "long_name": "SMAP soil moisture (DCA), {pass_}"},
    "tb_v_corrected": {"units": "K", "standard_name": "brightness_temperature",
                       "long_name": "SMAP L-band V-pol brightness temperature, corrected, {pass_}"},
    "tb_h_corrected": {"units": "K", "standard_name": "brightness_temperature",
                       "long_name": "SMAP L-band H-pol brightness temperature, corrected, {pass_}"},
    "vegetation_water_content": {"units": "kg m-2", "long_name": "SMAP vegetation water content (ancillary), {pass_}"},
    "surface_temperature": {"units": "K", "long_name": "SMAP ancillary surface temperature (GMAO), {pass_}"},
    "vegetation_opacity": {"units": "1", "long_name": "SMAP retrieved vegetation optical depth, {pass_}"},
    "roughness_coefficient": {"units": "1", "long_name": "SMAP roughness coefficient h, {pass_}"},
    "albedo": {"units": "1", "long_name": "SMAP single-scattering albedo, {pass_}"},
    "clay_fraction": {"units": "1", "long_name": "SMAP ancillary clay fraction, {pass_}"},
    "sand_fraction": {"units": "1", "long_name": "SMAP ancillary sand fraction, {pass_}"},
    "bulk_density": {"units": "g cm-3", "long_name": "SMAP ancillary bulk density, {pass_}"},
    "static_water_body_fraction": {"units": "1", "long_name": "SMAP static water-body fraction, {pass_}"},
    "boresight_incidence": {"units": "degree", "long_name": "SMAP boresight incidence angle, {pass_}"},
    "retrieval_qual_flag": {"long_name": "SMAP retrieval quality bit flags (bit 0 = 0: recommended), {pass_}"},
    "surface_flag": {"long_name": "SMAP surface condition bit flags, {pass_}"},
    "tb_qual_flag_h": {"long_name": "SMAP H-pol brightness temperature quality bit flags (bit 0 = 0: good), {pass_}"},
    "tb_qual_flag_v": {"long_name": "SMAP V-pol brightness temperature quality bit flags (bit 0 = 0: good), {pass_}"},
    "tb_time_seconds": {"long_name": "SMAP overpass time (UTC), {pass_}", "standard_name": "time"},
}


def open_h5(path: Path, what: str = "SMAP granule"):
    """h5py.File opened read-only; a missing or broken file raises DataError naming it."""
    import h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError as exc:
        raise DataError(f"{what} not found", path=path) from exc
    except Exception as exc:  # h5py raises OSError, ValueError, ... for broken files
        raise DataError(f"cannot open {what} as HDF5 (truncated or not HDF5?): {exc}", path=path) from exc


def attr_str(obj, name: str) -> str | None:
    """An HDF5 attribute as str (bytes and 1-element arrays decoded), None when absent or unreadable."""
    try:
        val = obj.attrs.get(name)
    except Exception:
        return None
    if val is None:
        return None
    if isinstance(val, bytes):
        return val.decode("ascii", "replace")
    if isinstance(val, np.ndarray) and val.size == 1:
        val = val.reshape(())[()]
        return val.decode("ascii", "replace") if isinstance(val, bytes) else str(val)
    return str(val)


def recommended_quality(flag) -> np.ndarray:
    """True where ``retrieval_qual_flag`` has bit 0 clear (recommended quality) and is not fill."""
    flag = np.asarray(flag)
    return (flag != UINT_FILL) & ((flag.astype(np.uint32) & 1) == 0)


def tb_good_quality(flag) -> np.ndarray:
    """True where ``tb_qual_flag_h``/``_v`` has bit 0 clear (good brightness temperature) and is not fill."""
    return recommended_quality(flag)


def mask_float(raw: np.ndarray, attrs: dict, dtype=np.float32) -> np.ndarray:
    """Float copy of ``raw`` with fill, <= -9999, out-of-valid-range and non-finite values set to NaN."""
    data = np.asarray(raw).astype(dtype)
    bad = ~np.isfinite(data)
    fill = attrs.get("_FillValue")
    if fill is not None:
        bad |= data == np.asarray(fill).ravel()[0]
    bad |= data <= -9999.0
    if "valid_min" in attrs:
        bad |= data < np.asarray(attrs["valid_min"]).ravel()[0]
    if "valid_max" in attrs:
        bad |= data > np.asarray(attrs["valid_max"]).ravel()[0]
    data[bad] = np.nan
    return data


def seconds_to_datetime(seconds: np.ndarray) -> np.ndarray:
    """J2000 seconds (NaN = missing) -> datetime64[ns] (NaT)."""
    seconds = np.asarray(seconds, dtype=np.float64)
    bad = ~np.isfinite(seconds)
    ns = np.where(bad, 0, np.round(seconds * 1e6)).astype(np.int64) * 1000
    out = J2000_EPOCH + ns.astype("timedelta64[ns]")
    out[bad] = np.datetime64("NaT")
    return out


def var_attrs(var: str, pass_: str, quality: str | None = None, tb_quality: str | None = None) -> dict:
    """CF attributes of one output variable (``pass_`` names the overpass or half-orbit)."""
    attrs = {k: (v.format(pass_=pass_) if isinstance(v, str) else v) for k, v in CF_ATTRS.get(var, {}).items()}
    if var == "soil_moisture":
        attrs["quality_masking"] = "retrieval_qual_flag bit 0 (recommended quality)" if quality else "none"
    if var in TB_FLAG:
        attrs["quality_masking"] = f"{TB_FLAG[var]} bit 0 (good quality)" if tb_quality else "none"
    if var == "retrieval_qual_flag":
        attrs.update(flag_masks=np.array([1, 2, 4, 8], dtype=np.uint16),
                     flag_meanings="retrieval_not_recommended retrieval_not_attempted retrieval_failed "
                                   "freeze_thaw_retrieval_failed")
    if var == "surface_flag":
        attrs.update(flag_masks=np.array([1 << b for b in range(13)], dtype=np.uint16),
                     flag_meanings="static_water_body radar_water_body_detection coastal_proximity urban_area "
                                   "precipitation snow_or_ice permanent_snow_or_ice radar_frozen_ground "
                                   "model_frozen_ground reserved mountainous_terrain dense_vegetation nadir_region")
    if var in ("tb_qual_flag_h", "tb_qual_flag_v"):
        attrs.update(flag_masks=np.array([1 << b for b in range(16)], dtype=np.uint16),
                     flag_meanings=_TB_FLAG_MEANINGS)
    return attrs
