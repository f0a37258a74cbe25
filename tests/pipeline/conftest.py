"""Fixtures of the pipeline tests: Prefect's temporary server, a real MLflow store, data copies.

Everything is hermetic: PREFECT_HOME, Prefect's result storage (the task
cache), the MLflow sqlite store and its artifacts, the pipeline's work and
data folders all live in pytest's temporary directories.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@pytest.fixture(scope="session")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(home / "storage")
    return home


@pytest.fixture(scope="session")
def prefect_server(prefect_home: Path) -> Iterator[None]:
    """Prefect's temporary server for the whole session (~16 s once)."""
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    updates = {
        PREFECT_HOME: str(prefect_home),
        PREFECT_LOCAL_STORAGE_PATH: str(prefect_home / "storage"),
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
    }
    with temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow sqlite file (migrations take ~9 s; copies are instant)."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


def _use_store(directory: Path, template: Path) -> str:
    import mlflow

    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, directory / "mlflow.db")
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


@pytest.fixture
def mlflow_store(tmp_path: Path, mlflow_template: Path) -> Iterator[str]:
    """A fresh MLflow store for one test; MLFLOW_TRACKING_URI points at it."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    yield _use_store(tmp_path / "mlflow", mlflow_template)
    _restore("MLFLOW_TRACKING_URI", previous)


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Iterator[str]:
    """One MLflow store shared by the tests of a module (they build on each other's runs)."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    yield _use_store(tmp_path_factory.mktemp("mlflow"), mlflow_template)
    _restore("MLFLOW_TRACKING_URI", previous)


def _restore(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _hermetic_data_root(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """``source=auto`` and synthetic data never touch the repository's data/ folder."""
    monkeypatch.setenv("DIN_DATA_DIR", str(tmp_path_factory.getbasetemp() / "din-data"))


MAGAZINE_SEED = 11


@pytest.fixture(scope="module")
def magazine_run(prefect_server, module_store: str, amazon_magazine: Path, tmp_path_factory):
    """A finished din-train run (DIN+Dice, tiny config) on the real Magazine_Subscriptions:
    it registers ``din-amazon`` in the module's store, for the serving tests."""
    from _pipeline_support import TINY_CONFIG

    from flows.train_flow import din_train

    return din_train(
        dataset="amazon",
        source=str(amazon_magazine),
        model="din_dice",
        config_file=str(TINY_CONFIG),
        seed=MAGAZINE_SEED,
        work_dir=str(tmp_path_factory.mktemp("work")),
    )


@pytest.fixture(scope="module")
def magazine_raw_test(magazine_run) -> object:
    """The run's test rows as raw requests, plus ``label``, in predictions.parquet order."""
    from din_model.data.adapters import ingest
    from din_model.pipeline.prepare import raw_samples

    return raw_samples(ingest("amazon", magazine_run["source"]), seed=MAGAZINE_SEED, split="test")
