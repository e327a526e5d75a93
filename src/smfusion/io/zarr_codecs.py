"""Zarr stores are data: a store whose metadata names a codec that unpickles (``pickle``) is refused before
it is opened.

numcodecs' ``pickle`` codec calls ``pickle.loads`` on every chunk it decodes,
so a store naming it could run code when read. zarr 3 refuses such stores
itself; zarr 2 (still allowed by smfusion's requirements) does not. smfusion
reads every metadata document of a store (``.zarray``, ``.zmetadata``,
``zarr.json``: JSON, never code) and refuses one that names such a codec
anywhere (filters, compressor, object codec, v3 codec chain).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from smfusion.errors import DataError

__all__ = ["check_zarr_codecs", "CODE_CODECS"]

CODE_CODECS = frozenset({"pickle"})
_META = (".zarray", ".zmetadata", "zarr.json", ".zattrs")


def _codec_ids(node) -> set[str]:
    """Every ``id`` / ``name`` of a codec-like dict anywhere in the JSON ``node``."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key in ("id", "name"):
            if isinstance(node.get(key), str):
                found.add(node[key].lower())
        for v in node.values():
            found |= _codec_ids(v)
    elif isinstance(node, list):
        for v in node:
            found |= _codec_ids(v)
    return found


def check_zarr_codecs(path: str | Path) -> None:
    """:class:`DataError` naming the store and the array when any metadata names a code-running codec."""
    root = Path(path)
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name not in _META or name == ".zattrs":
                continue
            meta_path = Path(dirpath) / name
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue  # unreadable metadata: the reader that follows names the problem
            bad = _codec_ids(meta) & CODE_CODECS
            if bad:
                where = meta_path.relative_to(root).parent.as_posix()
                raise DataError(f"Zarr array '{where}' names the codec '{sorted(bad)[0]}', which would run code "
                                "from the file when read: refused", path=root,
                                hint="re-encode the store without object/pickle codecs")
