"""The project's own error types: one line, ``<where>: <what> (<hint>)``.

``where`` is the file (and ``[field '...']`` when known: a variable, a config
key, a row); ``what`` is the rule that was broken; ``hint`` says what to do.
The CLI prints ``smfusion: error: `` followed by ``str(error)`` and exits 2
(docs/errors.md).
"""

from __future__ import annotations

from pathlib import Path


def one_line(text: str) -> str:
    """``text`` with every line break (and the blanks around it) turned into one space."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class SmfusionError(Exception):
    """Base class of every error smfusion raises on purpose (a user error: exit code 2)."""

    def __init__(self, message: str, path: str | Path | None = None, field: str | None = None,
                 hint: str | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.field = field
        self.hint = hint
        super().__init__(self.render())

    @property
    def where(self) -> str:
        """The file and/or field the error is about ('' when neither is known)."""
        field = f"[field '{self.field}']" if self.field is not None else ""
        return " ".join(p for p in (self.path, field) if p)

    def render(self) -> str:
        where = self.where
        text = f"{where}: {self.message}" if where else str(self.message)
        if self.hint:
            text += f" ({self.hint})"
        return one_line(text)

    def __reduce__(self):  # picklable across processes with every attribute
        return (_rebuild, (type(self), self.message, self.path, self.field, self.hint))


def _rebuild(cls, message, path, field, hint):
    return cls(message, path=path, field=field, hint=hint)


class DataError(SmfusionError):
    """Bad or missing input data: names the file and, where known, the field."""


class ConfigError(SmfusionError):
    """Invalid configuration: names the config file and key."""


class OutputError(SmfusionError):
    """An output smfusion refuses to write: it exists, is not smfusion's, or would replace an input."""


class SmfusionWarning(UserWarning):
    """Something the user should know that does not stop the command (the CLI prints one line)."""
