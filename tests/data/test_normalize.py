import numpy as np
import pytest
import xarray as xr

from smfusion.data.normalize import MIN_SITE_COUNT, Scaler
from smfusion.errors import DataError


def _ds():
    t = np.arange(20)
    y = np.vstack([np.linspace(0.1, 0.3, 20), np.full(20, np.nan), np.linspace(0.2, 0.4, 20)])
    y[1, :5] = [0.1, 0.2, 0.3, 0.2, 0.1]  # too few values for site stats
    p = np.abs(np.sin(t))[None, :].repeat(3, 0) * 4
    return xr.Dataset(
        {"sm": (("site", "time"), y), "p": (("site", "time"), p), "sand": (("site",), [10.0, 20.0, 60.0])},
        coords={"site": [7, 8, 9], "time": t},
    )


def test_global_zscore_and_log1p_by_hand():
    ds = _ds()
    sc = Scaler.fit(ds, ["sm", "p", "sand"], log1p=["p"])
    assert sc.mean["sand"] == pytest.approx(30.0)
    assert sc.std["sand"] == pytest.approx(np.std([10, 20, 60]))
    lp = np.log1p(ds.p.values)
    assert sc.mean["p"] == pytest.approx(lp.mean())
    z = sc.transform("p", ds.p.values)
    np.testing.assert_allclose(z, (lp - lp.mean()) / lp.std(), rtol=1e-5)
    np.testing.assert_allclose(sc.inverse("p", z), ds.p.values, rtol=1e-4, atol=1e-5)


def test_per_site_target_scaling(tmp_path):
    ds = _ds()
    sc = Scaler.fit(ds, ["sm"], per_site=["sm"])
    st = sc.site_stats["sm"]
    assert st["site"] == [7, 8, 9]
    assert st["mean"][0] == pytest.approx(0.2) and st["mean"][2] == pytest.approx(0.3)
    assert st["std"][0] == pytest.approx(np.std(np.linspace(0.1, 0.3, 20)))
    assert 5 < MIN_SITE_COUNT  # site 8 has 5 values: global statistics
    allv = ds.sm.values[np.isfinite(ds.sm.values)]
    assert st["mean"][1] == pytest.approx(allv.mean()) and st["std"][1] == pytest.approx(allv.std())
    z = sc.transform("sm", ds.sm.values, sites=[7, 8, 9])
    assert np.nanmean(z[0]) == pytest.approx(0.0, abs=1e-6) and np.nanstd(z[0]) == pytest.approx(1.0, rel=1e-5)
    back = sc.inverse("sm", z, sites=[7, 8, 9])
    np.testing.assert_allclose(back, ds.sm.values, rtol=1e-5)
    # a subset of sites in another order picks the right rows
    np.testing.assert_allclose(sc.inverse("sm", z[[2, 0]], sites=[9, 7]), ds.sm.values[[2, 0]], rtol=1e-5)
    sc.save(tmp_path / "s.yaml")
    again = Scaler.load(tmp_path / "s.yaml")
    np.testing.assert_allclose(again.transform("sm", ds.sm.values, sites=[7, 8, 9]), z, rtol=1e-6)
    with pytest.raises(DataError, match=r"no training statistics for sites \[99\]"):
        sc.transform("sm", ds.sm.values[:1], sites=[99])
    with pytest.raises(DataError, match="sites must be given"):
        sc.transform("sm", ds.sm.values)


def test_all_missing_variable_is_an_error():
    ds = _ds()
    ds["sm"][:] = np.nan
    with pytest.raises(DataError, match="field 'sm'"):
        Scaler.fit(ds, ["sm"])
