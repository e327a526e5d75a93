"""Report figures (PNG): maps over a land background, series with an uncertainty band, density scatter,
reliability diagram, PIT histogram, spread-skill bins.

Like :mod:`smfusion.evaluation.plots`, every function draws on its own Agg
figure (no global backend change) and writes atomically. Maps draw the EASE-2
36 km land cells of the domain (``land``: lat/lon arrays, from
``ease2/ease36land.nc``) as a light grey background; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from smfusion.evaluation.plots import new_figure as _new_figure, save_png as _save

__all__ = ["map_points", "map_panels", "series_with_band", "density_scatter", "reliability_diagram",
           "pit_histogram", "pit_values", "coverage_by_level", "bar_table", "spread_skill_plot", "by_lead", "LEVELS"]

#: Nominal central-interval probabilities of the reliability diagram.
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _background(ax, land) -> None:
    if land is not None and len(land[0]):
        ax.scatter(land[1], land[0], s=9, marker="s", color="0.88", linewidths=0, zorder=0)


def _draw_points(fig, ax, lat, lon, values, title, cmap, label, land, vmin=None, vmax=None, size=18, ticks=None):
    lat, lon, values = (np.asarray(a, dtype=float).ravel() for a in (lat, lon, values))
    _background(ax, land)
    ok = np.isfinite(values)
    if (~ok).any():
        ax.scatter(lon[~ok], lat[~ok], s=size, facecolors="none", edgecolors="0.5", linewidths=0.6, zorder=1)
    sc = ax.scatter(lon[ok], lat[ok], c=values[ok], s=size, cmap=cmap, vmin=vmin, vmax=vmax,
                    edgecolors="k", linewidths=0.2, zorder=2)
    if ok.any():
        fig.colorbar(sc, ax=ax, label=label or "", shrink=0.8, ticks=ticks)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_aspect(1.0 / max(np.cos(np.radians(np.nanmean(lat) if lat.size else 0.0)), 0.2))


def map_points(lat, lon, values, title: str, path, *, land=None, cmap: str = "viridis", label: str | None = None,
               vmin=None, vmax=None) -> Path:
    """Points at (lon, lat) coloured by ``values`` over the land background; NaN points hollow."""
    fig = _new_figure((8, 5))
    _draw_points(fig, fig.add_subplot(), lat, lon, values, title, cmap, label, land, vmin, vmax)
    return _save(fig, path)


def map_panels(panels: Sequence[dict], path, *, land=None, ncols: int = 3) -> Path:
    """Several maps side by side; each panel a dict of :func:`map_points` arguments (lat, lon, values, title...)
    and optionally ``size`` and colorbar ``ticks``."""
    n = len(panels)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = _new_figure((5.2 * ncols, 3.8 * nrows))
    for i, p in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        _draw_points(fig, ax, p["lat"], p["lon"], p["values"], p["title"], p.get("cmap", "viridis"),
                     p.get("label"), land, p.get("vmin"), p.get("vmax"), size=p.get("size", 14),
                     ticks=p.get("ticks"))
    fig.tight_layout()
    return _save(fig, path)


def series_with_band(times, obs, pred, band, titles: Sequence[str], path, *, level: float = 0.9,
                     ylabel: str = "soil moisture (m3/m3)") -> Path:
    """One panel per site: observations (dots), prediction (line), and the central ``level`` interval
    ``band`` = (lower, upper) arrays like ``pred`` when given."""
    times = np.asarray(times)
    n = len(titles)
    fig = _new_figure((10, 2.3 * n + 0.6))
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        if band is not None:
            ax.fill_between(times, band[0][i], band[1][i], color="tab:blue", alpha=0.2, lw=0,
                            label=f"central {level:.0%} interval")
        ax.plot(times, pred[i], lw=1.1, color="tab:blue", label="prediction")
        if obs is not None:
            ax.plot(times, obs[i], ".", ms=3, color="k", label="observed")
        ax.set_title(titles[i], fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
    axes[0].legend(fontsize=8, loc="upper right", ncol=3)
    fig.autofmt_xdate()
    return _save(fig, path)


def density_scatter(obs, pred, path, *, title: str) -> Path:
    """Hexbin density (log counts) of prediction against observation, 1:1 line, n and pooled R."""
    from smfusion.evaluation.metrics import pearson_r, rmse

    o, p = np.asarray(obs, dtype=float).ravel(), np.asarray(pred, dtype=float).ravel()
    ok = np.isfinite(o) & np.isfinite(p)
    o, p = o[ok], p[ok]
    fig = _new_figure((5.5, 5))
    ax = fig.add_subplot()
    if o.size:
        hb = ax.hexbin(o, p, gridsize=50, bins="log", mincnt=1, cmap="viridis")
        fig.colorbar(hb, ax=ax, label="site-days (log)")
        lo, hi = float(min(o.min(), p.min())), float(max(o.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.text(0.03, 0.97, f"n = {o.size}\nRMSE = {rmse(o, p):.4f}\nR = {pearson_r(o, p):.3f}",
                transform=ax.transAxes, va="top", fontsize=9)
    ax.set_xlabel("observed")
    ax.set_ylabel("predicted")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def coverage_by_level(obs, mean, std, levels: Sequence[float] = LEVELS) -> np.ndarray:
    """Observed fraction inside each central Gaussian interval, pooled over all finite points."""
    from smfusion.evaluation.metrics import interval_coverage

    return np.array([float(interval_coverage(obs, mean, std, level=lv, axis=None)) for lv in levels])


def reliability_diagram(obs, mean, std, path, *, title: str) -> Path:
    """Observed coverage of the central intervals against their nominal probability (1:1 = calibrated)."""
    cov = coverage_by_level(obs, mean, std)
    fig = _new_figure((5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    ax.plot(LEVELS, cov, "o-", color="tab:red", label="predictions")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal probability of the central interval")
    ax.set_ylabel("fraction of observations inside")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def pit_values(obs, mean, std) -> np.ndarray:
    """Probability integral transform Phi((obs - mean) / std) at the finite points with std > 0."""
    from scipy.stats import norm

    o, m, s = (np.asarray(a, dtype=float).ravel() for a in (obs, mean, std))
    ok = np.isfinite(o) & np.isfinite(m) & np.isfinite(s) & (s > 0)
    return norm.cdf((o[ok] - m[ok]) / s[ok])


def pit_histogram(obs, mean, std, path, *, title: str, bins: int = 10) -> Path:
    """Histogram of the PIT values as densities; flat at 1 for a calibrated Gaussian forecast."""
    pit = pit_values(obs, mean, std)
    fig = _new_figure((5.5, 4))
    ax = fig.add_subplot()
    ax.hist(pit, bins=np.linspace(0, 1, bins + 1), density=True, color="tab:purple", alpha=0.8)
    ax.axhline(1.0, color="k", ls="--", lw=1, label="uniform (calibrated)")
    ax.set_xlabel("PIT = Phi((obs - mean) / std)")
    ax.set_ylabel("density")
    ax.set_title(f"{title} (n = {pit.size})", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def bar_table(rows: Mapping[str, float], path, *, title: str, xlabel: str) -> Path:
    """Horizontal bars, one per label (per-fold medians and the like)."""
    fig = _new_figure((6, 0.4 * len(rows) + 1.2))
    ax = fig.add_subplot()
    labels = list(rows)
    ax.barh(labels, [rows[k] for k in labels], color="tab:green")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.invert_yaxis()
    return _save(fig, path)


def by_lead(rows: Mapping[str, Mapping[int, float]], path, *, title: str, ylabel: str) -> Path:
    """One line per row label over the leads (``rows``: label -> lead -> value)."""
    fig = _new_figure((5.5, 4))
    ax = fig.add_subplot()
    for label, v in rows.items():
        leads = sorted(v)
        ax.plot(leads, [v[k] for k in leads], "o-", ms=4, label=label)
    ax.set_xlabel("lead (days)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def spread_skill_plot(rows: Mapping[str, Mapping], path, *, title: str) -> Path:
    """RMSE of the mean against the rms predicted std per bin (``rows``: label -> scores with a
    ``spread_skill`` table of ``rms_std``, ``rmse``); on the 1:1 line when the spread is calibrated."""
    fig = _new_figure((5.5, 5))
    ax = fig.add_subplot()
    hi = 0.0
    for label, r in rows.items():
        ss = r["spread_skill"]
        x, y = (np.asarray(ss[k], dtype=float) for k in ("rms_std", "rmse"))
        ok = np.isfinite(x) & np.isfinite(y)
        ax.plot(x[ok], y[ok], "o-", ms=4, label=label)
        hi = max(hi, float(np.max(x[ok], initial=0.0)), float(np.max(y[ok], initial=0.0)))
    ax.plot([0, hi or 1.0], [0, hi or 1.0], "k--", lw=1, label="calibrated (RMSE = std)")
    ax.set_xlabel("rms predicted total std in the bin")
    ax.set_ylabel("RMSE of the mean in the bin")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)
