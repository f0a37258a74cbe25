"""Fixtures of the tuning tests: a Prefect API, a real MLflow store, one shared work folder.

The Prefect server is the pipeline tests' one when it is already running in
this pytest session (``tests/pipeline/conftest.py`` starts it for the whole
session and points Prefect's settings at it); run on their own, these tests
start the same temporary server. Everything else is hermetic: the MLflow
sqlite store (and the Optuna database beside it), the work folder and the
data root live in pytest's temporary directories.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

TESTS = Path(__file__).resolve().parents[1]
TINY_CONFIG = TESTS / "pipeline" / "tiny.yaml"  # one epoch, embeddings of 8


def _harness_url() -> str | None:
    """The URL of a test harness started earlier in this session (not the user's own server)."""
    from prefect.settings import PREFECT_API_URL

    from flows.runtime import server_healthy

    url = PREFECT_API_URL.value()
    if url and url != os.environ.get("PREFECT_API_URL") and server_healthy(url):
        return url
    return None


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if _harness_url() is not None:
        yield
        return
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("tuning-prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(home / "storage")
    updates = {
        PREFECT_HOME: str(home),
        PREFECT_LOCAL_STORAGE_PATH: str(home / "storage"),
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
    }
    with temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def tune_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated MLflow sqlite store for one module; MLFLOW_TRACKING_URI points at it."""
    import mlflow
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("tuning-mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield folder
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="module")
def tune_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One work folder per module: the data steps run once, then hit their cache."""
    return tmp_path_factory.mktemp("tuning-work")


@pytest.fixture(autouse=True)
def _hermetic_data_root(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    monkeypatch.setenv("DIN_DATA_DIR", str(tmp_path_factory.getbasetemp() / "din-data"))
