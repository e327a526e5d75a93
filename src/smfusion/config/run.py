"""The whole run config (:class:`RunConfig`): sections plus the checks that span them."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from pydantic import Field, ValidationError, field_validator, model_validator

from smfusion.config.base import _format_errors, _Strict
from smfusion.config.data import DATA_BY_READER, DataConfig, DataSection, FusionConfig, NormConfig, PeriodsConfig, SplitConfig
from smfusion.config.methods import (CVConfig, DataIntegrationConfig, DescriptorsConfig, EvaluationConfig, FeaturesConfig, MultiscaleConfig, SeasonalConfig,
                                     TransferConfig, UncertaintyConfig)
from smfusion.config.tb import TBConfig
from smfusion.config.training import Member, ModelConfig, TrainingConfig, Variant

_NAME_PUNCT = frozenset("._-+=@,")


def check_run_name(name: str) -> str:
    """``name`` when it is one path component of letters (any script), digits and ``._-+=@,`` (not ``.``/``..``, not hidden,
    at most 100 characters); else ValueError saying which rule it breaks."""
    if not name or not name.strip():
        raise ValueError("must not be empty")
    if len(name) > 100:
        raise ValueError(f"is {len(name)} characters long; at most 100")
    bad = sorted({c for c in name if not (c.isalnum() or c in _NAME_PUNCT)})
    if bad or name.startswith("."):
        what = "a path separator" if "/" in bad or "\\" in bad else f"{bad[0]!r}" if bad else "a leading '.'"
        raise ValueError(f"{name!r} is not a plain name (it holds {what}): use letters, digits and ._-+=@, only; "
                         "put a path in run_dir or --run-dir")
    return name


class RunConfig(_Strict):
    """The whole run: data, periods, split, model, training, evaluation.

    Names that registries resolve (model, objective, adapter, reader) are checked
    where those registries live, before any work: :func:`smfusion.training.run.check_names`.

    ``variants`` (optional) mixes model settings in one ensemble: each variant
    overrides fields of ``model``/``training`` and gets ``training.ensemble``
    members, so the run has ``ensemble * len(variants)`` members.
    """

    name: str = "run"
    run_dir: Optional[str] = None
    data: DataSection  # the section class its reader selects (config.data.DATA_BY_READER)
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
    tb: Optional[TBConfig] = None  # brightness-temperature adapter (data.adapter: tb; docs/casm.md)
    descriptors: DescriptorsConfig = Field(default_factory=DescriptorsConfig)  # climate indices, location (ungauged)
    data_integration: Optional[DataIntegrationConfig] = None  # latest retrieval as input (nowcasts, docs/nowcast.md)

    @field_validator("data", mode="before")
    @classmethod
    def _data_as_given(cls, v: Any) -> Any:
        """A DataConfig built in code is re-selected by its reader (the section class may differ)."""
        return v.model_dump() if isinstance(v, DataConfig) and type(v) is not DATA_BY_READER.get(v.reader, DataConfig) \
            else v

    @field_validator("name")
    @classmethod
    def _name_is_a_name(cls, v: str) -> str:
        """A run name becomes ``runs/<name>``: a name, never a path (docs/security.md)."""
        return check_run_name(v)

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
        if self.features.bucket is not None:
            missing = [v for v in self.features.bucket.variables if v not in dyn]
            if missing:
                raise ValueError(f"features.bucket reads {missing}, not in data.dynamic")
            if self.periods.warmup_days < 365:
                raise ValueError("features.bucket needs periods.warmup_days >= 365 (a year of spin-up before the "
                                 f"first predicted day), got {self.periods.warmup_days}")
        for name, pair in self.features.polarization_ratio.items():
            missing = [v for v in pair if v not in dyn]
            if missing:
                raise ValueError(f"features.polarization_ratio.{name} names {missing}, not in data.dynamic")
            if name in dyn:
                raise ValueError(f"features.polarization_ratio.{name}: the name is already a dynamic input")
        sea = self.seasonal
        for var in sea.inputs or []:
            if var not in dyn:
                raise ValueError(f"seasonal.inputs names '{var}', which is not in data.dynamic")
        if sea.input_mode == "anomaly":
            clash = [v for v in self.normalization.log1p if v in (sea.inputs if sea.inputs is not None else dyn)]
            if clash:
                raise ValueError(f"normalization.log1p {clash} and seasonal.input_mode anomaly exclude each other"
                                 " (log1p would clip negative anomalies)")
        if sea.climatology_inputs:
            base = sea.inputs if sea.inputs is not None else list(dyn)
            ok = set(base) | {n for n, pair in self.features.polarization_ratio.items() if set(pair) <= set(base)}
            bad = [v for v in sea.climatology_inputs if v not in ok or sea.input_mode != "anomaly"]
            if bad:
                raise ValueError(f"seasonal.climatology_inputs {bad}: give anomaly inputs (input_mode anomaly;"
                                 " data.dynamic or polarization ratios of them)")
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
        for v, var in enumerate(self.variants):
            if "ensemble" in var.training or "seed" in var.training:
                raise ValueError(f"variants.{v}.training: 'ensemble' and 'seed' are set for the whole run, not per variant")
            try:
                ModelConfig.model_validate({**self.model.model_dump(), **var.model})
                TrainingConfig.model_validate({**self.training.model_dump(), **var.training})
            except ValidationError as exc:
                raise ValueError(f"variants.{v}: {_format_errors(exc)}") from None
        if self.data.multiscale_reader and self.multiscale is None:
            raise ValueError(f"data.reader '{self.data.reader}' is for multiscale runs: add a multiscale section")
        if self.multiscale is not None and len(self.data.target) != 1:
            raise ValueError("multiscale runs take one target (the station variable) in data.target")
        if self.data.point_reader:
            if self.fusion is None:
                self.fusion = FusionConfig()
        elif self.periods is None:
            raise ValueError(f"periods: required for data.reader '{self.data.reader}'")
        if not self.data.point_reader and not self.data.dynamic and not self.data.static:
            raise ValueError("data.dynamic and data.static are both empty: the model has no inputs")
        if self.normalization.target == "site" and (self.split.kind != "temporal" or self.split.validation_fraction):
            raise ValueError(
                "normalization.target 'site' needs training observations at every scored site:"
                " use split.kind temporal without validation_fraction (a validation period works)"
            )
        sites = self.data.sites
        if sites is not None and self.split.kind == "kfold" and self.split.k > len(sites):
            raise ValueError(f"split.k {self.split.k} exceeds the {len(sites)} sites of data.sites")
        if sites is not None and self.split.kind == "sites":
            outside = sorted(set(self.split.train_sites + self.split.test_sites) - set(sites))
            if outside:
                raise ValueError(f"split lists site {outside[0]}, which is not in data.sites")
        desc = self.descriptors.active or self.descriptors.static_noise > 0
        sequence_only = [what for what, on in (("descriptors", desc), ("normalization.target 'predicted'",
                                                                        self.normalization.target == "predicted"),
                                               ("data_integration", self.data_integration is not None)) if on]
        other = self.multiscale is not None or self.data.point_reader or self.data.adapter in (
            "tb", "points", "multiscale")
        if sequence_only and other:
            raise ValueError(f"{' and '.join(sequence_only)}: for sequence runs only (no multiscale section, "
                             "no point reader, not the tb adapter)")
        if self.data_integration is not None and self.data.lazy is not None:
            raise ValueError("data_integration: not with data.lazy yet (the lazy sampler does not read the retrievals)")
        for name in self.normalization.log1p:
            if name not in self.data.dynamic and name not in self.data.static:
                raise ValueError(f"normalization.log1p names '{name}', which is not an input variable")
        return self

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def hash(self) -> str:
        """Short stable hash of the resolved config (for provenance)."""
        d = self.to_dict()
        if d.get("data_integration") is None:  # runs without it keep the hash they had before the section existed
            d.pop("data_integration", None)
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
