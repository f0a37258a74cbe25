"""Shared fixtures: where the real data sets live, and an isolated environment per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DIN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets of ../shared/data (never copied into the repo)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data not found at {SHARED_DATA}; set DIN_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def movielens_100k(shared_data: Path) -> Path:
    return shared_data / "movielens" / "ml-100k"


@pytest.fixture(scope="session")
def amazon_magazine(shared_data: Path) -> Path:
    return shared_data / "amazon" / "2018-magazine-subscriptions"


@pytest.fixture(scope="session")
def amazon_musical(shared_data: Path) -> Path:
    return shared_data / "amazon" / "2014-musical-instruments"


@pytest.fixture(scope="session")
def taobao_user_behavior(shared_data: Path) -> Path:
    return shared_data / "taobao"
