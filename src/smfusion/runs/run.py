"""Load any trained run and predict with it (evaluation and products use this, never ``training``).

:class:`Run` wraps a run directory (:func:`smfusion.training.run.load_trained`):
its config, its adapter with the fitted state (scaler, climatologies), its split
and its ensemble members. Predictions come back in physical units, per member
(:meth:`Run.predict_members`) or as an ``xarray.Dataset`` of the ensemble mean
with its spread (:meth:`Run.predict`): ``(site, time)`` for sequence and
multiscale runs, ``(example,)`` for point runs.

:meth:`Run.predict_distribution` gives each target's predictive distribution
(:class:`~smfusion.runs.predictive.Predictive`: member means and, for
probabilistic heads, member Gaussian mixtures, in physical units), with the
run's recalibration (:meth:`Run.recalibration`, fitted on the held-out
validation data and saved as ``recalibration_<method>_noise<runs>.json``) applied
unless switched off.
Physical units: the adapter's ``to_physical`` must be affine per point
(``x = offset + slope * z``: site scaling, climatology added back); the mean
maps through it and the std scales by ``|slope|`` (a log1p target is refused).
All of them run the forward passes of :func:`smfusion.runs.passes.predict_passes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import xarray as xr

from smfusion.data.adapters import Batches
from smfusion.errors import ConfigError, DataError
from smfusion.io.layer_names import ALEATORIC_STD, ENSEMBLE_STD, layer
from smfusion.models.heads import is_probabilistic
from smfusion.runs.ensembles import aleatoric_std
from smfusion.runs.predictive import (Predictive, Recalibration, fit_recalibration, layer_attrs,
                                          load_recalibrations, save_recalibrations)
from smfusion.runs.load import Trained, load_trained
from smfusion.runs.passes import HEAD_KEYS, predict_block as _predict_block, predict_passes as _predict_passes

__all__ = ["Run", "Passes", "RECALIBRATION_FILE"]

RECALIBRATION_FILE = "recalibration_{method}_noise{runs}.json"


@dataclass
class Passes:
    """The forward passes of every member over one :class:`Batches`, made once (:meth:`Run.forward`) and
    read by everything that needs them: ``outs`` each member's clean head outputs (normalised; key ->
    (rows, scored time, ...)), ``noisy`` the noisy runs in physical units (member, runs, rows, scored time,
    target; None without runs), ``noise`` the input-noise std they used."""

    batches: Batches
    outs: list[dict]
    noisy: Optional[np.ndarray]
    noise: float


@dataclass
class Run(Trained):
    """A trained run (any adapter); see the module docstring."""

    @classmethod
    def load(cls, run_dir: str | Path) -> "Run":
        t = load_trained(run_dir)
        return cls(t.run_dir, t.cfg, t.adapter, t.split, t.members)

    @property
    def layout(self) -> str:
        """``site``: (site, time) series; ``points``: independent examples."""
        return self.adapter.layout

    def load_data(self, start: Optional[str] = None, end: Optional[str] = None) -> Any:
        """The run's data over ``start..end`` (target not required), with the warm-up before ``start``
        for series; both None: every period of the config."""
        if start is not None and self.layout == "site":
            start = (pd.Timestamp(start) - pd.Timedelta(days=self.cfg.periods.warmup_days)).strftime("%Y-%m-%d")
        return self.adapter.load(start, end, require_target=False)

    def at_lead(self, lead: Optional[int]) -> "Run":
        """This run predicting day d from the retrievals up to d - ``lead`` (data-integration runs;
        None: the run's ``data_integration.lead``); returns ``self``. A run without data integration
        refuses a lead."""
        di = self.cfg.data_integration
        if lead is None:
            return self
        if di is None:
            raise ConfigError(f"--lead {lead}: run '{self.run_dir}' has no data_integration section "
                              "(it sees no retrievals; leave --lead out)")
        if not 1 <= int(lead) <= di.max_age:
            raise ConfigError(f"--lead {lead}: give 1 .. data_integration.max_age ({di.max_age})")
        self.adapter.lead = int(lead)
        return self

    def predict_members(
        self, data: Any, ids: Optional[np.ndarray], period: Optional[tuple[str, str]], noise_runs: int = 0,
        noise: Optional[float] = None, seed: Optional[int] = None, batches: Optional[Batches] = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Physical-unit predictions of every member, (member, row, time, target), over ``period``.

        With ``noise_runs`` M > 0 also returns the noisy runs (member, M, row, time, target): each
        adds Gaussian noise of std ``noise`` (default ``uncertainty.noise``) to the adapter's noisy
        normalised inputs (= ``noise`` x their training std; of the residual under input_mode
        anomaly), warm-up included.
        """
        b = batches if batches is not None else self.adapter.eval_batches(data, ids, period)
        p = self.forward(b, noise_runs, noise, seed, heads=("y_hat",))
        out = self.members_of(p)
        return (out, p.noisy) if noise_runs else out

    def _noise(self, noise: Optional[float], seed: Optional[int]) -> tuple[float, np.random.Generator]:
        """Input-noise std and generator (None: the config's ``uncertainty.noise`` / ``seed``)."""
        unc = self.cfg.uncertainty
        rng = np.random.default_rng(unc.seed if seed is None else seed)
        return (unc.noise if noise is None else float(noise)), rng

    def forward(self, batches: Batches, noise_runs: int = 0, noise: Optional[float] = None,
                seed: Optional[int] = None, heads: tuple[str, ...] = HEAD_KEYS) -> Passes:
        """Every member's clean pass (head outputs ``heads``) and ``noise_runs`` noisy passes over ``batches``,
        once: :meth:`members_of` and :meth:`distribution` read them without running the model again.

        Batches read piece by piece (:meth:`~smfusion.data.adapters.Batches.pieces`, e.g. a streamed split
        of shards) hold one piece's inputs at a time; the passes are joined over the pieces (the outputs
        are the same as over one piece; noisy runs draw from one generator, piece after piece)."""
        std, rng = self._noise(noise, seed)
        parts = [_predict_passes(self, piece, noise_runs, std, rng, heads=heads)[:2] for piece in batches.pieces()]
        outs, noisy = parts[0]
        if len(parts) > 1:
            outs = [{k: np.concatenate([p[0][m][k] for p in parts]) for k in outs[m]} for m in range(len(outs))]
            noisy = None if noisy is None else np.concatenate([p[1] for p in parts], axis=2)
        return Passes(batches, outs, noisy, std)

    def members_of(self, passes: Passes) -> np.ndarray:
        """Physical-unit predictions of every member (member, row, time, target) from ``passes``."""
        return np.stack([self._physical(o["y_hat"], passes.batches) for o in passes.outs])

    def distribution(self, passes: Passes, recalibration: Optional[str] = None, data: Any = None
                     ) -> dict[str, Predictive]:
        """Each target's predictive distribution from ``passes`` (no forward pass), with the run's
        recalibration (``recalibration`` as in :meth:`predict_distribution`; ``data``: what the adapter's
        ``load()`` returns, to fit a recalibration not yet saved without reading the data again)."""
        return self._distribution(passes.outs, passes.batches, passes.noisy, recalibration, passes.noise, None,
                                  data=data)

    def predict_block(self, batches: Batches, noise_runs: int, noise: float, rng: np.random.Generator,
                      carry: Optional[dict] = None, keep_state: bool = False, recalibration: Optional[str] = None,
                      transform: Optional[Callable[[np.ndarray], np.ndarray]] = None
                      ) -> tuple[dict[str, Predictive], Optional[dict]]:
        """:meth:`predict_distribution` for one block of a product, with the recurrent state carried in and
        out (models that declare ``carries_state``): returns each target's predictive distribution (input
        noise from ``noise_runs`` noisy passes) and the state after the last day (``keep_state``; else None).

        ``carry`` (the state a previous block ended with) replaces the warm-up: the inputs before
        ``score_from`` are dropped and each member and noisy pass starts from its own state.
        """
        outs, noisy, state = _predict_block(self, batches, noise_runs, noise, rng, carry=carry, keep_state=keep_state)
        return self._distribution(outs, batches, noisy, recalibration, noise, transform), state

    def _physical(self, z: np.ndarray, b: Batches) -> np.ndarray:
        return self.adapter.to_physical(z, b)

    def predict(self, start: Optional[str] = None, end: Optional[str] = None, ids: Optional[np.ndarray] = None,
                data: Any = None, recalibration: Optional[str] = None, quantiles: Optional[list[float]] = None
                ) -> xr.Dataset:
        """Ensemble-mean prediction over ``start..end`` as a Dataset: the member std when N > 1 and the
        predictive distribution's layers (:meth:`add_distribution`; ``recalibration`` None: the config's,
        ``quantiles`` None: ``uncertainty.quantiles``)."""
        data = self.load_data(start, end) if data is None else data
        period = (start, end) if start is not None and end is not None else None
        b = self.adapter.eval_batches(data, ids if ids is not None else self.adapter.all_ids(data), period)
        dist = self.predict_distribution(data, None, None, batches=b, recalibration=recalibration)
        members = np.stack([dist[v].means for v in self.cfg.data.target], -1)
        ds = self.to_dataset(members, data, b)
        q = self.cfg.uncertainty.quantiles if quantiles is None else quantiles
        return self.add_distribution(ds, dist, data, b, q)

    def add_distribution(self, ds: xr.Dataset, dist: dict[str, Predictive], data: Any, batches: Batches,
                         quantiles=()) -> xr.Dataset:
        """``ds`` with each target's ``<var>_std``, ``<var>_epistemic_std``, ``<var>_aleatoric_std`` and
        quantile layers (:meth:`~smfusion.runs.predictive.Predictive.layers`), CF attributes, and the
        mean's ``ancillary_variables`` naming them."""
        dims, _ = self.adapter.coords(data, batches)
        for var, pred in dist.items():
            attrs = self.adapter.variable_attrs(data, var)
            names = []
            for suffix, arr in pred.layers(quantiles).items():
                if not suffix:
                    continue
                arr = arr[..., 0] if len(dims) == 1 else arr
                ds[layer(var, suffix)] = (dims, arr, layer_attrs(suffix, var, attrs.get("units", ""),
                                                               attrs.get("standard_name", ""), pred.recal.method))
                names.append(layer(var, suffix))
            if names:
                ds[var].attrs["ancillary_variables"] = " ".join(names)
        return ds

    def to_dataset(self, pred: np.ndarray, data: Any, batches: Batches, noisy: Optional[np.ndarray] = None
                   ) -> xr.Dataset:
        """Member predictions (member, row, time, target) -> Dataset of the mean, ``<var>_ensemble_std``
        (N > 1) and, with noisy runs (member, M, row, time, target), ``<var>_aleatoric_std``."""
        dims, coords = self.adapter.coords(data, batches)
        if len(dims) == 1:  # point examples: one value per row
            pred = pred[:, :, 0]
            noisy = noisy[:, :, :, 0] if noisy is not None else None
        out = xr.Dataset(coords=coords)
        for i, var in enumerate(self.cfg.data.target):
            attrs = self.adapter.variable_attrs(data, var)
            units = attrs.get("units", "")
            out[var] = (dims, pred[..., i].mean(0), attrs)
            if len(self.members) > 1:
                out[layer(var, ENSEMBLE_STD)] = (dims, pred[..., i].std(0),
                                              {"units": units, "long_name": f"ensemble standard deviation of {var}"})
            if noisy is not None:
                out[layer(var, ALEATORIC_STD)] = (dims, aleatoric_std(noisy[..., i]), {
                    "units": units, "long_name": f"aleatoric (input-noise) standard deviation of {var}"})
        out.attrs.update({"model": self.cfg.model.name, "adapter": self.adapter.name, "ensemble": len(self.members),
                          "config_hash": self.cfg.hash(), "run_dir": str(self.run_dir)})
        return out


    # -- predictive distributions ------------------------------------------------
    def affine(self, b: Batches) -> tuple[np.ndarray, np.ndarray]:
        """``offset``, ``slope`` (rows, scored time, target) with ``to_physical(z) = offset + slope * z``;
        ConfigError when ``to_physical`` is not affine (a log1p target)."""
        if "affine" not in b.meta:
            shape = (len(b), b.y.shape[1] - b.score_from, b.y.shape[2])
            off = self._physical(np.zeros(shape, np.float32), b).astype(np.float64)
            slope = self._physical(np.ones(shape, np.float32), b) - off
            two = self._physical(np.full(shape, 2.0, np.float32), b) - off
            if not np.allclose(two, 2.0 * slope, rtol=1e-3, atol=1e-6, equal_nan=True):
                raise ConfigError("predictive distributions need a target transform that is affine per point "
                                  "(no log1p on the target)")
            b.meta["affine"] = (off, slope)
        return b.meta["affine"]

    def predict_distribution(
        self, data: Any, ids: Optional[np.ndarray], period: Optional[tuple[str, str]], noise_runs: int = 0,
        noise: Optional[float] = None, seed: Optional[int] = None, batches: Optional[Batches] = None,
        noisy: Optional[np.ndarray] = None, recalibration: Optional[str] = None,
        transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    ) -> dict[str, Predictive]:
        """Each target's predictive distribution over ``period`` (see the module doc).

        ``noise_runs`` > 0 (or ``noisy``, noisy runs already made by :meth:`predict_members`) adds the
        input-noise variance. ``recalibration``: ``none``, ``variance``, ``isotonic`` or None (the config's).
        ``transform`` (e.g. a composite over days) is applied to every physical array, point axes first,
        before the spread is taken.
        """
        b = batches if batches is not None else self.adapter.eval_batches(data, ids, period)
        runs = noise_runs if noisy is None else 0  # made in the same loop as the clean pass
        p = self.forward(b, runs, noise, seed)
        return self._distribution(p.outs, b, noisy if p.noisy is None else p.noisy, recalibration, noise, transform)

    def _distribution(self, outs: list[dict], b: Batches, noisy: Optional[np.ndarray], recalibration: Optional[str],
                      noise: Optional[float], transform, data: Any = None) -> dict[str, Predictive]:
        """Predictives from the members' head outputs (normalised) and noisy runs (physical, or None)."""
        tf = transform or (lambda a: a)
        means = np.stack([tf(self._physical(o["y_hat"], b)) for o in outs])
        mixtures = _member_mixtures(outs, lambda: self.affine(b), tf)
        noise_var = None
        if noisy is not None:
            runs = np.stack([np.stack([tf(np.asarray(noisy[i, r])) for r in range(noisy.shape[1])])
                             for i in range(noisy.shape[0])])
            noise_var = runs.astype(np.float64).var(axis=1).mean(axis=0)
        recals = self.recalibration(recalibration, noise_runs=0 if noisy is None else noisy.shape[1], noise=noise,
                                    data=data)
        out = {}
        for t, var in enumerate(self.cfg.data.target):
            mix = [None if a is None else a[..., t, :] for a in mixtures]
            out[var] = Predictive(means[..., t], *mix, None if noise_var is None else noise_var[..., t],
                                  recals.get(var, Recalibration()))
        return out

    def recalibration(self, method: Optional[str] = None, noise_runs: Optional[int] = None, refit: bool = False,
                      data: Any = None, noise: Optional[float] = None) -> dict[str, Recalibration]:
        """The run's recalibration per target (``method`` None: ``uncertainty.recalibration``): read from
        ``recalibration_<method>_noise<runs>.json`` when fitted with the same input noise, else fitted on the
        held-out validation data (the adapter's validation batches: a validation period and/or validation
        sites) and saved. Empty when ``none``, when there is nothing to recalibrate or no validation data
        (``recalibration_note`` says why). ``data``: what the adapter's ``load()`` would return (default: read
        it); only its validation rows and period are used."""
        unc = self.cfg.uncertainty
        method = method or unc.recalibration
        noise_runs = unc.noise_runs if noise_runs is None else int(noise_runs)
        noise = unc.noise if noise is None else float(noise)
        self.recalibration_note = ""
        if method == "none":
            return {}
        if len(self.members) == 1 and not noise_runs and not any(is_probabilistic(m.model.head)
                                                                 for m in self.cfg.members()):
            self.recalibration_note = "nothing to recalibrate: one point-head member, no noise runs"
            return {}
        if (self.cfg.periods is None or self.cfg.periods.validation is None) and not self.split.validation.size:
            self.recalibration_note = "not recalibrated: the run has no validation period or sites"
            return {}
        want = {"method": method, "noise_runs": noise_runs, "noise": noise if noise_runs else None}
        name = RECALIBRATION_FILE.format(method=method, runs=noise_runs)
        lead = getattr(self.adapter, "lead", None)
        if lead is not None:  # data integration: the spread depends on the lead, fitted per lead
            want["lead"] = lead
            name = name.replace(".json", f"_lead{lead}.json")
        path = self.run_dir / name
        if path.is_file() and not refit:
            recals, meta = load_recalibrations(path)
            if all(meta.get(k) == v for k, v in want.items()):
                self.recalibration_note = meta.get("validation", "")
                return recals
        if data is None:
            try:
                data = self.load_data()
            except DataError as exc:
                self.recalibration_note = f"not recalibrated: cannot read the validation data ({exc})"
                return {}
        recals = self._fit_recalibration(data, method, noise_runs, noise)
        if recals:
            save_recalibrations(path, recals, {**want, "validation": self.recalibration_note})
        return recals

    def _fit_recalibration(self, data: Any, method: str, noise_runs: int, noise: float) -> dict[str, Recalibration]:
        vb = self.adapter.validation_batches(data, self.split)
        if vb is None or len(vb) == 0:
            self.recalibration_note = "not recalibrated: the run has no validation period or sites"
            return {}
        pred = self.predict_distribution(data, None, None, noise_runs=noise_runs, noise=noise, batches=vb,
                                         recalibration="none")
        obs = self.adapter.observations(data, vb)
        try:
            recals = {v: fit_recalibration(pred[v], obs[..., t], method) for t, v in enumerate(self.cfg.data.target)}
        except ValueError as exc:  # too few validation observations, or no spread
            self.recalibration_note = f"not recalibrated: {exc}"
            return {}
        p = self.cfg.periods
        where = (f"validation period {p.validation.start} .. {p.validation.end}" if p is not None and p.validation
                 else "training period")
        self.recalibration_note = (f"fitted on {len(vb)} held-out validation {self._units()} over the {where}"
                                   if self.split.validation.size else
                                   f"fitted on the {where} of {len(vb)} training {self._units()}")
        return recals

    def _units(self) -> str:
        return "sensors" if self.layout == "points" else "sites"


def _member_mixtures(outs: list[dict], affine: Callable, tf) -> list[Optional[np.ndarray]]:
    """Members' Gaussian mixtures (loc, scale, weight), each (member, row, time, target, K) in physical
    units (``affine()``: offset and slope of the target transform), K the largest member's (others padded
    with zero-weight components); None x 3 for point heads."""
    if not any("log_var" in o for o in outs):
        return [None, None, None]
    off, slope = affine()
    o2, s2 = off[..., None], np.abs(slope)[..., None]
    per = []
    for o in outs:
        if "mix_loc" in o:
            loc, scale, w = o["mix_loc"], np.exp(0.5 * o["mix_log_var"]), np.exp(o["mix_log_weight"])
        else:  # Gaussian head (or a point-head member: zero variance)
            lv = o.get("log_var")
            loc = o["y_hat"][..., None]
            scale = np.zeros_like(loc) if lv is None else np.exp(0.5 * lv)[..., None]
            w = np.ones_like(loc)
        per.append((o2 + slope[..., None] * loc, s2 * scale, w))
    k = max(p[0].shape[-1] for p in per)

    def pad(a: np.ndarray, j: int) -> np.ndarray:  # extra components: at the first one's place, weight 0
        a = np.asarray(a, np.float64)
        if a.shape[-1] == k:
            return a
        fill = np.zeros_like(a[..., :1]) if j == 2 else a[..., :1]
        return np.concatenate([a] + [fill] * (k - a.shape[-1]), -1)

    return [np.stack([tf(pad(p[j], j)) for p in per]) for j in range(3)]
