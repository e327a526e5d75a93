"""One trainer for every registered model, adapter and objective.

Adam on an objective ``(prediction, data) -> (loss, terms)``
(:mod:`smfusion.training.objectives`), minibatches from the adapter's
:class:`~smfusion.data.adapters.Sampler`, validation-based early stopping,
checkpoints every N epochs (``state_dict`` plus optimiser and RNG states, so a
resumed run ends with the same weights as an uninterrupted one), deterministic
seeds and a progress bar. :func:`predict_batches` is the one prediction loop
(validation, evaluation, products).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from smfusion.config import TrainingConfig
from smfusion.data.adapters.base import Batches, Sampler
from smfusion.errors import ConfigError, DataError, SmfusionWarning
from smfusion.io.atomic import atomic_path, write_text
from smfusion.runs.load import HINT_RESTART
from smfusion.training.checkpoint import NotData, load_checkpoint, save_payload
from smfusion.runs.passes import predict_batches, to_tensors
from smfusion.training.objectives import MaskedObjective, Objective

CKPT_RE = re.compile(r"epoch_(\d+)\.pt$")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def learning_rate(cfg: TrainingConfig, step: int, n_iter: int) -> float:
    """Learning rate of minibatch ``step`` (0-based over the whole run, ``n_iter`` per epoch).

    constant: ``lr``. cosine: linear warm-up from ``lr / W`` to ``lr`` over the first
    ``W = lr_warmup_epochs * n_iter`` steps, then
    ``lr * (m + (1 - m) * (1 + cos(pi * (step - W) / (T - W))) / 2)`` down to ``lr * m``
    at the last step ``T - 1`` (``T = epochs * n_iter``, ``m = lr_min_factor``).
    """
    if cfg.lr_schedule == "constant":
        return cfg.lr
    warm = cfg.lr_warmup_epochs * n_iter
    if step < warm:
        return cfg.lr * (step + 1) / warm
    total = cfg.epochs * n_iter
    frac = (step - warm) / max(1, total - warm - 1)
    m = cfg.lr_min_factor
    return cfg.lr * (m + (1.0 - m) * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0))))


def masked_rmse_np(y_hat: np.ndarray, y: np.ndarray) -> float:
    """RMSE over valid (non-NaN) target values, all targets pooled."""
    m = np.isfinite(y)
    return float(np.sqrt(np.mean((y_hat[m] - y[m]) ** 2))) if m.any() else float("nan")


def _swa_update(swa: dict, model: nn.Module) -> dict:
    """Fold ``model``'s weights into the running mean ``swa`` = {"n", "state"}."""
    n = swa["n"] + 1
    cur = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if swa["state"] is None:
        return {"n": n, "state": cur}
    state = {k: swa["state"][k] + (cur[k] - swa["state"][k]) / n if cur[k].is_floating_point() else cur[k] for k in cur}
    return {"n": n, "state": state}


@dataclass
class Validation:
    """Validation rows (:class:`Batches`): RMSE of the normalised prediction on the scored days."""

    batches: Batches

    def score(self, model: nn.Module, device: str = "cpu") -> float:
        pred = predict_batches(model, self.batches, device=device)
        k = self.batches.score_from
        return masked_rmse_np(pred[:, k:], self.batches.y[:, k:])


@dataclass
class TrainResult:
    epochs_run: int
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False


class Trainer:
    """Fits ``model``; writes checkpoints under ``out_dir``.

    ``fit(sampler, validation)``: ``sampler.sample(rng)`` gives each minibatch
    (a dict of arrays); ``validation`` is any object with
    ``score(model, device) -> float`` (lower is better). ``objective`` defaults
    to the masked ``training.loss`` on ``y_hat`` and ``y``.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainingConfig,
        out_dir: Optional[str | Path] = None,
        objective: Optional[Objective] = None,
        parameters: Optional[list[nn.Parameter]] = None,
        desc: str = "train",
        config_key: Optional[str] = None,
        dist=None,
    ):
        self.dist = dist  # training.distributed.Dist: one of several DDP processes (None: the only one)
        self.model = model.to(cfg.device)
        self.config_key = config_key  # stored in every checkpoint; a resume refuses another config's
        self.cfg = cfg
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.desc = desc
        self.objective = objective or MaskedObjective(cfg.loss)
        self.params = parameters if parameters is not None else [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.net = dist.wrap(self.model) if dist is not None else self.model

    @property
    def _cuda(self) -> Optional[torch.device]:
        """The CUDA device the model trains on (its dropout draws from that device's generator), else None."""
        p = next(self.model.parameters(), None)
        return p.device if p is not None and p.device.type == "cuda" else None

    @property
    def writes(self) -> bool:
        """Whether this process writes checkpoints and the model (rank 0 of a DDP group, or the only one)."""
        return self.out_dir is not None and (self.dist is None or self.dist.is_main)

    def _loss(self, batch: dict[str, torch.Tensor], local: bool = False):
        """Objective of one minibatch (several DDP processes: the model on this process's rows only;
        ``local``: ``batch`` holds only those rows)."""
        if self.dist is None:
            return self.objective(self.model(batch), batch)
        if local:
            return self.dist.loss_local(self.net, self.objective, batch)
        return self.dist.loss(self.net, self.objective, batch)

    # -- checkpoints -------------------------------------------------------
    @property
    def ckpt_dir(self) -> Optional[Path]:
        return None if self.out_dir is None else self.out_dir / "checkpoints"

    def checkpoints(self) -> list[Path]:
        """The checkpoint files, newest epoch first."""
        if self.ckpt_dir is None or not self.ckpt_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.ckpt_dir.iterdir() if (m := CKPT_RE.search(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def latest_checkpoint(self) -> Optional[Path]:
        found = self.checkpoints()
        return found[0] if found else None

    def load_latest_valid(self) -> Optional[dict]:
        """The newest readable checkpoint's payload (None when there is none).

        A corrupt newer checkpoint is renamed ``<name>.corrupt`` (so no later
        resume picks it) with a warning naming it and the one used instead.
        """
        for path in self.checkpoints():
            try:
                return load_checkpoint(path, self.cfg.device)
            except NotData:
                raise  # not data: refused outright, never renamed or skipped
            except DataError as exc:
                aside = path.with_name(path.name + ".corrupt")
                try:
                    os.replace(path, aside)
                    moved = f"renamed to {aside.name}"
                except OSError:
                    moved = "left in place"
                warnings.warn(f"{exc} ({moved}); resuming from the previous checkpoint, if any", SmfusionWarning,
                              stacklevel=2)
        return None

    def _save_checkpoint(self, epoch: int, rng: np.random.Generator, state: dict) -> None:
        if not self.writes:
            return
        payload = save_payload(epoch, self.model.state_dict(), self.optimizer.state_dict(), rng,
                               torch.cuda.get_rng_state(self._cuda) if self._cuda is not None else None,
                               self.config_key, **state)
        with atomic_path(self.ckpt_dir / f"epoch_{epoch:04d}.pt") as tmp:
            torch.save(payload, tmp)

    def _restore(self, payload: dict, rng: np.random.Generator) -> None:
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            rng.bit_generator.state = payload["rng_numpy"]
            torch.set_rng_state(payload["rng_torch"].cpu())  # loaded onto the training device with the rest
            if self._cuda is not None and payload.get("rng_cuda") is not None:
                torch.cuda.set_rng_state(payload["rng_cuda"].cpu(), self._cuda)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"checkpoint of epoch {payload['epoch']} does not fit this model"
                            f" ({type(exc).__name__}; written with another config?)", path=self.ckpt_dir,
                            hint=HINT_RESTART) from None

    # -- training ----------------------------------------------------------
    def _train_epoch(self, sampler: Sampler, rng: np.random.Generator, epoch: int, n_iter: int) -> dict:
        """One epoch of ``n_iter`` minibatches; the history row (mean loss and, for several terms, each)."""
        cfg = self.cfg
        self.model.train()
        total, term_sums = 0.0, {}
        sampler.start_epoch(epoch, n_iter)
        for it in range(n_iter):
            if cfg.lr_schedule != "constant":
                for group in self.optimizer.param_groups:
                    group["lr"] = learning_rate(cfg, (epoch - 1) * n_iter + it, n_iter)
            batch = to_tensors(sampler.sample(rng), cfg.device)
            loss, terms = self._loss(batch, sampler.local_rows)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.params, cfg.clip_grad_norm)
            self.optimizer.step()
            total += float(loss.detach())
            for k, v in terms.items():
                term_sums[k] = term_sums.get(k, 0.0) + v
        row = {"epoch": epoch, "train_loss": total / n_iter}
        if len(term_sums) > 1:
            row.update({f"train_{k}": v / n_iter for k, v in term_sums.items()})
        return row

    def fit(self, sampler: Sampler, validation: Optional[Validation] = None, resume: bool = True) -> TrainResult:
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        n_iter = cfg.iterations_per_epoch or sampler.iterations_per_epoch(cfg.batch_size, cfg.seq_len)
        start_epoch, history = 1, []
        best = {"score": float("inf"), "epoch": 0, "state": None, "bad": 0}
        swa = {"n": 0, "state": None}  # running mean of the weights of the last swa_epochs epochs
        payload = self.load_latest_valid() if resume else None
        if payload is not None:
            written_by = payload.get("config_key")
            if self.config_key is not None and written_by is not None and written_by != self.config_key:
                raise ConfigError(f"checkpoint of epoch {payload['epoch']} was written by another config "
                                  f"({written_by}, this one is {self.config_key})", path=self.ckpt_dir,
                                  hint=HINT_RESTART)
            self._restore(payload, rng)
            history, best = payload["history"], payload["best"]
            swa = payload.get("swa", swa)
            start_epoch = payload["epoch"] + 1

        stopped = False
        bar = tqdm(
            range(start_epoch, cfg.epochs + 1),
            desc=self.desc,
            unit="epoch",
            disable=not cfg.progress,
            initial=start_epoch - 1,
            total=cfg.epochs,
        )
        epoch = start_epoch - 1
        for epoch in bar:
            row = self._train_epoch(sampler, rng, epoch, n_iter)
            if validation is not None and epoch % cfg.validate_every == 0:
                score = validation.score(self.model, cfg.device)
                row["val_rmse"] = score
                min_delta = cfg.early_stopping.min_delta if cfg.early_stopping else 0.0
                if score < best["score"] - min_delta:
                    best = {
                        "score": score,
                        "epoch": epoch,
                        "state": copy.deepcopy(self.model.state_dict()),
                        "bad": 0,
                    }
                else:
                    best["bad"] += 1
            if cfg.swa_epochs is not None and epoch > cfg.epochs - cfg.swa_epochs:
                swa = _swa_update(swa, self.model)
            history.append(row)
            bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k != "epoch"})
            if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                self._save_checkpoint(epoch, rng, {"history": history, "best": best, "swa": swa})
            if cfg.early_stopping and validation is not None and best["bad"] >= cfg.early_stopping.patience:
                stopped = True
                break
        bar.close()
        sampler.close()
        if swa["state"] is not None:
            self.model.load_state_dict(swa["state"])
        elif best["state"] is not None and validation is not None:
            self.model.load_state_dict(best["state"])
        best_epoch = best["epoch"] if best["state"] is not None else epoch
        if self.writes:
            with atomic_path(self.out_dir / "model.pt") as tmp:
                torch.save(self.model.state_dict(), tmp)
            write_text(self.out_dir / "history.json", json.dumps(history, indent=1))
        return TrainResult(epochs_run=epoch, best_epoch=best_epoch, history=history, stopped_early=stopped)
