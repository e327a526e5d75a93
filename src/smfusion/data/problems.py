"""What an input check finds, and the registry of the checks by reader: ``@register_check("<reader>")``.

A reader's check may live with the reader (:mod:`smfusion.data.grid_inputs`) or above it
(:mod:`smfusion.data.checks`); both register here, and :func:`smfusion.data.checks.check_config` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from smfusion.config import RunConfig
from smfusion.errors import DataError, SmfusionError

__all__ = ["Problem", "Severity", "Hook", "CHECKS", "register_check", "raise_for_problems", "granule_problems"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding: ``where`` (file and/or config key), ``what`` (the rule broken), ``hint``."""

    where: str
    what: str
    hint: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return text + (f" ({self.hint})" if self.hint else "")

    @classmethod
    def from_error(cls, exc: SmfusionError, severity: Severity = "error") -> "Problem":
        return cls(exc.where, exc.message, exc.hint or "", severity)


Hook = Callable[[RunConfig], list[Problem]]
CHECKS: dict[str, Hook] = {}


def register_check(reader: str) -> Callable[[Hook], Hook]:
    """Decorator: ``fn(cfg) -> list[Problem]`` checks the inputs of configs with ``data.reader == reader``."""

    def deco(fn: Hook) -> Hook:
        CHECKS[reader] = fn
        return fn

    return deco


def raise_for_problems(problems: list[Problem]) -> None:
    """Raise the first error of ``problems`` as a :class:`DataError` (warnings are left to the caller)."""
    for p in problems:
        if p.severity == "error":
            raise DataError(p.what, path=p.where or None, hint=p.hint or None)


def granule_problems(files: list[Path], key: str) -> list[Problem]:
    """The first of ``files`` that is not the HDF5/NetCDF file its name says (:mod:`smfusion.io.signatures`),
    with the count of such files under config key ``key``."""
    from smfusion.io.signatures import wrong_kind

    bad = [(f, why) for f in files for why in [wrong_kind(f)] if why]
    if not bad:
        return []
    more = f"; {len(bad) - 1} more file(s) of {key} likewise" if len(bad) > 1 else ""
    return [Problem(str(bad[0][0]), bad[0][1] + more, f"remove or replace it ({key})")]
