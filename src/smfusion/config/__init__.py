"""One typed run configuration that rejects unknown keys.

A run is described by a YAML file; :func:`load_config` validates every field
and raises :class:`~smfusion.errors.ConfigError` naming the file and the key.
Modules: ``base`` (strict model, periods), ``data`` (readers, periods, split,
normalisation), ``training`` (model, training, ensemble variants), ``methods``
(multiscale, CV, seasonal, features, transfer, uncertainty, evaluation),
``run`` (:class:`RunConfig`), ``load`` (YAML in and out).
"""

from smfusion.config.base import Period
from smfusion.config.data import (DataConfig, FusionConfig, GriddedConfig, NormConfig, PeriodsConfig, SplitConfig,
                                  TwinConfig)
from smfusion.config.load import dump_config, load_config, parse_config
from smfusion.config.methods import (CVConfig, DataIntegrationConfig, DescriptorsConfig, EvaluationConfig, FeaturesConfig, MultiscaleConfig, ObservationConfig, SeasonalConfig,
                                     TransferConfig, UncertaintyConfig)
from smfusion.config.run import RunConfig
from smfusion.config.tb import AmsrFiles, CasmTwinConfig, SmapFiles, SmosFiles, TBConfig, TBFilesConfig
from smfusion.config.stores import GridInputsConfig, GridStore, GridVariable, LazyConfig
from smfusion.config.sensors import SensorCellsConfig
from smfusion.config.training import EarlyStopping, Member, ModelConfig, TrainingConfig, Variant

__all__ = [
    "Period", "DataConfig", "FusionConfig", "GriddedConfig", "NormConfig", "PeriodsConfig", "SplitConfig",
    "TwinConfig", "DataIntegrationConfig", "dump_config", "load_config", "parse_config", "CVConfig", "DescriptorsConfig", "EvaluationConfig", "FeaturesConfig",
    "MultiscaleConfig", "ObservationConfig", "SeasonalConfig", "TransferConfig", "UncertaintyConfig", "RunConfig", "EarlyStopping",
    "SensorCellsConfig",
    "Member", "ModelConfig", "TrainingConfig", "Variant", "AmsrFiles", "CasmTwinConfig", "SmapFiles", "SmosFiles",
    "TBConfig", "TBFilesConfig",
    "Member", "ModelConfig", "TrainingConfig", "Variant", "GridInputsConfig", "GridStore", "GridVariable",
    "LazyConfig",
]
