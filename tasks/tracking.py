"""MLflow logging of one run: opening it, params, tags, per-epoch and test metrics, artifacts.

Everything goes through ``MlflowClient`` with an explicit ``run_id`` instead
of the fluent "active run": Prefect executes tasks in worker threads and
MLflow's active-run stack is per thread, so a run opened in the flow is not
"active" inside a task. Passing ids also makes child runs of an ablation
carry their parent explicitly (``mlflow.parentRunId``).

Every run opened here carries the identity of its process (``din.host``,
``din.pid``, ``din.pid_start``, see :mod:`tasks.process_identity`) so that a
run whose process was killed can be found and marked KILLED later. Opening
and ending runs is done by :func:`tasks.run_lifecycle.tracked_run`.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from din_model.config import dump_config
from din_model.config.tree import iter_leaves
from tasks.open_runs import raise_if_terminated
from tasks.process_identity import process_tags
from tasks.store import ensure_experiment

logger = logging.getLogger(__name__)

FAILURE_TAG = "din.failure"  # why a run did not finish: an error, a signal, a kill
MAX_PARAM_VALUE = 6000  # MLflow's limit on a param value
BATCH_LIMIT = 100  # params or metrics per log_batch request that MLflow accepts comfortably
EPOCH_METRICS = (
    "train_loss",
    "train_penalty",
    "valid_auc",
    "valid_gauc",
    "valid_logloss",
    "learning_rate",
    "samples_per_s",
    "train_steps",
)


def client():
    from mlflow import MlflowClient

    return MlflowClient()


def flatten_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Dotted keys -> string values, as MLflow params (lists and None spelled as YAML would)."""
    flat = {}
    for key, value in iter_leaves(config):
        if value is None:
            text = "null"
        elif isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, dict):
            text = "{}"
        else:
            text = str(value)
        flat[key] = text[:MAX_PARAM_VALUE]
    return flat


def open_run(
    dataset: str,
    run_name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None = None,
) -> str:
    """Create a run in the dataset's experiment (as a child of ``parent_run_id`` if given).

    The run is tagged with this process's host, pid and start time.
    """
    experiment_id = ensure_experiment(dataset)
    all_tags = {k: str(v) for k, v in tags.items()}
    all_tags.update(process_tags())
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = client().create_run(experiment_id, run_name=run_name, tags=all_tags)
    logger.info("MLflow run %s (%s) in experiment %s", run.info.run_id, run_name, experiment_id)
    return run.info.run_id


def set_tags(run_id: str, tags: Mapping[str, Any]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)) for k, v in tags.items()]
    for start in range(0, len(items), BATCH_LIMIT):
        client().log_batch(run_id, tags=items[start : start + BATCH_LIMIT])


def log_config(run_id: str, config: Mapping[str, Any], extra_params: Mapping[str, Any]) -> None:
    """The resolved config flattened into params, plus ``config.yaml`` as an artifact."""
    from mlflow.entities import Param

    flat = flatten_config(config)
    flat.update({k: str(v) for k, v in extra_params.items()})
    params = [Param(k, v) for k, v in sorted(flat.items())]
    mlflow_client = client()
    for start in range(0, len(params), BATCH_LIMIT):
        mlflow_client.log_batch(run_id, params=params[start : start + BATCH_LIMIT])
    log_text(run_id, dump_config(config, header="resolved config of this run"), "config.yaml")


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    client().log_text(run_id, text, artifact_file)


def log_metrics(run_id: str, metrics: Mapping[str, Any], step: int = 0) -> None:
    """Finite numeric metrics in one batched request (100 single calls take ~8x longer)."""
    from mlflow.entities import Metric

    timestamp = int(time.time() * 1000)
    batch = [
        Metric(key, float(value), timestamp, step)
        for key, value in metrics.items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    ]
    for start in range(0, len(batch), BATCH_LIMIT):
        client().log_batch(run_id, metrics=batch[start : start + BATCH_LIMIT])


def log_epoch(run_id: str, record: Mapping[str, Any]) -> None:
    """One epoch's train loss and validation metrics at ``step=epoch``.

    Raises :class:`tasks.open_runs.RunTerminated` when this process already
    ended the run on a termination signal: the epoch callback is where a
    training in a worker thread learns that it should stop.
    """
    raise_if_terminated(run_id)
    epoch = int(record["epoch"])
    log_metrics(run_id, {k: record[k] for k in EPOCH_METRICS if k in record}, step=epoch)


def log_files(run_id: str, files: Sequence[Path], artifact_path: str | None = None) -> None:
    mlflow_client = client()
    for path in files:
        if Path(path).is_file():
            mlflow_client.log_artifact(run_id, str(path), artifact_path)
        else:
            logger.warning("artifact %s does not exist; not logged", path)


def finish_run(run_id: str, failed: bool = False) -> None:
    client().set_terminated(run_id, "FAILED" if failed else "FINISHED")


def scratch_dir(prefix: str = "din-mlflow-") -> tempfile.TemporaryDirectory:
    """A temporary folder for artifacts written only to be uploaded."""
    return tempfile.TemporaryDirectory(prefix=prefix)
