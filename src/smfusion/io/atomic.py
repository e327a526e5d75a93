"""Atomic, non-destructive output: write a sibling temporary, then rename it onto the target.

A crash or an error while writing leaves the target as it was. What may be
replaced depends on ``overwrite`` (see :mod:`smfusion.io.ownership`):

* ``False``: an existing target is refused (an empty folder may take a folder output);
* ``True``: an existing target is replaced only when smfusion wrote it, and
  never when it is a run directory, inside or holding one, or an input (``protect``);
* ``None`` (default; smfusion's own rewrites inside its run directories, such
  as ``config.yaml``, checkpoints, metrics): an existing file is replaced; an
  existing folder only when smfusion wrote it and it holds no run directory.
  Outputs named by a user must pass ``True`` or ``False``.

Temporaries are named ``.<name>.smfusion-<host>-<pid>-<random>.tmp`` beside the
target; those left by dead processes of this host are removed on the next write
to the same target. A folder output gets the marker ``.smfusion-output``
listing its entries, and a user-named output file (``overwrite`` given) an
entry (sha256) in its folder's ``.smfusion-files`` ledger, so a later
``overwrite`` recognises them.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import json
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import Iterable, Iterator, Optional

from smfusion.errors import OutputError
from smfusion.io.ownership import (HINT_OVERWRITE, LEDGER, MARKER, check_not_input, check_replaceable, tree_listing,
                                   file_sha256, is_empty_dir, is_run_dir, is_smfusion_output, read_ledger,
                                   run_dir_above, run_dir_within, self_describing)

__all__ = ["atomic_path", "write_text", "user_output", "clean_stale", "clean_stale_in", "temp_name", "move_aside", "process_alive", "MARKER"]

_NAME_MAX = 100  # characters of the target name kept in a temporary's name


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"


def temp_name(path: str | Path, kind: str = "tmp", suffix: str = "") -> Path:
    """A fresh sibling name for a temporary (``kind`` "tmp") or a moved-aside target ("old")."""
    path = Path(path)
    token = secrets.token_hex(4)
    return path.parent / f".{path.name[:_NAME_MAX]}.smfusion-{_host()}-{os.getpid()}-{token}{suffix}.{kind}"


def _temp_re(path: Path) -> re.Pattern:
    return re.compile(rf"^\.{re.escape(path.name[:_NAME_MAX])}\.smfusion-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-"
                      r"[0-9a-f]+.*\.(?P<kind>tmp|old|trash)$")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (this process: yes; one we may not signal: assumed yes)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM), or unknown: assume alive
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        with contextlib.suppress(OSError):
            path.unlink()


def clean_stale(path: str | Path) -> list[Path]:
    """Remove temporaries of ``path`` left by dead processes of this host; returns what was cleaned.

    A moved-aside target (``.old``) whose target is missing (a crash between
    the two renames) is moved back instead of removed.
    """
    path = Path(path)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    pattern, host, done = _temp_re(path), _host(), []
    for name in sorted(names):
        m = pattern.match(name)
        if m is None or m["host"] != host or process_alive(int(m["pid"])):
            continue
        stale = path.parent / name
        if m["kind"] == "old" and not (path.exists() or path.is_symlink()):
            with contextlib.suppress(OSError):
                os.rename(stale, path)
                done.append(stale)
            continue
        _remove(stale)
        done.append(stale)
    return done


_ANY_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.smfusion-[A-Za-z0-9]+-\d+-[0-9a-f]+.*\.(tmp|old|trash)$")


def clean_stale_in(folder: str | Path) -> list[Path]:
    """:func:`clean_stale` for every target in ``folder`` that has a temporary there (e.g. a run
    directory's parts after a kill mid-``--restart``, whose targets are already gone)."""
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    targets = {m["target"] for n in names if (m := _ANY_TEMP_RE.match(n))}
    return [p for t in sorted(targets) for p in clean_stale(folder / t)]


_USER_OUTPUTS: contextvars.ContextVar[dict] = contextvars.ContextVar("smfusion_user_outputs", default={})


@contextlib.contextmanager
def user_output(path: str | Path, overwrite: bool, protect: Iterable[str | Path] = ()) -> Iterator[None]:
    """Within the block, a write to ``path`` that leaves ``overwrite`` unset is treated as a user-named output
    (``overwrite`` and ``protect`` as given): the CLI wraps each verb so that every writer applies the
    ``--overwrite`` rules at write time too, whether or not it passes the flag down."""
    key = str(Path(path).absolute())
    token = _USER_OUTPUTS.set({**_USER_OUTPUTS.get(), key: (bool(overwrite), tuple(protect))})
    try:
        yield
    finally:
        _USER_OUTPUTS.reset(token)


def _check_target(path: Path, overwrite: Optional[bool], protect: list) -> None:
    check_not_input(path, protect)
    if not (path.exists() or path.is_symlink()) or is_empty_dir(path):
        return
    if overwrite is False:
        raise OutputError("exists", path=path, hint=HINT_OVERWRITE)
    if overwrite:
        check_replaceable(path, protect)
        return
    if path.is_dir() and not path.is_symlink():  # internal rewrite of a folder: only smfusion's own
        inner = run_dir_within(path)
        if inner is not None:
            raise OutputError(f"contains the run directory {inner}: never replaced", path=path,
                              hint="choose another output name")
        if not is_smfusion_output(path):
            raise OutputError(f"smfusion did not write this folder (no {MARKER} marker): not replaced",
                              path=path, hint="remove it yourself or choose another name")
    elif path.is_symlink() and path.is_dir():
        raise OutputError("is a symbolic link to a folder: not replaced", path=path, hint="choose another name")


def _write_marker(folder: Path) -> None:
    from smfusion import __version__

    entries = sorted(n for n in os.listdir(folder) if n != MARKER)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    (folder / MARKER).write_text(json.dumps({"written_by": "smfusion", "version": __version__, "created": now,
                                             "entries": entries, "files": tree_listing(folder)}) + "\n")


def _record(path: Path) -> None:
    """Note the user-named output file ``path`` in its folder's ledger, so a later ``overwrite`` recognises it.

    Not for files inside run directories or that describe themselves
    (NetCDF/HDF5 with ``smfusion_version``). Best effort: a lost record only
    makes a later ``overwrite`` refuse.
    """
    folder = path.parent
    if ".smfusion-" in folder.name or run_dir_above(path) is not None or self_describing(path):
        return
    tmp = temp_name(folder / LEDGER)
    try:
        ledger = {k: v for k, v in read_ledger(folder).items() if (folder / k).is_file()}
        ledger[path.name] = file_sha256(path)
        tmp.write_text(json.dumps(ledger, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, folder / LEDGER)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _commit(tmp: Path, path: Path) -> None:
    """Move ``tmp`` onto ``path``: one rename for a file or a new/empty target, else move the old one aside."""
    exists = path.exists() or path.is_symlink()
    if not exists or (tmp.is_file() and not path.is_dir()) or (tmp.is_dir() and is_empty_dir(path)):
        os.replace(tmp, path)
        return
    old = temp_name(path, "old")
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    _remove(old)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError("a parent of the output is a file, not a folder", path=path,
                          hint="choose an output inside a folder") from None


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None, *, overwrite: Optional[bool] = None,
                protect: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The writer creates a file or a folder (Zarr) at the yielded path. The
    target is checked before the writer runs and again before the rename
    (``overwrite`` and ``protect`` as in the module docstring); on any error
    the temporary is removed and ``path`` is left as it was.
    """
    path = Path(path)
    protect = list(protect)
    if overwrite is None and str(path.absolute()) in _USER_OUTPUTS.get():
        overwrite, extra = _USER_OUTPUTS.get()[str(path.absolute())]
        protect += list(extra)
    _make_parent(path)
    _check_target(path, overwrite, protect)
    clean_stale(path)
    tmp = temp_name(path, "tmp", suffix or "")
    try:
        yield tmp
        if tmp.is_dir() and not tmp.is_symlink():
            _write_marker(tmp)
        _check_target(path, overwrite, protect)
        _commit(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    if overwrite is not None and path.is_file() and not path.is_symlink():
        _record(path)  # a user-named output: recognisable by a later --overwrite


def move_aside(path: str | Path) -> Path | None:
    """Rename the run directory ``path`` to ``<path>.old-<UTC stamp>`` beside it (one atomic step, nothing
    deleted: what the user put inside goes along); returns the new name (None when ``path`` is absent or
    an empty folder, which stays). ``train --restart`` starts from a clean slate this way.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()) or is_empty_dir(path):
        return None
    if path.is_symlink() or not is_run_dir(path):
        raise OutputError("is not a run directory: smfusion moves aside only its own runs", path=path)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for i in range(1, 1000):
        aside = path.with_name(f"{path.name}.old-{stamp}" + (f"-{i}" if i > 1 else ""))
        if not (aside.exists() or aside.is_symlink()):
            os.rename(path, aside)  # same folder: atomic; a rename onto an existing name never happens
            return aside
    raise OutputError("too many moved-aside runs with this time stamp", path=path, hint="try again in a second")


def write_text(path: str | Path, text: str, *, overwrite: Optional[bool] = None) -> Path:
    """Write ``text`` to ``path`` atomically (``overwrite`` as in :func:`atomic_path`)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return Path(path)
