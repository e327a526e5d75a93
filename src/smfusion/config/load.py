"""Reading, validating and writing run configs (YAML).

The YAML reader refuses duplicate keys (a later key would silently win) and
reports any YAML problem as one :class:`ConfigError` line naming the file,
line and column.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from smfusion.config.base import _format_errors
from smfusion.config.run import RunConfig
from smfusion.errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping."""


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    first: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:  # '<<' merges: later keys override merged ones on purpose
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            line = first.get(key)
        except TypeError:
            raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                    "found an unhashable key", key_node.start_mark) from None
        if line is not None:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (first at line {line})",
                                                    key_node.start_mark)
        first[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


def _construct_timestamp(loader: UniqueKeyLoader, node: yaml.ScalarNode):
    try:
        return loader.construct_yaml_timestamp(node)
    except (ValueError, OverflowError) as exc:  # e.g. 2015-13-01
        raise yaml.constructor.ConstructorError(None, None, f"invalid date {node.value!r}: {exc}",
                                                node.start_mark) from None


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _yaml_message(exc: Exception) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return f"invalid YAML: {where}{exc.problem or exc.context}"
    return f"invalid YAML: {type(exc).__name__}: {exc}"


def read_yaml(text: str, source: str = "<text>"):
    """Parse YAML ``text`` with :class:`UniqueKeyLoader`; every failure is a ConfigError naming ``source``."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        # ValueError/OverflowError: YAML dates such as 2015-13-01 are built (and refused) by the loader
        raise ConfigError(_yaml_message(exc), path=source) from None


def parse_config(raw: dict, source: str = "<dict>") -> RunConfig:
    """Validate a config mapping; errors name ``source`` and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping at top level, got {type(raw).__name__}", path=source)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc), path=source) from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a config file" if path.is_dir() else "config file not found"
        raise ConfigError(what, path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=path) from None
    return parse_config(read_yaml(text, str(path)), source=str(path))


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
