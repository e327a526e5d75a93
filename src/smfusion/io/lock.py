"""One writer per output and per run: an OS-level lock beside the target, which dies with its process.

:func:`hold` takes ``fcntl.flock`` on ``<parent>/.<name>.smfusion-lock``
(exclusive, non-blocking) and writes the holder into it as one JSON line
(host, pid, start time, command). A second job on the same target is refused
with :class:`~smfusion.errors.OutputError` naming that holder (the CLI prints
it as one line and exits 2). The kernel releases the lock when its process
ends, however it ends (``kill -9`` included): a lock file left by a dead
process is simply taken over. On a clean exit the lock file is removed.

Safe against the usual races of removable lock files: after taking the lock,
the holder checks that the path still names the file it locked (a process
that opened the file just before the previous holder removed it locks a
deleted file, notices, and tries again). The same process may hold one target
several times (nested ``hold`` calls of the CLI and the API share one lock).

``flock`` is advisory and local: it does not stop a program that ignores it,
and on network file systems without lock support smfusion warns and goes on
without the lock (docs/security.md).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import socket
import sys
import warnings
from pathlib import Path
from typing import Iterator

from smfusion.errors import OutputError, SmfusionWarning, one_line

__all__ = ["hold", "locked", "lock_path", "holder_of"]

SUFFIX = ".smfusion-lock"
_HELD: dict[str, list] = {}  # lock path -> [fd, depth] held by this process


def lock_path(target: str | Path) -> Path:
    """The lock file of ``target``: ``.<name>.smfusion-lock`` in the folder of ``target``."""
    target = Path(os.path.abspath(target))
    return target.parent / f".{target.name[:200]}{SUFFIX}"


def holder_of(path: str | Path) -> dict | None:
    """The holder recorded in the lock file ``path`` (None when absent or unreadable)."""
    try:
        data = json.loads(Path(path).read_text() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(h: dict | None) -> str:
    if not h:
        return "another process (that has not yet written its name)"
    return one_line(f"smfusion {h.get('what', '?')} (pid {h.get('pid', '?')} on {h.get('host', '?')}, "
                    f"started {h.get('started', '?')})")


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _acquire(path: Path, what: str, target: Path) -> int | None:
    """The locked fd of ``path`` (None where the file system has no locks); OutputError when held."""
    import fcntl

    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"in use by {_describe(holder_of(path))}", path=target,
                                  hint="wait for that job to finish, or write somewhere else; "
                                       "a lock dies with its process") from None
            warnings.warn(f"{target}: this file system does not support locks ({exc.strerror}): going on without "
                          "one; make sure no other job writes here", SmfusionWarning, stacklevel=4)
            return None
        if not _same_file(fd, path):  # removed (and maybe re-created) by its last holder meanwhile: again
            os.close(fd)
            continue
        now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
        me = {"what": what, "host": socket.gethostname(), "pid": os.getpid(), "started": now,
              "command": " ".join(sys.argv)[:500]}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(me) + "\n").encode())
        return fd
    raise OutputError("its lock file keeps being replaced", path=target, hint="try again")


@contextlib.contextmanager
def hold(target: str | Path, what: str) -> Iterator[Path]:
    """Hold the lock of ``target`` for the block (module docstring); ``what`` names the job (e.g. "train")."""
    target = Path(target)
    path = lock_path(target)
    key = str(path)
    if key in _HELD:  # this process holds it already (the CLI around an API call): share it
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # the output check that follows names the problem
    fd = _acquire(path, what, target) if path.parent.is_dir() else None
    _HELD[key] = [fd, 1]
    try:
        yield path
    finally:
        del _HELD[key]
        if fd is not None:
            with contextlib.suppress(OSError):
                if _same_file(fd, path):
                    os.unlink(path)  # still ours: remove it while locked, then let go
            os.close(fd)


def locked(arg: str, what: str):
    """Decorator: the function runs holding the lock of its argument ``arg`` (an output path)."""
    import functools
    import inspect

    def wrap(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            target = sig.bind(*args, **kwargs).arguments[arg]
            with hold(target, what):
                return fn(*args, **kwargs)

        return inner

    return wrap
