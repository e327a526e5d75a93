"""Building blocks of the typed config: strict models (unknown keys rejected), periods, error text."""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


def day(value: Any) -> str:
    """A calendar day from a config value (``2015-04-01`` as text or a YAML date), as ``YYYY-MM-DD``.

    An empty value, ``NaT``/``None`` or text pandas cannot read as a date is refused (a
    ValueError the config error names the key of), so a missing date never travels on as NaT.
    """
    if isinstance(value, (_dt.date, pd.Timestamp)) and not pd.isna(value):
        return pd.Timestamp(value).date().isoformat()
    text = "" if value is None else str(value).strip()
    if text.lower() in ("", "nat", "none", "null", "nan"):
        raise ValueError(f"empty date ({value!r}): give a day as YYYY-MM-DD")
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"bad date '{text}' (use YYYY-MM-DD): {exc}") from None
    if pd.isna(stamp):
        raise ValueError(f"empty date ({value!r}): give a day as YYYY-MM-DD")
    return stamp.date().isoformat()


# a config field holding one calendar day (see :func:`day`)
Day = Annotated[str, BeforeValidator(day)]


class Period(_Strict):
    """An inclusive date range ``[start, end]`` of calendar days (empty or ``NaT`` dates refused)."""

    start: Day
    end: Day

    @model_validator(mode="after")
    def _check(self) -> "Period":
        t0, t1 = pd.Timestamp(self.start), pd.Timestamp(self.end)
        if t1 < t0:
            raise ValueError(f"period ends before it starts: {self.start}..{self.end}")
        return self

    @classmethod
    def parse(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return {"start": value[0], "end": value[1]}
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
