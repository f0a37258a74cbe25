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

from din_model.data.samples.raw_inputs import EXAMPLE_FILE
from din_model.serving.raw_scorer import CHECKPOINT_ARTIFACT, SERVING_ARTIFACT
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


def input_example(serving_dir: Path) -> pd.DataFrame:
    """A few raw test rows (``serving/example.parquet``): the schema a client sends."""
    import polars as pl

    return pl.read_parquet(Path(serving_dir) / EXAMPLE_FILE, glob=False).to_pandas()


def raw_signature(example: pd.DataFrame, serving_dir: Path) -> Any:
    """The raw request schema: the example's columns, plus the optional item attributes.

    A column a request may leave out (the category, looked up by item id) is in the
    signature as optional, so MLflow accepts requests with or without it.
    """
    import numpy as np
    from mlflow.models import infer_signature
    from mlflow.types.schema import Array, ColSpec, DataType, Schema

    from din_model.data.samples.raw_inputs import read_raw_inputs

    signature = infer_signature(example, np.zeros(len(example)))
    columns = list(signature.inputs.inputs)
    present = {c.name for c in columns}
    for raw in read_raw_inputs(serving_dir):
        if raw.from_items and raw.column not in present:
            kind = Array(DataType.string) if raw.kind == "sequence" else DataType.string
            columns.append(ColSpec(kind, raw.column, required=False))
            present.add(raw.column)
    signature.inputs = Schema(columns)
    return signature


def log_pyfunc_model(
    run_id: str,
    checkpoint: str | Path,
    serving_dir: str | Path,
    registered_name: str | None,
    extra_artifacts: dict[str, str] | None = None,
) -> Any:
    """Log the checkpoint as ``model`` of ``run_id`` (registered as ``registered_name``).

    The model carries its run's ``serving/`` folder (request schema, vocabularies,
    item table), so it takes raw requests and does its own encoding. A registered
    version gets its description and the model's (:func:`tasks.registry.describe_registration`).
    """
    serving_dir = Path(serving_dir)
    artifacts = {
        CHECKPOINT_ARTIFACT: str(checkpoint),
        SERVING_ARTIFACT: str(serving_dir),
        **(extra_artifacts or {}),
    }
    example = input_example(serving_dir)
    signature = raw_signature(example, serving_dir)
    with warnings.catch_warnings():
        # a missing raw id is a valid request (it encodes to OOV, as in training), so
        # MLflow's hint about integer columns with missing values does not apply
        warnings.filterwarnings("ignore", message=".*integer column.*", category=UserWarning)
        info = _log(run_id, artifacts, example, signature, registered_name)
    if registered_name:
        from tasks.registry import describe_registration

        describe_registration(
            registered_name, str(info.registered_model_version), run_id, serving_dir
        )
    logger.info(
        "logged model %s%s",
        info.model_uri,
        f" as {registered_name} v{info.registered_model_version}" if registered_name else "",
    )
    return info


def _log(
    run_id: str, artifacts: dict[str, str], example: pd.DataFrame, signature: Any, name: str | None
) -> Any:
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
        signature=signature,
        model_config={"runtime": "torch", "num_threads": None},  # overridable at load
        registered_model_name=name,
        model_id=logged.model_id,
    )
