"""Log a trained checkpoint as the pyfunc model of a run and register it.

``Model.log(..., run_id=...)`` attaches the model to an explicit run rather
than the thread's active run (tasks run in Prefect worker threads).
``pip_requirements`` are given explicitly: MLflow's automatic inference
imports the model in a subprocess and takes ~14 s per log. The model ships
the ``din_model`` package only (``code_paths``), so it loads outside
this repository too.
"""

from __future__ import annotations

import logging
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.store import PROJECT_ROOT

logger = logging.getLogger(__name__)

MODEL_NAME = "model"
DEFINITION = PROJECT_ROOT / "tasks" / "pyfunc_definition.py"  # models from code
_REQUIREMENTS = ("torch", "numpy", "pandas", "pyarrow", "polars", "pyyaml", "mlflow")


def pip_requirements() -> list[str]:
    """Pinned versions of what the pyfunc imports (torch without its ``+cpu`` local tag)."""
    pins = []
    for package in _REQUIREMENTS:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            pins.append(package)
            continue
        pins.append(f"{package}=={version.split('+')[0]}")
    return pins


def input_example(frame: pd.DataFrame, feature_names: list[str], rows: int = 5) -> pd.DataFrame:
    """A few rows with int64 ids and int64 lists: the signature then accepts any integer width."""
    import numpy as np

    example = frame[feature_names].head(rows).copy()
    for name in feature_names:
        column = example[name]
        if column.dtype == object:
            example[name] = [np.asarray(v, dtype=np.int64) for v in column]
        else:
            example[name] = column.astype("int64")
    return example.reset_index(drop=True)


def log_pyfunc_model(
    run_id: str,
    checkpoint: str | Path,
    example: pd.DataFrame,
    registered_name: str | None,
    extra_artifacts: dict[str, str] | None = None,
) -> Any:
    """Log the checkpoint as ``model`` of ``run_id`` (registered as ``registered_name``)."""
    from din_model.serving.encoded_scorer import CHECKPOINT_ARTIFACT

    artifacts = {CHECKPOINT_ARTIFACT: str(checkpoint), **(extra_artifacts or {})}
    with warnings.catch_warnings():
        # ids are never missing (the wrapper maps them to OOV), so MLflow's hint about
        # integer columns with missing values does not apply
        warnings.filterwarnings("ignore", message=".*integer column.*", category=UserWarning)
        info = _log(run_id, artifacts, example, registered_name)
    logger.info(
        "logged model %s%s",
        info.model_uri,
        f" as {registered_name} v{info.registered_model_version}" if registered_name else "",
    )
    return info


def _log(run_id: str, artifacts: dict[str, str], example: pd.DataFrame, name: str | None) -> Any:
    import mlflow
    from mlflow.models import Model

    # Created explicitly in the run's experiment: without an active run, MLflow would put
    # the logged model in the default experiment (artifacts under ./mlruns/0).
    experiment_id = mlflow.MlflowClient().get_run(run_id).info.experiment_id
    logged = mlflow.initialize_logged_model(
        name=MODEL_NAME, source_run_id=run_id, experiment_id=experiment_id, model_type="din"
    )
    return Model.log(
        artifact_path=None,
        name=MODEL_NAME,
        flavor=mlflow.pyfunc,
        run_id=run_id,
        python_model=str(DEFINITION),
        artifacts=artifacts,
        code_paths=[str(PROJECT_ROOT / "din_model")],
        pip_requirements=pip_requirements(),
        input_example=example,
        registered_model_name=name,
        model_id=logged.model_id,
    )
