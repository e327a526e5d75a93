"""Evaluation figures written as PNG files.

Each function draws on its own ``matplotlib.figure.Figure`` attached to the
Agg canvas, chosen inside the function: importing this module imports no
matplotlib and changes no global backend. Files are written atomically via
:func:`smfusion.io.atomic.atomic_path`; each function returns the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from smfusion.io.atomic import atomic_path

__all__ = ["plot_site_map", "plot_timeseries", "plot_scatter", "new_figure", "save_png"]


def _new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


#: Public names of the two helpers, for other figure modules (e.g. the HTML report's).
new_figure = _new_figure
save_png = _save


def plot_site_map(lat, lon, values, title: str, path, cmap: str = "viridis", label: str | None = None) -> Path:
    """Scatter map of sites at (lon, lat) coloured by ``values``; NaN sites drawn hollow grey."""
    lat, lon, values = (np.asarray(a, dtype=float).ravel() for a in (lat, lon, values))
    if not (lat.size == lon.size == values.size):
        raise ValueError("lat, lon and values must have one entry per site")
    fig = _new_figure((8, 5))
    ax = fig.add_subplot()
    ok = np.isfinite(values)
    if (~ok).any():
        ax.scatter(lon[~ok], lat[~ok], s=12, facecolors="none", edgecolors="0.6", linewidths=0.5)
    sc = ax.scatter(lon[ok], lat[ok], c=values[ok], s=12, cmap=cmap)
    if ok.any():
        fig.colorbar(sc, ax=ax, label=label or "")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    return _save(fig, path)


def plot_timeseries(times, obs, sims: Mapping[str, np.ndarray], site_names: Sequence[str], path,
                    ylabel: str = "soil moisture") -> Path:
    """One panel per site: observations as dots, each simulation in ``sims`` as a line.

    ``obs`` and every ``sims`` value are (n_sites, time) arrays for the few
    sites named in ``site_names``.
    """
    times = np.asarray(times)
    obs = np.atleast_2d(np.asarray(obs, dtype=float))
    n = len(site_names)
    if obs.shape != (n, times.size):
        raise ValueError(f"obs must be (len(site_names), len(times)) = {(n, times.size)}, got {obs.shape}")
    sims = {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in sims.items()}
    for k, v in sims.items():
        if v.shape != obs.shape:
            raise ValueError(f"simulation '{k}' has shape {v.shape}, expected {obs.shape}")
    fig = _new_figure((10, 2.2 * n + 0.5))
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        ax.plot(times, obs[i], ".", ms=3, color="k", label="obs")
        for name, v in sims.items():
            ax.plot(times, v[i], lw=1, label=name)
        ax.set_title(str(site_names[i]), fontsize=9)
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=8, loc="upper right")
    fig.autofmt_xdate()
    return _save(fig, path)


def plot_scatter(obs, sim, path, title: str | None = None) -> Path:
    """Simulated against observed over all valid pairs, with the 1:1 line and n, RMSE, R."""
    from smfusion.evaluation.metrics import pearson_r, rmse

    obs = np.asarray(obs, dtype=float).ravel()
    sim = np.asarray(sim, dtype=float).ravel()
    if obs.shape != sim.shape:
        raise ValueError(f"obs and sim differ in size: {obs.size} vs {sim.size}")
    ok = np.isfinite(obs) & np.isfinite(sim)
    o, s = obs[ok], sim[ok]
    fig = _new_figure((5, 5))
    ax = fig.add_subplot()
    if o.size > 20000:
        ax.hexbin(o, s, gridsize=60, bins="log", mincnt=1, cmap="viridis")
    else:
        ax.scatter(o, s, s=4, alpha=0.5)
    if o.size:
        lo, hi = float(min(o.min(), s.min())), float(max(o.max(), s.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.text(0.03, 0.97, f"pooled over all pairs\nn = {o.size}\nRMSE = {rmse(o, s):.4f}\nR = {pearson_r(o, s):.3f}",
            transform=ax.transAxes, va="top", fontsize=9)
    ax.set_xlabel("observed")
    ax.set_ylabel("simulated")
    if title:
        ax.set_title(title)
    return _save(fig, path)
