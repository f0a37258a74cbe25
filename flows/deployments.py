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
``DIN_RETRAIN_TIMEZONE`` says otherwise); ``DIN_RETRAIN_CRON``, ``din serve
--cron`` or ``cron:`` in a deployments file change it. Each scheduled run
retrains on the deployment's source and parameters, set per dataset with
``din serve --source DATASET=PATH --param DATASET.NAME=VALUE`` or a deployments
file (:func:`load_deployments_file`); the names are din-train's parameters,
which are the CLI's (``regularizer`` is ``--regularizer``). Scheduled runs
skip unchanged data (``skip_unchanged: true``) and register nothing then.

Anyone who can reach the Prefect API can trigger a run with any parameters,
so a deployment run accepts ``source``, ``work_dir`` and ``config_file`` only
under the roots of the serving process (``din serve --data-root/--work-root``,
``DIN_DATA_ROOTS``/``DIN_WORK_DIR``); the flow refuses anything else at its
first step (:mod:`tasks.allowed_paths`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from din_model.errors import ConfigError
from din_model.registry import dataset_entry, dataset_names

DEFAULT_CRON = "0 3 * * *"
CRON_ENV = "DIN_RETRAIN_CRON"
TIMEZONE_ENV = "DIN_RETRAIN_TIMEZONE"

# Parameters of every deployment, unless the dataset's spec overrides them
# (`deployment:`, see din_model/registry/datasets.py); any of them can be changed
# per run with -p.
COMMON_PARAMETERS: dict[str, Any] = {
    "source": "auto",
    "model": "din",
    "regularizer": "none",
    # a scheduled retrain on the same data with the same seed reproduces the same model
    "skip_unchanged": True,
}
# parameters that are paths: made absolute when given on the command line or in a file
PATH_PARAMETERS = ("source", "work_dir", "config_file")
FILE_KEYS = ("deployments", "cron")
# the CLI's short spellings, accepted as parameter names too
ALIASES = {"reg": "regularizer"}


def deployment_parameters(dataset: str) -> dict[str, Any]:
    """The default parameters of ``din-train/<dataset>`` (ConfigError for an unknown dataset)."""
    return {"dataset": dataset, **COMMON_PARAMETERS, **dataset_entry(dataset).deployment}


def train_parameter_names() -> tuple[str, ...]:
    """The parameters of the din-train flow, in signature order: the names a deployment accepts."""
    import inspect

    from flows.train_flow import din_train

    return tuple(inspect.signature(din_train.fn).parameters)


def _check_dataset(dataset: str, where: str) -> None:
    if dataset not in dataset_names():
        raise ConfigError(
            f"{where}: unknown dataset '{dataset}' (expected one of {', '.join(dataset_names())})"
        )


def _check_name(name: str, where: str) -> str:
    """The canonical din-train parameter for ``name`` (``reg`` -> ``regularizer``)."""
    name = ALIASES.get(name, name)
    names = train_parameter_names()
    if name not in names or name == "dataset":
        allowed = ", ".join(n for n in names if n != "dataset")
        raise ConfigError(
            f"{where}: '{name}' is not a din-train parameter (expected one of {allowed})"
        )
    return name


def _absolute(name: str, value: Any, base: Path) -> Any:
    """A path parameter made absolute against ``base``; keywords and presets stay as they are."""
    if name not in PATH_PARAMETERS or not isinstance(value, str):
        return value
    if name == "source" and value in ("auto", "synthetic"):
        return value
    if name == "config_file" and "/" not in value and not Path(value).suffix:
        return value  # a preset name (paper, ...)
    return str((base / Path(value).expanduser()).resolve())


def _split(flag: str, value: str, separator: str, shape: str) -> tuple[str, str]:
    head, found, tail = value.partition(separator)
    if not found or not head or not tail:
        raise ConfigError(f"{flag} {value!r}: expected {shape}")
    return head, tail


def parse_source_flags(values: Iterable[str] | None) -> dict[str, dict[str, Any]]:
    """``--source DATASET=PATH`` (repeatable) -> ``{dataset: {"source": absolute path}}``."""
    parameters: dict[str, dict[str, Any]] = {}
    for value in values or ():
        dataset, path = _split("--source", value, "=", "DATASET=PATH (e.g. movielens=data/ml-100k)")
        _check_dataset(dataset, f"--source {value}")
        parameters.setdefault(dataset, {})["source"] = _absolute("source", path, Path.cwd())
    return parameters


def parse_param_flags(values: Iterable[str] | None) -> dict[str, dict[str, Any]]:
    """``--param DATASET.NAME=VALUE`` (repeatable) -> ``{dataset: {name: value}}``.

    Values are YAML scalars read with ``yaml.safe_load`` (``true``, ``8``, ``0.01``,
    ``null``, ``[a, b]``; anything else stays a string); nothing is ever executed.
    """
    import yaml

    parameters: dict[str, dict[str, Any]] = {}
    for value in values or ():
        shape = "DATASET.NAME=VALUE (e.g. movielens.window=8w)"
        target, text = _split("--param", value, "=", shape)
        dataset, name = _split("--param", target, ".", shape)
        _check_dataset(dataset, f"--param {value}")
        name = _check_name(name, f"--param {value}")
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(
                f"--param {value}: the value is not a YAML scalar ({problem})"
            ) from exc
        parameters.setdefault(dataset, {})[name] = _absolute(name, parsed, Path.cwd())
    return parameters


def load_deployments_file(path: str | Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    """A deployments file -> (parameters per dataset, cron or None).

    Layout (relative paths are relative to the file's folder)::

        cron: "0 3 * * 1"          # optional
        deployments:
          movielens: {source: ../data/ml-100k, window: 8w, warm_start: true}
          amazon: {source: /data/amazon/2018-magazine-subscriptions}
    """
    from din_model.registry.files import load_mapping

    path = Path(path)
    payload = load_mapping(path, "a mapping with deployments: and optional cron:")
    for key in payload:
        if key not in FILE_KEYS:
            raise ConfigError(f"{path}: unknown key '{key}' (expected {', '.join(FILE_KEYS)})")
    cron = payload.get("cron")
    if cron is not None and not isinstance(cron, str):
        raise ConfigError(f"{path}: cron: expected a cron string such as '0 3 * * *'")
    entries = payload.get("deployments") or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: deployments: expected a mapping of dataset -> parameters")
    base = path.resolve().parent
    parameters: dict[str, dict[str, Any]] = {}
    for dataset, values in entries.items():
        where = f"{path}: deployments.{dataset}"
        _check_dataset(str(dataset), f"{path}: deployments")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a mapping of din-train parameters")
        checked = {_check_name(str(n), f"{where}.{n}"): v for n, v in values.items()}
        parameters[str(dataset)] = {n: _absolute(n, v, base) for n, v in checked.items()}
    return parameters, cron


def merge_parameters(
    *layers: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Per-dataset parameters, later layers winning key by key (file, then flags)."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for dataset, values in layer.items():
            merged.setdefault(dataset, {}).update(values)
    return merged


def effective_parameters(
    dataset: str, parameters: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """What ``din-train/<dataset>`` will run with: its defaults, then the given overrides."""
    return {**deployment_parameters(dataset), **(parameters or {}).get(dataset, {})}


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
        params = effective_parameters(dataset, parameters)
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
