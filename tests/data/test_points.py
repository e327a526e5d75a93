"""Point tables: CONUS cell-day points by hand (real data), scaler on constant channels."""

from __future__ import annotations

import numpy as np

from smfusion.config import DataConfig
from smfusion.data.loading import load_dataset
from smfusion.data.points import CONUS_SOURCES, PointSet, conus_points, fit_scaler, model_inputs


def test_conus_points_by_hand(conus_root):
    pts = conus_points(conus_root, "2015-04-01", "2015-09-30", ["smap", "gldas"], max_lag_days=3)
    ds = load_dataset(DataConfig(root=str(conus_root), dynamic=["APCP_FORA"], target=["SMAP_AM"]),
                      "2015-04-01", "2015-09-30")
    site = int(ds.site.values[5])
    sm = ds["SMAP_AM"].sel(site=site).values
    days = ds.time.values
    mine = pts.sensor == site
    expected = []
    for t in range(60, sm.size):
        prev = [k for k in range(max(0, t - 3), t) if np.isfinite(sm[k])]
        if np.isfinite(sm[t]) and prev:
            expected.append((days[t], sm[t], sm[prev[-1]], prev[-1] - t))
    assert mine.sum() == len(expected) > 10
    got_t = pts.timestamp[mine].astype("datetime64[ms]")
    assert np.array_equal(got_t, np.array([e[0] for e in expected]).astype("datetime64[ms]"))
    assert np.allclose(pts.y[mine], [e[1] for e in expected])
    assert np.allclose(pts.x["smap"][mine, 0], [e[2] for e in expected])
    assert np.allclose(pts.dt["smap"][mine, 0], [e[3] for e in expected])
    assert pts.x["gldas"].shape[1] == len(CONUS_SOURCES["gldas"].bands)


def test_scaler_constant_channel_not_blown_up():
    n = 10
    src = CONUS_SOURCES["modis"]
    p = PointSet(x={"modis": np.full((n, 1), 0.3, np.float32) + np.float32(1e-8) * np.arange(n)[:, None]},
                 dt={}, y=np.linspace(0.1, 0.3, n).astype(np.float32), sensor=np.arange(n), timestamp=np.arange(n),
                 lat=np.zeros(n), lon=np.zeros(n), smap=np.zeros(n), model_sm=np.zeros(n), sources=[src])
    sc = fit_scaler(p)
    assert sc.std["modis_NDVI"] == 1.0
    p.x["modis"][:] = 0.5
    assert np.allclose(model_inputs(p, sc)["modis"], 0.2, atol=1e-6)
    assert np.isclose(model_inputs(p, sc)["y"].std(), 1.0, atol=1e-5)
