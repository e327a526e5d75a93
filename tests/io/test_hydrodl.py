import shutil

import numpy as np
import pandas as pd
import pytest

from smfusion.errors import DataError
from smfusion.io.hydrodl import FORCINGS, STATICS, read_hydrodl, read_reference, read_statistics, year_folders
from smfusion.io.registry import build_registry, load_registry, url_for, verify

pytestmark = pytest.mark.realdata


def test_shapes_dates_and_missing_values(conus_root):
    ds = read_hydrodl(conus_root, start="2015-04-01", end="2017-03-31")
    assert ds.sizes == {"site": 412, "time": 731}
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2015-04-01")
    assert pd.Timestamp(ds.time.values[-1]) == pd.Timestamp("2017-03-31")
    # 2016 is a leap year: Feb 29 2016 sits in the 2015 folder
    assert np.datetime64("2016-02-29") in ds.time.values
    raw = pd.read_csv(conus_root / "CONUSv4f1/2015/SMAP_AM.csv", header=None).to_numpy()
    assert (raw == -9999).any()
    np.testing.assert_array_equal(np.isnan(ds.SMAP_AM.values[:, :366]), raw == -9999)
    assert np.nanmin(ds.SMAP_AM.values) > 0  # no -9999 left
    assert set(FORCINGS + STATICS) <= set(ds.data_vars)
    assert ds.SMAP_AM.attrs["units"] == "m3 m-3"
    assert ds.lat.shape == (412,) and 24 < float(ds.lat.min()) and float(ds.lat.max()) < 50


def test_april_year_boundary(conus_root):
    ds = read_hydrodl(conus_root, start="2016-03-30", end="2016-04-02")
    assert list(pd.DatetimeIndex(ds.time.values).strftime("%m-%d")) == ["03-30", "03-31", "04-01", "04-02"]
    a = pd.read_csv(conus_root / "CONUSv4f1/2015/TMP_2_FORA.csv", header=None).to_numpy()
    b = pd.read_csv(conus_root / "CONUSv4f1/2016/TMP_2_FORA.csv", header=None).to_numpy()
    np.testing.assert_allclose(ds.TMP_2_FORA.values[:, 1], a[:, -1], rtol=1e-6)
    np.testing.assert_allclose(ds.TMP_2_FORA.values[:, 2], b[:, 0], rtol=1e-6)


def test_target_absent_in_later_years_is_nan(conus_root):
    ds = read_hydrodl(conus_root, start="2016-04-01", end="2018-03-31")
    assert np.isnan(ds.SMAP_AM.sel(time=slice("2017-04-01", None)).values).all()
    assert np.isfinite(ds.SMAP_AM.sel(time=slice(None, "2017-03-31")).values).any()
    with pytest.raises(DataError, match="SMAP_AM"):
        read_hydrodl(conus_root, start="2017-04-01", end="2018-03-31")


def test_missing_variable_names_file(conus_root):
    with pytest.raises(DataError, match=r"NOPE\.csv.*field 'NOPE'"):
        read_hydrodl(conus_root, dynamic=["NOPE"], start="2015-04-01", end="2015-05-01")


def test_malformed_csv_names_file(conus_root, tmp_path):
    root = tmp_path / "db"
    shutil.copytree(conus_root / "CONUSv4f1" / "const", root / "CONUSv4f1" / "const")
    shutil.copy(conus_root / "CONUSv4f1" / "crd.csv", root / "CONUSv4f1" / "crd.csv")
    (root / "CONUSv4f1" / "2015").mkdir()
    shutil.copy(conus_root / "CONUSv4f1/2015/timeStr.csv", root / "CONUSv4f1/2015/timeStr.csv")
    (root / "CONUSv4f1/2015/APCP_FORA.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(DataError, match="APCP_FORA"):
        read_hydrodl(root, dynamic=["APCP_FORA"], static=[], target=[])


def test_sites_subset_and_years(conus_root):
    assert list(year_folders(conus_root)) == [2015, 2016, 2017]
    ds = read_hydrodl(conus_root, start="2015-04-01", end="2015-04-10", sites=[0, 5, 411])
    assert list(ds.site.values) == [0, 5, 411]
    with pytest.raises(DataError, match="site index"):
        read_hydrodl(conus_root, start="2015-04-01", end="2015-04-10", sites=[412])


def test_reference_denormalised(conus_root):
    stat = read_statistics(conus_root, "SMAP_AM")
    assert set(stat) == {"p10", "p90", "mean", "std"}
    ref = read_reference(conus_root, "hydrodl_lstm")
    raw = pd.read_csv(conus_root / "reference/hydrodl_lstm_ep100_test_2016_normalized.csv", header=None).to_numpy()
    np.testing.assert_allclose(ref.values, raw * stat["std"] + stat["mean"], rtol=1e-5)
    assert ref.sizes == {"site": 412, "time": 365}
    assert 0.05 < float(ref.mean()) < 0.45


def test_registry_matches_shared_files(conus_root):
    reg = load_registry()
    assert len(reg) >= 70 and all(len(v) == 64 for v in reg.values())
    assert verify(conus_root) == []
    assert build_registry(conus_root).splitlines()[1:] == [f"{k} {v}" for k, v in sorted(reg.items())]
    assert url_for("CONUSv4f1/crd.csv").endswith("b8a149c47797d032dd924940b3370d140b05aec3/example/data/CONUSv4f1/crd.csv")
    assert "/example/output/" in url_for("reference/hydrodl_lstm_ep100_test_2016_normalized.csv")
