"""The CLI's argument types, its one-line error reporting, and the checks run before any verb.

Every user error ends as ``smfusion: error: <where>: <what> (<hint>)`` on
stderr with exit code 2; an internal error as one ``smfusion: internal error:``
line with exit code 1. ``--debug`` (anywhere on the command line) or
``SMFUSION_DEBUG=1`` prints the traceback as well. See docs/errors.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import errno
import math
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Callable

from smfusion.errors import SmfusionError, SmfusionWarning, one_line

DEBUG_ENV = "SMFUSION_DEBUG"
HINT_DEBUG = f"run with --debug or {DEBUG_ENV}=1 for the traceback, and please report it"
# errors of the user's environment (paths, permissions, space): exit 2 like any user error
_USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR,
                errno.ENAMETOOLONG, errno.ENOENT, errno.EEXIST, errno.ELOOP}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``smfusion: error: --epochs: ... (see 'smfusion train --help')``."""

    def error(self, message: str):  # noqa: D102 (argparse API)
        message = one_line(message)
        if message.startswith("argument "):
            message = message[len("argument "):]
        self.exit(2, f"smfusion: error: {message} (see '{self.prog} --help')\n")


# -- argument types ----------------------------------------------------------
def _int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _float(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A finite number in [0, 1]."""
    value = _float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def grid_name(text: str) -> str:
    """An EASE-Grid 2.0 grid name (M36, M09, N25, EASE2_M36km...), checked when the command line is read."""
    from smfusion.errors import ConfigError
    from smfusion.grids.ease2 import get_grid

    try:
        return get_grid(text).name
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


# pandas' nanosecond timestamps cover 1677-09-21 .. 2262-04-11
DATE_MIN, DATE_MAX = _dt.date(1678, 1, 1), _dt.date(2261, 12, 31)


def date(text: str) -> str:
    """A calendar day ``YYYY-MM-DD`` (returned in that form)."""
    try:
        day = _dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (use YYYY-MM-DD)") from None
    if not DATE_MIN <= day <= DATE_MAX:
        raise argparse.ArgumentTypeError(f"{day} is outside {DATE_MIN} .. {DATE_MAX}")
    return day.isoformat()


# -- checks before any work --------------------------------------------------
# verb -> (argument holding the output, what is written there: "file", "dir", or a function of the path)
OUTPUTS: dict[str, tuple[str, str | Callable[[str], str]]] = {
    "predict": ("out", lambda p: "dir" if Path(p).suffix == ".zarr" else "file"),
    "casm-twin": ("out", "file"),
    "predict-points": ("out", "file"),
    "merge-labels": ("out", "dir"),
    "fusion-shards": ("out", "dir"),
    "validate": ("out", "file"),
    "report": ("out", "dir"),
}
# files a verb writes beside its --out
SIBLINGS: dict[str, Callable[[Path], list[Path]]] = {
    "validate": lambda p: [p.with_suffix(".summary.csv"), p.with_suffix(".json")],
}
# verbs that write into the run directory they are given
RUN_WRITERS = ("evaluate", "recalibrate")
INPUT_ARGS = ("run_dir", "config", "examples", "ismn", "input", "run", "prediction", "stations", "reference", "era")


def _config_paths(config: str) -> list[str]:
    """Paths a run config reads or trains into (protected from being replaced by an output)."""
    from smfusion.config import load_config

    cfg = load_config(config)
    out = [cfg.run_dir, f"runs/{cfg.name}", cfg.data.root]
    if cfg.data.gridded is not None:
        g = cfg.data.gridded
        out += [g.forcing, g.smap_dir, g.ismn_dir]
    if cfg.data.grid_inputs is not None:
        out += [st.path for st in cfg.data.grid_inputs.stores if "*" not in st.path]
    if cfg.transfer is not None:
        out.append(cfg.transfer.from_run)
    return [p for p in out if p]


def _data_dir() -> str | None:
    from smfusion.settings import data_dir

    try:
        root = data_dir()
    except SmfusionError:
        return None
    return None if root is None else str(root)


def _check_predict_period(run_dir: str, start: str, end: str) -> None:
    """Before the run is loaded: refuse a run whose config fails the checks that ``check``/``train`` run
    (:func:`smfusion.runs.checks.validate_config` without training's part: names, then the inputs) and a
    prediction period outside the run's input data."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return  # not a run: loading it names the missing file
    from smfusion.config import load_config
    from smfusion.data.checks import check_period, raise_for_problems
    from smfusion.runs.checks import refuse_invalid

    cfg = load_config(path)
    refuse_invalid(cfg, str(path))
    raise_for_problems(check_period(cfg, start, end))


def preflight(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """Refuse, before any work, a period that ends before it starts and an output that may not be written;
    take the lock of the output (and of a run the verb writes into) for the verb's lifetime.

    Returns the context (:func:`smfusion.io.atomic.user_output`) in which the
    verb runs, so its writer applies the same rules when it writes.
    """
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start is not None and end is not None and start > end:
        from smfusion.errors import ConfigError

        raise ConfigError(f"--start {start} is after --end {end}", hint="give a period that starts before it ends")
    if getattr(args, "command", None) == "predict" and start is not None and end is not None and args.run_dir:
        _check_predict_period(args.run_dir, start, end)
    for run_dir, era_start, era_end in getattr(args, "era", None) or []:  # predict --era: each run's period
        try:
            era_start, era_end = date(era_start), date(era_end)
        except argparse.ArgumentTypeError as exc:
            from smfusion.errors import ConfigError

            raise ConfigError(f"--era {run_dir}: {exc}") from None
        _check_predict_period(run_dir, era_start, era_end)
    from smfusion.io.lock import hold

    stack = contextlib.ExitStack()
    if getattr(args, "command", None) in RUN_WRITERS and getattr(args, "run_dir", None):
        stack.enter_context(hold(args.run_dir, args.command))  # writes into the run: one job at a time
    spec = OUTPUTS.get(getattr(args, "command", None) or "")
    if spec is None or getattr(args, spec[0], None) is None:
        return stack
    from smfusion.io.atomic import user_output
    from smfusion.io.ownership import check_output, check_parent

    out = getattr(args, spec[0])
    kind = spec[1](out) if callable(spec[1]) else spec[1]
    protect = []
    for name in INPUT_ARGS:
        value = getattr(args, name, None)
        values = value if isinstance(value, list) else [value]
        if name == "era":  # [[RUN_DIR, START, END], ...]
            values = [e[0] for e in value or []]
        protect += [v.split("=", 1)[-1] if name == "reference" else v for v in values if v]
    if getattr(args, "config", None):
        protect += _config_paths(args.config)
    protect = [p for p in protect + [_data_dir()] if p]
    overwrite = bool(getattr(args, "overwrite", False))
    check_parent(out)
    what = f"{args.command}{' --product' if getattr(args, 'product', False) else ''}"
    stack.enter_context(hold(out, what))  # one writer per output (io/lock.py), before it is checked
    for path in [Path(out)] + SIBLINGS.get(args.command, lambda p: [])(Path(out)):
        check_output(path, overwrite=overwrite, protect=protect, kind=kind, can_overwrite=hasattr(args, "overwrite"))
        stack.enter_context(user_output(path, overwrite, protect))
    return stack


# -- running a verb with one-line errors -------------------------------------
def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    label = "" if issubclass(category, SmfusionWarning) else f"{category.__name__}: "
    print(f"smfusion: warning: {label}{one_line(str(message))}", file=sys.stderr)


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc)
    return one_line(f"{where}: {what}" if where else what)


def _describe(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code for a failure."""
    if isinstance(exc, SmfusionError):
        return f"smfusion: error: {exc}", 2
    if isinstance(exc, KeyboardInterrupt):
        return "smfusion: error: interrupted (outputs are written atomically: nothing half-written is left)", 130
    if isinstance(exc, OSError) and exc.errno in _USER_ERRNOS:
        return f"smfusion: error: {_os_error(exc)} (check the path and its permissions)", 2
    if isinstance(exc, MemoryError):
        return "smfusion: error: out of memory (use smaller chunks or fewer sites)", 1
    text = _os_error(exc) if isinstance(exc, OSError) else one_line(str(exc))
    return f"smfusion: internal error: {type(exc).__name__}: {text} ({HINT_DEBUG})", 1


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the verb, and turn every failure into one line and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")
    if "--debug" in argv:
        debug = True
        argv = [a for a in argv if a != "--debug"]
    args = parser.parse_args(argv)
    saved = warnings.showwarning
    if not debug:
        warnings.showwarning = _show_warning
    try:
        with preflight(args):
            return int(args.func(args) or 0)
    except BaseException as exc:  # noqa: BLE001 (every failure ends as one line)
        if isinstance(exc, SystemExit):
            raise
        msg, code = _describe(exc)
        if debug:
            traceback.print_exception(exc)
    finally:
        warnings.showwarning = saved
    print(msg, file=sys.stderr)
    return code


def output_args(p, help: str | None = None,
                overwrite_help: str = "replace --out if smfusion wrote it (docs/errors.md)") -> None:
    """``--out`` (required) and ``--overwrite``: every verb that writes a user-named output."""
    p.add_argument("--out", required=True, **({"help": help} if help else {}))
    p.add_argument("--overwrite", action="store_true", help=overwrite_help)
