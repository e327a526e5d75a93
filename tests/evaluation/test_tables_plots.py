"""Site tables, summaries with their protocol, and PNG figures."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from smfusion.evaluation.plots import plot_scatter, plot_site_map, plot_timeseries
from smfusion.evaluation.tables import format_protocol, format_summary, site_table, summary

PNG = b"\x89PNG\r\n\x1a\n"
PROTOCOL = {"target": "SMAP_AM", "period": ("2016-04-01", "2017-03-31"), "split": "temporal", "n_sites": 3,
            "note": "days where SMAP exists"}


def test_site_table_by_hand():
    obs = np.array([[1.0, 2.0, 3.0, 4.0], [np.nan] * 4])
    sim = np.array([[2.0, 2.0, 5.0, 3.0], [1.0, 2.0, 3.0, 4.0]])
    t = site_table(obs, sim, ["s1", "s2"], [40.0, 41.0], [-100.0, -99.0])
    assert list(t.index) == ["s1", "s2"] and t.index.name == "site"
    assert {"lat", "lon", "n", "bias", "rmse", "ubrmse", "pearson_r", "nse", "kge"} <= set(t.columns)
    assert t.loc["s1", "bias"] == pytest.approx(0.5)
    assert t.loc["s1", "rmse"] == pytest.approx(math.sqrt(1.5))
    assert t.loc["s1", "n"] == 4 and t.loc["s2", "n"] == 0
    assert np.isnan(t.loc["s2", "rmse"])
    assert t.loc["s2", "lat"] == 41.0
    with pytest.raises(ValueError):
        site_table(obs, sim, ["s1"], [40.0], [-100.0])


def test_summary_medians_and_site_count():
    a = pd.DataFrame({"lat": [0, 0, 0, 0], "lon": [0, 0, 0, 0], "n": [5, 5, 5, 0],
                      "rmse": [1.0, 2.0, 10.0, np.nan], "pearson_r": [0.1, 0.5, 0.9, np.nan]})
    b = pd.DataFrame({"lat": [0, 0], "lon": [0, 0], "n": [5, 5], "rmse": [3.0, 5.0], "pearson_r": [0.2, np.nan]})
    s = summary({"lstm": a, "climatology": b})
    assert list(s.index) == ["lstm", "climatology"]
    assert s.loc["lstm", "rmse"] == pytest.approx(2.0)  # NaN site skipped
    assert s.loc["lstm", "pearson_r"] == pytest.approx(0.5)
    assert s.loc["climatology", "rmse"] == pytest.approx(4.0)
    assert s.loc["climatology", "pearson_r"] == pytest.approx(0.2)
    assert s.loc["lstm", "n_sites"] == 3 and s.loc["climatology", "n_sites"] == 2
    assert "lat" not in s.columns and "n" not in s.columns


def test_protocol_is_printed_above_the_table():
    text = format_protocol(PROTOCOL)
    assert text.splitlines()[:4] == ["Target: SMAP_AM", "Period: 2016-04-01 .. 2017-03-31",
                                     "Split: temporal", "Sites: 3"]
    assert "note: days where SMAP exists" in text
    s = summary({"lstm": pd.DataFrame({"rmse": [0.03312, 0.04]})})
    out = format_summary(s, PROTOCOL)
    assert out.startswith(text)
    assert out.index("Sites: 3") < out.index("lstm")
    assert "0.0366" in out  # median of the two, 4 decimals
    with pytest.raises(KeyError):
        format_protocol({"target": "SMAP_AM", "period": "x", "split": "y"})


def _assert_png(path, directory):
    assert path.read_bytes()[:8] == PNG
    assert [p.name for p in directory.iterdir()] == [path.name]  # no temp file left


def test_plots_write_png_atomically(tmp_path):
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(30, 45, 20), rng.uniform(-120, -80, 20)
    vals = rng.uniform(size=20)
    vals[3] = np.nan
    d1, d2, d3 = (tmp_path / n for n in ("map", "ts", "sc"))
    p = plot_site_map(lat, lon, vals, "RMSE", d1 / "map.png")
    assert p == d1 / "map.png"
    _assert_png(p, d1)
    times = pd.date_range("2016-04-01", periods=50).values
    obs = rng.uniform(0.1, 0.3, (2, 50))
    obs[:, ::3] = np.nan
    p = plot_timeseries(times, obs, {"lstm": obs + 0.01, "clim": obs * 0 + 0.2}, ["a", "b"], d2 / "ts.png")
    _assert_png(p, d2)
    p = plot_scatter(obs, obs + rng.normal(0, 0.02, obs.shape), d3 / "sc.png", title="test")
    _assert_png(p, d3)


def test_failed_plot_leaves_no_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    target = tmp_path / "sc.png"
    target.write_bytes(b"old")

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(PNG[:4])  # half-written
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError):
        plot_scatter(np.arange(5.0), np.arange(5.0), target)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(ValueError):
        plot_timeseries(pd.date_range("2016-01-01", periods=5).values, np.zeros((2, 5)),
                        {"bad": np.zeros((2, 4))}, ["a", "b"], tmp_path / "ts.png")
    assert not (tmp_path / "ts.png").exists()


def test_importing_plots_has_no_side_effect():
    code = ("import sys, smfusion.evaluation.plots, smfusion.evaluation.tables, smfusion.evaluation.baselines; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
