"""Where smfusion finds its data.

* ``SMFUSION_DATA_DIR`` set: that folder is used, and nothing else. A missing
  folder is an error (never a silent download).
* Not set: ``../shared/data`` next to the working directory or the source
  checkout, when that folder exists.
* Neither: ``None``; callers then download the public CONUS sample through
  :mod:`smfusion.io.registry` into the cache (``SMFUSION_CACHE_DIR``, default
  the OS cache folder, e.g. ``~/.cache/smfusion`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

from smfusion.errors import DataError

ENV_VAR = "SMFUSION_DATA_DIR"
CACHE_ENV = "SMFUSION_CACHE_DIR"
CONUS = "conus_smap"
HINT = f"set {ENV_VAR} to the folder holding {CONUS}/ (docs/errors.md), or unset it to download the public sample"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve()
    # src/smfusion/settings.py -> repo root is parents[2]
    return [Path.cwd() / ".." / "shared" / "data", here.parents[2] / ".." / "shared" / "data"]


def configured() -> bool:
    """True when ``SMFUSION_DATA_DIR`` is set (to anything but blanks)."""
    return bool(os.environ.get(ENV_VAR, "").strip())


def data_dir() -> Path | None:
    """The local data directory, or None when none is configured or found.

    Raises :class:`DataError` naming the folder when ``SMFUSION_DATA_DIR`` is
    set to something that is not a folder.
    """
    if configured():
        root = Path(os.environ[ENV_VAR].strip()).expanduser().absolute()
        if not root.is_dir():
            what = "is not a folder" if root.exists() else "does not exist"
            raise DataError(f"the data folder named by {ENV_VAR} {what}", path=root, hint=HINT)
        return root.resolve()
    for cand in _candidates():
        if cand.is_dir():
            return cand.resolve()
    return None


def conus_dir() -> Path | None:
    """The hydroDL CONUS database folder (``conus_smap``) of the local data directory.

    None when no data folder is configured or found, or when a found (not
    configured) one has no ``conus_smap``; a configured one without it raises.
    """
    root = data_dir()
    if root is None:
        return None
    cand = root / CONUS
    if cand.is_dir():
        return cand
    if configured():
        raise DataError(f"the data folder named by {ENV_VAR} has no {CONUS}/ folder", path=cand, hint=HINT)
    return None


def cache_dir() -> Path:
    """The download cache of the CONUS sample: ``SMFUSION_CACHE_DIR`` or the OS cache folder, then ``conus_smap``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser().absolute() / CONUS
    import pooch

    return Path(pooch.os_cache("smfusion")) / CONUS
