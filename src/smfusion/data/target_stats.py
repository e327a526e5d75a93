"""Per-site target statistics predicted from static inputs (``normalization.target: predicted``).

Each training site with at least ``MIN_SITE_COUNT`` training values has a mean ``m`` and std ``s``
of its target (as ``normalization.target: site`` computes them). Two ridge regressions on the
site's normalised static inputs ``z`` (with intercept, penalty ``ridge`` on the slopes):
``m ~ z`` and ``log s ~ z``. Any site, seen or not, is then scaled with the predicted
``m_hat(z)`` and ``exp(log s_hat(z))`` (at least ``SITE_STD_FLOOR`` x the global std), so no
statistic of the site itself is used, at training or at prediction: only the training sites'
targets enter the fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from smfusion.data.normalize import MIN_SITE_COUNT, SITE_STD_FLOOR
from smfusion.errors import DataError
from smfusion.io.atomic import write_text

__all__ = ["TargetStatsModel", "ridge_fit", "merge_site_stats"]


def ridge_fit(z: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Coefficients ``[b0, b1..]`` minimising ``|y - b0 - z b|^2 + ridge |b|^2`` (intercept not penalised)."""
    a = np.column_stack([np.ones(len(y)), z])
    pen = np.eye(a.shape[1]) * ridge
    pen[0, 0] = 0.0
    return np.linalg.solve(a.T @ a + pen, a.T @ y)


@dataclass
class TargetStatsModel:
    """Ridge coefficients per target variable: ``{var: {"mean": [...], "log_std": [...], "floor": f}}``."""

    coef: dict[str, dict]

    @classmethod
    def fit(cls, y: dict[str, np.ndarray], z: np.ndarray, ridge: float) -> "TargetStatsModel":
        """``y``: var -> (site, time) physical training values of the training sites; ``z``: (site, n_static)
        their normalised static inputs."""
        coef = {}
        for var, vals in y.items():
            vals = np.asarray(vals, dtype=np.float64)
            ok = np.isfinite(vals)
            n = ok.sum(axis=1)
            if not ok.any():
                raise DataError("all values missing in the training period: cannot normalise", field=var)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = np.where(ok, vals, 0.0).sum(axis=1) / n
                sd = np.sqrt(np.where(ok, (vals - m[:, None]) ** 2, 0.0).sum(axis=1) / n)
            floor = SITE_STD_FLOOR * float(vals[ok].std() or 1.0)
            keep = n >= MIN_SITE_COUNT
            if keep.sum() < 2:
                raise DataError(f"target: predicted needs >= 2 training sites with {MIN_SITE_COUNT} values",
                                field=var)
            coef[var] = {"mean": ridge_fit(z[keep], m[keep], ridge).tolist(),
                         "log_std": ridge_fit(z[keep], np.log(np.maximum(sd[keep], floor)), ridge).tolist(),
                         "floor": floor}
        return cls(coef)

    def predict(self, var: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (mean, std) of ``var`` at sites with normalised static inputs ``z`` (site, n_static)."""
        c = self.coef[var]
        a = np.column_stack([np.ones(z.shape[0]), z])
        if a.shape[1] != len(c["mean"]):
            raise DataError(f"predicted target statistics were fitted on {len(c['mean']) - 1} static inputs, "
                            f"got {z.shape[1]}", field=var)
        return a @ np.asarray(c["mean"]), np.maximum(np.exp(a @ np.asarray(c["log_std"])), c["floor"])

    def site_stats(self, var: str, sites, z: np.ndarray) -> dict[str, list]:
        """The :class:`~smfusion.data.normalize.Scaler` ``site_stats`` entry of ``var`` for ``sites``."""
        m, s = self.predict(var, z)
        return {"site": [int(v) for v in sites], "mean": [float(v) for v in m], "std": [float(v) for v in s]}

    def save(self, path: str | Path) -> None:
        write_text(path, yaml.safe_dump({"method": "ridge on normalised static inputs", "targets": self.coef},
                                        sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> "TargetStatsModel":
        try:
            return cls(dict(yaml.safe_load(Path(path).read_text())["targets"]))
        except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise DataError(f"cannot read the predicted target statistics: {exc}", path=path) from None


def merge_site_stats(current: dict | None, new: dict) -> dict:
    """``current`` site_stats entry updated with ``new`` (same layout), sites kept in first-seen order."""
    if not current:
        return new
    table = {s: (m, d) for s, m, d in zip(current["site"], current["mean"], current["std"])}
    table.update({s: (m, d) for s, m, d in zip(new["site"], new["mean"], new["std"])})
    return {"site": list(table), "mean": [v[0] for v in table.values()], "std": [v[1] for v in table.values()]}
