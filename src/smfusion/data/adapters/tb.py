"""The ``tb`` adapter: a source sensor's brightness temperatures -> the target, one day (window) at a time (CASM).

The sequence adapter (:mod:`smfusion.data.adapters.sequence`: per-site scaler,
climatologies of the ``seasonal`` section, derived ``features`` such as the
polarization ratio) with three differences, all from the ``tb`` config section
(:class:`smfusion.config.TBConfig`; docs/casm.md):

1. **Compositing**: with ``composite_days`` N > 1 the inputs and the target are
   averaged over the passes available in N-day windows fixed to
   ``composite_origin`` (:mod:`smfusion.data.composite`) as soon as they are
   read; the run's time step is N days. :meth:`TBAdapter.set_composite`
   composites the inputs of a daily run at prediction (products).
2. **No pass, no value**: a step where any dynamic input (derived ones
   included) is missing is left out of training (its target is masked) and
   predicted as NaN; a per-day model has nothing to map there.
3. **Target from another run's product** (``target_product``): where the target
   has no value, the product's ``target_layer`` is used: a sensor that never
   overlaps the target (AMSR-E-like) is trained on a source model's product
   over their common years.

Statics are optional (CASM uses TB only); prediction needs no warm-up
(``periods.warmup_days: 0``) unless lagged features are asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.config import TBConfig
from smfusion.data.adapters import register_adapter
from smfusion.data.adapters.base import Batches
from smfusion.data.adapters.sequence import PREDICT_CHUNK_SITES, SequenceAdapter
from smfusion.data.composite import composite_windows, snap_to_windows
from smfusion.data.loading import check_sites, load_dataset, span
from smfusion.data.sampling import Arrays
from smfusion.data.seasonal import dynamic_inputs, prepare
from smfusion.data.splits import select_period
from smfusion.errors import ConfigError, DataError

__all__ = ["TBAdapter"]


@register_adapter("tb")
class TBAdapter(SequenceAdapter):
    """See the module docstring. Fitted state as the sequence adapter (``scaler``, ``seasonal``)."""

    sensor_inputs = True

    def __init__(self, cfg):
        super().__init__(cfg)
        tb = cfg.tb or TBConfig()
        self.composite_days = tb.composite_days
        self.composite_origin = pd.Timestamp(tb.composite_origin)
        self._product_target: Optional[xr.DataArray] = None

    def check(self) -> None:
        cfg = self.cfg
        if not cfg.data.dynamic:
            raise ConfigError("data.adapter 'tb' maps brightness temperatures: list them in data.dynamic")
        tb = cfg.tb or TBConfig()
        if tb.target_product is not None and not Path(tb.target_product).expanduser().is_file():
            raise DataError("tb.target_product: product file not found", path=tb.target_product)

    def set_composite(self, days: int, origin) -> None:
        """Composite the inputs over ``days``-day windows from ``origin`` from now on (prediction of a daily run)."""
        if days < 1:
            raise ConfigError(f"composite days must be >= 1, got {days}")
        self.composite_days, self.composite_origin = int(days), pd.Timestamp(origin)

    # -- data ------------------------------------------------------------------
    def load(self, start: Optional[str] = None, end: Optional[str] = None, require_target: bool = True,
             inputs_only: bool = False) -> xr.Dataset:
        """The data over ``start..end`` widened to whole windows, composited (module doc, items 1 and 3)."""
        cfg = self.cfg
        if start is None and end is None:
            start, end = span(cfg)
        if self.composite_days > 1:
            start, end = snap_to_windows(start, end, self.composite_days, self.composite_origin)
        data = cfg.data.model_copy(update={"target": []}) if inputs_only else cfg.data
        ds = load_dataset(data, start, end, require_target=False)
        ds = composite_windows(ds, self.composite_days, self.composite_origin)
        if not inputs_only and cfg.tb is not None and cfg.tb.target_product is not None:
            ds = self._fill_target(ds)
        if require_target and not inputs_only:
            check_sites(ds, cfg.data.target)
        return ds

    def load_sites(self, ids: Optional[np.ndarray], start: str, end: str, target: bool = False,
                   only: Optional[list[str]] = None) -> xr.Dataset:
        """Sites ``ids`` over ``start..end`` widened to whole windows, composited (products read block by block)."""
        if self.composite_days > 1:
            start, end = snap_to_windows(start, end, self.composite_days, self.composite_origin)
        ds = super().load_sites(ids, start, end, target=target, only=only)
        return composite_windows(ds, self.composite_days, self.composite_origin)

    def _fill_target(self, ds: xr.Dataset) -> xr.Dataset:
        """The target where it has no value, from ``tb.target_product`` (same sites, same time steps)."""
        tb, var = self.cfg.tb, self.cfg.data.target[0]
        path = Path(tb.target_product).expanduser()
        if self._product_target is None:
            with xr.open_dataset(path) as f:
                if tb.target_layer not in f or f[tb.target_layer].dims != ("site", "time"):
                    raise DataError(f"no (site, time) layer '{tb.target_layer}' (a site-layout product is needed)",
                                    path=path, field=tb.target_layer)
                self._product_target = f[tb.target_layer].load()
        prod = self._product_target
        missing = np.setdiff1d(ds["site"].values, prod["site"].values)
        if missing.size:
            raise DataError(f"product lacks sites {missing[:5].tolist()} of the data", path=path, field="site")
        prod = prod.sel(site=ds["site"].values)
        if not np.allclose(prod["lat"].values, ds["lat"].values, atol=1e-3):
            raise DataError("product sites lie elsewhere than the data's (lat/lon differ)", path=path, field="lat")
        fill = prod.reindex(time=ds["time"].values).transpose("site", "time").values
        have = ds[var].transpose("site", "time").values if var in ds else np.full(fill.shape, np.nan)
        out = ds.copy()
        attrs = dict(ds[var].attrs) if var in ds else {}
        attrs["filled_from"] = f"{path.name}:{tb.target_layer} where {var} is missing"
        out[var] = (("site", "time"), np.where(np.isfinite(have), have, fill).astype(np.float32), attrs)
        return out

    # -- masks -----------------------------------------------------------------
    def valid_inputs(self, prepared: xr.Dataset) -> np.ndarray:
        """(site, time) True where every dynamic input (derived ones included) has a value."""
        ok = np.ones((prepared.sizes["site"], prepared.sizes["time"]), dtype=bool)
        for v in dynamic_inputs(self.cfg):
            ok &= np.isfinite(prepared[v].transpose("site", "time").values)
        return ok

    def fit(self, ds: xr.Dataset, split, source=None) -> None:
        super().fit(ds, split, source=source)
        self._train_arrays = None  # rebuilt by train_batches through arrays(): masked target

    def arrays(self, prepared: xr.Dataset) -> Arrays:
        """Normalised arrays, target masked where an input is missing (no pass, nothing to learn)."""
        arr = super().arrays(prepared)
        arr.y[~self.valid_inputs(prepared)] = np.nan
        return arr

    def eval_batches(self, ds: xr.Dataset, ids: np.ndarray, period, chunk: Optional[int] = None) -> Batches:
        """As the sequence adapter; ``meta['valid']`` marks the scored steps that have every input."""
        t0 = pd.Timestamp(period[0])
        w0 = max(t0 - pd.Timedelta(days=self.cfg.periods.warmup_days), pd.Timestamp(ds.time.values[0]))
        sub = prepare(select_period(ds.sel(site=ids), (w0.strftime("%Y-%m-%d"), period[1])), self.cfg, self.seasonal)
        arr = self.arrays(sub)
        k = int(np.searchsorted(arr.time, np.datetime64(t0, "ns")))
        return Batches(inputs={"x_dynamic": arr.x_dynamic, "x_static": arr.x_static}, y=arr.y, rows=arr.sites,
                       time=arr.time, score_from=k, noisy=("x_dynamic",), chunk=chunk or PREDICT_CHUNK_SITES,
                       meta={"valid": self.valid_inputs(sub)[:, k:]})

    def to_physical(self, z: np.ndarray, batches: Batches) -> np.ndarray:
        out = super().to_physical(z, batches)
        out[~batches.meta["valid"]] = np.nan
        return out
