"""Synthetic fusion shards in the exact schema of :mod:`smfusion.io.fusion_schema`.

SYNTHETIC data, for testing the pipeline and the ablation logic only; every
figure computed from it must say "synthetic". Deterministic from ``seed``.

Per sensor a daily bucket model turns rain into a relative wetness ``w``;
the 0-5 cm truth is ``sm_min + (sm_max - sm_min) * w`` plus a topographic
term (lower than its surroundings: wetter), with ``sm_min``/``sm_max`` from
the soil texture. Vegetation (LAI) follows a seasonal cycle scaled by the
land-cover class. Then:

* Sentinel-1 backscatter (dB) rises with moisture and falls with vegetation
  (VV), plus an unknown per-sensor roughness offset and speckle; the yearly
  min/mean/max let a model remove the offset (change detection);
* Sentinel-2 reflectance mixes a vegetation and a soil spectrum by the
  vegetation cover; soil reflectance (mainly SWIR) darkens with moisture;
  clouds (mask 1) brighten every band;
* SMAP is a coarse noisy version of the truth (half the regional mean, a
  per-sensor representativeness bias, noise);
* GLDAS soil moisture is a biased, 15-day smoothed regional version (kg/m2 in 0-10 cm),
  with rainfall, temperature, evaporation and snow depth;
* MODIS LAI/FPAR are noisy LAI and 1 - exp(-0.5 LAI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smfusion.io.atomic import atomic_path
from smfusion.io.fusion_schema import LABEL, SOURCES
from smfusion.io.tfrecord import write_examples

T0_MS = 1546300800000  # 2019-01-01T00:00:00Z
DAY_MS = 86_400_000

_LC = {40: 4.0, 30: 2.5, 20: 1.5, 111: 5.0, 60: 0.3}  # land-cover code -> peak LAI
_S2_VEG = dict(B2=0.04, B3=0.08, B4=0.04, B5=0.12, B6=0.30, B7=0.40, B8=0.45, B11=0.20, B12=0.10)
_S2_SOIL = dict(B2=0.10, B3=0.14, B4=0.18, B5=0.21, B6=0.23, B7=0.25, B8=0.27, B11=0.35, B12=0.30)


def _sensor_year(rng: np.random.Generator, n_days: int = 365) -> dict:
    """One sensor's static properties and daily series."""
    clay = rng.uniform(5, 45)
    sand = rng.uniform(10, 90 - clay)
    silt = 100.0 - clay - sand
    lc = int(rng.choice(list(_LC)))
    doy = np.arange(n_days)
    lai = _LC[lc] * (0.15 + 0.85 * np.clip(np.sin(2 * np.pi * (doy - 90) / 365), 0, None))
    temp = 283 + 12 * np.sin(2 * np.pi * (doy - 110) / 365) + rng.normal(0, 2, n_days)
    wet_days = rng.random(n_days) < rng.uniform(0.15, 0.35)
    rain = np.where(wet_days, rng.exponential(rng.uniform(6, 14), n_days), 0.0)  # mm/day
    k = 0.03 + 0.12 * np.clip((temp - 273) / 25, 0, 1)  # drying rate per day
    w = np.empty(n_days)
    prev = 0.5
    for t in range(n_days):
        prev = min(1.0, prev * np.exp(-k[t]) + rain[t] / 40.0)
        w[t] = prev
    sm_max = 0.28 + 0.004 * clay - 0.0012 * sand + rng.normal(0, 0.02)
    sm_min = 0.03 + 0.0015 * clay
    elev = rng.uniform(100, 1500)
    tpi = rng.normal(0, 8)  # centre minus patch-mean elevation (m)
    truth = np.clip(sm_min + (sm_max - sm_min) * w - 0.002 * tpi, 0.01, 0.55)
    return dict(clay=clay, sand=sand, silt=silt, bdod=rng.uniform(1.1, 1.6), lc=lc, lai=lai, temp=temp,
                rain=rain, evap=k * w * 3.0, truth=truth, elev=elev, tpi=tpi,
                vv_off=rng.normal(0, 2.0), vh_off=rng.normal(0, 2.0),
                lat=rng.uniform(30, 48), lon=rng.uniform(-120, -75))


def _vv(sm, lai, angle, off):
    return -17.0 + 30.0 * sm - 1.2 * lai - 0.15 * (angle - 37.0) + off


def _vh(sm, lai, angle, off):
    return -24.0 + 22.0 * sm - 0.4 * lai - 0.10 * (angle - 37.0) + off


def _s2(band, sm, lai):
    cover = 1.0 - np.exp(-0.5 * lai)
    return cover * _S2_VEG[band] + (1.0 - cover) * _S2_SOIL[band] * (1.0 - 1.1 * sm)


def make_examples(
    n_sensors: int = 40, n_times: int = 30, size: int = 8, seed: int = 0, labelled: bool = True,
    region_size: int = 5,
) -> list[dict]:
    """Examples (dicts of numpy arrays) for ``n_sensors`` x ``n_times`` days; SYNTHETIC."""
    rng = np.random.default_rng(seed)
    n_days = 365
    sensors = [_sensor_year(rng) for _ in range(n_sensors)]
    truths = np.stack([s["truth"] for s in sensors])
    region = np.arange(n_sensors) // region_size
    regional = np.stack([truths[region == r].mean(0) for r in region])
    kernel = np.ones(15) / 15
    smooth = np.stack([np.convolve(np.pad(t, 7, mode="edge"), kernel, mode="valid") for t in 0.5 * (truths + regional)])
    smap_bias = rng.normal(-0.02, 0.04, n_sensors)  # point-to-footprint representativeness
    gldas_bias = rng.normal(0.0, 0.03, n_sensors)
    yy, xx = np.mgrid[0:size, 0:size]
    c = size // 2
    overpass = np.arange(0, n_days, 6)
    out = []
    for i, s in enumerate(sensors):
        angles_year = 30 + 15 * rng.random(overpass.size)
        # yearly statistics at the overpass / clear-sky days of the year
        vv_y = _vv(s["truth"][overpass], s["lai"][overpass], angles_year, s["vv_off"])
        vh_y = _vh(s["truth"][overpass], s["lai"][overpass], angles_year, s["vh_off"])
        s2_days = np.arange(0, n_days, 5)
        s2_y = {b: _s2(b, s["truth"][s2_days], s["lai"][s2_days]) for b in _S2_VEG}
        days = np.sort(rng.choice(np.arange(3, n_days - 8), size=n_times, replace=False))
        slope = rng.normal(0, 3, 2)
        elev = s["elev"] + slope[0] * (yy - c) + slope[1] * (xx - c) + rng.normal(0, 1, (size, size))
        elev[c, c] = np.delete(elev.ravel(), c * size + c).mean() + s["tpi"]  # centre above its surroundings by tpi
        zone = int((s["lon"] + 180) // 6) + 1
        for d in days:
            d = int(d)
            ex: dict = {}
            ts = T0_MS + d * DAY_MS + int(rng.integers(0, DAY_MS))
            ex.update(center_lat=np.float32([s["lat"]]), center_long=np.float32([s["lon"]]),
                      sensor_id=np.int64([1000 + i]), size=np.int64([size]), timestamp=np.int64([ts]),
                      utm_zone=f"{zone}N".encode())
            mask = np.ones((size, size), dtype=np.int64)
            if rng.random() < 0.1:
                mask[0, :] = 0
            ex["mask"] = mask.ravel()
            sm_pix = s["truth"][d] + 0.015 * rng.standard_normal((size, size))
            sm_pix[c, c] = s["truth"][d]
            lai_pix = np.clip(s["lai"][d] + 0.3 * rng.standard_normal((size, size)), 0, None)

            def put(src: str, band: str, arr):
                ex[f"{src}_{band}"] = np.asarray(np.broadcast_to(arr, (size, size)), dtype=np.float32).ravel()

            def put_time(src: str, diff_ms: int):
                ex[f"{src}_timestamp"] = np.int64([ts + diff_ms])
                ex[f"{src}_time_millis_diff"] = np.int64([diff_ms])

            # Sentinel-1 (same day)
            angle = 30 + 15 * rng.random()
            put("s1", "VV", _vv(sm_pix, lai_pix, angle, s["vv_off"]) + rng.normal(0, 0.7, (size, size)))
            put("s1", "VH", _vh(sm_pix, lai_pix, angle, s["vh_off"]) + rng.normal(0, 0.7, (size, size)))
            put("s1", "angle", angle + 0.01 * (xx - c))
            for name, series in (("VV", vv_y), ("VH", vh_y), ("angle", angles_year)):
                put("s1", f"{name}_min", series.min())
                put("s1", f"{name}_mean", series.mean())
                put("s1", f"{name}_max", series.max())
            put_time("s1", int(rng.integers(-6, 7)) * 3_600_000)
            # Sentinel-2 (within +-5 days, maybe cloudy)
            dd = int(rng.integers(-5, 6))
            cloud = (rng.random() < 0.2) * (rng.random((size, size)) < 0.7)
            for b in _S2_VEG:
                refl = _s2(b, s["truth"][d + dd] + (sm_pix - s["truth"][d]), lai_pix)
                refl = np.where(cloud, 0.6, refl) + rng.normal(0, 0.01, (size, size))
                put("s2", b, refl)
                put("s2", f"{b}_min", s2_y[b].min())
                put("s2", f"{b}_mean", s2_y[b].mean())
                put("s2", f"{b}_max", s2_y[b].max())
            put("s2", "cloud_mask", cloud.astype(float))
            put_time("s2", dd * DAY_MS)
            # DEM, SoilGrids, land cover (static)
            put("dem", "elevation", elev)
            put("soilgrids", "bdod", 100 * s["bdod"] + rng.normal(0, 2, (size, size)))
            put("soilgrids", "clay", 10 * s["clay"] + rng.normal(0, 10, (size, size)))
            put("soilgrids", "sand", 10 * s["sand"] + rng.normal(0, 10, (size, size)))
            put("soilgrids", "silt", 10 * s["silt"] + rng.normal(0, 10, (size, size)))
            lc = np.full((size, size), s["lc"], dtype=float)
            lc[rng.random((size, size)) < 0.1] = 30
            lc[c, c] = s["lc"]
            put("landcover", "class", lc)
            # SMAP: coarse and noisy (daily overpass within a day)
            ds = int(rng.integers(-1, 2))
            smap = 0.5 * s["truth"][d + ds] + 0.5 * regional[i, d + ds] + smap_bias[i] + rng.normal(0, 0.04)
            put("smap", "sm", max(smap, 0.01))
            put_time("smap", ds * DAY_MS + int(rng.integers(-6, 7)) * 3_600_000)
            # GLDAS: biased and smooth (3-hourly, nearest)
            put("gldas", "soil_moisture", 100 * (0.5 * smooth[i, d] + 0.12 + gldas_bias[i]) + rng.normal(0, 0.5))
            put("gldas", "rainfall", s["rain"][d] / 86400.0)
            put("gldas", "temperature", s["temp"][d])
            put("gldas", "evaporation", s["evap"][d] / 86400.0)
            put("gldas", "snow_depth", max(0.0, 273.0 - s["temp"][d]) * 0.01)
            put_time("gldas", int(rng.integers(-1, 2)) * 3 * 3_600_000)
            # MODIS 8-day composite
            dm = -int(rng.integers(0, 8))
            lai_m = np.clip(s["lai"][d + dm] + rng.normal(0, 0.3, (size, size)), 0, None)
            put("modis", "lai", lai_m)
            put("modis", "fpar", 1 - np.exp(-0.5 * lai_m))
            put_time("modis", dm * DAY_MS)
            if labelled:
                ex[LABEL] = np.float32([s["truth"][d] + rng.normal(0, 0.01)])
            out.append(ex)
    _check_schema(out[0], labelled)
    return out


def _check_schema(ex: dict, labelled: bool) -> None:
    from smfusion.io.fusion_schema import example_fields

    missing = [f for f in example_fields(label=labelled) if f not in ex]
    if missing:  # a programming error in this module, not a data error
        raise AssertionError(f"synthetic example lacks schema fields {missing}")
    assert all(len(ex[f]) == ex["size"][0] ** 2 for src in SOURCES.values() for f in src.fields())


def write_shards(
    out_dir: str | Path, n_sensors: int = 40, n_times: int = 30, size: int = 8, seed: int = 0,
    n_shards: int = 4, labelled: bool = True, prefix: str = "synthetic", overwrite: bool = False,
) -> list[Path]:
    """Write SYNTHETIC gzip shards ``<prefix>-0000i-of-0000n.tfrecord.gz`` into the folder ``out_dir``.

    The folder is written as a whole (temp + rename, see :mod:`smfusion.io.atomic`):
    an existing one is replaced only with ``overwrite`` and only if smfusion wrote
    it. Returns the shard paths.
    """
    examples = make_examples(n_sensors, n_times, size, seed, labelled)
    out_dir = Path(out_dir)
    names = [f"{prefix}-{k:05d}-of-{n_shards:05d}.tfrecord.gz" for k in range(n_shards)]
    with atomic_path(out_dir, overwrite=overwrite) as tmp:
        tmp.mkdir()
        for k, name in enumerate(names):
            write_examples(tmp / name, examples[k::n_shards])
    return [out_dir / name for name in names]
