"""Where smfusion finds its data.

Order: the ``SMFUSION_DATA_DIR`` environment variable, then ``../shared/data``
next to the working directory or the source checkout when that folder exists.
``None`` means no local copy: callers then fetch the public sample through
:mod:`smfusion.io.registry`.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SMFUSION_DATA_DIR"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve()
    # src/smfusion/settings.py -> repo root is parents[2]
    return [Path.cwd() / ".." / "shared" / "data", here.parents[2] / ".." / "shared" / "data"]


def data_dir() -> Path | None:
    """The local data directory, or None when there is none."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    for cand in _candidates():
        if cand.is_dir():
            return cand.resolve()
    return None


def conus_dir() -> Path | None:
    """The hydroDL CONUS database folder (``conus_smap``) if present locally."""
    root = data_dir()
    if root is None:
        return None
    cand = root / "conus_smap"
    return cand if cand.is_dir() else None
