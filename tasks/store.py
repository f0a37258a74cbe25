"""Where the MLflow store lives, and one experiment per dataset.

MLflow 3 refuses the old ``./mlruns`` file store, and without an explicit
artifact location artifacts land in the current directory; so the project
pins both: ``sqlite:///<repo>/mlflow/mlflow.db`` with artifacts under
``<repo>/mlflow/artifacts``. ``MLFLOW_TRACKING_URI`` overrides the store (tests
point it at a temporary sqlite file); artifacts then go next to that database.

Several ``din`` processes may open one sqlite store at the same moment. On a
fresh file each would run MLflow's schema creation and all but one crash
(``table ... already exists``), so the first use of a sqlite store in a
process, and every experiment get-or-create, holds an exclusive lock on
``<db>.lock`` next to the database (:mod:`tasks.file_lock`). The first use
also marks runs left RUNNING by dead processes of this host as KILLED
(:mod:`tasks.run_reaper`).

Experiments are tagged ``mlflow.experimentKind=custom_model_development``
("Machine learning"). The MLflow 3.17 UI also has a per-browser switch in its
sidebar (GenAI / Model training, GenAI first), which decides the experiment
page's tabs; :func:`experiment_url` gives links that open in model training.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
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


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


@contextmanager
def store_lock(uri: str | None = None) -> Iterator[None]:
    """Exclusive across processes for a sqlite store; a no-op for a tracking server."""
    from tasks.file_lock import exclusive_lock

    db = sqlite_path(uri or tracking_uri())
    with nullcontext() if db is None else exclusive_lock(lock_path(db)):
        yield


_opened: set[str] = set()  # stores this process has initialised and swept


def _initialise(uri: str) -> None:
    """Create (or migrate) the store's tables under the lock, so only one process does it."""
    from mlflow import MlflowClient

    with store_lock(uri):  # creating the client already creates the tables
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)


def configure_mlflow() -> str:
    """Point the mlflow client at the project's store, ready for tracking.

    On the first call for a store in this process: create the folder of a
    sqlite file, create its tables under the store lock, and mark the runs of
    dead processes of this host KILLED.
    """
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if uri not in _opened:
        db = sqlite_path(uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        _initialise(uri)
        _opened.add(uri)
        from tasks.run_reaper import mark_dead_runs_killed

        mark_dead_runs_killed(uri)
    return uri


def experiment_name(dataset: str) -> str:
    return f"din-{dataset}"


#: MLflow's experiment-type tag; ``custom_model_development`` is what the UI calls
#: "Machine learning" (the other declared kind, ``genai_development``, opens traces,
#: evaluations and prompts instead of the runs table).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: The query that opens an experiment page of the MLflow 3.17 UI in its model-training
#: view, whatever the browser's last choice in the sidebar's GenAI / Model training switch.
ML_VIEW_QUERY = "workflowType=machine_learning"


def _mark_model_training(experiment) -> str:
    """Tag an existing experiment as model training (once: only when the tag differs)."""
    import mlflow

    if (experiment.tags or {}).get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        mlflow.MlflowClient().set_experiment_tag(
            experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
        )
    return experiment.experiment_id


def ensure_experiment(dataset: str) -> str:
    """Id of the dataset's experiment, created with an explicit artifact location if new.

    New and existing experiments carry ``mlflow.experimentKind=custom_model_development``,
    MLflow's declaration of a model-training ("Machine learning") experiment, so the UI
    and MLflow's tools do not take it for a GenAI one.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    configure_mlflow()
    name = experiment_name(dataset)
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return _mark_model_training(existing)
    root = artifact_root()
    location = None if root is None else (root / name).resolve().as_uri()
    with store_lock():  # get-or-create, atomic across processes on a sqlite store
        existing = mlflow.get_experiment_by_name(name)
        if existing is not None:
            return _mark_model_training(existing)
        try:
            return mlflow.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except MlflowException:
            # Another client (of a tracking server) created it between the lookup and the create.
            found = mlflow.get_experiment_by_name(name)
            if found is None:
                raise
            return _mark_model_training(found)


def experiment_url(
    experiment_id: str, run_id: str | None = None, base: str = "http://127.0.0.1:5000"
) -> str:
    """The UI address of an experiment (or one of its runs) in the model-training view."""
    path = f"/#/experiments/{experiment_id}/runs"
    if run_id:
        path += f"/{run_id}"
    return f"{base.rstrip('/')}{path}?{ML_VIEW_QUERY}"


def ui_command(host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """Arguments of ``mlflow ui`` on this store (without the interpreter)."""
    uri = tracking_uri()
    args = ["ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    root = artifact_root(uri)
    if root is not None:
        args += ["--default-artifact-root", root.resolve().as_uri()]
    return args
