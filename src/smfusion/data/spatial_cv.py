"""Spatial cross-validation folds over stations (or cells): by station, lat/lon block, network, or region.

A fold is a dict ``{"fold": i, "test": [...], "train": [...], "groups": [...], "buffer": [...]}``
of station ids (``groups``: the blocks, networks or regions held out;
``buffer``: sites left out of training because they lie within ``buffer_km`` of
a held-out site, scored nowhere in that fold). Every station is in exactly one
test fold (user regions: sites in no region are never held out); a fold's
training stations never include a test station, nor a station of a held-out
group, nor (with a buffer) a station within ``buffer_km`` of a test station.
:func:`check_folds` asserts this.

Regional folds (:mod:`smfusion.data.regions` for the geometry):

* ``kmeans``: k contiguous regions of near-equal size, grown through the
  neighbour graph from the centres of a balanced k-means on EASE-Grid 2.0
  coordinates (seeded);
* ``ease2``: whole EASE-Grid 2.0 blocks of ``block_cells`` x ``block_cells``
  cells, grown into k contiguous regions the same way (weighted by sites);
* ``regions``: leave-one-region-out over user regions (bounding boxes, or a
  file mapping site ids to region names).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from smfusion.data.regions import (balanced_kmeans, components, distance_matrix, equal_area_km, grow_regions,
                                   neighbour_graph, read_regions_file)
from smfusion.data.splits import kfold_sites
from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import latlon_to_rowcol
from smfusion.io.atomic import write_text

__all__ = ["block_ids", "station_folds", "block_folds", "network_folds", "kmeans_folds", "ease2_folds",
           "region_folds", "box_regions", "add_buffer", "make_folds", "check_folds", "check_contiguous",
           "save_folds", "load_folds"]


def _ids(stations) -> list:
    return [s.item() if hasattr(s, "item") else s for s in np.asarray(stations).tolist()]


def _fold(i: int, test: Sequence, stations: Sequence, groups: Sequence = ()) -> dict:
    test_set = set(test)
    return {
        "fold": i,
        "test": sorted(test),
        "train": sorted(s for s in stations if s not in test_set),
        "groups": [str(g) for g in groups],
        "buffer": [],
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


def _label_folds(stations, label: np.ndarray, names: Sequence[str]) -> list[dict]:
    return [_fold(i, [s for s, lab in zip(stations, label) if lab == i], stations, [names[i]])
            for i in range(len(names))]


def kmeans_folds(stations, lat, lon, k: int, seed: int = 0) -> list[dict]:
    """k contiguous regions of near-equal size grown from balanced k-means centres (see the module doc),
    numbered west to east."""
    stations = _ids(stations)
    _, centres = balanced_kmeans(lat, lon, k, seed)
    label = grow_regions(equal_area_km(lat, lon), neighbour_graph(lat, lon), centres)
    return _label_folds(stations, label, [f"region_{i}" for i in range(k)])


def ease2_folds(stations, lat, lon, k: int, block_cells: int = 8, grid: str = "M36", seed: int = 0) -> list[dict]:
    """Whole EASE-Grid 2.0 blocks of ``block_cells`` x ``block_cells`` cells of ``grid``, grown into k
    contiguous regions of near-equal site count from balanced k-means centres (blocks are neighbours when
    any of their sites are); ``groups`` lists each fold's blocks as ``"<row>_<col>"``."""
    stations = _ids(stations)
    row, col = latlon_to_rowcol(grid, lat, lon)
    if (row < 0).any():
        raise ConfigError(f"cv.kind ease2: sites outside the {grid} grid")
    blocks = np.asarray([f"{r // block_cells}_{c // block_cells}" for r, c in zip(row, col)])
    uniq, inverse, counts = np.unique(blocks, return_inverse=True, return_counts=True)
    if uniq.size < k:
        raise ConfigError(f"cv.kind ease2: only {uniq.size} blocks of {block_cells} {grid} cells hold sites, "
                          f"fewer than k={k}")
    _, centres = balanced_kmeans(lat, lon, k, seed)
    xy = equal_area_km(lat, lon)
    member = np.eye(uniq.size, dtype=int)[inverse]  # (site, block)
    block_adj = (member.T @ neighbour_graph(lat, lon).astype(int) @ member) > 0
    np.fill_diagonal(block_adj, False)
    block_xy = (member.T @ xy) / counts[:, None]
    site_label = grow_regions(block_xy, block_adj, centres, weights=counts)[inverse]
    return [_fold(i, [s for s, lab in zip(stations, site_label) if lab == i], stations,
                  sorted({b for b, lab in zip(blocks, site_label) if lab == i})) for i in range(k)]


def box_regions(stations, lat, lon, boxes: Sequence[dict]) -> dict:
    """Site id -> region name for bounding boxes ``{"name", "lat": [lo, hi], "lon": [lo, hi]}`` (edges
    included); a site in two boxes is a ConfigError, a site in none is left out of the mapping."""
    out: dict = {}
    for s, la, lo in zip(_ids(stations), np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)):
        hit = [b["name"] for b in boxes if b["lat"][0] <= la <= b["lat"][1] and b["lon"][0] <= lo <= b["lon"][1]]
        if len(hit) > 1:
            raise ConfigError(f"cv.regions: site {s} ({la:.3f}, {lo:.3f}) lies in two boxes {hit}")
        if hit:
            out[s] = hit[0]
    return out


def region_folds(stations, region_of: dict) -> list[dict]:
    """Leave-one-region-out: one fold per region of ``region_of`` (site id -> name), in name order. Sites
    without a region are in every fold's training set."""
    stations = _ids(stations)
    names = sorted({region_of[s] for s in stations if s in region_of})
    if len(names) < 1:
        raise ConfigError("cv.kind regions: no site lies in any of the given regions")
    return [_fold(i, [s for s in stations if region_of.get(s) == name], stations, [name])
            for i, name in enumerate(names)]


def add_buffer(folds: list[dict], stations, lat, lon, buffer_km: float) -> list[dict]:
    """Move every training site within ``buffer_km`` (great circle) of a fold's test sites to its ``buffer``."""
    if buffer_km <= 0:
        return folds
    stations = _ids(stations)
    index = {s: i for i, s in enumerate(stations)}
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    out = []
    for f in folds:
        t = np.asarray([index[s] for s in f["test"]], dtype=int)
        tr = np.asarray([index[s] for s in f["train"]], dtype=int)
        near = (distance_matrix(lat[tr], lon[tr], lat[t], lon[t]) <= buffer_km).any(axis=1) if t.size else \
            np.zeros(tr.size, dtype=bool)
        out.append(dict(f, train=sorted(stations[i] for i in tr[~near]),
                        buffer=sorted(f.get("buffer", []) + [stations[i] for i in tr[near]])))
    return out


def make_folds(kind: str, stations, *, lat=None, lon=None, networks=None, k: int = 5, block_deg: float = 2.0,
               seed: int = 0, buffer_km: float = 0.0, block_cells: int = 8, grid: str = "M36",
               regions: Optional[Sequence[dict]] = None, regions_file: Optional[str | Path] = None) -> list[dict]:
    """Folds of ``kind`` station, block, network, kmeans, ease2 or regions (see the module doc), with an
    optional buffer ring; checked by :func:`check_folds` before they are returned."""
    group_of, cover = None, True
    if kind == "station":
        folds = station_folds(stations, k, seed)
    elif kind == "block":
        folds = block_folds(stations, lat, lon, k, block_deg, seed)
        group_of = dict(zip(_ids(stations), block_ids(lat, lon, block_deg)))
    elif kind == "network":
        folds = network_folds(stations, networks)
        group_of = dict(zip(_ids(stations), np.asarray(networks).astype(str)))
    elif kind in ("kmeans", "ease2"):
        folds = kmeans_folds(stations, lat, lon, k, seed) if kind == "kmeans" else \
            ease2_folds(stations, lat, lon, k, block_cells, grid, seed)
        group_of = {s: f["fold"] for f in folds for s in f["test"]}
    elif kind == "regions":
        if (regions is None) == (regions_file is None):
            raise ConfigError("cv.kind regions: give exactly one of cv.regions (boxes) and cv.regions_file")
        group_of = box_regions(stations, lat, lon, regions) if regions is not None else read_regions_file(regions_file)
        unknown = sorted(set(group_of) - set(_ids(stations)))
        if regions_file is not None and unknown:
            raise DataError(f"regions file names sites not in the data: {unknown[:10]}", path=regions_file)
        folds, cover = region_folds(stations, group_of), False
    else:
        raise ConfigError(f"unknown CV kind {kind!r}; use station, block, network, kmeans, ease2 or regions")
    folds = add_buffer(folds, stations, lat, lon, buffer_km)
    check_folds(folds, stations, group_of=group_of, cover=cover,
                buffer=(lat, lon, buffer_km) if buffer_km > 0 else None)
    return folds


def check_folds(folds: list[dict], stations, group_of: dict | None = None, cover: bool = True,
                buffer: Optional[tuple] = None) -> None:
    """Raise AssertionError when folds leak: a test station (or its group, or with ``buffer = (lat, lon,
    km)`` a station within km of it) in training; a station in no test fold or in two (``cover``); a
    station missing from a fold's train, test and buffer together."""
    stations = _ids(stations)
    index = {s: i for i, s in enumerate(stations)}
    seen: list = []
    for f in folds:
        test, train, buf = set(f["test"]), set(f["train"]), set(f.get("buffer", []))
        assert not test & train, f"fold {f['fold']}: stations both in train and test: {sorted(test & train)[:5]}"
        assert not buf & (test | train), f"fold {f['fold']}: buffer stations also in train or test"
        assert test | train | buf == set(stations), f"fold {f['fold']}: stations missing from train and test"
        if group_of is not None:
            held = {group_of[s] for s in test}
            leak = [s for s in train if s in group_of and group_of[s] in held]
            assert not leak, f"fold {f['fold']}: training stations in held-out groups: {leak[:5]}"
        if buffer is not None and test and train:
            lat, lon, km = np.asarray(buffer[0], dtype=float), np.asarray(buffer[1], dtype=float), buffer[2]
            t = [index[s] for s in f["test"]]
            tr = [index[s] for s in f["train"]]
            dmin = distance_matrix(lat[tr], lon[tr], lat[t], lon[t]).min()
            assert dmin > km, f"fold {f['fold']}: a training station lies {dmin:.1f} km from a test station"
        seen.extend(test)
    if cover:
        assert sorted(seen) == sorted(stations), "every station must be in exactly one test fold"
    else:
        assert len(seen) == len(set(seen)), "a station is in two test folds"


def check_contiguous(folds: list[dict], stations, lat, lon, radius_km: float | None = None) -> list[int]:
    """Number of connected pieces of each fold's test set in the neighbour graph (1 = contiguous)."""
    adj = neighbour_graph(lat, lon, radius_km)
    index = {s: i for i, s in enumerate(_ids(stations))}
    return [len(components(adj, np.asarray([index[s] for s in f["test"]], dtype=int))) for f in folds]


def save_folds(path: str | Path, folds: list[dict], meta: dict | None = None) -> Path:
    """Write folds (and how they were made) as JSON, atomically."""
    return write_text(path, json.dumps({"meta": meta or {}, "folds": folds}, indent=1, default=str))


def load_folds(path: str | Path) -> list[dict]:
    return json.loads(Path(path).read_text())["folds"]
