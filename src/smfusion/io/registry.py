"""Checksummed registry of the public CONUS sample (hydroDL example database).

Users without a local copy get the files from the public hydroDL repository,
pinned to one commit, verified by sha256. The local layout is the one of
``../shared/data/conus_smap`` so :func:`smfusion.io.hydrodl.read_hydrodl`
reads either.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
import hashlib

from smfusion.errors import DataError

HYDRODL_COMMIT = "b8a149c47797d032dd924940b3370d140b05aec3"
BASE_URL = f"https://raw.githubusercontent.com/mhpi/hydroDL/{HYDRODL_COMMIT}/example/"
# Files under reference/ come from example/output/ under these names.
REFERENCE_SOURCES = {
    "reference/hydrodl_lstm_ep100_test_2016_normalized.csv": "output/CONUSv4f1/CONUSv4f1_20160401_20170401_ep100_SMAP_AM.csv",
    "reference/hydrodl_multitask_sigma_ep100_test_2016_normalized.csv": "output/CONUSv4f1_multi/SMAP_AM_CONUSv4f1_20160401_20170401_ep100.csv",
}


def load_registry() -> dict[str, str]:
    """``{relative path: sha256}`` for every file of the CONUS sample."""
    text = resources.files("smfusion.io").joinpath("registry.txt").read_text()
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, digest = line.split()
            out[name] = digest
    return out


def url_for(name: str) -> str:
    """Public URL of a registry file."""
    return BASE_URL + REFERENCE_SOURCES.get(name, "data/" + name)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_registry(root: str | Path) -> str:
    """Registry text (``path sha256`` lines) for the files under a local ``conus_smap``."""
    root = Path(root)
    lines = [f"# CONUS sample, hydroDL commit {HYDRODL_COMMIT}; path sha256"]
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        lines.append(f"{path.relative_to(root).as_posix()} {sha256(path)}")
    return "\n".join(lines) + "\n"


def verify(root: str | Path) -> list[str]:
    """Names of registry files that are missing or differ under ``root``."""
    root = Path(root)
    bad = []
    for name, digest in load_registry().items():
        path = root / name
        if not path.is_file() or sha256(path) != digest:
            bad.append(name)
    return bad


def first_missing(root: str | Path) -> str | None:
    """The first registry file (in registry order) absent under ``root``; None when all are there."""
    root = Path(root)
    for name in load_registry():
        if not (root / name).is_file():
            return name
    return None


def fetch_conus(cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Download (once) and verify the CONUS sample; returns its local root.

    Files go to ``cache_dir`` (default :func:`smfusion.settings.cache_dir`) and
    nowhere else. A checksum mismatch raises :class:`DataError` naming the file;
    a network failure raises one naming the URL and how to use local data.
    """
    import pooch

    from smfusion.settings import HINT, cache_dir as default_cache

    registry = load_registry()
    cache = Path(cache_dir) if cache_dir is not None else default_cache()
    fetcher = pooch.create(
        path=cache,
        base_url=BASE_URL,
        registry={k: f"sha256:{v}" for k, v in registry.items()},
        urls={k: url_for(k) for k in registry},
    )
    for name in registry:
        try:
            fetcher.fetch(name, progressbar=progress)
        except ValueError as exc:  # pooch reports hash mismatches as ValueError
            raise DataError(f"checksum mismatch: {exc}", path=cache / name, field="sha256") from None
        except Exception as exc:
            if isinstance(exc, OSError) and exc.filename is not None:  # the cache, not the network
                raise DataError(f"cannot write the download cache: {exc.strerror or exc}", path=cache / name,
                                hint="set SMFUSION_CACHE_DIR to a folder you can write to, or use local data") from None
            # requests' connection, timeout and HTTP errors (requests' are OSErrors without a file name)
            raise DataError(f"cannot download the CONUS sample: {type(exc).__name__}", path=url_for(name),
                            hint=HINT) from None
    return cache


def conus_root() -> Path:
    """The CONUS database root: the local data folder if one is configured or found, else the download.

    A configured folder (``SMFUSION_DATA_DIR``) must hold every file of the
    sample: the first missing one is named in a :class:`DataError`.
    """
    from smfusion.settings import HINT, conus_dir

    local = conus_dir()
    if local is None:
        return fetch_conus()
    missing = first_missing(local)
    if missing is not None:
        raise DataError("file of the CONUS sample missing from the data folder", path=local / missing, hint=HINT)
    return local


def resolve_root(root: str | Path | None) -> Path:
    """A database root named in a config (``data.root``), or :func:`conus_root` when None.

    A named root must be an existing folder; nothing is downloaded for it.
    """
    if root is None or str(root).strip() == "":
        return conus_root()
    path = Path(root).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"data folder {what}", path=path, field="data.root",
                        hint="fix data.root in the config, or remove it to use SMFUSION_DATA_DIR")
    return path
