"""A run's climatologies and the inputs the model sees (features, then anomalies).

``seasonal.target_mode: anomaly`` trains on the target minus its day-of-year
climatology (training period and sites) and adds it back at prediction;
``seasonal.input_mode: anomaly`` does the same for the dynamic inputs
(training period, all sites: forcing only). docs/casm.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import xarray as xr

from smfusion.config import RunConfig
from smfusion.data.climate import static_inputs
from smfusion.data.climatology import Climatology
from smfusion.data.features import add_features, feature_names
from smfusion.data.loading import SiteSplit
from smfusion.data.splits import select_period
from smfusion.errors import ConfigError, DataError
from smfusion.io.atomic import atomic_path

__all__ = ["Seasonal", "fit_seasonal", "prepare", "dynamic_inputs", "climatology_name", "input_names",
           "anomaly_inputs", "anomaly_vars"]


def climatology_name(var: str) -> str:
    """Input column holding the climatology of anomaly input ``var`` (``seasonal.climatology_inputs``)."""
    return f"{var}_clim"


def dynamic_inputs(cfg: RunConfig) -> list[str]:
    """The model's dynamic input columns: ``data.dynamic``, the derived ``features``, then the climatologies of
    ``seasonal.climatology_inputs``."""
    clim = [climatology_name(v) for v in cfg.seasonal.climatology_inputs]
    return [*cfg.data.dynamic, *feature_names(cfg.features), *clim]


def input_names(cfg: RunConfig) -> list[str]:
    """Columns of the model's input layer, in order: dynamic inputs, then statics (descriptors last)."""
    return [*dynamic_inputs(cfg), *static_inputs(cfg)]


def anomaly_inputs(cfg: RunConfig) -> list[str]:
    """Dynamic input columns taken as anomalies (derived features follow their base variable)."""
    if cfg.seasonal.input_mode != "anomaly":
        return []
    base = cfg.seasonal.inputs if cfg.seasonal.inputs is not None else cfg.data.dynamic
    return [*base, *feature_names(cfg.features, of=base)]


def anomaly_vars(cfg: RunConfig) -> list[str]:
    """Every variable the model sees as ``value - climatology``: anomaly inputs, then anomaly targets."""
    target = list(cfg.data.target) if cfg.seasonal.target_mode == "anomaly" else []
    return [*anomaly_inputs(cfg), *target]


@dataclass
class Seasonal:
    """Climatologies of a run (see :mod:`smfusion.data.climatology`).

    ``clims`` holds the target's (fitted on the training period and sites,
    slots short of ``min_count`` filled with the site mean) and each anomaly
    input's (training period, all sites: forcing only). ``anomalies`` names the
    variables the model sees as ``value - climatology``.
    """

    clims: dict[str, Climatology]
    anomalies: list[str]

    def save(self, run_dir: Path) -> None:
        for var, clim in self.clims.items():
            with atomic_path(Path(run_dir) / "climatology" / f"{var}.nc") as tmp:
                clim.to_dataset().to_netcdf(tmp)

    @classmethod
    def load(cls, run_dir: Path, cfg: RunConfig) -> "Seasonal":
        clims = {}
        for var in [*cfg.data.target, *anomaly_inputs(cfg)]:
            path = Path(run_dir) / "climatology" / f"{var}.nc"
            if path.is_file():
                try:
                    with xr.open_dataset(path) as f:
                        clims[var] = Climatology.from_dataset(f.load())
                except (OSError, ValueError, KeyError, TypeError) as exc:  # not a NetCDF climatology
                    raise DataError(f"not a climatology file ({type(exc).__name__})", path=path,
                                    hint="train again with --restart") from None
        anomalies = anomaly_vars(cfg)
        missing = [v for v in anomalies if v not in clims]
        if missing:
            raise DataError(f"run is trained on anomalies of {missing} but has no climatology for them",
                            path=Path(run_dir) / "climatology")
        return cls(clims, anomalies)


def fit_seasonal(cfg: RunConfig, ds: xr.Dataset, split: SiteSplit, given: Optional[dict] = None) -> Seasonal:
    """Climatologies: target on the training period and sites, anomaly inputs on all sites over
    ``seasonal.input_period`` (default the training period).

    ``given`` (variable -> Climatology) are used as they are (transfer from a source run).
    """
    given = dict(given or {})
    sea = cfg.seasonal
    ds = add_features(ds, cfg.features)
    clims = {}
    train_p = cfg.periods.train.as_tuple()
    input_p = sea.input_period.as_tuple() if sea.input_period is not None else train_p
    for var in [*cfg.data.target, *anomaly_inputs(cfg)]:
        if var in given:
            clims[var] = given[var]
            continue
        if var not in ds:
            continue
        is_target = var in cfg.data.target
        da = ds[var].sel(site=split.train) if is_target else ds[var]
        period = train_p if is_target else input_p
        if not np.isfinite(select_period(da.to_dataset(), period)[var].values).any():
            if var in anomaly_vars(cfg):
                raise DataError(f"no valid value in {period[0]} .. {period[1]} to fit a climatology", field=var)
            continue
        clims[var] = Climatology().fit(da, window=sea.window, min_count=sea.min_count, period=period).filled()
    return Seasonal(clims, anomaly_vars(cfg))


def prepare(ds: xr.Dataset, cfg: RunConfig, seasonal: Optional[Seasonal] = None) -> xr.Dataset:
    """Add the derived input features, then replace anomaly variables by ``value - climatology``; the
    climatologies of ``seasonal.climatology_inputs`` become input columns ``<name>_clim``."""
    anomalies = anomaly_vars(cfg)
    if anomalies and seasonal is None:
        raise ConfigError("the config trains on anomalies (seasonal section): pass the run's climatologies")
    out = add_features(ds, cfg.features)
    if not anomalies:
        return out
    out = out.copy()
    for var in anomalies:
        if var in out:
            try:
                out[var] = seasonal.clims[var].transform(out[var]).astype(np.float32)
            except ValueError as exc:
                raise DataError(f"cannot take anomalies: {exc}", field=var) from None
    for var in cfg.seasonal.climatology_inputs:
        if var in out:
            clim = seasonal.clims[var].climatology_for(out["time"].values, site=out["site"].values)
            out[climatology_name(var)] = (("site", "time"), clim.values.astype(np.float32),
                                          {"long_name": f"day-of-year climatology of {var}",
                                           "units": out[var].attrs.get("units", "1")})
    return out
