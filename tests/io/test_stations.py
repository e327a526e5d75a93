"""Station readers: station table (USCRN-style), long CSV, ISMN folder and zip; depth and flag filtering."""

import zipfile

import numpy as np
import pandas as pd
import pytest

from smfusion.errors import DataError
from smfusion.io.stations import read_stations


def _table(tmp_path, depth=("", "", ""), flags=None):
    rows = []
    for i, (name, d) in enumerate(zip(["A", "B", "C"], depth)):
        days = pd.date_range("2016-01-01", periods=5, freq="D")
        frame = pd.DataFrame({"timestamp": days.strftime("%Y-%m-%d"), "vwc": 0.1 + 0.01 * np.arange(5) + 0.1 * i})
        frame.loc[2, "vwc"] = -9999.0
        if flags is not None:
            frame["flag"] = flags
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        rows.append({"station": name, "file": f"{name}.csv", "lat": 35.0 + i, "lon": -97.0, "network": "N",
                     "depth_m": d})
    pd.DataFrame(rows).to_csv(tmp_path / "stations.csv", index=False)
    return tmp_path


def test_station_table_sentinels_and_unknown_depth(tmp_path):
    ds = read_stations(_table(tmp_path))
    assert list(ds.site.values) == ["A", "B", "C"]
    assert ds.attrs["sampling"] == "daily" and ds.attrs["station_source"] == "table"
    v = ds.soil_moisture.sel(site="B")
    assert ds.sizes["time"] == 4 and np.datetime64("2016-01-03") not in ds.time.values  # -9999 is missing
    assert v.sel(time="2016-01-01").item() == pytest.approx(0.2)
    assert np.isnan(ds.depth_from.values).all()  # unknown depth: kept, said so


def test_station_table_depth_filter(tmp_path):
    ds = read_stations(_table(tmp_path, depth=("0.05", "0.2", "")), depth=(0.0, 0.1))
    assert list(ds.site.values) == ["A", "C"]
    assert ds.depth_from.sel(site="A") == 0.05
    with pytest.raises(DataError, match="no station left"):
        read_stations(_table(tmp_path, depth=("0.5", "0.5", "0.5")), depth=(0.0, 0.1))


def test_station_table_flags(tmp_path):
    ds = read_stations(_table(tmp_path, flags=["G", "D01", "G", "G", "M"]), good_flags=("G",))
    v = ds.soil_moisture.sel(site="A").values
    assert np.isfinite(v).sum() == 2  # day 1 flagged D01, day 2 sentinel, day 4 flagged M


def test_bad_station_inputs(tmp_path):
    _table(tmp_path)
    (tmp_path / "A.csv").write_text("timestamp,vwc\n2016-01-01,12.5\n")
    with pytest.raises(DataError, match="percent"):
        read_stations(tmp_path)
    (tmp_path / "A.csv").write_text("timestamp,vwc\n2016-01-01,wet\n")
    with pytest.raises(DataError, match="non-numeric") as err:
        read_stations(tmp_path)
    assert "A.csv" in str(err.value)
    (tmp_path / "A.csv").write_text("when,vwc\n2016-01-01,0.2\n")
    with pytest.raises(DataError, match="no time column"):
        read_stations(tmp_path)
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="neither"):
        read_stations(tmp_path / "x.csv")
    with pytest.raises(DataError, match="not found"):
        read_stations(tmp_path / "missing")


def test_long_csv(tmp_path):
    t = pd.date_range("2017-01-01", periods=48, freq="h")
    frame = pd.concat([pd.DataFrame({"station": s, "lat": 20.0 + k, "lon": -155.0, "time": t.strftime("%Y-%m-%dT%H:%M"),
                                     "soil_moisture": 0.2 + 0.001 * np.arange(48), "depth_from": 0.05,
                                     "depth_to": 0.05}) for k, s in enumerate(["x", "y"])])
    frame.to_csv(tmp_path / "long.csv", index=False)
    ds = read_stations(tmp_path / "long.csv")
    assert ds.sizes == {"site": 2, "time": 48} and ds.attrs["sampling"] == "hourly"
    assert ds.lat.values.tolist() == [20.0, 21.0]


@pytest.mark.realdata
def test_uscrn_table(shared_data):
    ds = read_stations(shared_data / "uscrn")
    assert ds.sizes["site"] == 3 and ds.sizes["time"] == 3803
    assert ds.attrs["sampling"] == "daily"
    assert np.isfinite(ds.soil_moisture.values).all()
    assert ds.lat.sel(site="Gadsden 19 N") == pytest.approx(34.285)


@pytest.mark.realdata
def test_ismn_folder_and_zip_agree(shared_data, tmp_path):
    folder = shared_data / "insitu_hawaii_scan" / "ISMN_TESTDATA_HAWAII"
    a = read_stations(folder)
    assert a.sizes["site"] == 9 and a.attrs["sampling"] == "hourly"
    archive = tmp_path / "hawaii.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in folder.rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(folder.parent))
    b = read_stations(archive)
    np.testing.assert_array_equal(a.soil_moisture.values, b.soil_moisture.values)
    assert list(a.site.values) == list(b.site.values)
    # flags: keeping every flag gives more values than keeping G only
    c = read_stations(folder, good_flags=("G", "D04", "C02", "C02,D04"))
    assert np.isfinite(c.soil_moisture.values).sum() > np.isfinite(a.soil_moisture.values).sum()
    with pytest.raises(DataError, match="0.0508"):
        read_stations(folder, depth=(0.0, 0.05))
