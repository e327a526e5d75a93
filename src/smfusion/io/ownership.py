"""Which files and folders smfusion wrote, and which outputs it may replace.

smfusion replaces an existing path only when it can tell that it wrote it:

* a NetCDF-4/HDF5 file whose global attributes hold ``smfusion_version``
  (every product written through :mod:`smfusion.io.cf`);
* a folder holding the marker file ``.smfusion-output`` (written by
  :func:`smfusion.io.atomic.atomic_path` into every folder output, Zarr stores
  included), as long as it holds nothing, at any depth, beyond the files and
  folders the marker lists;
  a Zarr store whose attributes hold ``smfusion_version`` counts too;
* a file listed in the marker of the folder it is in;
* any other file smfusion wrote outside a run directory (CSV, TFRecord, ...):
  the hidden ledger ``.smfusion-files`` of its folder records its sha256, and
  the file counts as smfusion's while its bytes still match.

Never replaced, even with ``overwrite``: a run directory (``config.yaml``,
``model.pt``, ``checkpoints/``, ``epoch_*.pt`` or the ``.smfusion-run``
marker), anything inside one, a folder containing one, an input of the
command (``protect``), a symbolic link. See docs/errors.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable

from smfusion.errors import OutputError

MARKER = ".smfusion-output"  # JSON marker inside every folder output smfusion writes
LEDGER = ".smfusion-files"  # JSON {file name: sha256} of the files smfusion wrote in a folder
RUN_MARKER = ".smfusion-run"  # marker of a run directory (to be written by the run layer)
OWNER_ATTR = "smfusion_version"  # global attribute of every NetCDF/HDF5/Zarr product smfusion writes
_RUN_FILES = ("config.yaml", "model.pt", RUN_MARKER)
_CKPT_RE = re.compile(r"^epoch_\d+\.pt$")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HINT_OVERWRITE = "pass --overwrite to replace an output smfusion wrote, or choose another name"


def read_marker(folder: str | Path) -> dict | None:
    """The parsed ``.smfusion-output`` marker of ``folder``, or None when absent or not smfusion's."""
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("written_by") != "smfusion":
        return None
    return data


def read_ledger(folder: str | Path) -> dict[str, str]:
    """``{file name: sha256}`` of the files smfusion wrote in ``folder`` ({} when none or unreadable)."""
    try:
        data = json.loads((Path(folder) / LEDGER).read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(data, dict) else {}


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def self_describing(path: str | Path) -> bool:
    """True for a NetCDF-4/HDF5 file carrying the ``smfusion_version`` attribute."""
    return _hdf5_owned(Path(path))


def _hdf5_owned(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != _HDF5_SIGNATURE:
                return False
        import h5py

        with h5py.File(path, "r") as f:
            return OWNER_ATTR in f.attrs
    except Exception:  # unreadable or corrupt: not recognisably ours
        return False


_ZARR_FILE_RE = re.compile(r"^(\.z(attrs|group|array|metadata)|zarr\.json|\d+(\.\d+)*)$")


def _zarr_layout_only(path: Path) -> bool:
    """True when every file below ``path`` is a Zarr metadata document or chunk (no other file nested)."""
    return all(_ZARR_FILE_RE.match(f) for _, _, files in os.walk(path) for f in files)


def _zarr_owned(path: Path) -> bool:
    """A Zarr store (without the marker) whose attributes name smfusion and which holds only Zarr files."""
    if not _zarr_layout_only(path):
        return False
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        try:
            meta = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue
        attrs = meta.get(key, {}) if key and isinstance(meta, dict) else meta
        if isinstance(attrs, dict) and OWNER_ATTR in attrs:
            return True
    return False


def tree_listing(folder: str | Path) -> list[str]:
    """Every file and folder below ``folder`` as sorted POSIX paths relative to it (folders end in ``/``),
    the marker and ledger aside: what the marker records so that no nested file goes unnoticed."""
    folder = Path(folder)
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = Path(dirpath).relative_to(folder)
        out += [(rel / d).as_posix() + "/" for d in dirnames]
        out += [(rel / f).as_posix() for f in filenames if not (rel == Path(".") and f in (MARKER, LEDGER))]
    return sorted(out)


def unknown_entries(folder: str | Path) -> list[str]:
    """Paths in a marked ``folder``, at any depth, that its marker does not list (sorted).

    A marker of an earlier smfusion lists only the top-level entries: then a
    nested path cannot be told from a user's, and the answer is every nested
    path that exists (smfusion refuses to replace such a folder).
    """
    folder = Path(folder)
    marker = read_marker(folder) or {}
    top = set(marker.get("entries") or [])
    unknown = sorted(n for n in os.listdir(folder) if n not in (MARKER, LEDGER) and n not in top)
    if unknown:
        return unknown
    files = marker.get("files")
    listing = tree_listing(folder)
    if not isinstance(files, list):
        return [p for p in listing if "/" in p.rstrip("/")]
    known = set(files)
    return [p for p in listing if p not in known]


def is_smfusion_output(path: str | Path) -> bool:
    """True when smfusion can tell that it wrote ``path`` (see the module docstring)."""
    path = Path(path)
    if path.is_symlink() or not path.exists():
        return False
    if path.is_dir():
        if read_marker(path) is not None:
            return not unknown_entries(path)
        return _zarr_owned(path)
    if _hdf5_owned(path):
        return True
    marker = read_marker(path.parent)
    if marker is not None and path.name in (marker.get("entries") or []):
        return True
    digest = read_ledger(path.parent).get(path.name)
    try:
        return digest is not None and digest == file_sha256(path)
    except OSError:
        return False


def is_run_dir(path: str | Path) -> bool:
    """True for a run directory or a part of one (a member folder, a checkpoints folder)."""
    path = Path(path)
    if not path.is_dir():
        return False
    if any((path / n).is_file() for n in _RUN_FILES) or (path / "checkpoints").is_dir():
        return True
    try:
        return any(_CKPT_RE.match(n) for n in os.listdir(path))
    except OSError:
        return True  # cannot look inside: assume the worst


def run_dir_within(path: str | Path) -> Path | None:
    """The first run directory at or below the folder ``path`` (None when there is none)."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return None
    for dirpath, dirnames, filenames in os.walk(path):
        if any(n in filenames for n in _RUN_FILES) or "checkpoints" in dirnames or \
                any(_CKPT_RE.match(n) for n in filenames):
            return Path(dirpath)
    return None


def run_dir_above(path: str | Path) -> Path | None:
    """The nearest run directory among the parents of ``path`` (None when there is none)."""
    for parent in Path(path).absolute().parents:
        if is_run_dir(parent):
            return parent
    return None


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_not_input(path: str | Path, protect: Iterable[str | Path] = ()) -> None:
    """Refuse ``path`` when it is, or contains, one of the inputs in ``protect``."""
    target = Path(path).resolve()
    for item in protect:
        if item is None:
            continue
        src = Path(item).expanduser().resolve()
        if _within(src, target):
            what = "is an input of this command" if src == target else f"contains the input {item}"
            raise OutputError(what, path=path, hint="write the output somewhere else")


def check_replaceable(path: str | Path, protect: Iterable[str | Path] = ()) -> None:
    """Raise :class:`OutputError` unless smfusion may replace the existing ``path`` (``overwrite``)."""
    path = Path(path)
    check_not_input(path, protect)
    if path.is_symlink():
        raise OutputError("is a symbolic link: smfusion replaces only files and folders it wrote", path=path,
                          hint="remove the link yourself or choose another name")
    if is_run_dir(path):
        raise OutputError("is a run directory: never replaced by an output", path=path,
                          hint="choose another output name")
    above = run_dir_above(path)
    if above is not None:
        raise OutputError(f"is inside the run directory {above}: never replaced by an output", path=path,
                          hint="write the output outside the run directory")
    if path.is_dir():
        inner = run_dir_within(path)
        if inner is not None:
            raise OutputError(f"contains the run directory {inner}: never replaced", path=path,
                              hint="choose another output name")
        if read_marker(path) is not None and unknown_entries(path):
            extra = unknown_entries(path)
            raise OutputError(f"holds '{extra[0]}', which smfusion did not write: not replaced", path=path,
                              hint="move your files out of the folder or choose another name")
        if not is_smfusion_output(path):
            raise OutputError(f"smfusion did not write this folder (no {MARKER} marker): not replaced",
                              path=path, hint="remove it yourself or choose another name")
        return
    if not is_smfusion_output(path):
        raise OutputError(f"smfusion cannot tell that it wrote this file (no {OWNER_ATTR} attribute): not replaced",
                          path=path, hint="remove it yourself or choose another name")


def is_empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not path.is_symlink() and not os.listdir(path)
    except OSError:
        return False


def check_parent(path: str | Path) -> None:
    """Refuse an output whose nearest existing ancestor is a file or a folder smfusion cannot write in."""
    path = Path(path).absolute()
    anc = path.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise OutputError(f"parent {anc} is a file, not a folder", path=path, hint="choose an output inside a folder")
    if not os.access(anc, os.W_OK | os.X_OK) or (hasattr(os, "geteuid") and os.geteuid() == 0 and not _probe(anc)):
        raise OutputError("folder is not writable", path=anc, hint="choose an output folder you can write to")


def _probe(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (for root, whom ``os.access`` always answers yes)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".smfusion-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return True


def check_output(path: str | Path, overwrite: bool = False, protect: Iterable[str | Path] = (),
                 kind: str | None = None, can_overwrite: bool = True) -> Path:
    """Check, before any work, that an output may be written at ``path``; returns it.

    ``kind`` ("file" or "dir") is what will be written, when known. An empty
    folder may take a folder output; any other existing path needs
    ``overwrite`` and must pass :func:`check_replaceable`. ``can_overwrite``
    False: the caller offers no ``--overwrite`` (the hint says so).
    """
    path = Path(path)
    check_parent(path)
    protect = list(protect)
    check_not_input(path, protect)
    if not (path.exists() or path.is_symlink()):
        return path
    if kind == "file" and path.is_dir() and not path.is_symlink():
        raise OutputError("is a folder, and this output is a file", path=path, hint="give a file name")
    if kind == "dir" and is_empty_dir(path):
        return path
    if not overwrite:
        raise OutputError("exists", path=path, hint=HINT_OVERWRITE if can_overwrite else
                          "choose another name, or remove it yourself")
    check_replaceable(path, protect)
    return path
