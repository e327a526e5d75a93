"""Load the canonical Dataset a config asks for, and resolve its site split.

Readers register in :mod:`smfusion.data.readers` (``register_reader`` is re-exported here); ``span`` lives in
:mod:`smfusion.data.splits` (re-exported)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import xarray as xr

from smfusion.config import DataConfig, RunConfig
from smfusion.data.readers import ENTRY_POINT_GROUP, READERS as _READERS, Reader, register_reader  # noqa: F401
from smfusion.data.splits import holdout_sites, kfold_split, span  # noqa: F401  (span: re-exported)
from smfusion.errors import ConfigError, DataError


def data_root(cfg: DataConfig) -> Path:
    """The database root: ``cfg.root``, else the local data dir, else the checksummed download."""
    if cfg.root:
        return Path(cfg.root).expanduser()
    from smfusion.io.registry import conus_root

    return conus_root()


def get_reader(name: str) -> Reader:
    """The reader registered as ``name``: built-in, or declared under the ``smfusion.readers`` entry points."""
    if name not in _READERS:
        import smfusion.data.grid_inputs  # noqa: F401  (registers 'grid_inputs')
        import smfusion.data.gridded  # noqa: F401  (registers 'gridded')
        import smfusion.data.sensor_cells  # noqa: F401  (registers 'sensor_cells')
        import smfusion.data.tb_files  # noqa: F401  (registers 'tb_files')

    if name not in _READERS:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                _READERS[name] = ep.load()
                break
    if name not in _READERS:
        raise ConfigError(f"data.reader: no Dataset reader '{name}' (registered: {sorted(_READERS)})")
    return _READERS[name]


@register_reader("hydrodl")
def read_hydrodl_config(cfg: DataConfig, start: Optional[str], end: Optional[str]) -> xr.Dataset:
    """The hydroDL CSV database (:func:`smfusion.io.hydrodl.read_hydrodl`)."""
    from smfusion.io.hydrodl import read_hydrodl

    return read_hydrodl(data_root(cfg), dynamic=cfg.dynamic, static=cfg.static, target=cfg.target, start=start,
                        end=end, subset=cfg.subset, sites=cfg.sites)


def load_dataset(
    cfg: DataConfig, start: str | None = None, end: str | None = None, require_target: bool = True
) -> xr.Dataset:
    """Read inputs and targets of ``cfg`` between ``start`` and ``end`` (inclusive) with its reader.

    With ``require_target`` an all-missing target raises (nothing to learn or score).
    """
    ds = get_reader(cfg.reader)(cfg, start, end)
    missing = [v for v in (*cfg.dynamic, *cfg.static) if v not in ds]
    if missing:
        raise DataError(f"input variables not in the {cfg.reader} data: {missing}", field=missing[0])
    if require_target:
        check_sites(ds, cfg.target)
    return ds


def check_sites(ds: xr.Dataset, target: list[str]) -> None:
    """Raise if a target is all-NaN everywhere (nothing to learn from)."""
    for var in target:
        if var in ds and not np.isfinite(ds[var].values).any():
            raise DataError("target has no valid value in the requested period", field=var)


@dataclass
class SiteSplit:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def to_dict(self) -> dict:
        return {k: [int(s) for s in getattr(self, k)] for k in ("train", "validation", "test")}

    @classmethod
    def from_dict(cls, d: dict) -> "SiteSplit":
        return cls(*(np.asarray(d[k], dtype=int) for k in ("train", "validation", "test")))


def resolve_split(cfg: RunConfig, sites: np.ndarray) -> SiteSplit:
    """Train / validation / test site lists for ``cfg.split`` (no site in two of them,
    except the temporal split where train and test share sites but not days)."""
    sp = cfg.split
    sites = np.asarray(sites)
    if sp.kind == "temporal":
        train, test = sites, sites
    elif sp.kind == "kfold":
        train, test = kfold_split(sites, sp.k, sp.fold, sp.seed)
    else:
        unknown = sorted(set(sp.train_sites + sp.test_sites) - set(sites.tolist()))
        if unknown:
            raise DataError(f"split lists sites not in the data: {unknown[:10]}", field="split")
        if set(sp.train_sites) & set(sp.test_sites):
            raise DataError("split.train_sites and split.test_sites overlap", field="split")
        train, test = np.sort(sp.train_sites), np.sort(sp.test_sites)
    train, val = holdout_sites(train, sp.validation_fraction, sp.seed + 1)
    return SiteSplit(train=train, validation=val, test=test)
