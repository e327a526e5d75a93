"""The operational daily job of a nowcast: append one day to a site product, resuming the carried state.

``append_day(run, day, store)`` predicts ``day`` for every cell and appends it along ``time`` to the Zarr store
``store`` (dims site, time; the layers of :mod:`smfusion.products.longterm`). The recurrent state after each
day is kept beside the store (``<store>.state/state_<day>.npz``), so the next day reads only the days its
inputs need (the forcing features' history and, for data integration, ``lead + max_age`` days of retrievals)
and starts from that state; the first day spins up over the run's ``warmup_days``. Appending days one by one
gives the values of ``predict --product`` started on the same first day (``tests/products/test_nowcast.py``).

Order of the writes (a killed job is rerun with the same day): the new state is saved first, then the day is
appended, then older states are removed; a store that already holds ``day`` is refused, as is a gap.
Models that do not carry their state (the MLP) are refused: use ``predict --product``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.errors import ConfigError
from smfusion.io.atomic import atomic_path
from smfusion.products import engine
from smfusion.products.blocks import history_days, time_mode
from smfusion.products.layers import applied_recalibration
from smfusion.products.longterm import _attrs, _site_chunk, layer_names
from smfusion.runs import Run

__all__ = ["append_day"]


def _state_dir(store: Path) -> Path:
    return store.parent / f"{store.name}.state"


def _last_day(store: Path) -> Optional[pd.Timestamp]:
    if not store.exists():
        return None
    with xr.open_zarr(store, consolidated=False) as ds:
        return pd.Timestamp(ds.time.values[-1])


def _read_state(store: Path, day: pd.Timestamp, run: Run, lead) -> dict[str, np.ndarray]:
    path = _state_dir(store) / f"state_{day:%Y-%m-%d}.npz"
    if not path.is_file():
        raise ConfigError(f"{path}: missing: the state after the store's last day {day:%Y-%m-%d} (the store was not "
                          "made by append_day, or its state folder was removed; start a new store)")
    with np.load(path) as f:
        state = {k: f[k] for k in f.files}
    meta = {"lead": np.int64(-1 if lead is None else lead), "members": np.int64(len(run.members))}
    for key, want in meta.items():
        if int(state.pop(f"_{key}")) != int(want):
            raise ConfigError(f"{path}: written with another {key} than this call's ({int(want)})")
    return state


def _save_state(store: Path, day: pd.Timestamp, state: dict, run: Run, lead) -> None:
    d = _state_dir(store)
    d.mkdir(parents=True, exist_ok=True)
    meta = {"_lead": np.int64(-1 if lead is None else lead), "_members": np.int64(len(run.members))}
    with atomic_path(d / f"state_{day:%Y-%m-%d}.npz", suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **state, **meta)


def append_day(run_dir: str | Path | Run, day: str, store: str | Path, lead: Optional[int] = None,
               recalibration: Optional[str] = None, sites: Optional[np.ndarray] = None) -> Path:
    """Predict ``day`` and append it to ``store`` (module docstring); returns ``store``. ``lead``: data
    integration runs use the retrievals up to ``day - lead`` (None: the run's lead)."""
    run = (run_dir if isinstance(run_dir, Run) else Run.load(run_dir)).at_lead(lead)
    if time_mode(run.members) != "state":
        raise ConfigError(f"append-day: run '{run.run_dir}' has no carried state (not an LSTM): use predict --product")
    store, day = Path(store), pd.Timestamp(day)
    lead = getattr(run.adapter, "lead", None)
    last = _last_day(store)
    if last is not None and day != last + pd.Timedelta(days=1):
        raise ConfigError(f"{store}: ends {last:%Y-%m-%d}; the next day to append is "
                          f"{last + pd.Timedelta(days=1):%Y-%m-%d}, not {day:%Y-%m-%d}")
    carry = _read_state(store, last, run, lead) if last is not None else None
    back = history_days(run.cfg, lead) if carry is not None else run.cfg.periods.warmup_days
    ids = np.asarray(sites) if sites is not None else run.adapter.load(
        f"{day:%Y-%m-%d}", f"{day:%Y-%m-%d}", require_target=False, inputs_only=True)["site"].values
    ds = engine.load_sites(run, ids, f"{day - pd.Timedelta(days=back):%Y-%m-%d}", f"{day:%Y-%m-%d}")
    b = run.adapter.eval_batches(ds, ids, (f"{day:%Y-%m-%d}", f"{day:%Y-%m-%d}"))
    unc = run.cfg.uncertainty
    recal = applied_recalibration(run, recalibration, unc.noise_runs)
    rng = np.random.default_rng(np.random.SeedSequence([unc.seed, day.toordinal()]))
    dist, state = run.predict_block(b, unc.noise_runs, unc.noise, rng, carry=carry, keep_state=True,
                                    recalibration=recal)
    layers = _site_chunk(run, dist, ids, np.array([day.to_datetime64()]), 1)
    var, prefix = next(iter(layer_names(run.cfg.data.target).items()))
    piece = xr.Dataset({k: (("site", "time"), np.asarray(v, np.float32), _attrs(k, var, prefix, "m3 m-3", 1, recal))
                        for k, v in layers.items()},
                       coords={"site": ids.astype(np.int64), "time": [day.to_datetime64()],
                               "lat": ("site", ds["lat"].sel(site=ids).values),
                               "lon": ("site", ds["lon"].sel(site=ids).values)})
    _save_state(store, day, state, run, lead)
    if last is None:
        piece.attrs.update({"run_dir": str(run.run_dir), "lead_days": -1 if lead is None else int(lead)})
        piece.to_zarr(store, mode="w-", zarr_format=2, consolidated=False)
    else:
        piece.drop_vars(["lat", "lon"]).to_zarr(store, append_dim="time", zarr_format=2, consolidated=False)
    for old in _state_dir(store).glob("state_*.npz"):
        if old.name != f"state_{day:%Y-%m-%d}.npz":
            old.unlink()
    return store
