"""Fixtures of the training tests: small hand-written prepared directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._prepared_data import write_prepared

# Settings that make a fit take a second or two on the hand-written data.
FAST = {
    "model": {"embedding_dim": 8, "mlp_hidden": [16, 8]},
    "train": {
        "epochs": 2,
        "batch_size": 128,
        "learning_rate": 0.01,
        "progress": "none",
        # One thread: 2 threads on 2 busy cores spin-wait and run several times slower.
        "num_threads": 1,
    },
}


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~3,600 samples, histories up to 12 events; read-only for the tests."""
    return write_prepared(tmp_path_factory.mktemp("prepared") / "small", users=150, per_user=24)


@pytest.fixture()
def fast_config() -> dict:
    import copy

    return copy.deepcopy(FAST)
