"""Fixtures of the output-safety tests: a tiny MovieLens source and one prepared folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from _io_helpers import din, write_tiny_movielens


@pytest.fixture()
def tiny_source(movielens_100k: Path, tmp_path: Path) -> Path:
    return write_tiny_movielens(movielens_100k, tmp_path / "ml")


@pytest.fixture(scope="session")
def prepared_tiny(movielens_100k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``din prepare`` output of the tiny source; copy it before changing it."""
    root = tmp_path_factory.mktemp("prepared-tiny")
    source = write_tiny_movielens(movielens_100k, root / "ml")
    out = root / "prepared"
    assert din("prepare", "--dataset", "movielens", "--source", str(source), "--out", str(out)) == 0
    return out
