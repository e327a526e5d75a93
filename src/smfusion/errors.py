"""The project's own error types: one clear message naming the file and field."""

from __future__ import annotations

from pathlib import Path


class SmfusionError(Exception):
    """Base class of every error smfusion raises on purpose."""


class DataError(SmfusionError):
    """Bad or missing input data: names the file and, where known, the field."""

    def __init__(self, message: str, path: str | Path | None = None, field: str | None = None):
        self.path = None if path is None else str(path)
        self.field = field
        parts = []
        if self.path is not None:
            parts.append(f"file '{self.path}'")
        if field is not None:
            parts.append(f"field '{field}'")
        where = (" [" + ", ".join(parts) + "]") if parts else ""
        super().__init__(message + where)


class ConfigError(SmfusionError):
    """Invalid configuration: names the config file and key."""
