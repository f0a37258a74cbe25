"""A logged model, by the names users have for it, as local files: checkpoint and serving tables.

``din score`` and ``din export`` take ``--model`` as a ``models:/`` URI
(``models:/din-amazon@champion``, ``models:/din-amazon/3``), a ``runs:/<run id>/<path>``
URI, or a bare MLflow run id (its logged model ``model``). An alias is pinned to its
version first, so that a retrain promoting a new champion while the files download
cannot mix two versions. Only the pyfunc's ``checkpoint`` and ``serving`` artifacts
(:mod:`tasks.model_logging`) are downloaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from din_model.errors import ConfigError
from tasks.registry import CHAMPION_ALIAS, registered_model_name
from tasks.store import TRACKING_URI_ENV, configure_mlflow, sqlite_path, tracking_uri

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
LOGGED_MODEL = "model"  # the name tasks.model_logging gives a run's model
MLMODEL_FILE = "MLmodel"


def default_model_uri(dataset: str) -> str:
    """``models:/din-<dataset>@champion``: what the din-score flow scores with by default."""
    return f"models:/{registered_model_name(dataset)}@{CHAMPION_ALIAS}"


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference pinned to one version: the URI to fetch and where it came from."""

    requested: str
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None

    def describe(self) -> str:
        if self.name is not None:
            return f"{self.name} v{self.version} ({self.requested}, run {self.run_id})"
        return self.uri


def _model_error(model: str, exc: Exception) -> ConfigError:
    message = getattr(exc, "message", None) or str(exc)
    return ConfigError(f"model {model!r}: {message.strip().splitlines()[0]}")


def open_store() -> None:
    """Point MLflow at the store; a sqlite store that does not exist is a clear stop."""
    uri = tracking_uri()
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise ConfigError(
            f"no MLflow store at {db} ({TRACKING_URI_ENV}={uri}): train and register a model "
            "first (`din run`), or point MLFLOW_TRACKING_URI at the store that has it"
        )
    configure_mlflow()


def resolve_model(model: str) -> ResolvedModel:
    """A ``models:/`` URI, ``runs:/`` URI or run id -> the model it names, pinned."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    open_store()
    client = MlflowClient()
    model = model.strip()
    try:
        if RUN_ID.match(model):
            run_id = client.get_run(model).info.run_id
            return ResolvedModel(model, f"runs:/{run_id}/{LOGGED_MODEL}", run_id=run_id)
        if model.startswith("runs:/"):
            return ResolvedModel(model, model, run_id=model.removeprefix("runs:/").split("/")[0])
        if not model.startswith("models:/"):
            raise ConfigError(
                f"model {model!r}: expected models:/<name>@<alias>, models:/<name>/<version>, "
                "runs:/<run id>/<path> or an MLflow run id"
            )
        reference = model.removeprefix("models:/").rstrip("/")
        if "@" in reference:
            name, alias = reference.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        elif "/" in reference:
            name, number = reference.split("/", 1)
            version = client.get_model_version(name, number)
        else:  # a logged model id (models:/m-...): nothing to pin
            return ResolvedModel(model, model)
    except MlflowException as exc:
        raise _model_error(model, exc) from None
    return ResolvedModel(
        model, f"models:/{name}/{version.version}", name, str(version.version), version.run_id
    )


def _artifact_paths(mlmodel: Path, uri: str) -> dict[str, str]:
    """Artifact name -> path inside the model folder, from the pyfunc flavour of ``MLmodel``."""
    import yaml

    from din_model.serving.raw_scorer import CHECKPOINT_ARTIFACT, SERVING_ARTIFACT

    flavor = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
    artifacts = (flavor.get("python_function") or {}).get("artifacts") or {}
    paths = {}
    for name in (CHECKPOINT_ARTIFACT, SERVING_ARTIFACT):
        entry = artifacts.get(name)
        if not isinstance(entry, dict) or "path" not in entry:
            raise ConfigError(
                f"model {uri} has no '{name}' artifact: it is not a din model that takes raw "
                "requests (retrain it with this version of the pipeline)"
            )
        paths[name] = str(entry["path"])
    return paths


def download_model(resolved: ResolvedModel, folder: Path) -> tuple[Path, Path]:
    """(checkpoint file, serving folder) of the model, downloaded under ``folder``."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    from din_model.serving.raw_scorer import CHECKPOINT_ARTIFACT, SERVING_ARTIFACT

    def fetch(path: str, into: str) -> Path:
        target = folder / into
        target.mkdir(parents=True, exist_ok=True)
        uri = f"{resolved.uri}/{path}"
        return Path(download_artifacts(artifact_uri=uri, dst_path=str(target)))

    try:
        paths = _artifact_paths(fetch(MLMODEL_FILE, "meta"), resolved.uri)
        checkpoint = fetch(paths[CHECKPOINT_ARTIFACT], "checkpoint")
        serving = fetch(paths[SERVING_ARTIFACT], "serving")
    except MlflowException as exc:
        raise _model_error(resolved.requested, exc) from None
    return checkpoint, serving
