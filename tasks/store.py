"""Where the MLflow store lives, and one experiment per dataset.

MLflow 3 refuses the old ``./mlruns`` file store, and without an explicit
artifact location artifacts land in the current directory; so the project
pins both: ``sqlite:///<repo>/mlflow/mlflow.db`` with artifacts under
``<repo>/mlflow/artifacts``. ``MLFLOW_TRACKING_URI`` overrides the store (tests
point it at a temporary sqlite file); artifacts then go next to that database.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STORE_DIR = PROJECT_ROOT / "mlflow"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


def default_tracking_uri() -> str:
    return f"sqlite:///{DEFAULT_STORE_DIR / 'mlflow.db'}"


def tracking_uri() -> str:
    """The store in effect: ``MLFLOW_TRACKING_URI`` when set, else the project's sqlite file."""
    return os.environ.get(TRACKING_URI_ENV) or default_tracking_uri()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for any other kind of store."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    # SQLAlchemy form: sqlite:///relative.db or sqlite:////absolute.db (one slash is the separator)
    path = Path(unquote(parsed.path)[1:])
    return path if path.is_absolute() else Path.cwd() / path


def artifact_root(uri: str | None = None) -> Path | None:
    """Local artifact folder for a sqlite store (next to the database); None for servers."""
    db = sqlite_path(uri or tracking_uri())
    return None if db is None else db.parent / "artifacts"


def configure_mlflow() -> str:
    """Point the mlflow client at the project's store; create the folder of a sqlite file."""
    import mlflow

    uri = tracking_uri()
    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_name(dataset: str) -> str:
    return f"din-{dataset}"


def ensure_experiment(dataset: str) -> str:
    """Id of the dataset's experiment, created with an explicit artifact location if new."""
    import mlflow
    from mlflow.exceptions import MlflowException

    configure_mlflow()
    name = experiment_name(dataset)
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    root = artifact_root()
    location = None if root is None else (root / name).resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another process created it between the lookup and the create.
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def ui_command(host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """Arguments of ``mlflow ui`` on this store (without the interpreter)."""
    uri = tracking_uri()
    args = ["ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    root = artifact_root(uri)
    if root is not None:
        args += ["--default-artifact-root", root.resolve().as_uri()]
    return args
