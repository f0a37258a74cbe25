"""Deployments of ``din-train``: one per dataset, each with a retraining schedule.

Next to them, ``din-score/<dataset>`` (:mod:`flows.score_flow`, no schedule) scores a
file of raw impressions with the dataset's champion on demand, and ``din-tune/<dataset>``
(:mod:`flows.tune_flow`, no schedule) runs or continues a hyper-parameter study:
triggering it again with a larger ``trials`` adds trials to the same study.

``din-train/<dataset>``, one for every registered dataset (amazon, movielens,
taobao, ...), are served by one long-running process (``din serve``), which
executes their runs, whether triggered by the cron schedule or by
``prefect deployment run din-train/<dataset> -p source=...``. Schedules only
fire on a real Prefect server (not the temporary one of an in-process run).

The default schedule is daily at 03:00 (server time zone UTC unless
``DIN_RETRAIN_TIMEZONE`` says otherwise); ``DIN_RETRAIN_CRON`` or
``din serve --cron`` change it. Each scheduled run retrains on the dataset's
default source and registers a new model version, which becomes the champion
only if it validates better (see :mod:`tasks.registry`).

Anyone who can reach the Prefect API can trigger a run with any parameters,
so a deployment run accepts ``source``, ``work_dir`` and ``config_file`` only
under the roots of the serving process (``din serve --data-root/--work-root``,
``DIN_DATA_ROOTS``/``DIN_WORK_DIR``); the flow refuses anything else at its
first step (:mod:`tasks.allowed_paths`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from din_model.registry import dataset_entry, dataset_names

DEFAULT_CRON = "0 3 * * *"
CRON_ENV = "DIN_RETRAIN_CRON"
TIMEZONE_ENV = "DIN_RETRAIN_TIMEZONE"

# Parameters of every deployment, unless the dataset's spec overrides them
# (`deployment:`, see din_model/registry/datasets.py); any of them can be changed
# per run with -p.
COMMON_PARAMETERS: dict[str, Any] = {"source": "auto", "model": "din", "regularizer": "none"}


def deployment_parameters(dataset: str) -> dict[str, Any]:
    """The default parameters of ``din-train/<dataset>`` (ConfigError for an unknown dataset)."""
    return {"dataset": dataset, **COMMON_PARAMETERS, **dataset_entry(dataset).deployment}


def retrain_cron(cron: str | None = None) -> str:
    """The schedule: an explicit value, else ``DIN_RETRAIN_CRON``, else daily at 03:00."""
    return cron or os.environ.get(CRON_ENV) or DEFAULT_CRON


def build_deployments(
    datasets: Iterable[str] | None = None,
    cron: str | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    paused: bool = False,
) -> list:
    """RunnerDeployments of the din-train flow, then din-score's, ready for ``prefect.serve``.

    ``datasets`` defaults to every registered dataset.
    """
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.train_flow import din_train

    schedule = Cron(retrain_cron(cron), timezone=os.environ.get(TIMEZONE_ENV, "UTC"))
    datasets = None if datasets is None else list(datasets)  # iterated twice
    deployments = []
    for dataset in dataset_names() if datasets is None else datasets:
        params = deployment_parameters(dataset)
        params.update((parameters or {}).get(dataset, {}))
        deployments.append(
            din_train.to_deployment(
                name=dataset,
                schedules=[schedule],
                paused=paused,
                parameters=params,
                description=f"Retrain DIN on {dataset}; the champion alias moves only on a "
                "better validation GAUC.",
                tags=["din", dataset],
                # module path, not file path: runs start from any working directory
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments + build_score_deployments(datasets) + build_tune_deployments(datasets)


def build_score_deployments(datasets: Iterable[str] | None = None) -> list:
    """``din-score/<dataset>``: batch scoring with the champion, run on demand (no schedule).

    ``input`` and ``out`` have no default: ``prefect deployment run din-score/amazon
    -p input=... -p out=...`` names them (under the roots, see :mod:`tasks.allowed_paths`).
    """
    from prefect.deployments.runner import EntrypointType

    from flows.score_flow import din_score
    from tasks.model_source import default_model_uri

    return [
        din_score.to_deployment(
            name=dataset,
            parameters={"dataset": dataset, "model": default_model_uri(dataset)},
            description=f"Score a file of raw {dataset} impressions with the champion model "
            "(-p input=FILE -p out=FILE; -p interactions=DIR builds the histories).",
            tags=["din", dataset, "score"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        for dataset in (dataset_names() if datasets is None else datasets)
    ]


# Parameters of every din-tune deployment; any of them can be changed per run with -p
# (model, regularizer, space, trials, workers, dask_address, config_file, ...).
TUNE_PARAMETERS: dict[str, Any] = {
    "source": "auto",
    "model": "din",
    "regularizer": "none",
    "space": "default",
    "trials": 20,
    "workers": 1,
}


def tune_parameters(dataset: str) -> dict[str, Any]:
    """The default parameters of ``din-tune/<dataset>``: the dataset's source, the study's."""
    source = dataset_entry(dataset).deployment.get("source", TUNE_PARAMETERS["source"])
    return {"dataset": dataset, **TUNE_PARAMETERS, "source": source}


def build_tune_deployments(datasets: Iterable[str] | None = None) -> list:
    """``din-tune/<dataset>``: an Optuna study, run on demand (no schedule).

    ``trials`` counts the study's finished trials, so a second run with the same
    parameters only fits and scores the best config again, and ``-p trials=40``
    continues the study to 40. Path parameters (``source``, ``space``,
    ``config_file``, ``work_dir``, ``out``) must lie under the serving roots.
    """
    from prefect.deployments.runner import EntrypointType

    from flows.tune_flow import din_tune

    return [
        din_tune.to_deployment(
            name=dataset,
            parameters=tune_parameters(dataset),
            description=f"Tune a model on {dataset} with Optuna (-p model=din_dice "
            "-p space=recbole -p trials=40 -p workers=2); the best config is written to "
            f"<work>/tuned/{dataset}/<model>.yaml.",
            tags=["din", dataset, "tune"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        for dataset in (dataset_names() if datasets is None else datasets)
    ]


def serve_deployments(
    datasets: Iterable[str] | None = None,
    cron: str | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    limit: int | None = None,
) -> None:
    """Register the deployments with the server in ``PREFECT_API_URL`` and execute their runs.

    Blocks until interrupted (Ctrl-C / SIGINT / SIGTERM); on shutdown Prefect
    pauses the schedules so that no run piles up while nothing executes them.
    """
    from prefect import serve

    serve(*build_deployments(datasets, cron, parameters), limit=limit)
