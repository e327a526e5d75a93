"""The point set of the fusion model: per input group the model values of every example, and its vectors.

Its own module so that both readers (:mod:`smfusion.data.points` for shards,
:mod:`smfusion.data.points_conus` for the CONUS table) build it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

import numpy as np

from smfusion.errors import DataError
from smfusion.io.fusion_schema import Group

__all__ = ["PointSet"]

_VECTORS = ("y", "sensor", "timestamp", "lat", "lon", "smap", "model_sm")


@dataclass
class PointSet:
    """Point examples; see the module docstring."""

    x: dict[str, np.ndarray]
    dt: dict[str, np.ndarray]
    y: np.ndarray
    sensor: np.ndarray  # str ids (shards) or int cell ids (CONUS table)
    timestamp: np.ndarray  # ms since 1970 UTC
    lat: np.ndarray
    lon: np.ndarray
    smap: np.ndarray  # SMAP soil moisture (baseline "SMAP alone")
    model_sm: np.ndarray  # land-model soil moisture (baseline "GLDAS alone", rescaled)
    sources: list[Group] = field(default_factory=list)
    present: dict[str, np.ndarray] = field(default_factory=dict)  # group -> (N,) bool; absent key: all present

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def is_present(self, group: str) -> np.ndarray:
        return self.present.get(group, np.ones(len(self), dtype=bool))

    def subset(self, idx: np.ndarray) -> "PointSet":
        return replace(
            self, x={k: v[idx] for k, v in self.x.items()}, dt={k: v[idx] for k, v in self.dt.items()},
            present={k: v[idx] for k, v in self.present.items()}, **{k: getattr(self, k)[idx] for k in _VECTORS})

    def with_groups(self, groups: Sequence[str]) -> "PointSet":
        """The same points with only the sources of ``groups`` (baseline values kept)."""
        missing = [g for g in groups if g not in self.x]
        if missing:
            raise DataError(f"point set was loaded without group(s) {missing}")
        srcs = [s for s in self.sources if s.name in groups]
        keep = {s.name for s in srcs}
        return replace(self, x={k: v for k, v in self.x.items() if k in keep},
                       dt={k: v for k, v in self.dt.items() if k in keep},
                       present={k: v for k, v in self.present.items() if k in keep}, sources=srcs)

    def of_sensors(self, sensors: np.ndarray, groups: Optional[Sequence[str]] = None) -> "PointSet":
        """The points of ``sensors`` (with only the sources of ``groups`` when given)."""
        sub = self.subset(np.flatnonzero(np.isin(self.sensor, sensors)))
        return sub if groups is None else sub.with_groups(groups)
