"""Validation metrics, intervals and tables on synthetic series; the CLI on a station table."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from smfusion.errors import DataError
from smfusion.evaluation.inference import bootstrap_median_ci, pearson_ci, pearson_p
from smfusion.evaluation.validation import ValidationOptions, validate_series, write_validation


def test_pearson_p_and_ci_match_scipy_and_fisher():
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    y = 0.3 * x + rng.normal(size=40)
    r, p = stats.pearsonr(x, y)
    assert pearson_p(r, 40) == pytest.approx(p, rel=1e-9)
    lo, hi = pearson_ci(r, 40, alpha=0.05)
    z = stats.norm.ppf(0.975) / np.sqrt(37)
    assert (lo, hi) == pytest.approx((np.tanh(np.arctanh(r) - z), np.tanh(np.arctanh(r) + z)))
    assert np.isnan(pearson_p(0.5, 2)) and np.isnan(pearson_ci(0.5, 3)[0])
    assert pearson_p(1.0, 10) == 0.0


def test_bootstrap_median_ci_reproducible_by_seed():
    v = np.random.default_rng(3).normal(0.6, 0.1, 50)
    v[::10] = np.nan
    a = bootstrap_median_ci(v, n_boot=500, seed=7)
    b = bootstrap_median_ci(v, n_boot=500, seed=7)
    c = bootstrap_median_ci(v, n_boot=500, seed=8)
    assert a == b and a != c
    assert a["n"] == 45 and a["median"] == pytest.approx(np.nanmedian(v))
    assert a["lower"] <= a["median"] <= a["upper"] and a["upper"] - a["lower"] < 0.1
    one = bootstrap_median_ci([0.5, np.nan])
    assert one["median"] == 0.5 and np.isnan(one["lower"])


def _synthetic(n_st=6, days=400, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2016-01-01", periods=days, freq="D")
    season = 0.25 + 0.08 * np.sin(2 * np.pi * np.arange(days) / 365.25)
    truth = season[None, :] + 0.03 * rng.standard_normal((n_st, days))
    lat = 35.0 + np.arange(n_st) * 0.5
    lon = np.full(n_st, -97.0)
    st = xr.Dataset({"soil_moisture": (("site", "time"), truth)},
                    coords={"site": [f"st{i}" for i in range(n_st)], "time": t, "lat": ("site", lat),
                            "lon": ("site", lon)}, attrs={"sampling": "daily"})
    good = truth + 0.02 + 0.01 * rng.standard_normal(truth.shape)  # biased by +0.02, small noise
    poor = truth + 0.05 * rng.standard_normal(truth.shape)
    poor[:, ::2] = np.nan
    mk = lambda v: xr.Dataset({"sm": (("site", "time"), v)},  # noqa: E731
                              coords={"site": np.arange(n_st), "time": t, "lat": ("site", lat + 0.1),
                                      "lon": ("site", lon)})
    return st, mk(good), mk(poor)


def test_validate_series_table_and_summary(tmp_path):
    st, good, poor = _synthetic()
    opts = ValidationOptions(max_distance_km=30.0, min_samples=30, start="2016-03-01", end="2016-12-31",
                             n_boot=200, seed=1)
    res = validate_series(st, [("good", good), ("poor", poor)], opts)
    t = res.table
    for col in ("station", "lat", "lon", "distance_km", "n", "R", "ubRMSE", "RMSE", "bias", "product"):
        assert col in t.columns
    assert len(t) == 12 and set(t["product"]) == {"good", "poor"}
    g = t[t["product"] == "good"].reset_index(drop=True)
    p = t[t["product"] == "poor"].reset_index(drop=True)
    assert (g["n"] == 306).all() and (p["n"] < 160).all()  # Mar 1 .. Dec 31; poor has every second day
    assert (g["bias"].between(0.017, 0.023)).all() and (g["R"] > p["R"]).all()
    assert (g["R_lower"] < g["R"]).all() and (g["R"] < g["R_upper"]).all() and (g["R_p"] < 1e-6).all()
    assert (g["ubRMSE"] < p["ubRMSE"]).all() and (g["anomaly_R"] > 0.5).all()
    assert np.allclose(g["distance_km"], 11.12, atol=0.05)
    s = res.summary.set_index(["product", "metric"])
    assert s.loc[("good", "R"), "median"] == pytest.approx(g["R"].median())
    assert s.loc[("good", "R"), "n_stations"] == 6
    paths = write_validation(res, tmp_path / "val.csv")
    back = pd.read_csv(paths["table"])
    assert len(back) == 12 and json.loads(paths["json"].read_text())["protocol"]["min_samples"] == 30
    # common dates: the good product is scored on the poor one's days only
    common = validate_series(st, [("good", good), ("poor", poor)],
                             ValidationOptions(max_distance_km=30.0, min_samples=30, common_dates=True, n_boot=50))
    c = common.table
    assert (c.loc[c["product"] == "good", "n"].to_numpy() == c.loc[c["product"] == "poor", "n"].to_numpy()).all()


def test_min_samples_and_far_stations_keep_their_rows():
    st, good, _ = _synthetic(n_st=3, days=40)
    res = validate_series(st, [("good", good)], ValidationOptions(max_distance_km=30.0, min_samples=50, n_boot=20))
    assert (res.table["status"] == "n < 50").all() and res.table["R"].isna().all() and (res.table["n"] == 40).all()
    moved = good.assign_coords(lat=("site", good["lat"].values + np.r_[5.0, 0.0, 0.0]))  # station 0's point 5 deg off
    far = validate_series(st, [("good", moved)], ValidationOptions(max_distance_km=30.0, min_samples=5, n_boot=20))
    assert far.table["status"].tolist() == ["no product point within max distance", "ok", "ok"]
    assert far.table["n"].tolist() == [0, 40, 40]
    with pytest.raises(DataError, match="no station within 5 km of a point of the product"):  # issue 24: no overlap
        validate_series(st, [("good", good)], ValidationOptions(max_distance_km=5.0, n_boot=20))


def test_cli_validate_station_table(tmp_path, capsys):
    from smfusion.cli.main import main
    from smfusion.io import cf

    st, good, _ = _synthetic(n_st=3, days=120)
    rows = []
    for i, s in enumerate(st.site.values):
        series = st.soil_moisture.sel(site=s).to_series().rename("vwc").rename_axis("timestamp")
        series.to_csv(tmp_path / f"{s}.csv")
        rows.append({"station": s, "file": f"{s}.csv", "lat": float(st.lat[i]), "lon": float(st.lon[i]),
                     "network": "SYN", "depth_m": 0.05})
    pd.DataFrame(rows).to_csv(tmp_path / "stations.csv", index=False)
    good["sm"].attrs["units"] = "m3 m-3"
    pred = cf.write_netcdf(good, tmp_path / "pred.nc")
    out = tmp_path / "v" / "table.csv"
    assert main(["validate", str(pred), "--stations", str(tmp_path / "stations.csv"), "--reference",
                 f"again={pred}", "--max-distance", "30", "--depth", "0-0.05", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "median over stations" in text and "bias = mean(product - station)" in text
    table = pd.read_csv(out)
    assert set(table["product"]) == {"pred.nc", "again"} and (table["n"] == 120).all()
    assert main(["validate", str(pred), "--stations", str(tmp_path / "stations.csv"), "--depth", "0-0.01",
                 "--out", str(out), "--overwrite"]) == 2  # the tables exist: replacing them needs --overwrite
    assert "no station left" in capsys.readouterr().err
