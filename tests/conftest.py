"""Shared fixtures: the real-data location (tests skip when it is absent) and a byte garbler for fuzz tests."""

from __future__ import annotations

from pathlib import Path

import pytest
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
