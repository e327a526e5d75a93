"""Shared fixtures: the real-data location (tests skip when it is absent), a small copy of the CONUS
database for corrupted-input tests, a byte garbler for fuzz tests, and small SYNTHETIC forcing-driven
series (``forcing_sites``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import strategies as st

from smfusion.settings import conus_dir, data_dir


def _shared(*parts: str) -> Path:
    """``data_dir() / parts``; skips the test when the data folder or that path is absent."""
    root = data_dir()
    path = root.joinpath(*parts) if root is not None else None
    if path is None or not path.exists():
        pytest.skip(f"no real data {'/'.join(parts) or 'folder'}: set SMFUSION_DATA_DIR or place ../shared/data")
    return path


@pytest.fixture(scope="session")
def shared_data():
    return _shared()


@pytest.fixture(scope="session")
def ismn_root():
    return _shared("ismn")


@pytest.fixture(scope="session")
def land_file():
    return _shared("ease2", "ease36land.nc")


@pytest.fixture(scope="session")
def conus_root():
    root = conus_dir()
    if root is None:
        pytest.skip("no CONUS sample: set SMFUSION_DATA_DIR or place ../shared/data")
    return root


def garble(data, raw: bytes, max_edits: int, max_chunk: int, truncate: bool = True, overwrite: bool = True) -> bytes:
    """Hypothesis-driven damage: cut ``raw`` at a drawn length and/or overwrite up to
    ``max_edits`` drawn spans of up to ``max_chunk`` random bytes."""
    out = bytearray(raw)
    if truncate:
        out = out[: data.draw(st.integers(0, len(out)))]
    if overwrite and out:
        for _ in range(data.draw(st.integers(1, max_edits))):
            start = data.draw(st.integers(0, len(out) - 1))
            chunk = data.draw(st.binary(min_size=1, max_size=max_chunk))
            out[start : start + len(chunk)] = chunk
    return bytes(out)


@pytest.fixture
def garbler():
    """:func:`garble` for fuzz tests (conftest functions are not importable without a tests package)."""
    return garble


MINI_DYNAMIC = ("APCP_FORA", "TMP_2_FORA")
MINI_STATIC = ("Sand",)
MINI_TARGET = ("SMAP_AM",)


def make_mini_db(src: Path, dest: Path, n_sites: int = 6, years=(2015, 2016, 2017)) -> Path:
    """A small hydroDL database at ``dest``: the first ``n_sites`` rows of the real CONUS files
    (crd.csv, two forcings, SMAP_AM, Sand) for ``years``; returns ``dest``."""

    def head(path: Path, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(path) as fh:
            out.write_text("".join(next(fh) for _ in range(n_sites)))

    sub, out = src / "CONUSv4f1", dest / "CONUSv4f1"
    head(sub / "crd.csv", out / "crd.csv")
    for var in MINI_STATIC:
        head(sub / "const" / f"{var}.csv", out / "const" / f"{var}.csv")
    for year in years:
        (out / str(year)).mkdir(parents=True, exist_ok=True)
        (out / str(year) / "timeStr.csv").write_text((sub / str(year) / "timeStr.csv").read_text())
        for var in MINI_DYNAMIC + MINI_TARGET:
            if (sub / str(year) / f"{var}.csv").is_file():
                head(sub / str(year) / f"{var}.csv", out / str(year) / f"{var}.csv")
    return dest


@pytest.fixture(scope="session")
def mini_db():
    """:func:`make_mini_db` (real CONUS rows; skips without the real data)."""
    root = conus_dir()
    if root is None:
        pytest.skip("no CONUS sample: set SMFUSION_DATA_DIR or place ../shared/data")
    return lambda dest, **kw: make_mini_db(root, Path(dest), **kw)


# compliance-checker 6.1's CF 1.8 check reads appendix F's ("longitude_of_central_meridian") as a
# string, not a 1-tuple, and asks for each of its letters as a grid-mapping attribute
# (lambert_cylindrical_equal_area: the EASE-Grid 2.0 mapping). Those messages are the known false positive.
_CHECKER_FALSE_POSITIVE = re.compile(r"^.? is a required attribute for grid mapping ")


def cf_errors(path) -> list[str]:
    """The CF-1.8 errors (high-priority failures) ``compliance-checker --test cf:1.8`` reports for ``path``,
    without the known false positive on grid-mapping attributes."""
    from compliance_checker.runner import CheckSuite

    suite = CheckSuite()
    suite.load_all_available_checkers()
    ds = suite.load_dataset(str(path))
    groups, exceptions = suite.run_all(ds, ["cf:1.8"], skip_checks=[])["cf:1.8"]
    assert not exceptions, f"checker crashed: {exceptions}"
    out = []

    def walk(results):
        for r in results:
            if r.weight == 3 and r.value[0] < r.value[1]:
                out.extend(f"{r.name}: {m}" for m in r.msgs if not _CHECKER_FALSE_POSITIVE.match(m))
            walk(r.children)

    walk(groups)
    return out


@pytest.fixture
def cf_checker():
    """:func:`cf_errors` (compliance-checker's CF-1.8 errors of a file, known false positive removed)."""
    pytest.importorskip("compliance_checker")
    return cf_errors


def _forcing_sites(n_site: int, seed: int, end: str, units: dict | None = None, latlon: bool = False) -> xr.Dataset:
    """SYNTHETIC daily series from 2001-01-01 to ``end``: precipitation ``P``, temperature ``T``, a static ``S`` and a
    soil moisture ``sm`` that integrates the precipitation anomaly (with ``units`` as its attributes); ``latlon``
    adds site coordinates."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2001-01-01", end, freq="D")
    p = rng.gamma(0.5, 4.0, (n_site, time.size))
    t = 10 + 15 * np.sin(2 * np.pi * time.day_of_year.values / 365.25) + rng.normal(0, 2, p.shape)
    sm = 0.2 + 0.01 * np.cumsum(p - p.mean(), axis=1) / np.sqrt(np.arange(1, time.size + 1))
    coords = {"site": np.arange(n_site), "time": time}
    if latlon:
        coords.update(lat=("site", np.linspace(35, 40, n_site)), lon=("site", np.linspace(-100, -95, n_site)))
    return xr.Dataset({"P": (("site", "time"), p), "T": (("site", "time"), t),
                       "sm": (("site", "time"), sm + 0.01 * rng.standard_normal(p.shape), units or {}),
                       "S": (("site",), rng.normal(size=n_site))}, coords=coords)


@pytest.fixture(scope="session")
def forcing_sites():
    """The maker of small SYNTHETIC forcing-driven series (:func:`_forcing_sites`)."""
    return _forcing_sites
