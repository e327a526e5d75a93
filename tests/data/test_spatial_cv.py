"""Spatial CV folds: no held-out station (or its block / network) in training."""

from __future__ import annotations

import numpy as np
import pytest

from smfusion.data.spatial_cv import block_folds, block_ids, check_folds, load_folds, make_folds, save_folds
from smfusion.errors import ConfigError


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
