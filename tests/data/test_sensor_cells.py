"""Reader sensor_cells on the REAL Hawaii cell files (../shared/data/hawaii_multisensor; skipped without them):
the three layouts against pynetcf, each product's filters, AM/PM apart, collocation distances, smfusion check."""

import numpy as np
import pandas as pd
import pytest

from smfusion.config import DataConfig
from smfusion.data import sensor_cells as sc_mod
from smfusion.data.collocation import haversine_km
from smfusion.data.sensors import bits_clear, get_sensor
from smfusion.io.ts_cells import cell_layout, open_cell, read_cell_series

SMAP = "SMAP_L3/SMAP_V9_AM_PM/netcdf"
SMOS = "SMOS_L3/SMOSL3_v339_ASC"
ASCAT = "ASCAT/ASCAT_H119/data"
CCI = "ESA_CCI_SM_passive/ESA_CCI_SM_P_V09_2"
SMOSIC = "SMOS_IC/SMOS_105_ASC"


@pytest.fixture(scope="module")
def hawaii():
    from smfusion.settings import data_dir

    root = data_dir()
    if root is None or not (root / "hawaii_multisensor").is_dir():
        pytest.skip("no real data hawaii_multisensor: set SMFUSION_DATA_DIR or place ../shared/data")
    return root / "hawaii_multisensor"


def section(sensor, path, **kw):
    from pydantic import TypeAdapter

    from smfusion.config.sensors import SensorSection

    return TypeAdapter(SensorSection).validate_python({"sensor": sensor, "path": str(path), **kw})


@pytest.mark.parametrize("folder,kind,gpi,var", [(SMAP, "indexed", 261309, "soil_moisture"),
                                                 (ASCAT, "contiguous", 1102286, "sm"),
                                                 (SMOS, "orthogonal", 541414, "Soil_Moisture")])
def test_layouts_match_pynetcf(hawaii, folder, kind, gpi, var):
    from pynetcf.time_series import ContiguousRaggedTs, IndexedRaggedTs, OrthoMultiTs

    path = hawaii / folder / "0165.nc"
    with open_cell(path) as ds:
        assert cell_layout(ds) == kind
    ours = read_cell_series(path, [gpi], [var])[gpi]
    cls = {"indexed": IndexedRaggedTs, "contiguous": ContiguousRaggedTs, "orthogonal": OrthoMultiTs}[kind]
    with cls(str(path), mode="r") as f:
        ref = f.read_all(gpi)
    times = pd.DatetimeIndex([pd.Timestamp(x.isoformat()) for x in np.asarray(ref["time"])])
    ref = pd.Series(np.ma.filled(np.ma.asarray(ref[var], dtype=float), np.nan), index=times).sort_index()
    if kind == "orthogonal":  # ours drops the steps where every requested variable is missing
        ref = ref.dropna()
        ours = ours.dropna()
    assert len(ours) == len(ref) > 100
    assert np.abs((ours.index - ref.index).total_seconds()).max() < 1e-3
    np.testing.assert_allclose(ours[var].values, ref.values, rtol=1e-6, equal_nan=True)


def test_smap_am_pm_apart_and_quality(hawaii):
    sensor = get_sensor("smap_l3")
    raw = read_cell_series(hawaii / SMAP / "0165.nc", [261309], sensor.variables)[261309]
    lon = -155.53941
    am = sc_mod.daily_series(raw, sensor, section("smap_l3", SMAP, overpass="am", quality="success"), lon)
    pm = sc_mod.daily_series(raw, sensor, section("smap_l3", SMAP, overpass="pm", quality="success"), lon)
    am_obs = raw[(raw.Overpass == 1) & raw.soil_moisture.notna()]
    pm_obs = raw[(raw.Overpass == 2) & raw.soil_moisture.notna()]
    assert len(am) == am_obs.index.floor("D").nunique() > 300 and len(pm) > 300
    # AM (6 am local) keeps its UTC date; PM (6 pm local, ~04 UTC next day) is dated the local day before
    assert set(am.index) == set(am_obs.index.floor("D"))
    assert set(pm.index) == set((pm_obs.index - pd.Timedelta(hours=10.34)).floor("D"))
    # the AM values are the AM retrievals only (no PM value averaged in)
    np.testing.assert_allclose(np.sort(am.sm.values), np.sort(am_obs.groupby(am_obs.index.floor("D")).soil_moisture
                                                              .mean().values), rtol=1e-6)
    # every retrieval at this point is "not recommended" (flag 9: island pixel): recommended keeps none
    assert (raw.retrieval_qual_flag.dropna() == 9).all()
    rec = sc_mod.daily_series(raw, sensor, section("smap_l3", SMAP, overpass="am"), lon)
    assert rec.empty


def test_smos_flags_applied(hawaii):
    sensor = get_sensor("smos_l3")
    raw = read_cell_series(hawaii / SMOS / "0165.nc", [541414], sensor.variables)[541414]
    sec = section("smos_l3", SMOS, max_rfi_prob=0.02)
    keep = sensor.good(raw, sec)
    kept = raw[keep]
    assert 0 < keep.sum() < raw.Soil_Moisture.notna().sum()
    assert bits_clear(kept.Science_Flags.values, sec.science_flag_bits).all()
    assert (kept.Rfi_Prob <= 0.02).all() and (kept.Chi_2 <= 3.0).all()
    # the flagged steps exist in the file: a filter that changes nothing would not be tested
    assert (raw.Rfi_Prob > 0.02).sum() > 0


def test_smos_ic_ascat_cci_filters(hawaii):
    ic = get_sensor("smos_ic")
    raw = read_cell_series(hawaii / SMOSIC / "0165.nc", [541414], ic.variables)[541414]
    kept = raw[ic.good(raw, section("smos_ic", SMOSIC))]
    assert len(kept) > 100 and (kept.Quality_Flag == 0).all() and (raw.Quality_Flag == 1).any()
    asc = get_sensor("ascat")
    raw = read_cell_series(hawaii / ASCAT / "0165.nc", [1102286], asc.variables)[1102286]
    sec = section("ascat", ASCAT)
    kept = raw[asc.good(raw, sec)]
    assert (kept.conf_flag == 0).all() and (kept.sm_noise <= sec.max_noise).all() and len(kept) < len(raw)
    day = sc_mod.daily_series(raw, asc, sec, -155.54)
    assert day.sm.between(0, 1).all() and day.sm.max() > 0.3  # % saturation -> fraction
    cci = get_sensor("esa_cci")
    raw = read_cell_series(hawaii / CCI / "0165.nc", [630818], cci.variables)[630818]
    day = sc_mod.daily_series(raw, cci, section("esa_cci", CCI), -155.375)
    assert day.index.min() == pd.Timestamp("2002-06-19") and day.sm.between(0, 1).all()
    assert not day.index.isin(raw.index[raw.flag != 0]).any()


def config(hawaii, **products):
    return DataConfig.model_validate({"reader": "sensor_cells", "target": ["sm_smap_am"], "sensor_cells": {
        "points": "smap_am", "max_distance_km": 30, "products": {
            "smap_am": {"sensor": "smap_l3", "overpass": "am", "quality": "success", "path": str(hawaii / SMAP)},
            **products}}})


def test_collocation_distances(hawaii):
    cfg = config(hawaii, cci={"sensor": "esa_cci", "path": str(hawaii / CCI)},
                 ascat={"sensor": "ascat", "path": str(hawaii / ASCAT), "max_distance_km": 12})
    ds = sc_mod.read_sensor_cells(cfg, "2015-04-01", "2016-03-31")
    assert ds.sizes["site"] == 13 and ds.sizes["time"] == 366
    for name, limit in (("cci", 30), ("ascat", 12)):
        d = ds[f"{name}_distance_km"].values
        g = ds[f"{name}_gpi"].values
        assert np.all((g == -1) == np.isnan(d)) and np.nanmax(d) <= limit and (g >= 0).any()
        has = np.isfinite(ds[f"sm_{name}"].values).any(axis=1)
        assert np.all(~has | (g >= 0)) and has.any()  # values only where a point was found
    # CCI: the nearest point holding data, checked by brute force over every stored point with data
    pts = sc_mod.product_points(hawaii / CCI)
    series = read_cell_series(hawaii / CCI / "0165.nc", pts[pts.file == "0165.nc"].gpi.values, ["sm", "flag"])
    valid = pts[pts.gpi.map(lambda g: g in series and ((series[g].flag == 0) & series[g].sm.notna()).sum() >= 100)]
    for i in np.nonzero(ds.cci_gpi.values >= 0)[0]:
        dist = haversine_km(float(ds.lat[i]), float(ds.lon[i]), valid.lat.values, valid.lon.values)
        assert ds.cci_gpi.values[i] == valid.gpi.values[np.argmin(dist)]
        assert abs(ds.cci_distance_km.values[i] - dist.min()) < 1e-6


def test_ease2_sites_and_check(hawaii, tmp_path):
    cfg = DataConfig.model_validate({"reader": "sensor_cells", "target": ["sm_smos"], "sensor_cells": {
        "grid": "M36", "bbox": [-156.2, 18.9, -154.8, 20.3], "max_distance_km": 20,
        "products": {"smos": {"sensor": "smos_l3", "path": str(hawaii / SMOS)},
                     "ic": {"sensor": "smos_ic", "path": str(hawaii / SMOSIC)}}}})
    ds = sc_mod.read_sensor_cells(cfg, "2012-01-01", "2012-03-31")
    assert ds.attrs["ease2_grid"] == "M36" and "row" in ds.coords and ds.sizes["site"] >= 4
    assert np.nanmax(ds.smos_distance_km.values) <= 20

    from smfusion.config import parse_config
    from smfusion.data.checks import check_config

    raw = {"data": {**cfg.model_dump(), "dynamic": ["sm_ic"]}, "periods": {"train": ["2012-01-01", "2012-12-31"]},
           "split": {"kind": "temporal"}}
    assert [p for p in check_config(parse_config(raw)) if p.severity == "error"] == []
    raw["data"]["sensor_cells"]["products"]["smos"]["path"] = str(tmp_path)
    problems = check_config(parse_config(raw))
    assert any("no NNNN.nc cell files" in str(p) for p in problems)


def test_near_cells():
    # Silver Sword (19.77 N, 155.42 W) lies in cell 165; 30 km reach cell 166 (20-25 N) only from near 20 N
    assert sc_mod.near_cells([19.77], [-155.42], 30.0) == {165, 166}
    assert sc_mod.near_cells([17.5], [-157.5], 30.0) == {165}
    assert sc_mod.near_cells([0.0], [179.9], 50.0) == {17, 18, 2573, 2574}  # across the equator and the dateline


def test_section_required():
    from smfusion.config import parse_config
    from smfusion.errors import ConfigError

    with pytest.raises(ConfigError, match="sensor_cells"):
        parse_config({"data": {"reader": "sensor_cells", "dynamic": ["sm_smos"], "target": ["sm_smap_am"]},
                      "periods": {"train": ["2015-04-01", "2019-12-31"]}, "split": {"kind": "temporal"}})
