"""Reading, validating and writing run configs (YAML)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from smfusion.config.base import _format_errors
from smfusion.config.run import RunConfig
from smfusion.errors import ConfigError

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
