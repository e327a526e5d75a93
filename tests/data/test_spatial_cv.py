"""Spatial CV folds: no held-out station (or its block / network) in training."""

from __future__ import annotations

import numpy as np
import pytest

from smfusion.data.regions import distance_matrix, equal_area_km
from smfusion.data.spatial_cv import (block_folds, block_ids, check_contiguous, check_folds, load_folds, make_folds,
                                      save_folds)
from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import latlon_to_rowcol


@pytest.fixture()
def stations():
    rng = np.random.default_rng(1)
    n = 60
    return np.arange(100, 100 + n), rng.uniform(30, 48, n), rng.uniform(-120, -75, n), rng.choice(list("ABCD"), n)


def test_station_kfold_partitions(stations):
    ids, lat, lon, net = stations
    folds = make_folds("station", ids, k=5, seed=2)
    assert len(folds) == 5
    tests = np.concatenate([f["test"] for f in folds])
    assert sorted(tests.tolist()) == ids.tolist()
    for f in folds:
        assert not set(f["test"]) & set(f["train"])
        assert len(f["test"]) in (12,)


def test_block_folds_hold_out_whole_blocks(stations):
    ids, lat, lon, net = stations
    folds = make_folds("block", ids, lat=lat, lon=lon, k=4, block_deg=5.0, seed=0)
    block = dict(zip(ids.tolist(), block_ids(lat, lon, 5.0)))
    for f in folds:
        held = {block[s] for s in f["test"]}
        assert held == set(f["groups"])
        assert not any(block[s] in held for s in f["train"])
    assert sorted(np.concatenate([f["test"] for f in folds]).tolist()) == ids.tolist()
    # hand check of the tiling: 31.2 N, -119.9 E with 5 deg tiles -> row 6, col -24
    assert block_ids([31.2], [-119.9], 5.0)[0] == "6_-24"


def test_network_folds(stations):
    ids, lat, lon, net = stations
    folds = make_folds("network", ids, networks=net)
    assert [f["groups"] for f in folds] == [["A"], ["B"], ["C"], ["D"]]
    for f in folds:
        assert set(net[np.isin(ids, f["test"])]) == set(f["groups"])
        assert f["groups"][0] not in set(net[np.isin(ids, f["train"])])


def test_check_folds_catches_leaks(stations):
    ids, lat, lon, _ = stations
    folds = block_folds(ids, lat, lon, 3, 5.0)
    block = dict(zip(ids.tolist(), block_ids(lat, lon, 5.0)))
    bad = [dict(f) for f in folds]
    # move one training station that shares a block with a test station... into train of a fold holding its block
    f0 = bad[0]
    victim = f0["test"][0]
    neighbours = [s for s in ids.tolist() if block[s] == block[victim] and s != victim]
    leak = dict(f0, test=[s for s in f0["test"] if s != victim], train=sorted(f0["train"] + [victim]))
    with pytest.raises(AssertionError):
        check_folds([leak] + bad[1:], ids, group_of=block)
    if neighbours:  # a station of a held-out block left in training is a leak too
        moved = dict(f0, test=[s for s in f0["test"] if s != neighbours[0]],
                     train=sorted(f0["train"] + [neighbours[0]]))
        with pytest.raises(AssertionError):
            check_folds([moved] + bad[1:], ids, group_of=block)
    with pytest.raises(AssertionError):
        check_folds([dict(f0, train=f0["train"] + [f0["test"][0]])] + bad[1:], ids)


def test_too_few_blocks_or_networks(stations):
    ids, lat, lon, _ = stations
    with pytest.raises(ConfigError):
        make_folds("block", ids, lat=lat, lon=lon, k=4, block_deg=100.0)
    with pytest.raises(ConfigError):
        make_folds("network", ids, networks=np.full(ids.size, "X"))


def test_save_and_load(tmp_path, stations):
    ids, *_ = stations
    folds = make_folds("station", ids, k=3)
    save_folds(tmp_path / "folds.json", folds, meta={"kind": "station"})
    assert load_folds(tmp_path / "folds.json") == folds


# -- regional folds (issue 13) ------------------------------------------------------------------------------

@pytest.fixture()
def cells():
    """An irregular sample of a 1.2-degree grid over CONUS with holes (as the 412 CONUS cells)."""
    rng = np.random.default_rng(4)
    lat, lon = np.meshgrid(np.arange(26.0, 49.0, 1.2), np.arange(-124.0, -68.0, 1.2), indexing="ij")
    keep = rng.random(lat.shape) < 0.55
    keep &= ~((lat > 40) & (lat < 44) & (lon > -90) & (lon < -84))  # a lake
    return np.arange(keep.sum()) + 1000, lat[keep], lon[keep]


def test_kmeans_folds_are_contiguous_disjoint_balanced_and_cover(cells):
    ids, lat, lon = cells
    folds = make_folds("kmeans", ids, lat=lat, lon=lon, k=5, seed=0)
    assert check_contiguous(folds, ids, lat, lon) == [1] * 5
    tests = [set(f["test"]) for f in folds]
    assert sum(len(t) for t in tests) == ids.size and set().union(*tests) == set(ids.tolist())
    sizes = np.array([len(t) for t in tests])
    assert np.all(np.abs(sizes - ids.size / 5) <= 0.15 * ids.size / 5)
    for f in folds:
        assert set(f["train"]) == set(ids.tolist()) - set(f["test"]) and f["buffer"] == []
    # numbered west to east, and the same for the same seed
    x = equal_area_km(lat, lon)[:, 0]
    assert np.all(np.diff([x[np.isin(ids, f["test"])].mean() for f in folds]) > 0)
    assert make_folds("kmeans", ids, lat=lat, lon=lon, k=5, seed=0) == folds


def test_buffer_ring(cells):
    ids, lat, lon = cells
    folds = make_folds("kmeans", ids, lat=lat, lon=lon, k=4, seed=1, buffer_km=250.0)
    index = {s: i for i, s in enumerate(ids.tolist())}
    for f in folds:
        assert f["buffer"] and not set(f["buffer"]) & (set(f["train"]) | set(f["test"]))
        assert set(f["train"]) | set(f["test"]) | set(f["buffer"]) == set(ids.tolist())
        t = [index[s] for s in f["test"]]
        d_train = distance_matrix(lat[[index[s] for s in f["train"]]], lon[[index[s] for s in f["train"]]],
                                  lat[t], lon[t]).min(axis=1)
        d_buf = distance_matrix(lat[[index[s] for s in f["buffer"]]], lon[[index[s] for s in f["buffer"]]],
                                lat[t], lon[t]).min(axis=1)
        assert d_train.min() > 250.0 and d_buf.max() <= 250.0
    leaky = [dict(folds[0], train=sorted(folds[0]["train"] + folds[0]["buffer"][:1]), buffer=folds[0]["buffer"][1:])]
    with pytest.raises(AssertionError, match="km from a test station"):
        check_folds(leaky + folds[1:], ids, buffer=(lat, lon, 250.0))


def test_ease2_folds_keep_blocks_whole(cells):
    ids, lat, lon = cells
    folds = make_folds("ease2", ids, lat=lat, lon=lon, k=4, block_cells=8, seed=0)
    assert check_contiguous(folds, ids, lat, lon) == [1] * 4
    owner = {}
    for f in folds:
        for b in f["groups"]:
            assert b not in owner
            owner[b] = f["fold"]
    row, col = latlon_to_rowcol("M36", lat, lon)
    for s, r, c in zip(ids.tolist(), row, col):
        fold = next(f for f in folds if s in f["test"])
        assert owner[f"{r // 8}_{c // 8}"] == fold["fold"]


def test_user_regions_boxes_and_file(tmp_path, cells):
    ids, lat, lon = cells
    boxes = [{"name": "west", "lat": [20, 50], "lon": [-125, -105]}, {"name": "east", "lat": [20, 50], "lon": [-85, -60]}]
    folds = make_folds("regions", ids, lat=lat, lon=lon, regions=boxes)
    assert [f["groups"] for f in folds] == [["east"], ["west"]]
    middle = set(ids[(lon > -105) & (lon < -85)].tolist())
    for f in folds:
        assert middle <= set(f["train"])  # in no region: always trained on, never scored
    assert set(folds[1]["test"]) == set(ids[lon <= -105].tolist())
    path = tmp_path / "regions.csv"
    path.write_text("site,region\n" + "".join(f"{s},{'a' if s % 2 else 'b'}\n" for s in ids[:10]))
    ff = make_folds("regions", ids, regions_file=path, lat=lat, lon=lon)
    assert [len(f["test"]) for f in ff] == [5, 5] and len(ff[0]["train"]) == ids.size - 5
    (tmp_path / "r.json").write_text('{"x": [%d, %d], "y": [%d]}' % (ids[0], ids[1], ids[2]))
    assert [f["test"] for f in make_folds("regions", ids, regions_file=tmp_path / "r.json")] == [
        [int(ids[0]), int(ids[1])], [int(ids[2])]]
    with pytest.raises(ConfigError, match="two boxes"):
        make_folds("regions", ids, lat=lat, lon=lon, regions=boxes + [{"name": "all", "lat": [0, 90], "lon": [-180, 0]}])
    (tmp_path / "bad.csv").write_text("site,region\n999999,a\n")
    with pytest.raises(DataError, match="not in the data"):
        make_folds("regions", ids, regions_file=tmp_path / "bad.csv")


def test_cv_config_fields():
    from smfusion.config import CVConfig

    assert CVConfig(kind="regions", regions=[{"name": "a", "lat": [30, 40], "lon": [-100, -90]}]).regions[0].name == "a"
    with pytest.raises(ValueError, match="exactly one"):
        CVConfig(kind="regions")
    with pytest.raises(ValueError, match="low, high"):
        CVConfig(kind="regions", regions=[{"name": "a", "lat": [40, 30], "lon": [-100, -90]}])
    with pytest.raises(ValueError, match="for kind 'regions'"):
        CVConfig(kind="kmeans", regions_file="x.csv")
