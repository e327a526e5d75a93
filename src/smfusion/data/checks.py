"""Check a run config's inputs in seconds, before any work: ``check_config(cfg) -> list[Problem]``.

Each data reader has its own check (a *hook*), registered with
``@register_check("<reader>")``; a hook returns the problems it finds
(files missing, variables absent, periods outside the data, bad values) and
never downloads. ``smfusion check CONFIG`` prints them; the pipeline calls
:func:`raise_for_problems` before it reads or trains (docs/errors.md).

Hooks: ``hydrodl`` (files, variables, sites, periods, values), ``twin``, ``casm_twin`` and
``points`` (the CONUS sample they draw on, periods), ``tfrecord`` (shards
present), ``gridded`` (files present, forcing dates cover the periods); with their readers:
``tb_files`` (in :mod:`smfusion.data.tb_files`: each TB sensor's own check, files present by default),
``grid_inputs`` (in :mod:`smfusion.data.grid_inputs`: stores open, variables and units), ``sensor_cells``. A
reader without a hook gets a warning; its files are checked when they are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from smfusion.config import RunConfig
from smfusion.data.problems import (CHECKS, Hook, Problem, Severity, granule_problems,  # noqa: F401
                                   raise_for_problems, register_check)
from smfusion.errors import DataError, SmfusionError

def check_config(cfg: RunConfig, training: bool = True) -> list[Problem]:
    """Every problem found in the inputs of ``cfg`` (errors and warnings), without reading more than needed;
    ``training`` False (a trained run's config, to predict): what only training reads (the transfer source)
    is not asked for."""
    import smfusion.data.grid_inputs  # noqa: F401  (registers the grid_inputs hook)
    import smfusion.data.sensor_cells  # noqa: F401  (registers the sensor_cells hook)
    import smfusion.data.tb_files  # noqa: F401  (registers the tb_files hook)

    problems = _generic(cfg, training)
    hook = CHECKS.get(cfg.data.reader)
    if hook is None:
        problems.append(Problem("data.reader", f"no input check for reader '{cfg.data.reader}' yet",
                                "its files are checked when they are read", "warning"))
        return problems
    try:
        problems += hook(cfg)
    except SmfusionError as exc:  # a hook stops at a problem that hides the rest
        problems.append(Problem.from_error(exc))
    return problems


def _generic(cfg: RunConfig, training: bool) -> list[Problem]:
    from smfusion.data.adapters import adapter_for
    from smfusion.io.ownership import is_run_dir

    out = []
    try:
        adapter_for(cfg).check()  # what the data adapter refuses before reading anything
    except SmfusionError as exc:
        out.append(Problem.from_error(exc))
    if cfg.descriptors.climate and cfg.periods is not None:  # data/climate.py: a year of the training forcing
        t = cfg.periods.train
        days = (pd.Timestamp(t.end) - pd.Timestamp(t.start)).days + 1
        if days < 365:
            out.append(Problem("periods.train", f"descriptors.climate need a full year of training forcing; "
                               f"{t.start} .. {t.end} has {days} days", "train over at least 365 days, or drop "
                               "descriptors.climate"))
    if training and cfg.transfer is not None and not is_run_dir(cfg.transfer.from_run):
        out.append(Problem("transfer.from_run", f"{cfg.transfer.from_run} is not a trained run directory",
                           "train the source run first, or fix the path"))
    return out


# -- hydroDL CSV database --------------------------------------------------------------------------------------
def _hydrodl_root(cfg: RunConfig, problems: list[Problem]) -> Optional[Path]:
    """The database root the run would read, without downloading (None, with a problem, when there is none)."""
    from smfusion import settings
    from smfusion.io.registry import BASE_URL, first_missing

    if cfg.data.root:
        root = Path(cfg.data.root).expanduser()
        if not root.is_dir():
            problems.append(Problem("data.root", f"{root} is not a folder", "fix data.root in the config"))
            return None
        return root
    local = settings.conus_dir()
    if local is None:
        cache = settings.cache_dir()
        if cache.is_dir() and first_missing(cache) is None:
            return cache
        problems.append(Problem("data.root", "no local CONUS data: the run will download the public sample",
                                f"from {BASE_URL} into {cache}; set {settings.ENV_VAR} to check local files",
                                "warning"))
        return None
    missing = first_missing(local)
    if missing is not None:
        problems.append(Problem(str(local / missing), "file of the CONUS sample missing", settings.HINT))
        return None
    return local


def _missing_files(cfg: RunConfig, sub: Path, years: dict[int, pd.DatetimeIndex], t0, t1) -> list[Problem]:
    d = cfg.data
    out = []
    for year, dates in years.items():
        if dates[-1] < t0 or dates[0] > t1:
            continue
        for var in d.dynamic:
            if not (sub / str(year) / f"{var}.csv").is_file():
                out.append(Problem(str(sub / str(year) / f"{var}.csv"), "missing file (dynamic variable)",
                                   f"every data.dynamic variable needs a file in each year folder from {t0.date()}"
                                   f" to {t1.date()}"))
    for var in d.static:
        if not (sub / "const" / f"{var}.csv").is_file():
            out.append(Problem(str(sub / "const" / f"{var}.csv"), "missing file (static variable)",
                               "check the spelling in data.static"))
    for var in d.target:
        if not any((sub / str(y) / f"{var}.csv").is_file() for y in years):
            out.append(Problem(f"data.target [{var}]", f"no year folder of {sub} has {var}.csv",
                               "check the spelling in data.target"))
    return out


def _period_problems(cfg: RunConfig, first: pd.Timestamp, last: pd.Timestamp) -> list[Problem]:
    p = cfg.periods
    out = []
    for name in ("train", "validation", "test"):
        period = getattr(p, name)
        if period is None:
            continue
        t0, t1 = pd.Timestamp(period.start), pd.Timestamp(period.end)
        if t0 < first or t1 > last:
            out.append(Problem(f"periods.{name}", f"{period.start} .. {period.end} is outside the data,"
                               f" {first.date()} .. {last.date()}", "shorten the period"))
        elif name != "train" and t0 - pd.Timedelta(days=p.warmup_days) < first:
            out.append(Problem(f"periods.{name}", f"warm-up of {p.warmup_days} days before {period.start} starts"
                               f" before the data ({first.date()}): it is shortened", "", "warning"))
    return out


def _site_problems(cfg: RunConfig, n_site: int, crd: Path) -> list[Problem]:
    d, sp = cfg.data, cfg.split
    out = []
    for key, sites in (("data.sites", d.sites), ("split.train_sites", sp.train_sites),
                       ("split.test_sites", sp.test_sites)):
        bad = [s for s in sites or [] if s >= n_site]
        if bad:
            out.append(Problem(key, f"site {bad[0]} out of range: {crd} lists {n_site} cells (0 .. {n_site - 1})"))
    n_used = len(d.sites) if d.sites is not None else n_site
    if sp.kind == "kfold" and sp.k > n_used:
        out.append(Problem("split.k", f"{sp.k} folds for {n_used} sites", "use fewer folds or more sites"))
    return out


def _target_problems(cfg: RunConfig, ds) -> list[Problem]:
    out = []
    for var in cfg.data.target:
        obs = ds[var].notnull().any("site")
        days = pd.DatetimeIndex(ds.time.values)[obs.values]
        seen = f"{days[0].date()} .. {days[-1].date()}" if days.size else "never"
        for name in ("train", "validation", "test"):
            period = getattr(cfg.periods, name)
            if period is None:
                continue
            inside = (days >= pd.Timestamp(period.start)) & (days <= pd.Timestamp(period.end))
            if not inside.any():
                out.append(Problem(f"periods.{name}", f"{var} has no observation in {period.start} .. {period.end}"
                                   f" (observed {seen})", "move the period to days the target is observed"))
    return out


def check_period(cfg: RunConfig, start: str, end: str) -> list[Problem]:
    """Problems of predicting ``start .. end`` (``--start``/``--end``) with a run trained on ``cfg``: the
    period must lie inside the inputs' data (hydroDL reader; other readers: nothing checked yet)."""
    from smfusion.io.hydrodl import available_dates

    problems: list[Problem] = []
    if cfg.data.reader != "hydrodl":
        return problems
    root = _hydrodl_root(cfg, problems)
    if root is None:
        return [p for p in problems if p.severity == "error"]
    years = available_dates(root, cfg.data.subset)
    first, last = min(v[0] for v in years.values()), max(v[-1] for v in years.values())
    if pd.Timestamp(end) > last:
        problems.append(Problem("--end", f"{end} is after the last day of the inputs, {last.date()}",
                                f"the run's data ({root}) end there"))
    if pd.Timestamp(start) < first:
        problems.append(Problem("--start", f"{start} is before the first day of the inputs, {first.date()}",
                                f"the run's data ({root}) start there"))
    return problems


@register_check("hydrodl")
def check_hydrodl(cfg: RunConfig) -> list[Problem]:
    """Files, variables, sites, periods and values of a hydroDL-database config (about a second for CONUS)."""
    from smfusion.data.loading import span
    from smfusion.io.hydrodl import available_dates, read_coords, read_hydrodl

    problems: list[Problem] = []
    root = _hydrodl_root(cfg, problems)
    if root is None:
        return problems
    d = cfg.data
    sub = root / d.subset
    years = available_dates(root, d.subset)
    first, last = min(v[0] for v in years.values()), max(v[-1] for v in years.values())
    w0, w1 = (pd.Timestamp(t) for t in span(cfg))
    t0, t1 = max(w0, first), min(w1, last)
    problems += _period_problems(cfg, first, last)
    problems += _missing_files(cfg, sub, years, t0, t1)
    lat, _ = read_coords(root, d.subset)
    problems += _site_problems(cfg, lat.size, sub / "crd.csv")
    if any(p.severity == "error" for p in problems) or t1 < t0:
        return problems  # the values cannot be read as asked
    try:
        ds = read_hydrodl(root, d.dynamic, d.static, d.target, str(t0.date()), str(t1.date()), d.subset, d.sites)
    except DataError as exc:
        return problems + [Problem.from_error(exc)]
    return problems + _target_problems(cfg, ds)



def _conus_period_problems(cfg: RunConfig) -> list[Problem]:
    """The CONUS sample a twin or point-table config draws on: present, and the periods inside its dates."""
    from smfusion.io.hydrodl import available_dates

    problems: list[Problem] = []
    root = _hydrodl_root(cfg, problems)
    if root is None or cfg.periods is None:
        return problems
    years = available_dates(root, cfg.data.subset)
    first, last = min(v[0] for v in years.values()), max(v[-1] for v in years.values())
    return problems + _period_problems(cfg, first, last)


@register_check("twin")
def check_twin(cfg: RunConfig) -> list[Problem]:
    """The twin is generated from the real CONUS forcing and soils: they must cover every period."""
    return _conus_period_problems(cfg)


@register_check("points")
def check_points(cfg: RunConfig) -> list[Problem]:
    """The CONUS point table: the sample's files, and the periods inside its dates."""
    return _conus_period_problems(cfg)


@register_check("tfrecord")
def check_tfrecord(cfg: RunConfig) -> list[Problem]:
    """Labelled shards: ``data.root`` names a folder (or glob) holding at least one TFRecord file."""
    from smfusion.io.tfrecord import list_shards

    if not cfg.data.root:
        return [Problem("data.root", "reader 'tfrecord' needs the folder of labelled shards",
                        "set data.root in the config")]
    try:
        list_shards(cfg.data.root)
    except SmfusionError as exc:
        return [Problem.from_error(exc)]
    return []


@register_check("gridded")
def check_gridded(cfg: RunConfig) -> list[Problem]:
    """Real-format multiscale inputs: the forcing file, the SMAP and ISMN folders exist, and the forcing's
    dates cover every period (warm-up included)."""
    import xarray as xr

    from smfusion.data.loading import span
    from smfusion.io.smap_l3 import find_granules

    g = cfg.data.section_of("gridded")
    out = [Problem(f"data.gridded.{key}", f"{path} does not exist", "fix the path in the config")
           for key, path in (("forcing", g.forcing), ("smap_dir", g.smap_dir), ("ismn_dir", g.ismn_dir))
           if not Path(path).expanduser().exists()]
    if out:
        return out
    out += granule_problems(find_granules(Path(g.smap_dir).expanduser()), "data.gridded.smap_dir")
    if out or cfg.periods is None:
        return out
    try:
        with xr.open_dataset(Path(g.forcing).expanduser()) as f:
            times = pd.DatetimeIndex(f["time"].values)
    except (OSError, ValueError, KeyError) as exc:
        return [Problem(str(g.forcing), f"cannot read the forcing's time axis ({type(exc).__name__})")]
    first, last = times.min(), times.max()
    w0, _ = (pd.Timestamp(t) for t in span(cfg))
    out += _period_problems(cfg, first, last)
    if w0 < first:
        out.append(Problem("periods.warmup_days", f"the warm-up starts {w0.date()}, before the forcing "
                           f"({first.date()}): it is shortened", "", "warning"))
    return out


@register_check("casm_twin")
def check_casm_twin(cfg: RunConfig) -> list[Problem]:
    """The CASM twin: its file (``casm_twin.path``) or the CONUS sample it is generated from; periods inside
    its span."""
    import xarray as xr

    tw = cfg.data.casm_twin
    if tw is not None and tw.path is not None:
        path = Path(tw.path).expanduser()
        if not path.is_file():
            return [Problem("data.casm_twin.path", f"{path} does not exist",
                            "write it with smfusion casm-twin --out, or drop path to generate the twin")]
        try:
            with xr.open_dataset(path) as f:
                times = pd.DatetimeIndex(f["time"].values)
        except (OSError, ValueError, KeyError) as exc:
            return [Problem(str(path), f"cannot read the twin's time axis ({type(exc).__name__})")]
        first, last = times.min(), times.max()
    else:
        problems: list[Problem] = []
        if _hydrodl_root(cfg, problems) is None:
            return problems
        first, last = pd.Timestamp(tw.start if tw else "2002-01-01"), pd.Timestamp(tw.end if tw else "2020-12-31")
    return _period_problems(cfg, first, last) if cfg.periods is not None else []
