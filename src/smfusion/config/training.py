"""Config sections of the model and its training, and ensemble variants/members."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, model_validator

from smfusion.config.base import _Strict


class ModelConfig(_Strict):
    name: str = "lstm"
    hidden_size: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    num_layers: int = Field(1, ge=1)
    # output head by name (smfusion.models.heads): regression (point), gaussian (mean, log variance) or gmm
    # (a mixture of ``components`` Gaussians); a probabilistic head trains with an NLL objective
    head: str = "regression"
    components: int = Field(3, ge=1, le=16)  # mixture heads only


class EarlyStopping(_Strict):
    patience: int = Field(10, ge=1)
    min_delta: float = Field(0.0, ge=0.0)


class TrainingConfig(_Strict):
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(100, ge=1)
    seq_len: int = Field(30, ge=1)
    iterations_per_epoch: Optional[int] = Field(None, ge=1)  # None: hydroDL's rule
    lr: float = Field(1e-3, gt=0)
    # learning rate over the run: constant, or cosine decay from lr to lr * lr_min_factor over every
    # minibatch after lr_warmup_epochs of linear warm-up (a function of the step: resumes exactly)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_warmup_epochs: int = Field(0, ge=0)
    lr_min_factor: float = Field(0.0, ge=0.0, le=1.0)
    clip_grad_norm: Optional[float] = Field(None, gt=0)  # max global gradient norm per minibatch
    weight_decay: float = Field(0.0, ge=0)
    loss: str = "rmse"  # objective by name (smfusion.training.objectives): rmse, mse, ...; checked before training
    early_stopping: Optional[EarlyStopping] = None
    validate_every: int = Field(1, ge=1)
    checkpoint_every: int = Field(10, ge=1)
    seed: int = 0
    ensemble: int = Field(1, ge=1)
    # Stochastic weight averaging: the final weights are the mean of the weights
    # after each of the last ``swa_epochs`` epochs (None: the last epoch's weights).
    swa_epochs: Optional[int] = Field(None, ge=1)
    threads: Optional[int] = Field(None, ge=1)
    # DataLoader worker processes decoding streamed examples (reader tfrecord); 0: in the training process.
    # Does not change the data order or the result.
    loader_workers: int = Field(0, ge=0)
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:[0-9]+)?)$")  # where it trains: cpu, cuda or cuda:N
    progress: bool = True


    @model_validator(mode="after")
    def _check(self) -> "TrainingConfig":
        if self.swa_epochs is not None:
            if self.early_stopping is not None:
                raise ValueError("swa_epochs and early_stopping exclude each other (which weights would be kept?)")
            if self.swa_epochs > self.epochs:
                raise ValueError(f"swa_epochs {self.swa_epochs} exceeds epochs {self.epochs}")
        if self.lr_warmup_epochs >= self.epochs and self.lr_warmup_epochs > 0:
            raise ValueError(f"lr_warmup_epochs {self.lr_warmup_epochs} must be below epochs {self.epochs}")
        return self


class Variant(_Strict):
    """Overrides of ``model`` and ``training`` fields for one group of ensemble members."""

    model: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)


class Member(_Strict):
    """The resolved settings of one ensemble member."""

    index: int
    variant: int
    model: ModelConfig
    training: TrainingConfig
