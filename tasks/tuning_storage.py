"""Where ``din tune`` keeps its Optuna studies, and which process owns a running trial.

The studies live in one Optuna RDB database next to the MLflow store:
``<folder of mlflow.db>/optuna.db`` for a sqlite tracking store (by default
``<repo>/mlflow/optuna.db``; tests and ``MLFLOW_TRACKING_URI`` move it with the
store), else ``<work root>/optuna.db`` (a tracking server has no local folder).
``DIN_OPTUNA_STORAGE`` names another database (any SQLAlchemy URL, e.g. a
PostgreSQL server that the workers of a remote Dask cluster can reach).

Creating a fresh sqlite database is done under an exclusive lock
(``optuna.db.lock``), as for the MLflow store: two ``din tune`` commands that
start together would otherwise both run the schema creation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tasks.file_lock import exclusive_lock
from tasks.process_identity import HOST_TAG, PID_START_TAG, PID_TAG, host_name, is_alive
from tasks.process_identity import process_tags as _process_tags
from tasks.store import sqlite_path, tracking_uri

STORAGE_ENV = "DIN_OPTUNA_STORAGE"
STORAGE_FILE = "optuna.db"


def storage_url(work: str | Path) -> str:
    """The studies' database URL (see the module docstring)."""
    configured = os.environ.get(STORAGE_ENV)
    if configured:
        return configured
    db = sqlite_path(tracking_uri())
    folder = db.parent if db is not None else Path(work)
    return f"sqlite:///{(folder / STORAGE_FILE).resolve()}"


def prepare_storage(url: str) -> None:
    """Create the database's tables once, under the lock for a sqlite file."""
    from din_model.tuning.study import open_storage

    db = sqlite_path(url)
    if db is None:
        open_storage(url)
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(db.with_name(db.name + ".lock")):
        open_storage(url)


def owner_attrs() -> dict[str, str]:
    """This process's host, pid and start time, recorded on every trial it asks."""
    return dict(_process_tags())


def owner_is_dead(attrs: Mapping[str, Any]) -> bool:
    """A trial's owner on this host that no longer runs (other hosts are not judged)."""
    if attrs.get(HOST_TAG) != host_name() or PID_TAG not in attrs:
        return False
    started = attrs.get(PID_START_TAG)
    try:
        return not is_alive(int(attrs[PID_TAG]), float(started) if started else None)
    except (TypeError, ValueError):
        return False
