"""Headerless numeric CSV matrices (the hydroDL database layout), read strictly.

:func:`read_matrix` refuses, with one :class:`DataError` naming the file, the
variable, the line (site) and column (day) and the rule: a missing or empty
file, a ragged or truncated row, text where a number belongs, and NaN or
infinite values. ``-9999`` (hydroDL's missing value) becomes NaN.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from smfusion.errors import DataError

FILL = -9999.0
HINT_FILL = "hydroDL files mark a missing value with -9999"


def _text(path: Path, field: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path, field=field) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not a text file (byte {exc.start} is not UTF-8)", path=path, field=field,
                        hint="restore the file") from None


def lines(path: Path, field: str = "") -> list[str]:
    """The lines of a text file up to its last non-blank one (blank lines before it are kept, as '')."""
    rows = _text(path, field).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while rows and not rows[-1].strip():
        rows.pop()
    return rows


def _cell(row: int, col: int, dates: pd.DatetimeIndex | None) -> str:
    day = f" ({dates[col].strftime('%Y-%m-%d')})" if dates is not None and col < dates.size else ""
    return f"line {row + 1} (site {row}), column {col + 1}{day}"


def _ragged(rows: list[str], path: Path, field: str) -> DataError | None:
    """A DataError for the first blank line or line whose number of fields differs from line 1's (None if none)."""
    if not rows:
        return DataError("empty file", path=path, field=field, hint="restore the file")
    width = rows[0].count(",") + 1
    for i, line in enumerate(rows, start=1):
        if not line.strip():
            return DataError(f"line {i} is empty", path=path, field=field,
                             hint="one row per cell, no blank lines; restore the file")
        n = line.count(",") + 1
        if n != width:
            return DataError(f"ragged or truncated: line {i} has {n} values, line 1 has {width}", path=path,
                             field=field, hint="every row needs the same number of values; restore the file")
    return None


def _parse_error(rows: list[str], path: Path, field: str, exc: Exception) -> DataError:
    ragged = _ragged(rows, path, field)
    if ragged is not None:
        return ragged
    for i, line in enumerate(rows, start=1):
        for j, text in enumerate(line.split(","), start=1):
            try:
                float(text)
            except ValueError:
                return DataError(f"line {i}, column {j}: {text.strip()[:40]!r} is not a number", path=path,
                                 field=field, hint=HINT_FILL)
    return DataError(f"cannot parse CSV ({exc.__class__.__name__}: {exc})", path=path, field=field)


def read_matrix(path: Path, field: str, dates: pd.DatetimeIndex | None = None) -> np.ndarray:
    """The numbers of a headerless CSV, -9999 as NaN; refuses ragged rows, text and non-finite values."""
    if not path.is_file():
        raise DataError("missing file", path=path, field=field)
    rows = lines(path, field)
    if not rows:
        raise DataError("empty file", path=path, field=field, hint="restore the file")
    try:
        arr = pd.read_csv(io.StringIO("\n".join(rows)), header=None, dtype=np.float64,
                          skip_blank_lines=False).to_numpy(copy=True)
    except Exception as exc:  # pandas raises many types on bad CSV
        raise _parse_error(rows, path, field, exc) from None
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = (int(i[0]) for i in np.nonzero(bad))
        if np.isnan(arr[r, c]):
            raise _ragged(rows, path, field) or DataError(f"empty or NaN value at {_cell(r, c, dates)}", path=path,
                                                    field=field, hint=HINT_FILL)
        raise DataError(f"non-finite value {arr[r, c]} at {_cell(r, c, dates)}", path=path, field=field,
                        hint=HINT_FILL)
    arr[arr == FILL] = np.nan
    return arr
