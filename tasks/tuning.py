"""A tuning trial as a Prefect task: train on validation only, report epochs, log a child run.

The task runs wherever the flow's task runner puts it: a worker thread of the
flow process, a process of a Dask LocalCluster, or a worker of a remote Dask
cluster. Everything it needs travels in its :class:`TrialRequest` (the
tracking URI and work folder included; a worker process does not see the
flow's environment), and it opens the trial from the study's storage to
report each epoch's validation GAUC and ask the pruner.

Trials call :func:`din_model.pipeline.fit` only: test is never scored during
the search. A pruned trial stops after the epoch that was pruned, and its
MLflow child run ends FINISHED with the tags ``pruned=true`` and
``pruned_at_epoch``; the trial is then told PRUNED by the flow. An error ends
the child run FAILED (:func:`tasks.run_lifecycle.tracked_run`) and fails the
task, and the flow tells the trial FAIL.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from din_model.tuning.space import PrunerSpec
from tasks.data import SourceSpec
from tasks.run_lifecycle import tracked_run
from tasks.run_logging import log_inputs, tag_run
from tasks.store import TRACKING_URI_ENV
from tasks.tracking import log_epoch, log_metrics

PRUNED_TAG = "pruned"
TRIAL_STATE_TAG = "optuna.trial_state"


@dataclass(frozen=True)
class TrialRequest:
    """Everything a trial needs, picklable for a Dask worker."""

    study_name: str
    storage_url: str
    trial_id: int
    number: int
    params: dict[str, Any]  # as Optuna stores them (list values as JSON text)
    config: dict[str, Any]  # the resolved config the trial trains with
    pruner: PrunerSpec
    dataset: str
    model: str
    regularizer: str
    prepared: str
    source: SourceSpec
    parent_run_id: str
    tags: dict[str, Any]
    out_dir: str
    tracking_uri: str
    keep_checkpoints: bool = False


@dataclass
class TrialOutcome:
    """What the flow tells the study: ``complete`` (with ``value``) or ``pruned``."""

    number: int
    state: str
    value: float | None
    run_id: str
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    pruned_at_epoch: int | None = None


def _metrics_of(record: dict[str, Any] | None, prefix: str) -> dict[str, float]:
    if record is None:
        return {}
    metrics = {
        f"{prefix}{k[len('valid_') :]}": float(v)
        for k, v in record.items()
        if k.startswith("valid_") and isinstance(v, int | float) and not isinstance(v, bool)
    }
    metrics[f"{prefix[: -len('valid_')]}epoch"] = float(record["epoch"])
    return metrics


@task(name="tune-trial", cache_policy=NO_CACHE, persist_result=False)
def run_trial(request: TrialRequest) -> TrialOutcome:
    """Train one trial's config (fit only), reporting every epoch; one MLflow child run."""
    import optuna

    from din_model.pipeline import fit
    from din_model.tuning.objective import EpochReporter
    from din_model.tuning.study import load_for_reporting

    os.environ[TRACKING_URI_ENV] = request.tracking_uri  # a worker process has its own env
    logger = get_run_logger()
    study = load_for_reporting(request.storage_url, request.study_name, request.pruner)
    trial = optuna.trial.Trial(study, request.trial_id)
    reporter = EpochReporter(trial)
    name = f"trial-{request.number}"
    pruned: optuna.TrialPruned | None = None
    with tracked_run(request.dataset, name, request.tags, request.parent_run_id) as run_id:
        trial.set_user_attr("mlflow_run_id", run_id)
        params = {
            "pipeline.dataset": request.dataset,
            "pipeline.model": request.model,
            "pipeline.regularizer": request.regularizer,
            "optuna.trial_number": request.number,
            **{f"tune.{k}": v for k, v in request.params.items()},
        }
        log_inputs(run_id, request.config, params, request.source)

        def on_epoch_end(record: dict[str, Any]) -> None:
            log_epoch(run_id, record)
            reporter(record)

        try:
            result = fit(
                request.prepared,
                request.out_dir,
                request.model,
                request.regularizer,
                request.config,
                on_epoch_end=on_epoch_end,
                resume=False,
                force=True,
            )
        except optuna.TrialPruned as exc:
            pruned = exc
        best = reporter.best if pruned is not None else _chosen(result)
        metrics = _metrics_of(best, "best_valid_")
        log_metrics(run_id, metrics)
        state = "pruned" if pruned is not None else "complete"
        tags: dict[str, Any] = {
            TRIAL_STATE_TAG: state.upper(),
            PRUNED_TAG: str(pruned is not None).lower(),
        }
        if pruned is not None:
            tags["pruned_at_epoch"] = reporter.seen[-1]["epoch"]
            tags["pruned_reason"] = str(pruned)
        tag_run(run_id, tags)
    if not request.keep_checkpoints:  # the best config is trained again after the study
        shutil.rmtree(Path(request.out_dir) / "checkpoints", ignore_errors=True)
    for key, value in metrics.items():
        trial.set_user_attr(key, value)
    value = None if pruned is not None else metrics.get("best_valid_gauc")
    logger.info("trial %d %s: valid GAUC %s (run %s)", request.number, state, value, run_id)
    return TrialOutcome(
        number=request.number,
        state=state,
        value=value,
        run_id=run_id,
        epochs=len(reporter.seen),
        metrics=metrics,
        pruned_at_epoch=int(reporter.seen[-1]["epoch"]) if pruned is not None else None,
    )


def _chosen(result: Any) -> dict[str, Any]:
    """The epoch ``fit`` chose on validation, as a history record."""
    return next(r for r in result.history if int(r["epoch"]) == int(result.best_epoch))
