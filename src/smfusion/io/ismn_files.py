"""One ISMN station file -> :class:`SensorRecord` (the file layer of :mod:`smfusion.io.ismn`).

"header+values" and "CEOP separate files" layouts through TU Wien's ``ismn``
package file handlers, station ``*_static_variables.csv`` merged as ISMN does,
and a small fallback parser for the old combined CEOP layout (which ``ismn``
>= 1.0 refuses). A file that cannot be read raises
:class:`smfusion.errors.DataError` naming it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from smfusion.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["STATIC_FIELDS", "SensorRecord", "find_ismn_files", "read_ismn_file"]

# Station metadata carried to the dataset: (name, kind) with kind "num" or "str".
STATIC_FIELDS = (
    ("lc_2000", "num"), ("lc_2005", "num"), ("lc_2010", "num"), ("lc_insitu", "str"),
    ("climate_KG", "str"), ("climate_insitu", "str"),
    ("saturation", "num"), ("clay_fraction", "num"), ("sand_fraction", "num"),
    ("silt_fraction", "num"), ("organic_carbon", "num"),
)
_CEOP_COLUMNS = 16


@dataclass
class SensorRecord:
    """One sensor's raw series (UTC index; columns ``value`` and ``flag``) and its metadata."""

    data: pd.DataFrame
    meta: dict = field(default_factory=dict)


def find_ismn_files(path: str | Path) -> list[Path]:
    """ISMN data files (``*.stm``) under a folder, sorted; a file path gives itself."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        raise DataError("zipped ISMN downloads are not read directly: extract the archive first", path=path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError("ISMN path not found", path=path)
    files = sorted(p for p in path.rglob("*.stm") if p.is_file())
    if not files:
        others = sorted(p.name for p in path.rglob("*") if p.is_file())[:5]
        raise DataError(f"no ISMN data files (*.stm) in folder; found {others or 'nothing'}", path=path)
    return files


# --------------------------------------------------------------------------
# one file
# --------------------------------------------------------------------------

def _first_line(path: Path) -> list[str]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from exc
    lines = head.splitlines()
    return lines[0].decode("ascii", "replace").split() if lines else []


def _is_date(token: str) -> bool:
    return len(token) == 10 and token[4] == "/" and token[7] == "/" and token.replace("/", "").isdigit()


def _looks_like_old_ceop(tokens: list[str]) -> bool:
    return len(tokens) == _CEOP_COLUMNS and _is_date(tokens[0]) and _is_date(tokens[2])


def _static_meta(path: Path, tokens: list[str]):
    """ismn MetaData of the station's static-variables csv, or None."""
    from ismn.filehandlers import StaticMetaFile

    if len(tokens) < 3:
        return None
    csv = path.parent / f"{tokens[0]}_{tokens[1]}_{tokens[2]}_static_variables.csv"
    if not csv.is_file():
        return None
    try:
        return StaticMetaFile(csv.parent, csv.name).metadata
    except Exception as exc:  # the csv is optional: keep the data, say why
        log.warning("skipping unreadable ISMN static-variables file %s: %s", csv, exc)
        return None


def _meta_value(md, name: str):
    try:
        var = md[name]
    except Exception:
        return None
    try:
        if hasattr(var, "val"):
            return var.val
        return var[0].val  # several entries: best_meta_for_depth left the best first
    except Exception:
        return None


def _clean(value, kind: str):
    if kind == "num":
        try:
            out = float(value)
        except (TypeError, ValueError):
            return np.nan
        return out
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "unknown"
    return str(value)


def _read_with_ismn(path: Path, variable: str) -> SensorRecord:
    from ismn.filehandlers import DataFile
    from ismn.meta import Depth

    try:
        handler = DataFile(path.parent, path.name)
    except Exception:
        first = " ".join(_first_line(path))[:60]
        raise DataError(f"not an ISMN data file in the header+values or CEOP layout (first line {first!r})",
                        path=path, field="header") from None
    md = handler.metadata
    tokens = path.name.split("_")
    static = _static_meta(path, tokens)
    try:
        if static is not None:
            md.merge(static, inplace=True, exclude_empty=False)
        instrument = md["instrument"]
        md = md.best_meta_for_depth(Depth(instrument.depth.start, instrument.depth.end))
        var_name = md["variable"].val
        depth_from, depth_to = float(instrument.depth.start), float(instrument.depth.end)
        meta = {
            "network": tokens[1] if len(tokens) > 1 else str(_meta_value(md, "network")),
            "station": str(_meta_value(md, "station")),
            "sensor": str(instrument.val),
            "variable": str(var_name),
            "latitude": float(_meta_value(md, "latitude")),
            "longitude": float(_meta_value(md, "longitude")),
            "elevation": float(_meta_value(md, "elevation")),
            "depth_from": depth_from,
            "depth_to": depth_to,
            "file_format": handler.file_type,
        }
    except Exception as exc:
        raise DataError(f"incomplete ISMN metadata: {exc}", path=path, field="header") from None
    for name, kind in STATIC_FIELDS:
        meta[name] = _clean(_meta_value(md, name), kind)
    if meta["variable"] != variable:
        return SensorRecord(pd.DataFrame({"value": [], "flag": []}), meta)
    try:
        raw = handler.read_data()
    except Exception as exc:
        raise DataError(f"cannot parse ISMN data lines: {exc.__class__.__name__}: {exc}",
                        path=path, field=variable) from None
    if var_name not in raw.columns or f"{var_name}_flag" not in raw.columns:
        raise DataError("data columns missing", path=path, field=variable)
    frame = pd.DataFrame({"value": raw[var_name].to_numpy(), "flag": raw[f"{var_name}_flag"].to_numpy()},
                         index=raw.index)
    return SensorRecord(_validate(frame, path, variable), meta)


def _validate(frame: pd.DataFrame, path: Path, variable: str) -> pd.DataFrame:
    """Numeric values, string flags, a UTC DatetimeIndex, sorted; else DataError."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        try:
            frame.index = pd.DatetimeIndex(frame.index)
        except (TypeError, ValueError):
            raise DataError("time stamps are not dates", path=path, field="date_time") from None
    try:
        values = pd.to_numeric(frame["value"], errors="raise").astype(float)
    except (TypeError, ValueError):
        raise DataError("non-numeric values", path=path, field=variable) from None
    if frame.index.hasnans:
        raise DataError("unparsable time stamps", path=path, field="date_time")
    out = pd.DataFrame({"value": values.to_numpy(), "flag": frame["flag"].astype(str).to_numpy()},
                       index=frame.index.astype("datetime64[ns]"))
    out.index.name = "time"
    return out.sort_index(kind="stable")


def _read_old_ceop(path: Path, tokens0: list[str], variable: str) -> list[SensorRecord]:
    """Old combined CEOP file: one line per time and depth with soil temperature and moisture.

    Columns: nominal date time, actual date time, CSE, network, station, lat,
    lon, elevation, '-', depth (m), soil temperature, flag, soil moisture
    (m3/m3), flag (as ismn 0.x read them). Missing values are -999.99.
    """
    if variable != "soil_moisture":
        return []
    try:
        raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, engine="c")
    except Exception as exc:
        raise DataError(f"cannot parse CEOP file: {exc.__class__.__name__}", path=path, field="data") from None
    if raw.shape[1] != _CEOP_COLUMNS:
        raise DataError(f"expected {_CEOP_COLUMNS} columns in a CEOP line, got {raw.shape[1]}", path=path,
                        field="data")
    try:
        times = pd.to_datetime(raw[0] + " " + raw[1], format="%Y/%m/%d %H:%M")
        depth = raw[11].astype(float)
        value = raw[14].astype(float)
        lat, lon, elev = (float(raw[c].iloc[0]) for c in (7, 8, 9))
    except (TypeError, ValueError):
        raise DataError("non-numeric or undated CEOP line", path=path, field="soil_moisture") from None
    value = value.where(value > -999.0)
    flag = raw[15].astype(str)
    tokens = path.name.split("_")
    records = []
    for d in np.unique(depth.to_numpy()):
        sel = (depth == d).to_numpy()
        frame = pd.DataFrame({"value": value[sel].to_numpy(), "flag": flag[sel].to_numpy()},
                             index=pd.DatetimeIndex(times[sel]))
        meta = {
            "network": tokens[1] if len(tokens) > 1 else str(raw[5].iloc[0]),
            "station": str(raw[6].iloc[0]),
            "sensor": "unknown",
            "variable": "soil_moisture",
            "latitude": lat, "longitude": lon, "elevation": elev,
            "depth_from": float(d), "depth_to": float(d),
            "file_format": "ceop",
        }
        for name, kind in STATIC_FIELDS:
            meta[name] = _clean(None, kind)
        records.append(SensorRecord(_validate(frame, path, "soil_moisture"), meta))
    return records


def _quiet(func, *args):
    """Call into the ismn package without its pandas deprecation warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"ismn(\..*)?$")
        return func(*args)


def read_ismn_file(path: str | Path, variable: str = "soil_moisture") -> list[SensorRecord]:
    """Read one ISMN data file into sensor records (one, or one per depth for old CEOP files).

    Files of another variable give records with empty data. Raises DataError
    naming the file for anything that is not a readable ISMN file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("ISMN file not found", path=path)
    tokens = _first_line(path)
    if not tokens:
        raise DataError("empty file", path=path, field="header")
    if _looks_like_old_ceop(tokens):
        return _read_old_ceop(path, tokens, variable)
    return [_quiet(_read_with_ismn, path, variable)]
