"""Skill per era and the homogeneity check of a long product against the data's truth and target.

References: the run's target (``data.target``; where it exists) and, for
synthetic data, the truth named by the data's ``truth`` attribute (the CASM
twin's ``sm_true``), read through the run's reader (not its adapter: a target
filled from another run's product is not a reference) and composited on the
product's windows. Skill per era (``source`` layer): median over sites of the
per-site R, ubRMSE and bias over the era's steps with both values.
Homogeneity (:mod:`smfusion.evaluation.homogeneity`): per-site trend of
product - reference, mean jump and variance ratio at each era boundary
(365-day windows), CASM's stability criterion. A grid-layout product is read
at the cell holding each site.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.data.composite import composite_windows
from smfusion.data.loading import load_dataset
from smfusion.errors import DataError
from smfusion.evaluation.homogeneity import homogeneity, summarize_homogeneity
from smfusion.evaluation.metrics import bias, pearson_r, ubrmse
from smfusion.grids.ease2 import latlon_to_rowcol, rowcol_to_xy
from smfusion.io import cf
from smfusion.runs import Run

__all__ = ["era_skill", "era_bounds", "ProductCheck", "check_product", "homogeneity_lines"]


def era_skill(product, reference, time, eras: list[tuple[str, str, str]]) -> pd.DataFrame:
    """One row per era ``(name, start, end)``: sites, median per-site R, ubRMSE, bias of product vs reference."""
    t = pd.DatetimeIndex(np.asarray(time))
    rows = []
    for name, a, b in eras:
        sel = np.asarray((t >= pd.Timestamp(a)) & (t <= pd.Timestamp(b)))
        p, r = np.asarray(product, float)[:, sel], np.asarray(reference, float)[:, sel]
        vals = {"R": pearson_r(r, p), "ubRMSE": ubrmse(r, p), "bias": bias(r, p)}
        n = int(np.isfinite(vals["R"]).sum())
        rows.append({"era": name, "period": f"{pd.Timestamp(a).date()} .. {pd.Timestamp(b).date()}", "sites": n,
                     **{k: float(np.nanmedian(v)) if n else np.nan for k, v in vals.items()}})
    return pd.DataFrame(rows).set_index("era")


def era_bounds(source_era: np.ndarray, time, names: list[str]) -> list[tuple[str, str, str]]:
    """(name, first, last step) of each run of one era index along time."""
    t = pd.DatetimeIndex(np.asarray(time))
    idx = np.asarray(source_era)
    cut = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1], True])
    return [(names[int(idx[a])], str(t[a].date()), str(t[b - 1].date())) for a, b in zip(cut[:-1], cut[1:])]


@dataclass
class ProductCheck:
    text: str
    skill: dict[str, pd.DataFrame]
    homogeneity: dict[str, pd.DataFrame]


def _product_sites(prod: xr.Dataset, data: xr.Dataset, var: str) -> np.ndarray:
    """(site, time) values of ``var`` at the data's sites (site layout by id, grid layout at the holding cell)."""
    if "site" in prod[var].dims:
        return prod[var].sel(site=data["site"].values).transpose("site", "time").values
    grid = prod.attrs.get("ease2_grid")
    rows, cols = latlon_to_rowcol(grid, data["lat"].values, data["lon"].values)
    x, y = rowcol_to_xy(grid, rows, cols)
    pts = prod[var].sel(x=xr.DataArray(x, dims="site"), y=xr.DataArray(y, dims="site"), method="nearest",
                        tolerance=1.0)
    return pts.transpose("site", "time").values


def check_product(path: str | Path, run_dir: str | Path, window_days: int = 365) -> ProductCheck:
    """Skill per era and homogeneity of the product at ``path`` against the data of ``run_dir`` (module doc)."""
    prod = cf.read_product(path).load()
    if "source" not in prod or "sm" not in prod:
        raise DataError("not a chained product (needs 'sm' and 'source' layers)", path=path)
    run = Run.load(run_dir)
    cfg = run.cfg
    t = pd.DatetimeIndex(prod["time"].values)
    days = int(prod.attrs.get("composite_days", 1))
    step = pd.Timedelta(days=days)
    data = load_dataset(cfg.data.model_copy(update={"dynamic": [], "static": []}), str(t[0].date()),
                        str((t[-1] + step - pd.Timedelta(days=1)).date()), require_target=False)
    data = composite_windows(data, days, t[0]).sel(time=t)
    names = [str(n) for n in prod["source"].attrs.get("flag_meanings", "").split()]
    src = np.nan_to_num(np.asarray(prod["source"].values, dtype=float), nan=-1.0)  # read back as float with NaN
    src = src.reshape(-1, src.shape[-1]) if "site" in prod["source"].dims else src.reshape(src.shape[0], -1).T
    per_time = src.max(axis=0)  # the era of each step (-1: no value anywhere on that step)
    per_time = pd.Series(np.where(per_time >= 0, per_time, np.nan)).ffill().bfill().to_numpy().astype(int)
    eras = era_bounds(per_time, t, names)
    boundaries = [e[1] for e in eras[1:]]
    sm = _product_sites(prod, data, "sm")
    refs = {v: data[v].transpose("site", "time").values for v in (data.attrs.get("truth"), cfg.data.target[0])
            if v and v in data}
    skill, homog = {}, {}
    lines = [f"Product: {Path(path).name} ({days}-day steps, {t[0].date()} .. {t[-1].date()}); eras: "
             + ", ".join(f"{n} {a} .. {b}" for n, a, b in eras),
             f"Sites: {data.sizes['site']}; references (composited on the product's windows): "
             + ", ".join(f"{r} ({'truth' if r == data.attrs.get('truth') else 'target'})" for r in refs),
             "Statistic: median over sites of the per-site metric over the steps with both values; homogeneity of "
             f"product - reference: OLS trend per site (AR(1)-corrected), jumps and variance ratios over "
             f"{window_days}-day windows at each era boundary"]
    for ref, values in refs.items():
        skill[ref] = era_skill(sm, values, t, eras)
        res = homogeneity(sm, values, t.values, boundaries, window_days=window_days)
        homog[ref] = summarize_homogeneity(res)
        lines += ["", f"Skill per era vs {ref}:", skill[ref].to_string(float_format=lambda v: f"{v:.4f}"),
                  "", f"Homogeneity vs {ref} (m3/m3 per year for trend, m3/m3 for jumps):",
                  homog[ref].to_string(float_format=lambda v: f"{v:.4f}")]
    return ProductCheck("\n".join(lines), skill, homog)


def homogeneity_lines(pred: np.ndarray, references: dict[str, np.ndarray], time, label: str) -> str:
    """Printed homogeneity of one run's predictions (no era boundary: the trend and CASM's criterion)."""
    out = []
    for ref, values in references.items():
        table = summarize_homogeneity(homogeneity(pred, values, time))
        out += ["", f"Homogeneity of {label} vs {ref} (trend of prediction - {ref}, m3/m3 per year):",
                table.to_string(float_format=lambda v: f"{v:.4f}")]
    return "\n".join(out)
