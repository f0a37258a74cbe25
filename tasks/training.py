"""The training step: a thin Prefect task around :func:`din_model.pipeline.fit_and_score`.

It is not cached: a run of the flow is a training run (its metrics, model
version and champion decision are what the run is for), and ``din rerun``
must re-execute training to show that it reproduces. Per-epoch metrics go to
MLflow from the ``on_epoch_end`` callback, one batched request per epoch, so a
long run can be watched in the UI. The task returns the run's output layout;
the logging steps read it and rebuild nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from din_model.pipeline.layout import RunLayout
from tasks.tracking import log_epoch

if TYPE_CHECKING:
    from din_model.training.warm_start import WarmStartSource


@task(name="fit-and-score", cache_policy=NO_CACHE, persist_result=False)
def fit_and_score(
    prepared: str,
    out_dir: str,
    model: str,
    regularizer: str,
    config: dict[str, Any],
    run_id: str | None = None,
    warm_start: WarmStartSource | None = None,
) -> RunLayout:
    """Fit ``model`` on the prepared folder, choose the epoch on validation, score test once.

    ``warm_start``: start from the champion's weights for the ids both vocabularies share
    (:mod:`din_model.training.warm_start`).
    """
    from din_model.pipeline import fit_and_score as run_fit_and_score

    logger = get_run_logger()

    def on_epoch_end(record: dict[str, Any]) -> None:
        # INFO: the epoch lines are a served run's progress in the Prefect UI
        logger.info(
            "epoch %s: train_loss %.4f, valid AUC %.4f, GAUC %.4f, LogLoss %.4f",
            record.get("epoch"),
            record.get("train_loss", float("nan")),
            record.get("valid_auc", float("nan")),
            record.get("valid_gauc", float("nan")),
            record.get("valid_logloss", float("nan")),
        )
        if run_id:
            log_epoch(run_id, record)

    result = run_fit_and_score(
        prepared,
        out_dir,
        model,
        regularizer=regularizer,
        config=config,
        on_epoch_end=on_epoch_end,
        resume=False,  # every flow run trains from scratch in its own folder
        warm_start_from=warm_start,
    )
    test = result.test.metrics
    logger.info(
        "test: AUC %.4f, GAUC %.4f (%s users), LogLoss %.4f",
        test.get("auc", float("nan")),
        test.get("gauc", float("nan")),
        test.get("gauc_users", "?"),
        test.get("logloss", float("nan")),
    )
    return result.layout
