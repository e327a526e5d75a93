"""One typed run configuration that rejects unknown keys.

A run is described by a YAML file; :func:`load_config` validates every field
and raises :class:`~smfusion.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Optional

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smfusion.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Period(_Strict):
    """An inclusive date range ``[start, end]``."""

    start: str
    end: str

    @model_validator(mode="after")
    def _check(self) -> "Period":
        try:
            t0, t1 = pd.Timestamp(self.start), pd.Timestamp(self.end)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bad date in period {self.start}..{self.end}: {exc}") from exc
        if t1 < t0:
            raise ValueError(f"period ends before it starts: {self.start}..{self.end}")
        return self

    @classmethod
    def parse(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return {"start": str(value[0]), "end": str(value[1])}
        return value

    def as_tuple(self) -> tuple[str, str]:
        return (self.start, self.end)


class TwinConfig(_Strict):
    """Options of the twin experiment (``data.reader: twin``; see docs/twin.md)."""

    seed: int = 0
    n_coarse: Optional[int] = Field(24, ge=1)  # None: every usable CONUS-sample cell
    station_fraction: float = Field(0.75, ge=0.0, le=1.0)
    max_stations_per_cell: int = Field(2, ge=1, le=16)
    n_networks: int = Field(4, ge=1)
    sat_bias: float = 0.06
    sat_seasonal: float = 0.04
    sat_noise: float = Field(0.03, ge=0.0)
    sat_gain_loss: float = Field(0.35, ge=0.0, le=1.0)
    input_errors: float = Field(0.0, ge=0.0)  # 0: inputs = the truth's drivers; 1: realistic forcing/soil-map errors


class GriddedConfig(_Strict):
    """Real-format multiscale inputs (``data.reader: gridded``; see docs/multiscale.md)."""

    forcing: str  # CF NetCDF/Zarr, (time, y, x) dynamic and (y, x) static variables on the fine EASE-2 grid
    smap_dir: str  # SMAP L3 granules (SPL3SMP, 36 km) for the satellite term
    ismn_dir: str  # ISMN station files (header+values or CEOP)
    overpass: Literal["AM", "PM"] = "AM"
    ismn_depth: tuple[float, float] = (0.0, 0.1)
    ismn_good_flags: list[str] = Field(default_factory=lambda: ["G"])
    ismn_networks: Optional[list[str]] = None
    coarse_grid: str = "M36"


class FusionConfig(_Strict):
    """Multi-source point model (readers ``tfrecord`` and ``points``, model ``fusion``; docs/fusion.md).

    ``groups``: input source groups (``smfusion.io.fusion_schema.SOURCES``);
    ``patch_size``: centre crop of the image patches (pixels).
    """

    groups: list[str] = Field(default_factory=lambda: ["smap", "gldas"])
    patch_size: int = Field(8, ge=1)
    cnn_channels: int = Field(16, ge=1)
    embed_size: int = Field(16, ge=1)
    max_lag_days: int = Field(7, ge=1)  # reader points: oldest SMAP retrieval used as an input

    @field_validator("groups")
    @classmethod
    def _groups_nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one input group is needed")
        return v


class DataConfig(_Strict):
    """Which data, which variables."""

    reader: Literal["hydrodl", "twin", "gridded", "tfrecord", "points"] = "hydrodl"
    twin: Optional[TwinConfig] = None  # reader twin (defaults when absent)
    gridded: Optional[GriddedConfig] = None  # reader gridded (required)
    root: Optional[str] = None  # default: settings.conus_dir() or the checksummed download
    subset: str = "CONUSv4f1"
    dynamic: list[str] = Field(default_factory=list)
    static: list[str] = Field(default_factory=list)
    target: list[str] = Field(default_factory=lambda: ["SMAP_AM"])
    sites: Optional[list[int]] = None  # explicit site list (None: all)

    @field_validator("target")
    @classmethod
    def _target_nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one target variable is needed")
        return v


class PeriodsConfig(_Strict):
    train: Period
    validation: Optional[Period] = None
    test: Optional[Period] = None
    warmup_days: int = Field(365, ge=0)

    @field_validator("train", "validation", "test", mode="before")
    @classmethod
    def _parse(cls, v: Any) -> Any:
        return Period.parse(v)


class SplitConfig(_Strict):
    """How sites are split. ``temporal``: every site in train and test.

    ``kfold``: spatial k-fold over sites (seeded); ``fold`` is held out.
    ``sites``: explicit ``train_sites``/``test_sites`` lists.
    ``validation_fraction`` holds out a random fraction of training sites
    over the training period for early stopping.
    """

    kind: Literal["temporal", "kfold", "sites"] = "temporal"
    k: int = Field(5, ge=2)
    fold: int = Field(0, ge=0)
    seed: int = 0
    train_sites: Optional[list[int]] = None
    test_sites: Optional[list[int]] = None
    validation_fraction: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> "SplitConfig":
        if self.kind == "kfold" and self.fold >= self.k:
            raise ValueError(f"fold {self.fold} out of range for k={self.k}")
        if self.kind == "sites" and (not self.train_sites or not self.test_sites):
            raise ValueError("kind 'sites' needs train_sites and test_sites")
        return self


class NormConfig(_Strict):
    """Normalisation: z-scores fitted on the training period and sites.

    ``target: site`` scales each target with its own site's training mean and
    std (the model learns the dynamics, the site statistics carry level and
    amplitude); it needs training observations at every predicted site, so
    it is for temporal splits only.
    """

    log1p: list[str] = Field(default_factory=list)  # variables transformed by log1p before scaling
    target: Literal["global", "site"] = "global"


class ModelConfig(_Strict):
    name: str = "lstm"
    hidden_size: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    num_layers: int = Field(1, ge=1)


class EarlyStopping(_Strict):
    patience: int = Field(10, ge=1)
    min_delta: float = 0.0


class TrainingConfig(_Strict):
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(100, ge=1)
    seq_len: int = Field(30, ge=1)
    iterations_per_epoch: Optional[int] = Field(None, ge=1)  # None: hydroDL's rule
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    loss: Literal["rmse", "mse"] = "rmse"
    early_stopping: Optional[EarlyStopping] = None
    validate_every: int = Field(1, ge=1)
    checkpoint_every: int = Field(10, ge=1)
    seed: int = 0
    ensemble: int = Field(1, ge=1)
    # Stochastic weight averaging: the final weights are the mean of the weights
    # after each of the last ``swa_epochs`` epochs (None: the last epoch's weights).
    swa_epochs: Optional[int] = Field(None, ge=1)
    threads: Optional[int] = Field(None, ge=1)
    device: str = "cpu"
    progress: bool = True


    @model_validator(mode="after")
    def _check(self) -> "TrainingConfig":
        if self.swa_epochs is not None:
            if self.early_stopping is not None:
                raise ValueError("swa_epochs and early_stopping exclude each other (which weights would be kept?)")
            if self.swa_epochs > self.epochs:
                raise ValueError(f"swa_epochs {self.swa_epochs} exceeds epochs {self.epochs}")
        return self


class EvaluationConfig(_Strict):
    baselines: list[Literal["climatology", "linear", "hydrodl_lstm", "hydrodl_multitask"]] = Field(
        default_factory=lambda: ["climatology", "linear", "hydrodl_lstm", "hydrodl_multitask"]
    )
    plots: bool = True
    climatology_window: int = Field(31, ge=1)


class MultiscaleConfig(_Strict):
    """Multiscale objective (Liu et al. 2022): coarse-cell term + station term.

    loss = w_coarse * loss(aggregate of fine predictions per coarse cell, satellite)
    + w_site * loss(prediction at station cells, station). A coarse cell enters
    the first term only when at least ``min_coverage`` of its fine cells are in
    the data. ``w_coarse: 0`` or ``w_site: 0`` is single-scale training.
    """

    satellite: str = "sm_satellite"  # coarse target, repeated on the fine cells of each coarse cell
    w_coarse: float = Field(1.0, ge=0.0)
    w_site: float = Field(1.0, ge=0.0)
    aggregation: Literal["mean", "median"] = "mean"
    min_coverage: float = Field(0.5, gt=0.0, le=1.0)
    groups_per_batch: int = Field(4, ge=1)  # coarse cells per minibatch (all their fine cells)
    stations_per_batch: int = Field(16, ge=1)
    burn_in: int = Field(0, ge=0)  # first days of each window left out of the loss (LSTM state spin-up)
    # coarse term on absolute values, or on anomalies from each window's mean (the satellite then
    # constrains dynamics only and the stations the level: a biased satellite cannot pull the level)
    coarse_target: Literal["absolute", "anomaly"] = "absolute"

    @model_validator(mode="after")
    def _check(self) -> "MultiscaleConfig":
        if self.w_coarse + self.w_site <= 0:
            raise ValueError("w_coarse and w_site are both 0: nothing to learn")
        return self


class CVConfig(_Strict):
    """Spatial cross-validation over stations (``smfusion cv``): k-fold by ``station``,
    by lat/lon ``block`` tiles of ``block_deg`` degrees, or leave-one-``network``-out."""

    kind: Literal["station", "block", "network"] = "station"
    k: int = Field(5, ge=2)
    block_deg: float = Field(2.0, gt=0.0)
    seed: int = 0


class SeasonalConfig(_Strict):
    """Seasonal-cycle residual learning (CASM; docs/casm.md).

    ``target_mode: anomaly`` trains on target minus its day-of-year
    climatology (fitted on the training period and sites) and adds it back at
    prediction; ``input_mode: anomaly`` does the same for the dynamic inputs
    (``inputs``; None: all of them). ``window`` (odd, days) and ``min_count``
    as in :class:`smfusion.data.climatology.Climatology`.
    """

    target_mode: Literal["absolute", "anomaly"] = "absolute"
    input_mode: Literal["absolute", "anomaly"] = "absolute"
    inputs: Optional[list[str]] = None
    window: int = Field(31, ge=1, le=365)
    min_count: int = Field(5, ge=1)

    @field_validator("window")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"window must be odd, got {v}")
        return v


class FeaturesConfig(_Strict):
    """Lagged and antecedent inputs derived from dynamic variables (data/features.py)."""

    lags: dict[str, list[int]] = Field(default_factory=dict)  # variable -> lags k >= 1 (value of day t - k)
    antecedent: dict[str, list[int]] = Field(default_factory=dict)  # variable -> windows w >= 2 (mean of t-w+1..t)


class TransferConfig(_Strict):
    """Fine-tune from a trained run (training/transfer.py): copy its weights, re-map or
    re-initialise the input layer for this run's inputs, freeze ``freeze`` parts."""

    from_run: str
    freeze: list[str] = Field(default_factory=list)
    reinit: list[str] = Field(default_factory=list)
    input_layer: Literal["remap", "reinit"] = "remap"
    source_scaler: bool = True  # inputs/target shared with the source keep the source's normalisation


class UncertaintyConfig(_Strict):
    """Aleatoric spread: ``noise_runs`` forward runs per member with Gaussian noise of std
    ``noise`` x each dynamic input's training std (of its residual under input_mode anomaly)."""

    noise: float = Field(0.1, ge=0.0)
    noise_runs: int = Field(0, ge=0)  # 0: no aleatoric layer
    seed: int = 0


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


class RunConfig(_Strict):
    """The whole run: data, periods, split, model, training, evaluation.

    ``variants`` (optional) mixes model settings in one ensemble: each variant
    overrides fields of ``model``/``training`` and gets ``training.ensemble``
    members, so the run has ``ensemble * len(variants)`` members.
    """

    name: str = "run"
    run_dir: Optional[str] = None
    data: DataConfig
    periods: Optional[PeriodsConfig] = None  # required except for the readers tfrecord / points
    split: SplitConfig = Field(default_factory=SplitConfig)
    normalization: NormConfig = Field(default_factory=NormConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    variants: list[Variant] = Field(default_factory=list)
    multiscale: Optional[MultiscaleConfig] = None  # multiscale objective (readers twin, gridded)
    cv: CVConfig = Field(default_factory=CVConfig)
    fusion: Optional[FusionConfig] = None  # readers tfrecord / points (defaults when absent)
    seasonal: SeasonalConfig = Field(default_factory=SeasonalConfig)  # CASM residual learning (docs/casm.md)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)  # lagged / antecedent inputs
    transfer: Optional[TransferConfig] = None  # fine-tune from a trained run
    uncertainty: UncertaintyConfig = Field(default_factory=UncertaintyConfig)  # noisy forward runs

    @model_validator(mode="after")
    def _check_casm(self) -> "RunConfig":
        dyn = set(self.data.dynamic)
        for section in ("lags", "antecedent"):
            for var, steps in getattr(self.features, section).items():
                if var not in dyn:
                    raise ValueError(f"features.{section} names '{var}', which is not in data.dynamic")
                low = 1 if section == "lags" else 2
                if not steps or min(steps) < low:
                    raise ValueError(f"features.{section}.{var}: give values >= {low}")
        sea = self.seasonal
        for var in sea.inputs or []:
            if var not in dyn:
                raise ValueError(f"seasonal.inputs names '{var}', which is not in data.dynamic")
        if sea.input_mode == "anomaly":
            clash = [v for v in self.normalization.log1p if v in (sea.inputs if sea.inputs is not None else dyn)]
            if clash:
                raise ValueError(f"normalization.log1p {clash} and seasonal.input_mode anomaly exclude each other"
                                 " (log1p would clip negative anomalies)")
        if sea.target_mode == "anomaly" and (self.split.kind != "temporal" or self.split.validation_fraction):
            raise ValueError("seasonal.target_mode 'anomaly' needs the target climatology at every predicted site:"
                             " use split.kind temporal without validation_fraction (a validation period works)")
        return self


    def members(self) -> list[Member]:
        """Every ensemble member's model and training settings (seed = training.seed + index)."""
        variants = self.variants or [Variant()]
        out = []
        for v, var in enumerate(variants):
            model = ModelConfig.model_validate({**self.model.model_dump(), **var.model})
            base = {k: val for k, val in self.training.model_dump().items() if k != "ensemble"}
            training = TrainingConfig.model_validate({**base, **var.training, "ensemble": 1})
            for j in range(self.training.ensemble):
                i = v * self.training.ensemble + j
                out.append(Member(index=i, variant=v, model=model, training=training.model_copy(update={"seed": training.seed + i})))
        return out

    @property
    def n_members(self) -> int:
        return self.training.ensemble * max(1, len(self.variants))

    @model_validator(mode="after")
    def _check(self) -> "RunConfig":
        from smfusion.models import registry

        for v, var in enumerate(self.variants):
            if "ensemble" in var.training or "seed" in var.training:
                raise ValueError(f"variants.{v}.training: 'ensemble' and 'seed' are set for the whole run, not per variant")
            try:
                ModelConfig.model_validate({**self.model.model_dump(), **var.model})
                TrainingConfig.model_validate({**self.training.model_dump(), **var.training})
            except ValidationError as exc:
                raise ValueError(f"variants.{v}: {_format_errors(exc)}") from None
            if var.model.get("name", self.model.name) not in registry.available():
                raise ValueError(f"variants.{v}: unknown model '{var.model['name']}', registered: {registry.available()}")

        if self.model.name not in registry.available():
            raise ValueError(f"unknown model '{self.model.name}', registered: {registry.available()}")
        if self.data.reader == "gridded" and self.data.gridded is None:
            raise ValueError("data.reader 'gridded' needs a data.gridded section (forcing, smap_dir, ismn_dir)")
        if self.data.reader in ("twin", "gridded") and self.multiscale is None:
            raise ValueError(f"data.reader '{self.data.reader}' is for multiscale runs: add a multiscale section")
        if self.multiscale is not None and len(self.data.target) != 1:
            raise ValueError("multiscale runs take one target (the station variable) in data.target")
        if self.data.reader in ("tfrecord", "points"):
            if self.fusion is None:
                self.fusion = FusionConfig()
        elif self.periods is None:
            raise ValueError(f"periods: required for data.reader '{self.data.reader}'")
        if self.data.reader not in ("tfrecord", "points") and not self.data.dynamic and not self.data.static:
            raise ValueError("data.dynamic and data.static are both empty: the model has no inputs")
        if self.normalization.target == "site" and (self.split.kind != "temporal" or self.split.validation_fraction):
            raise ValueError(
                "normalization.target 'site' needs training observations at every scored site:"
                " use split.kind temporal without validation_fraction (a validation period works)"
            )
        for name in self.normalization.log1p:
            if name not in self.data.dynamic and name not in self.data.static:
                raise ValueError(f"normalization.log1p names '{name}', which is not an input variable")
        return self

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def hash(self) -> str:
        """Short stable hash of the resolved config (for provenance)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key}: {msg}")
    return "; ".join(lines)


def parse_config(raw: dict, source: str = "<dict>") -> RunConfig:
    """Validate a config mapping; errors name ``source`` and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config '{source}': expected a mapping at top level, got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"config '{source}': {_format_errors(exc)}") from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config '{path}': invalid YAML: {exc}") from None
    return parse_config(raw, source=str(path))


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
