"""Spatial cross-validation folds over stations: by station, by lat/lon blocks, by network.

A fold is a dict ``{"fold": i, "test": [...], "train": [...], "groups": [...]}``
of station ids (``groups``: the blocks or networks held out). Every station is
in exactly one test fold; a fold's training stations never include a test
station, nor (block CV) any station of a held-out block, nor (network CV) any
station of the held-out network. :func:`check_folds` asserts this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from smfusion.data.splits import kfold_sites
from smfusion.errors import ConfigError
from smfusion.io.atomic import write_text

__all__ = ["block_ids", "station_folds", "block_folds", "network_folds", "make_folds", "check_folds", "save_folds",
           "load_folds"]


def _ids(stations) -> list:
    return [s.item() if hasattr(s, "item") else s for s in np.asarray(stations).tolist()]


def _fold(i: int, test: Sequence, stations: Sequence, groups: Sequence = ()) -> dict:
    test_set = set(test)
    return {
        "fold": i,
        "test": sorted(test),
        "train": sorted(s for s in stations if s not in test_set),
        "groups": [str(g) for g in groups],
    }


def station_folds(stations, k: int, seed: int = 0) -> list[dict]:
    """Seeded k-fold over stations."""
    stations = _ids(stations)
    idx = kfold_sites(np.arange(len(stations)), k, seed)
    return [_fold(i, [stations[j] for j in f], stations) for i, f in enumerate(idx)]


def block_ids(lat, lon, block_deg: float) -> np.ndarray:
    """Tile label ``"<row>_<col>"`` of each point on a ``block_deg`` lat/lon grid."""
    r = np.floor(np.asarray(lat, dtype=float) / block_deg).astype(int)
    c = np.floor(np.asarray(lon, dtype=float) / block_deg).astype(int)
    return np.asarray([f"{a}_{b}" for a, b in zip(r, c)])


def block_folds(stations, lat, lon, k: int, block_deg: float, seed: int = 0) -> list[dict]:
    """k folds of whole lat/lon tiles (seeded shuffle, then greedy balance of station counts)."""
    stations = _ids(stations)
    blocks = block_ids(lat, lon, block_deg)
    uniq = np.unique(blocks)
    if uniq.size < k:
        raise ConfigError(f"block CV: only {uniq.size} blocks of {block_deg} deg hold stations, fewer than k={k}")
    order = np.random.default_rng(seed).permutation(uniq.size)
    sizes = {b: int((blocks == b).sum()) for b in uniq}
    load = np.zeros(k, dtype=int)
    members: list[list[str]] = [[] for _ in range(k)]
    for b in sorted(uniq[order], key=lambda b: -sizes[b]):  # stable: shuffled order breaks ties
        j = int(np.argmin(load))
        members[j].append(str(b))
        load[j] += sizes[b]
    return [_fold(i, [s for s, b in zip(stations, blocks) if b in set(g)], stations, sorted(g))
            for i, g in enumerate(members)]


def network_folds(stations, networks) -> list[dict]:
    """Leave-one-network-out: one fold per network."""
    stations = _ids(stations)
    networks = np.asarray(networks).astype(str)
    uniq = np.unique(networks)
    if uniq.size < 2:
        raise ConfigError(f"leave-one-network-out needs at least 2 networks, got {uniq.tolist()}")
    return [_fold(i, [s for s, n in zip(stations, networks) if n == net], stations, [net]) for i, net in enumerate(uniq)]


def make_folds(kind: str, stations, *, lat=None, lon=None, networks=None, k: int = 5, block_deg: float = 2.0,
               seed: int = 0) -> list[dict]:
    """Folds of ``kind`` 'station', 'block' or 'network' (see the module doc)."""
    if kind == "station":
        folds = station_folds(stations, k, seed)
    elif kind == "block":
        folds = block_folds(stations, lat, lon, k, block_deg, seed)
    elif kind == "network":
        folds = network_folds(stations, networks)
    else:
        raise ConfigError(f"unknown CV kind {kind!r}; use station, block or network")
    check_folds(folds, stations, group_of=None if kind == "station" else dict(
        zip(_ids(stations), block_ids(lat, lon, block_deg) if kind == "block" else np.asarray(networks).astype(str))))
    return folds


def check_folds(folds: list[dict], stations, group_of: dict | None = None) -> None:
    """Raise AssertionError when folds leak: a test station (or its group) in training, or a station
    that is in no test fold or in two."""
    stations = _ids(stations)
    seen: list = []
    for f in folds:
        test, train = set(f["test"]), set(f["train"])
        assert not test & train, f"fold {f['fold']}: stations both in train and test: {sorted(test & train)[:5]}"
        assert test | train == set(stations), f"fold {f['fold']}: stations missing from train and test"
        if group_of is not None:
            held = {group_of[s] for s in test}
            leak = [s for s in train if group_of[s] in held]
            assert not leak, f"fold {f['fold']}: training stations in held-out groups: {leak[:5]}"
        seen.extend(test)
    assert sorted(seen) == sorted(stations), "every station must be in exactly one test fold"


def save_folds(path: str | Path, folds: list[dict], meta: dict | None = None) -> Path:
    """Write folds (and how they were made) as JSON, atomically."""
    return write_text(path, json.dumps({"meta": meta or {}, "folds": folds}, indent=1, default=str))


def load_folds(path: str | Path) -> list[dict]:
    return json.loads(Path(path).read_text())["folds"]
