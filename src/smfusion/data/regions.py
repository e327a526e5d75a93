"""Geometry of regional folds: distances, the neighbour graph of sites, balanced k-means, region files.

* :func:`haversine_km`: great-circle distance on a sphere of radius 6371 km.
* :func:`neighbour_graph`: sites are neighbours when they are at most ``radius_km``
  apart; default: 1.5 x the median nearest-neighbour distance (on a regular grid,
  the 8 surrounding cells), raised to the longest edge of the minimum spanning
  tree when that is longer (so that the whole set of sites is connected: an
  irregular sample with gaps, such as the 412 CONUS cells, has one). A set of
  sites is *contiguous* when it is connected in this graph (:func:`components`).
* :func:`balanced_kmeans`: k centres of clusters of equal size (within one) on
  EASE-Grid 2.0 (equal-area) coordinates: seeded k-means++ start, then Lloyd
  steps whose assignment step is an exact balanced assignment;
  :func:`grow_regions` then grows k connected regions of near-equal weight from
  those centres through the neighbour graph (a gap in the sample, such as a lake,
  cannot cut a region in two).
"""

from __future__ import annotations

import heapq
import json
import math
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import latlon_to_xy

__all__ = ["EARTH_RADIUS_KM", "haversine_km", "distance_matrix", "equal_area_km", "neighbour_graph", "spanning_radius_km",
           "components",
           "balanced_kmeans", "grow_regions", "read_regions_file"]

EARTH_RADIUS_KM = 6371.0


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance (km): ``2 R asin(sqrt(sin^2(dphi/2) + cos phi1 cos phi2 sin^2(dlambda/2)))``."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def distance_matrix(lat_a, lon_a, lat_b=None, lon_b=None) -> np.ndarray:
    """Great-circle distances (km) between every point of a and every point of b (default: a)."""
    lat_a, lon_a = np.asarray(lat_a, dtype=float), np.asarray(lon_a, dtype=float)
    lat_b = lat_a if lat_b is None else np.asarray(lat_b, dtype=float)
    lon_b = lon_a if lon_b is None else np.asarray(lon_b, dtype=float)
    return haversine_km(lat_a[:, None], lon_a[:, None], lat_b[None, :], lon_b[None, :])


def equal_area_km(lat, lon) -> np.ndarray:
    """(n, 2) EASE-Grid 2.0 global (EPSG:6933) x, y in km: distances and areas near-true at mid-latitudes."""
    x, y = latlon_to_xy("M36", lat, lon)
    return np.column_stack([x, y]) / 1000.0


def spanning_radius_km(d: np.ndarray) -> float:
    """Longest edge of the minimum spanning tree of the distance matrix ``d`` (Prim; diagonal ignored)."""
    n = d.shape[0]
    if n < 2:
        return 0.0
    inside = np.zeros(n, dtype=bool)
    inside[0] = True
    best = np.where(np.arange(n) == 0, np.inf, d[0])
    longest = 0.0
    for _ in range(n - 1):
        j = int(np.argmin(np.where(inside, np.inf, best)))
        longest = max(longest, float(best[j]))
        inside[j] = True
        best = np.minimum(best, d[j])
    return longest


def neighbour_graph(lat, lon, radius_km: float | None = None) -> np.ndarray:
    """Boolean (n, n) adjacency: sites at most ``radius_km`` apart (not themselves); see the module doc."""
    d = distance_matrix(lat, lon)
    np.fill_diagonal(d, np.inf)
    if radius_km is None:
        radius_km = 0.0 if d.shape[0] < 2 else max(1.5 * float(np.median(d.min(axis=1))), spanning_radius_km(d))
    return d <= radius_km


def components(adjacency: np.ndarray, members: np.ndarray) -> list[np.ndarray]:
    """Connected components (index arrays, largest first) of the sub-graph on ``members`` (indices)."""
    members = np.asarray(members, dtype=int)
    inside = np.zeros(adjacency.shape[0], dtype=bool)
    inside[members] = True
    label = np.full(adjacency.shape[0], -1)
    out = []
    for start in members:
        if label[start] >= 0:
            continue
        label[start] = len(out)
        stack, comp = [int(start)], []
        while stack:
            i = stack.pop()
            comp.append(i)
            for j in np.flatnonzero(adjacency[i] & inside & (label < 0)):
                label[j] = len(out)
                stack.append(int(j))
        out.append(np.sort(np.asarray(comp)))
    return sorted(out, key=lambda c: (-c.size, int(c[0])))


def _kmeans_pp(xy: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [xy[rng.integers(len(xy))]]
    for _ in range(1, k):
        d2 = np.min(((xy[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(xy[rng.choice(len(xy), p=d2 / d2.sum())] if d2.sum() > 0 else xy[rng.integers(len(xy))])
    return np.asarray(centres)


def _balanced_assign(d2: np.ndarray) -> np.ndarray:
    """Each unit to a cluster, cluster sizes differing by at most one, minimising the summed squared distance
    (an assignment problem over ``ceil(n / k)`` slots per cluster, solved exactly)."""
    n, k = d2.shape
    slots = np.repeat(np.arange(k), math.ceil(n / k))
    _, col = linear_sum_assignment(d2[:, slots])
    return slots[col]


def balanced_kmeans(lat, lon, k: int, seed: int = 0, n_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``(label, centres)``: k clusters whose sizes differ by at most one and their centres (EASE-Grid 2.0 km).

    Seeded k-means++ start on EASE-Grid 2.0 coordinates, then Lloyd steps whose assignment step is the
    exact balanced assignment (:func:`_balanced_assign`).
    """
    xy = equal_area_km(lat, lon)
    n = xy.shape[0]
    if not 2 <= k <= n:
        raise ConfigError(f"regional CV: k={k} needs 2 <= k <= number of units ({n})")
    centres = _kmeans_pp(xy, k, np.random.default_rng(seed))
    label = np.full(n, -1)
    for _ in range(n_iter):
        new = _balanced_assign(((xy[:, None, :] - centres[None]) ** 2).sum(-1))
        if np.array_equal(new, label):
            break
        label = new
        centres = np.asarray([xy[label == j].mean(axis=0) for j in range(k)])
    return label, centres


def grow_regions(xy: np.ndarray, adjacency: np.ndarray, centres: np.ndarray, weights=None) -> np.ndarray:
    """Region label of each unit, grown through ``adjacency`` from the unit nearest each centre.

    All regions grow at once, the unit closest to its region's centre first, each up to
    ``ceil(W / k)`` (W: total weight). Units left when every region is full or shut in join the
    smallest adjacent region (the nearest centre if they have no assigned neighbour), so every region
    is connected in the graph; then :func:`_rebalance` evens the weights out between neighbouring
    regions. Labels are numbered west to east (by the regions' mean x).
    """
    n, k = xy.shape[0], centres.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    cap = math.ceil(w.sum() / k)
    d = np.sqrt(((xy[:, None, :] - centres[None]) ** 2).sum(-1))
    label, size = np.full(n, -1), np.zeros(k)
    heap: list = []
    for j in range(k):
        for i in np.argsort(d[:, j], kind="stable"):
            if label[i] < 0:
                heapq.heappush(heap, (0.0, int(i), j))
                break
    while heap:
        _, i, j = heapq.heappop(heap)
        if label[i] >= 0 or size[j] + w[i] > cap:
            continue
        label[i], size[j] = j, size[j] + w[i]
        for m in np.flatnonzero(adjacency[i] & (label < 0)):
            heapq.heappush(heap, (float(d[m, j]), int(m), j))
    while (label < 0).any():
        left = np.flatnonzero(label < 0)
        touching = [(i, [j for j in np.unique(label[adjacency[i]]) if j >= 0]) for i in left]
        i, js = min(touching, key=lambda t: (not t[1], d[t[0]].min()))
        j = min(js, key=lambda j: (size[j], j)) if js else int(np.argmin(d[i]))
        label[i], size[j] = j, size[j] + w[i]
    label = _rebalance(label, adjacency, xy, w, k)
    order = np.argsort([np.average(xy[label == j, 0], weights=w[label == j]) if (label == j).any() else np.inf
                        for j in range(k)], kind="stable")
    return np.argsort(order)[label]


def _rebalance(label: np.ndarray, adjacency: np.ndarray, xy: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Hand boundary units from a region to a lighter neighbouring region (by more than the unit's weight)
    while the giving region stays connected: the unit nearest the receiving region's centroid first. Each
    move lowers the sum of squared region weights, so this ends."""
    label = label.copy()
    while True:
        size = np.bincount(label, weights=w, minlength=k)
        centroid = np.asarray([np.average(xy[label == j], axis=0, weights=w[label == j]) if (label == j).any()
                               else xy[0] for j in range(k)])
        best = None
        for i in np.argsort(-size[label], kind="stable"):
            a = label[i]
            for b in np.unique(label[adjacency[i]]):
                if b == a or size[a] - size[b] <= w[i]:
                    continue
                key = (-(size[a] - size[b]), float(((xy[i] - centroid[b]) ** 2).sum()))
                if best is None or key < best[0]:
                    rest = np.flatnonzero((label == a) & (np.arange(label.size) != i))
                    if rest.size and len(components(adjacency, rest)) == 1:
                        best = (key, i, b)
        if best is None:
            return label
        label[best[1]] = best[2]


def read_regions_file(path: str | Path) -> dict[int, str]:
    """Site id -> region name from a CSV (columns ``site,region``) or a JSON ``{region: [site ids]}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError("regions file not found", path=path)
    text = path.read_text()
    out: dict[int, str] = {}
    try:
        if path.suffix.lower() == ".json":
            for region, ids in json.loads(text).items():
                for s in ids:
                    _put(out, int(s), str(region), path)
            return out
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        head = [h.strip().lower() for h in lines[0].split(",")]
        if head[:2] != ["site", "region"]:
            raise DataError("a regions CSV starts with the header 'site,region'", path=path)
        for ln in lines[1:]:
            site, region = (p.strip() for p in ln.split(",")[:2])
            _put(out, int(site), region, path)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"cannot read the regions file: {exc}", path=path) from None
    return out


def _put(out: dict, site: int, region: str, path: Path) -> None:
    if site in out and out[site] != region:
        raise DataError(f"site {site} is in two regions ({out[site]!r}, {region!r})", path=path)
    out[site] = region
