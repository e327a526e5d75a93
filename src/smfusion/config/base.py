"""Building blocks of the typed config: strict models (unknown keys rejected), periods, error text."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


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


TAG_PREFIX = "reader="  # tags of the union a section is selected from by name: not part of a key's path


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"] if not str(p).startswith(TAG_PREFIX)) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        lines.append(f"{key}: {msg}")
    return "; ".join(lines)


def unique(values: list, what: str) -> list:
    """``values`` when no item repeats; else a ValueError naming the first repeated one."""
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what} '{v}' listed twice")
        seen.add(v)
    return values
