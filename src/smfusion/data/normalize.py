"""Z-score normalisation fitted on the training period only, stored as YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from smfusion.errors import DataError
from smfusion.io.atomic import write_text


@dataclass
class Scaler:
    """Per-variable ``(x' - mean) / std`` where ``x' = log1p(x)`` for ``log1p`` variables."""

    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    log1p: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, ds: xr.Dataset, variables: list[str], log1p: list[str] = ()) -> "Scaler":
        """Statistics of ``variables`` over every value of ``ds`` (pass the training slice)."""
        sc = cls(log1p=list(log1p))
        for var in variables:
            if var not in ds:
                raise DataError("variable not in dataset", field=var)
            vals = sc._pre(var, np.asarray(ds[var].values, dtype=np.float64))
            vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                raise DataError("all values missing in the training period: cannot normalise", field=var)
            std = float(vals.std())
            sc.mean[var] = float(vals.mean())
            sc.std[var] = std if std > 0 else 1.0
        return sc

    def _pre(self, var: str, x: np.ndarray) -> np.ndarray:
        return np.log1p(np.maximum(x, 0.0)) if var in self.log1p else x

    def transform(self, var: str, x: np.ndarray) -> np.ndarray:
        return ((self._pre(var, np.asarray(x, dtype=np.float64)) - self.mean[var]) / self.std[var]).astype(np.float32)

    def inverse(self, var: str, z: np.ndarray) -> np.ndarray:
        x = np.asarray(z, dtype=np.float64) * self.std[var] + self.mean[var]
        return (np.expm1(x) if var in self.log1p else x).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "method": "zscore",
            "log1p": list(self.log1p),
            "variables": {v: {"mean": self.mean[v], "std": self.std[v]} for v in self.mean},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        sc = cls(log1p=list(d.get("log1p", [])))
        for v, s in d["variables"].items():
            sc.mean[v], sc.std[v] = float(s["mean"]), float(s["std"])
        return sc

    def save(self, path: str | Path) -> None:
        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> "Scaler":
        return cls.from_dict(yaml.safe_load(Path(path).read_text()))
