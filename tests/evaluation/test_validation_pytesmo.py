"""Cross-check against independent implementations (TU Wien's ismn, pynetcf, pygeogrids, pytesmo).

On the Hawaii set (9 SCAN sensors, SMAP L3 AM cell files, 2017-2018), smfusion's
validation must give the same matched pairs and metrics as: stations read with
``ismn.ISMN_Interface`` (flag G), the SMAP series read with pynetcf at the grid
point pygeogrids finds nearest, matched in time with
``pytesmo.temporal_matching.temporal_collocation`` (nearest within 1 h of the
overpass time) and scored with ``pytesmo.metrics``.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

pytesmo = pytest.importorskip("pytesmo")
pytest.importorskip("pynetcf")
pytest.importorskip("pygeogrids")

pytestmark = pytest.mark.realdata

START, END = "2017-01-01", "2018-12-31"
# smfusion's ISMN reader keeps values as float32 (the files' 4 decimals fit exactly enough): relative
# differences ~1e-7 in the inputs give differences ~1e-8 in the metrics
TOL = 1e-6
J2000 = pd.Timestamp("2000-01-01 11:58:55.816")  # SMAP tb_time_seconds epoch (UTC)


@pytest.fixture(scope="module")
def hawaii(tmp_path_factory):
    from smfusion.settings import data_dir

    root = data_dir()
    if root is None or not (root / "insitu_hawaii_scan").is_dir():
        pytest.skip("no insitu_hawaii_scan data: set SMFUSION_DATA_DIR or place ../shared/data")
    return root / "insitu_hawaii_scan", tmp_path_factory.mktemp("ismn_meta")


def _independent(base, meta):
    """Per sensor: pairs (DataFrame with station, smap columns) and the gpi, by the TU Wien tools only."""
    from ismn.interface import ISMN_Interface
    from pygeogrids.netcdf import load_grid
    from pynetcf.time_series import GriddedNcOrthoMultiTs
    from pytesmo.temporal_matching import temporal_collocation

    folder = base / "gridded_timeseries" / "SMAP_L3" / "SMAP_V8_AM"
    grid = load_grid(str(folder / "grid.nc"))
    smap = GriddedNcOrthoMultiTs(str(folder), grid=grid, ioclass_kws={"read_bulk": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iface = ISMN_Interface(str(base / "ISMN_TESTDATA_HAWAII"), meta_path=str(meta))
        out = {}
        for _, station, sensor in iface.collection.iter_sensors(variable="soil_moisture", depth=[0.0, 0.1]):
            df = sensor.read_data()
            insitu = df.loc[df["soil_moisture_flag"] == "G", "soil_moisture"].dropna()
            gpi, dist = grid.find_nearest_gpi(station.lon, station.lat, max_dist=50_000)
            ts = smap.read(int(gpi))
            sm = ts["soil_moisture"].where((ts["soil_moisture"] >= 0.02) & (ts["soil_moisture"] <= 0.5))
            ok = sm.notna() & ts["tb_time_seconds"].notna()
            ref = pd.Series(sm[ok].to_numpy(dtype=float),
                            index=J2000 + pd.to_timedelta(ts["tb_time_seconds"][ok].to_numpy(), unit="s"))
            ref = ref[(ref.index >= START) & (ref.index < pd.Timestamp(END) + pd.Timedelta(days=1))]
            matched = temporal_collocation(ref, insitu, pd.Timedelta("1h"), method="nearest")
            pairs = pd.DataFrame({"smap": ref, "station": matched}).dropna()
            key = f"{station.name}:{sensor.instrument}"
            out[key] = (pairs, int(gpi), float(dist) / 1000.0)
    return out


def test_pairs_and_metrics_match_pytesmo(hawaii):
    from pytesmo.metrics import pairwise

    from smfusion.evaluation.validation import ValidationOptions, validate

    base, meta = hawaii
    opts = ValidationOptions(start=START, end=END, max_distance_km=50.0, matching="nearest", window="1h",
                             min_samples=3)
    res = validate(base / "gridded_timeseries" / "SMAP_L3" / "SMAP_V8_AM", base / "ISMN_TESTDATA_HAWAII",
                   opts=opts)
    pairs = res.pairs["SMAP_V8_AM"]
    table = res.table.set_index("station")
    ref = _independent(base, meta)
    assert len(ref) == len(table) == 9
    checked = 0
    for i, sid in enumerate(table.index):
        network, name, sensor = sid.split(":")[:3]
        want, gpi, dist_km = ref[f"{name}:{sensor}"]
        row = table.loc[sid]
        assert row["cell_id"] == f"gpi {gpi}"
        # pygeogrids measures a chord on the WGS 84 ellipsoid, smfusion the great circle on a sphere
        assert row["distance_km"] == pytest.approx(dist_km, rel=5e-3)
        ok = pairs.valid()[i]
        got = pd.DataFrame({"smap": pairs.sim[i][ok], "station": pairs.obs[i][ok]},
                           index=pd.DatetimeIndex(pairs.when[i][ok])).sort_index()
        assert len(got) == len(want) == row["n"], sid
        np.testing.assert_allclose(got.index.asi8, want.index.asi8, atol=1000)  # same overpasses (to 1 us)
        np.testing.assert_allclose(got["station"].to_numpy(), want["station"].to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(got["smap"].to_numpy(), want["smap"].to_numpy(), rtol=1e-6)
        if len(want) < 3:
            assert np.isnan(row["R"])
            continue
        x, y = want["smap"].to_numpy(dtype=float), want["station"].to_numpy(dtype=float)
        r = pairwise.pearson_r(x, y)
        assert row["R"] == pytest.approx(r, abs=TOL)
        assert row["R_p"] == pytest.approx(__import__("scipy").stats.pearsonr(x, y)[1], rel=1e-4, abs=1e-12)
        lo, hi = pairwise.pearson_r_ci(x, y, r)
        assert (row["R_lower"], row["R_upper"]) == pytest.approx((lo, hi), abs=TOL)
        assert row["RMSE"] == pytest.approx(pairwise.rmsd(x, y), abs=TOL)
        assert row["ubRMSE"] == pytest.approx(pairwise.ubrmsd(x, y), abs=TOL)
        assert row["bias"] == pytest.approx(pairwise.bias(x, y), abs=TOL)  # pytesmo: mean(x) - mean(y)
        checked += 1
    assert checked >= 7
