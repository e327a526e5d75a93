"""Z-score normalisation fitted on the training period only, stored as YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from smfusion.errors import DataError
from smfusion.io.atomic import write_text


MIN_SITE_COUNT = 10  # fewer valid training values: the site uses the global statistics
SITE_STD_FLOOR = 0.05  # per-site std is at least this fraction of the global std


@dataclass
class Scaler:
    """Per-variable ``(x' - mean) / std`` where ``x' = log1p(x)`` for ``log1p`` variables.

    Variables in ``site_stats`` are scaled with each site's own training mean
    and std (``{"site": [...], "mean": [...], "std": [...]}``); sites with fewer
    than ``MIN_SITE_COUNT`` training values use the global statistics.
    """

    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    log1p: list[str] = field(default_factory=list)
    site_stats: dict[str, dict[str, list]] = field(default_factory=dict)

    @classmethod
    def fit(cls, ds: xr.Dataset, variables: list[str], log1p: list[str] = (), per_site: list[str] = ()) -> "Scaler":
        """Statistics of ``variables`` over every value of ``ds`` (pass the training slice)."""
        sc = cls(log1p=list(log1p))
        for var in per_site:
            vals = sc._pre(var, np.asarray(ds[var].transpose("site", ...).values, dtype=np.float64))
            vals = vals.reshape(vals.shape[0], -1)
            ok = np.isfinite(vals)
            n = ok.sum(axis=1)
            g = vals[ok]
            if g.size == 0:
                raise DataError("all values missing in the training period: cannot normalise", field=var)
            g_mean, g_std = float(g.mean()), float(g.std()) or 1.0
            filled = np.where(ok, vals, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = filled.sum(axis=1) / n
                sd = np.sqrt(np.where(ok, (vals - m[:, None]) ** 2, 0.0).sum(axis=1) / n)
            enough = n >= MIN_SITE_COUNT
            m = np.where(enough, m, g_mean)
            sd = np.where(enough, np.maximum(sd, SITE_STD_FLOOR * g_std), g_std)
            sc.site_stats[var] = {
                "site": [int(v) for v in ds["site"].values],
                "mean": [float(v) for v in m],
                "std": [float(v) for v in sd],
            }
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

    def _stats(self, var: str, sites, ndim: int) -> tuple:
        """Mean and std of ``var``, per site (broadcast over trailing dims) when fitted so."""
        if var not in self.site_stats:
            return self.mean[var], self.std[var]
        if sites is None:
            raise DataError("variable is normalised per site: the sites must be given", field=var)
        st = self.site_stats[var]
        index = {s: i for i, s in enumerate(st["site"])}
        missing = [int(s) for s in sites if int(s) not in index]
        if missing:
            raise DataError(
                f"per-site normalisation has no training statistics for sites {missing[:10]}"
                " (per-site scaling needs observations at every predicted site)",
                field=var,
            )
        rows = np.array([index[int(s)] for s in sites])
        shape = (-1,) + (1,) * (ndim - 1)
        return np.asarray(st["mean"])[rows].reshape(shape), np.asarray(st["std"])[rows].reshape(shape)

    def transform(self, var: str, x: np.ndarray, sites=None) -> np.ndarray:
        x = self._pre(var, np.asarray(x, dtype=np.float64))
        m, sd = self._stats(var, sites, x.ndim)
        return ((x - m) / sd).astype(np.float32)

    def inverse(self, var: str, z: np.ndarray, sites=None) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        m, sd = self._stats(var, sites, z.ndim)
        x = z * sd + m
        return (np.expm1(x) if var in self.log1p else x).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "method": "zscore",
            "log1p": list(self.log1p),
            "variables": {v: {"mean": self.mean[v], "std": self.std[v]} for v in self.mean},
            "per_site": self.site_stats,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        sc = cls(log1p=list(d.get("log1p", [])), site_stats=dict(d.get("per_site") or {}))
        for v, s in d["variables"].items():
            sc.mean[v], sc.std[v] = float(s["mean"]), float(s["std"])
        return sc

    def save(self, path: str | Path) -> None:
        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> "Scaler":
        """A run's ``scaler.yaml`` (YAML data only); :class:`DataError` naming it when it is not one."""
        try:
            return cls.from_dict(yaml.safe_load(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
            from smfusion.errors import DataError

            raise DataError(f"not a scaler file ({type(exc).__name__})", path=path,
                            hint="train again with --restart") from None
