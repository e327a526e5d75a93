"""Shared fixtures: the real-data location (tests skip when it is absent)."""

from __future__ import annotations

import pytest

from smfusion.settings import conus_dir, data_dir


@pytest.fixture(scope="session")
def shared_data():
    root = data_dir()
    if root is None:
        pytest.skip("no real data: set SMFUSION_DATA_DIR or place ../shared/data")
    return root


@pytest.fixture(scope="session")
def conus_root():
    root = conus_dir()
    if root is None:
        pytest.skip("no CONUS sample: set SMFUSION_DATA_DIR or place ../shared/data")
    return root
