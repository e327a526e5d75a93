"""SYNTHETIC fusion shards in the published layout of :mod:`smfusion.io.fusion_schema`.

For testing the reader, the pipeline and the ablation logic only; every figure
computed from these shards must say "synthetic". Deterministic from ``seed``.
Every published field is written under its published name, dtype and shape
(images ``size x size`` int64; ``size`` is small here, 512 in the published
shards), ``sensor_id`` as ``SYNTHETIC__S0007__probe``, ``timestamp`` as float32 ms.

Physics (per sensor, daily): a bucket model turns rain into a wetness ``w``;
the 0-5 cm truth is ``sm_min + (sm_max - sm_min) * w`` plus a topographic term
(lower than its surroundings: wetter), ``sm_min``/``sm_max`` from the soil
texture. LAI follows a seasonal cycle scaled by the land-cover class.
Sentinel-1 backscatter rises with moisture and falls with vegetation, plus an
unknown per-sensor offset (its yearly min/mean/max allow change detection);
Sentinel-2 mixes vegetation and soil spectra, soil SWIR darkens with moisture,
clouds brighten every band; SMAP is a coarse noisy version of the truth; GLDAS a
biased 15-day smoothed regional one; ASTER thermal bands cool with moisture.

Encoding (a SYNTHETIC choice: the published physical ranges are not known):
byte-scaled fields store ``round(255 * (x - lo) / (hi - lo))`` clipped to
0..255 with ``(lo, hi)`` from :data:`BYTE_RANGES`; ``smap_sm`` stores
``round(255 * sm)`` (m3/m3) and ``gldas_sm`` ``round(2.55 * kg/m2)``, so both
divided by 255 (the published divisor) are volumetric m3/m3; the DEM is metres.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from smfusion.io.atomic import atomic_path
from smfusion.io.fusion_schema import BYTES, FIELDS, FLOAT, IMAGE, LABEL, PROPERTY_FIELDS, example_fields
from smfusion.io.tfrecord import write_examples

T0_MS = 1546300800000  # 2019-01-01T00:00:00Z
DAY_MS = 86_400_000
PIXEL_M = 10.0  # Sentinel-2 pixel, for the UTM polygon

#: SYNTHETIC physical range behind each byte-scaled field (prefix match, longest first).
BYTE_RANGES = {
    "sentinel_1_VV": (-30.0, 5.0), "sentinel_1_VH": (-40.0, -5.0), "sentinel_1_angle": (25.0, 50.0),
    "sentinel_2_sen_2_mask": (0.0, 1.0), "sentinel_2_B": (0.0, 1.0), "aster_B": (250.0, 330.0),
    "gldas_evaporation": (0.0, 1e-4), "gldas_rainfall": (0.0, 5e-4), "gldas_snow_depth": (0.0, 2.0),
    "gldas_temp": (240.0, 320.0), "soil_grids_bd": (0.5, 2.0), "soil_grids_": (0.0, 100.0),
}
_LC = {40: 4.0, 30: 2.5, 20: 1.5, 111: 5.0, 60: 0.3}  # land-cover code -> peak LAI
_S2_VEG = dict(B2=0.04, B3=0.08, B4=0.04, B5=0.12, B6=0.30, B7=0.40, B8=0.45, B11=0.20, B12=0.10)
_S2_SOIL = dict(B2=0.10, B3=0.14, B4=0.18, B5=0.21, B6=0.23, B7=0.25, B8=0.27, B11=0.35, B12=0.30)
DEFAULT_MISSING = {"sentinel_2": 0.1, "aster": 0.2}  # share of examples without that source's fields


@functools.lru_cache(maxsize=None)
def _byte_range(name: str) -> tuple[float, float]:
    for key in sorted(BYTE_RANGES, key=len, reverse=True):
        if name.replace("_max_", "_").replace("_mean_", "_").replace("_min_", "_").startswith(key):
            return BYTE_RANGES[key]
    raise KeyError(name)


def encode(name: str, x, size: int) -> np.ndarray:
    """Physical value(s) -> the stored array of field ``name`` (dtype and shape of the schema)."""
    fld = FIELDS[name]
    x = np.asarray(x, dtype=np.float64)
    if fld.shape == IMAGE:
        x = np.broadcast_to(x, (size, size)).ravel()
    else:
        x = x.reshape(-1)
    if fld.dtype == FLOAT:
        return x.astype(np.float32)
    if name == "smap_sm":
        x = 255.0 * x
    elif name == "gldas_sm":
        x = 2.55 * x
    elif "byte-scaled" in fld.scaling:
        lo, hi = _byte_range(name)
        x = 255.0 * (x - lo) / (hi - lo)
        x = np.clip(x, 0, 255)
    return np.rint(x).astype(np.int64)


def _sensor_year(rng: np.random.Generator, n_days: int = 365) -> dict:
    """One sensor's static properties and daily series."""
    clay = rng.uniform(5, 45)
    sand = rng.uniform(10, 90 - clay)
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
    tpi = rng.normal(0, 8)  # centre minus patch-mean elevation (m)
    truth = np.clip(sm_min + (sm_max - sm_min) * w - 0.002 * tpi, 0.01, 0.55)
    return dict(clay=clay, sand=sand, silt=100.0 - clay - sand, bdod=rng.uniform(1.1, 1.6), lc=lc, lai=lai,
                temp=temp, rain=rain, evap=k * w * 3.0, truth=truth, elev=rng.uniform(100, 1500), tpi=tpi,
                vv_off=rng.normal(0, 2.0), vh_off=rng.normal(0, 2.0), lat=rng.uniform(30, 48),
                lon=rng.uniform(-120, -75))


def _vv(sm, lai, angle, off):
    return -17.0 + 30.0 * sm - 1.2 * lai - 0.15 * (angle - 37.0) + off


def _vh(sm, lai, angle, off):
    return -24.0 + 22.0 * sm - 0.4 * lai - 0.10 * (angle - 37.0) + off


def _refl(band, sm, lai):
    cover = 1.0 - np.exp(-0.5 * lai)
    return cover * _S2_VEG[band] + (1.0 - cover) * _S2_SOIL[band] * (1.0 - 1.1 * sm)


class _Writer:
    """Fills one example dict with encoded fields."""

    def __init__(self, size: int, ts: float):
        self.size, self.ts, self.ex = size, ts, {}

    def put(self, name: str, x) -> None:
        self.ex[name] = encode(name, x, self.size)

    def put_time(self, prefix: str, diff_ms: float) -> None:
        self.ex[f"{prefix}_time_millis_diff"] = np.float32([diff_ms])
        self.ex[f"{prefix}_timestamp"] = np.float32([self.ts + diff_ms])


def _utm_polygon(lat: float, lon: float, size: int) -> tuple[str, np.ndarray]:
    from pyproj import Transformer

    zone = int((lon + 180) // 6) + 1
    tr = Transformer.from_crs("EPSG:4326", f"EPSG:{32600 + zone}", always_xy=True)
    e, n = tr.transform(lon, lat)
    h = size * PIXEL_M / 2
    ring = [(e - h, n - h), (e + h, n - h), (e + h, n + h), (e - h, n + h), (e - h, n - h)]
    return f"{zone}N", np.asarray(ring, dtype=np.float32).ravel()


def _sentinel_1(w: _Writer, s: dict, d: int, sm_pix, lai_pix, yearly, rng) -> None:
    size = w.size
    angle = 30 + 15 * rng.random()
    xx = np.arange(size)[None, :] - size // 2
    w.put("sentinel_1_VV", _vv(sm_pix, lai_pix, angle, s["vv_off"]) + rng.normal(0, 0.7, (size, size)))
    w.put("sentinel_1_VH", _vh(sm_pix, lai_pix, angle, s["vh_off"]) + rng.normal(0, 0.7, (size, size)))
    w.put("sentinel_1_angle", angle + 0.01 * xx + np.zeros((size, 1)))
    for band, series in yearly.items():
        for stat in ("min", "mean", "max"):
            w.put(f"sentinel_1_{stat}_{band}", getattr(series, stat)())
    w.ex["sentinel_1_orbit_pass"] = [b"ASCENDING" if rng.random() < 0.5 else b"DESCENDING"]
    w.put_time("sentinel_1", int(rng.integers(-6, 7)) * 3_600_000)


def _sentinel_2(w: _Writer, s: dict, d: int, sm_pix, lai_pix, yearly, rng) -> None:
    size = w.size
    dd = int(rng.integers(-5, 6))
    cloud = (rng.random() < 0.2) * (rng.random((size, size)) < 0.7)
    for b in _S2_VEG:
        refl = _refl(b, s["truth"][d + dd] + (sm_pix - s["truth"][d]), lai_pix)
        w.put(f"sentinel_2_{b}", np.where(cloud, 0.6, refl) + rng.normal(0, 0.01, (size, size)))
        for stat in ("min", "mean", "max"):
            w.put(f"sentinel_2_{stat}_{b}", getattr(yearly[b], stat)())
    w.put("sentinel_2_sen_2_mask", cloud.astype(float))
    clouds_year = rng.random(73) < 0.2
    for stat in ("min", "mean", "max"):
        w.put(f"sentinel_2_{stat}_sen_2_mask", getattr(clouds_year, stat)())
    w.put("sentinel_2_cloud_percentage", 100.0 * cloud.mean())
    w.put_time("sentinel_2", dd * DAY_MS)


def _land(w: _Writer, s: dict, d: int, sm_pix, elev, rng) -> None:
    """DEM, SoilGrids, land cover, MODIS, ASTER."""
    size, c = w.size, w.size // 2
    w.put("nasa_dem_elevation", elev)
    w.put_time("nasa_dem", -(d + 400) * DAY_MS)
    for short, prop, val in (("bd", "bdod", s["bdod"]), ("clay", "clay", s["clay"]), ("sand", "sand", s["sand"]),
                             ("silt", "silt", s["silt"])):
        noise = 0.02 if short == "bd" else 1.0
        w.put(f"soil_grids_{short}_{prop}_0-5cm_mean", val + rng.normal(0, noise, (size, size)))
        w.put_time(f"soil_grids_{short}", -(d + 1500) * DAY_MS)
    lc = np.full((size, size), s["lc"], dtype=float)
    lc[rng.random((size, size)) < 0.1] = 30
    lc[c, c] = s["lc"]
    w.put("cgls_lc_discrete_classification", lc)
    w.put("cgls_lc_crops-coverfraction", np.where(lc == 40, 80.0, 5.0))
    w.put("cgls_lc_grass-coverfraction", np.where(lc == 30, 85.0, 10.0))
    w.put("cgls_lc_moss-coverfraction", 0.0)
    w.put_time("cgls_lc", -(d + 200) * DAY_MS)
    dm = -int(rng.integers(0, min(d, 7) + 1))
    lai_m = np.clip(s["lai"][d + dm] + rng.normal(0, 0.3, (size, size)), 0, None)
    w.put("modis_leaf_area_Lai", 10.0 * lai_m)
    w.put("modis_leaf_area_Fpar", 100.0 * (1 - np.exp(-0.5 * lai_m)))
    w.put_time("modis_leaf_area", dm * DAY_MS)
    da = -int(rng.integers(0, min(d, 15) + 1))
    t_surf = s["temp"][d + da] + 8.0 - 25.0 * sm_pix + rng.normal(0, 0.5, (size, size))
    w.put("aster_B13", t_surf)
    w.put("aster_B14", t_surf - 1.0)
    w.put_time("aster", da * DAY_MS)


def _coarse(w: _Writer, s: dict, d: int, smap: float, gldas_kgm2: float, rng) -> None:
    """SMAP and GLDAS scalars."""
    w.put("smap_sm", max(smap, 0.01))
    w.put_time("smap", int(rng.integers(-1, 2)) * DAY_MS + int(rng.integers(-6, 7)) * 3_600_000)
    w.put("gldas_sm", gldas_kgm2)
    w.put("gldas_rainfall", s["rain"][d] / 86400.0)
    w.put("gldas_temp", s["temp"][d])
    w.put("gldas_evaporation", s["evap"][d] / 86400.0)
    w.put("gldas_snow_depth", max(0.0, 273.0 - s["temp"][d]) * 0.01)
    w.put_time("gldas", int(rng.integers(-1, 2)) * 3 * 3_600_000)


def _drop_missing(ex: dict, missing: dict[str, float], rng) -> None:
    for prefix, rate in missing.items():
        if rng.random() < rate:
            for name in [k for k in ex if k.startswith(prefix + "_")]:
                del ex[name]


def make_examples(
    n_sensors: int = 40, n_times: int = 30, size: int = 8, seed: int = 0, labelled: bool = True,
    region_size: int = 5, label_fraction: float = 1.0, missing: dict[str, float] | None = None,
) -> list[dict]:
    """SYNTHETIC examples (dicts of encoded fields) for ``n_sensors`` x ``n_times`` days.

    ``label_fraction`` of the sensors carry ``sm_0_5`` (when ``labelled``), as in
    the published partial dataset; ``missing`` drops a source's fields from that
    share of examples (default :data:`DEFAULT_MISSING`).
    """
    rng = np.random.default_rng(seed)
    missing = DEFAULT_MISSING if missing is None else missing
    n_days = 365
    sensors = [_sensor_year(rng) for _ in range(n_sensors)]
    truths = np.stack([s["truth"] for s in sensors])
    region = np.arange(n_sensors) // region_size
    regional = np.stack([truths[region == r].mean(0) for r in region])
    kernel = np.ones(15) / 15
    smooth = np.stack([np.convolve(np.pad(t, 7, mode="edge"), kernel, mode="valid") for t in 0.5 * (truths + regional)])
    smap_bias = rng.normal(-0.02, 0.04, n_sensors)  # point-to-footprint representativeness
    gldas_bias = rng.normal(0.0, 0.03, n_sensors)
    has_label = rng.random(n_sensors) < label_fraction
    yy, xx = np.mgrid[0:size, 0:size]
    c = size // 2
    overpass, s2_days = np.arange(0, n_days, 6), np.arange(0, n_days, 5)
    out = []
    for i, s in enumerate(sensors):
        angles = 30 + 15 * rng.random(overpass.size)
        s1_year = {"VV": _vv(s["truth"][overpass], s["lai"][overpass], angles, s["vv_off"]),
                   "VH": _vh(s["truth"][overpass], s["lai"][overpass], angles, s["vh_off"]), "angle": angles}
        s2_year = {b: _refl(b, s["truth"][s2_days], s["lai"][s2_days]) for b in _S2_VEG}
        slope = rng.normal(0, 3, 2)
        elev = s["elev"] + slope[0] * (yy - c) + slope[1] * (xx - c) + rng.normal(0, 1, (size, size))
        elev[c, c] = np.delete(elev.ravel(), c * size + c).mean() + s["tpi"]  # centre above its surroundings by tpi
        zone, polygon = _utm_polygon(s["lat"], s["lon"], size)
        for d in np.sort(rng.choice(np.arange(3, n_days - 8), size=n_times, replace=False)).tolist():
            w = _Writer(size, float(np.float32(T0_MS + d * DAY_MS + int(rng.integers(0, 24)) * 3_600_000)))
            mask = np.ones((size, size), dtype=np.int64)
            if rng.random() < 0.1:
                mask[0, :] = 0
            w.ex.update(center_lat=np.float32([s["lat"]]), center_long=np.float32([s["lon"]]),
                        sensor_id=[f"SYNTHETIC__S{i:04d}__probe".encode()], size=np.int64([size]),
                        timestamp=np.float32([w.ts]), utm_easting_northing_image_polygon=polygon,
                        utm_zone=[zone.encode()], mask=mask.ravel())
            sm_pix = s["truth"][d] + 0.015 * rng.standard_normal((size, size))
            sm_pix[c, c] = s["truth"][d]
            lai_pix = np.clip(s["lai"][d] + 0.3 * rng.standard_normal((size, size)), 0, None)
            _sentinel_1(w, s, d, sm_pix, lai_pix, s1_year, rng)
            _sentinel_2(w, s, d, sm_pix, lai_pix, s2_year, rng)
            _land(w, s, d, sm_pix, elev, rng)
            ds = int(rng.integers(-1, 2))
            smap = 0.5 * s["truth"][d + ds] + 0.5 * regional[i, d + ds] + smap_bias[i] + rng.normal(0, 0.04)
            _coarse(w, s, d, smap, 100 * (0.5 * smooth[i, d] + 0.12 + gldas_bias[i]) + rng.normal(0, 0.5), rng)
            _drop_missing(w.ex, missing, rng)
            if labelled and has_label[i]:
                w.ex[LABEL] = np.float32([s["truth"][d] + rng.normal(0, 0.01)])
            out.append(w.ex)
    _check_layout(out[0], size)
    return out


def _check_layout(ex: dict, size: int) -> None:
    """Every published field present (bar dropped sources) at its dtype and shape; a bug here is ours."""
    for name in example_fields(label=False):
        if name not in ex:
            continue
        fld, v = FIELDS[name], ex[name]
        ok = isinstance(v, list) if fld.dtype == BYTES else (
            v.dtype == (np.float32 if fld.dtype == FLOAT else np.int64)
            and (fld.n_values(size) is None or v.size == fld.n_values(size)))
        if not ok:
            raise AssertionError(f"synthetic field {name} does not follow the schema")
    lacking = [n for n in PROPERTY_FIELDS if n not in ex]
    if lacking:
        raise AssertionError(f"synthetic example lacks {lacking}")


DAYS_DRAWN = 365 - 11  # days of the synthetic year an example may fall on (3 .. 356)


def check_sizes(out_dir: Path, n_sensors: int, n_times: int, size: int, n_shards: int) -> None:
    """Refuse, before any example is drawn, sizes the writer cannot serve: more days than the synthetic
    year holds, more shards than examples, examples that do not fit in memory (every example is held:
    8 bytes per value of every field, ``size x size`` per image) or on disk (at least 1 byte per value)."""
    from smfusion.errors import ConfigError
    from smfusion.resources import PROCESS_BYTES, check_memory, fmt_bytes, free_disk_bytes

    if n_times > DAYS_DRAWN:
        raise ConfigError(f"--times {n_times}: a sensor's examples are distinct days of one synthetic year",
                          hint=f"use at most {DAYS_DRAWN}")
    n_examples = n_sensors * n_times
    if n_shards > n_examples:
        raise ConfigError(f"--shards {n_shards}: more shards than the {n_examples} examples", hint="use fewer shards")
    values = sum(FIELDS[f].n_values(size) or 1 for f in example_fields())
    check_memory(PROCESS_BYTES + 8 * values * n_examples,
                 f"--sensors {n_sensors} x --times {n_times} examples of --size {size} ({values:,} values each)",
                 "use fewer sensors or times, or a smaller size")
    free = free_disk_bytes(out_dir)
    if values * n_examples > free:
        raise ConfigError(f"--out {out_dir}: {n_examples} examples of {values:,} values need at least "
                          f"{fmt_bytes(values * n_examples)}, more than the {fmt_bytes(free)} free there",
                          hint="use fewer sensors or times, or a smaller size")


def write_shards(
    out_dir: str | Path, n_sensors: int = 40, n_times: int = 30, size: int = 8, seed: int = 0,
    n_shards: int = 4, labelled: bool = True, prefix: str = "synthetic", label_fraction: float = 1.0,
    missing: dict[str, float] | None = None, overwrite: bool = False,
) -> list[Path]:
    """Write SYNTHETIC gzip shards ``<prefix>-0000i-of-0000n.tfrecord.gz`` (published naming) into ``out_dir``.

    The folder is written as a whole (temp + rename, see :mod:`smfusion.io.atomic`):
    an existing one is replaced only with ``overwrite`` and only if smfusion wrote
    it. Returns the shard paths.
    """
    out_dir = Path(out_dir)
    check_sizes(out_dir, n_sensors, n_times, size, n_shards)
    examples = make_examples(n_sensors, n_times, size, seed, labelled, label_fraction=label_fraction,
                             missing=missing)
    names = [f"{prefix}-{k:05d}-of-{n_shards:05d}.tfrecord.gz" for k in range(n_shards)]
    with atomic_path(out_dir, overwrite=overwrite) as tmp:
        tmp.mkdir()
        for k, name in enumerate(names):
            write_examples(tmp / name, examples[k::n_shards])
    return [out_dir / name for name in names]


def write_shard_series(
    out_dir: str | Path, n_shards: int, sensors_per_shard: int = 10, n_times: int = 10, size: int = 8,
    seed: int = 0, prefix: str = "synthetic", label_fraction: float = 1.0, compress: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """SYNTHETIC shards made one at a time (memory: one shard), shard ``k`` holding its own sensors
    (``SYNTHETIC__K<k>S<i>__probe``, examples of :func:`make_examples` with seed ``seed + k``): for
    benchmarks and memory tests with many shards. Written as a whole folder like :func:`write_shards`."""
    out_dir = Path(out_dir)
    ext = ".tfrecord.gz" if compress else ".tfrecord"
    names = [f"{prefix}-{k:05d}-of-{n_shards:05d}{ext}" for k in range(n_shards)]
    with atomic_path(out_dir, overwrite=overwrite) as tmp:
        tmp.mkdir()
        for k, name in enumerate(names):
            examples = make_examples(sensors_per_shard, n_times, size, seed + k, label_fraction=label_fraction)
            for ex in examples:
                ex["sensor_id"] = [ex["sensor_id"][0].replace(b"__S", f"__K{k:04d}S".encode(), 1)]
            write_examples(tmp / name, examples, compress=compress)
    return [out_dir / name for name in names]
