"""The ``din-train`` flow: ingest -> feature groups -> validate -> train -> evaluate -> log.

One run of the flow is one MLflow run in the dataset's experiment
(``din-<dataset>``), opened before the data steps so that a run that stops
on bad data is recorded too. Data steps are cached on the fingerprints of
their inputs (see :mod:`tasks.data`); bad data fails the run at a validation
step with the Great Expectations summary as the failure message. A
successful run registers its model as ``din-<dataset>``; the version becomes
``champion`` only on a better validation GAUC (:mod:`tasks.registry`).

Run it with ``din run`` (in-process, on Prefect's temporary server) or as a
deployment served by ``din serve``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from din_model.registry import dataset_names
from flows.steps import run_data_steps, run_training_steps
from tasks import run_names
from tasks.allowed_paths import guard_deployment_paths
from tasks.config import check_choice, resolve_run_config
from tasks.data import DEFAULT_SYNTHETIC_SCALE, SourceSpec, resolve_source
from tasks.git_info import git_info
from tasks.paths import work_root
from tasks.reproduce import DataChanged
from tasks.run_lifecycle import tracked_run
from tasks.run_logging import log_inputs, tag_run
from tasks.run_names import source_label
from tasks.store import ensure_experiment, tracking_uri

DEFAULT_SEED = 2024


def run_name(
    model: str,
    regularizer: str,
    seed: int,
    *,
    dataset: str | None = None,
    source_label: str | None = None,
) -> str:
    """Kept for callers of the old ``(model, regularizer, seed)`` form; see :mod:`tasks.run_names`.

    Without ``dataset``/``source_label`` the name is ``<model>+<regulariser>:seed<seed>``.
    """
    return run_names.run_name(dataset, source_label, model, regularizer, seed)


def flow_run_name() -> str:
    """The Prefect flow run's name: the MLflow run's, from the flow's parameters.

    Prefect 3 calls this (no arguments) before the flow body runs, so the source's
    label is planned from the parameters (:func:`tasks.run_names.planned_source_label`).
    Naming never fails a run: on a parameter the flow itself will reject, the
    name falls back to the raw values.
    """
    import inspect

    from prefect.runtime import flow_run

    defaults = {
        name: p.default
        for name, p in inspect.signature(din_train.fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    params = {**defaults, **flow_run.parameters}
    dataset = str(params["dataset"])
    try:
        label = run_names.planned_source_label(
            dataset,
            str(params["source"]),
            float(params["synthetic_scale"]),
            int(params["synthetic_seed"]),
        )
    except (OSError, ValueError, TypeError, KeyError):
        label = str(params["source"])
    return run_names.run_name(
        dataset, label, str(params["model"]), str(params["regularizer"]), params["seed"]
    )


def run_tags(
    dataset: str, model: str, regularizer: str, seed: int, spec: SourceSpec
) -> dict[str, Any]:
    """The tags every training-like run carries (din-train, din-tune): what, on which data, code."""
    return {
        "dataset": dataset,
        "model": model,
        "regularizer": regularizer,
        "seed": seed,
        "source": spec.path,
        "source_fingerprint": spec.fingerprint,
        "data_source": "synthetic" if spec.synthetic else "real",
        "prefect_flow_run_id": flow_run_id(),
        **git_info().as_tags(),
    }


def flow_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or "")


@flow(name="din-train", flow_run_name=flow_run_name)
def din_train(
    dataset: str = "amazon",
    source: str = "auto",
    model: str = "din",
    regularizer: str = "none",
    overrides: list[str] | None = None,
    seed: int = DEFAULT_SEED,
    config_file: str | None = None,
    max_len: int | None = None,
    on_bad_lines: str = "error",
    synthetic_scale: float = DEFAULT_SYNTHETIC_SCALE,
    synthetic_seed: int = 0,
    register_model: bool = True,
    work_dir: str | None = None,
    rerun_of: str | None = None,
    refresh_cache: bool = False,
    expected_fingerprint: str | None = None,
) -> dict[str, Any]:
    """Train one model on one dataset and record everything in MLflow.

    Args:
        dataset: amazon | movielens | taobao.
        source: a folder with the owner's raw files, ``synthetic`` (Amazon-format
            data from ``din synth``) or ``auto`` (``data/raw/<dataset>`` if it holds
            files, else synthetic).
        model: lr | base | wide_deep | pnn | deepfm | din | din_dice.
        regularizer: none | l2 | dropout | filter | difacto | mba.
        overrides: ``section.key=value`` strings, as ``din train --set``.
        seed: seeds the negative sampling / user split and the training.
        config_file: a YAML file or preset name layered under the overrides.
        max_len: history length of the prepared samples (default: the dataset spec's).
        register_model: register the model as ``din-<dataset>`` and apply the champion rule.
        work_dir: where caches and run folders go (default ``outputs/pipeline``).
            In a deployment run, ``source``, ``work_dir`` and ``config_file`` must lie
            under the configured roots (:mod:`tasks.allowed_paths`).
        rerun_of: the MLflow run this one re-executes (``din rerun``), recorded as a tag.
        refresh_cache: re-run the data steps even when their cache is valid.
        expected_fingerprint: refuse to run unless the raw data has this fingerprint.
    """
    guard_deployment_paths(source, work_dir, config_file)
    logger = get_run_logger()
    check_choice("dataset", dataset, dataset_names())
    check_choice("on_bad_lines", on_bad_lines, ("error", "skip"))
    overrides = list(overrides or [])
    work = work_root(work_dir)
    config = resolve_run_config(model, dataset, regularizer, seed, overrides, config_file)
    spec = resolve_source(dataset, source, synthetic_scale, synthetic_seed)
    if expected_fingerprint and spec.fingerprint != expected_fingerprint:
        raise DataChanged(
            f"{spec.path}: the raw data has fingerprint {spec.fingerprint}, "
            f"expected {expected_fingerprint}"
        )

    tags = run_tags(dataset, model, regularizer, seed, spec)
    if spec.synth:
        tags["synthetic_scale"] = spec.synth["scale"]
        tags["synthetic_seed"] = spec.synth["seed"]
    if rerun_of:
        tags["rerun_of"] = rerun_of
    label = source_label(spec)
    tags["source_label"] = label
    name = run_names.run_name(dataset, label, model, regularizer, seed)
    with tracked_run(dataset, name, tags) as run_id:
        logger.info("MLflow run %s on %s", run_id, tracking_uri())
        pipeline_params = {
            "pipeline.dataset": dataset,
            "pipeline.source": source,
            "pipeline.model": model,
            "pipeline.regularizer": regularizer,
            "pipeline.seed": seed,
            "pipeline.max_len": "null" if max_len is None else max_len,
            "pipeline.on_bad_lines": on_bad_lines,
        }
        log_inputs(run_id, config, pipeline_params, spec)
        data = run_data_steps(
            spec, work, seed=seed, max_len=max_len, on_bad_lines=on_bad_lines, refresh=refresh_cache
        )
        tag_run(run_id, data.tags())
        run_dir = work / "runs" / dataset / run_id
        outcome = run_training_steps(
            run_id, dataset, data, model, regularizer, config, run_dir, seed, register_model
        )
    summary = {
        "run_id": run_id,
        "dataset": dataset,
        "model": model,
        "regularizer": regularizer,
        "seed": seed,
        "source": spec.path,
        "data_source": "synthetic" if data.synthetic else "real",
        "data_fingerprint": data.data_fingerprint,
        "cached": data.cached,
        "prepared_dir": data.prepared,
        "run_dir": str(run_dir),
        "flow_run_id": tags["prefect_flow_run_id"],
        "tracking_uri": tracking_uri(),
        "experiment_id": ensure_experiment(dataset),
        **{k: outcome[k] for k in ("valid", "test", "best_epoch")},
        "registry": outcome["registry"],
    }
    logger.info(
        "done: test AUC %.4f GAUC %.4f LogLoss %.4f (run %s)",
        summary["test"]["auc"],
        summary["test"]["gauc"],
        summary["test"]["logloss"],
        run_id,
    )
    return summary
