"""Training and evaluation steps: thin Prefect tasks around ``din_model.training``.

These steps are not cached: a run of the flow is a training run (its
metrics, model version and champion decision are what the run is for), and
``din rerun`` must re-execute training to show that it reproduces. Per-epoch
metrics go to MLflow from the trainer's ``on_epoch_end`` callback, one
batched request per epoch, so a long run can be watched in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.tracking import log_epoch


@dataclass
class TrainOutput:
    out_dir: str
    checkpoint: str
    best_epoch: int
    best_valid: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalOutput:
    metrics: dict[str, Any]
    predictions: str  # parquet with user_id, label, score


@task(name="train", cache_policy=NO_CACHE, persist_result=False)
def train_model(
    prepared: str,
    out_dir: str,
    model: str,
    regularizer: str,
    config: dict[str, Any],
    run_id: str | None = None,
) -> TrainOutput:
    """Fit ``model`` on the prepared folder; the best checkpoint is chosen on validation."""
    from din_model.training import fit

    logger = get_run_logger()

    def on_epoch_end(record: dict[str, Any]) -> None:
        logger.debug(
            "epoch %s: train_loss %.4f, valid AUC %.4f, GAUC %.4f, LogLoss %.4f",
            record.get("epoch"),
            record.get("train_loss", float("nan")),
            record.get("valid_auc", float("nan")),
            record.get("valid_gauc", float("nan")),
            record.get("valid_logloss", float("nan")),
        )
        if run_id:
            log_epoch(run_id, record)

    result = fit(
        prepared,
        out_dir,
        model,
        regularizer=regularizer,
        config=config,
        on_epoch_end=on_epoch_end,
        resume=False,  # every flow run trains from scratch in its own folder
    )
    return TrainOutput(
        out_dir=str(out_dir),
        checkpoint=str(result.best_checkpoint),
        best_epoch=int(result.best_epoch),
        best_valid={
            f"valid_{k}": float(v)
            for k, v in result.valid_metrics.items()
            if isinstance(v, int | float) and k != "n"
        },
        history=[dict(r) for r in result.history],
        config=dict(result.config),
    )


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False)
def evaluate_model(checkpoint: str, prepared: str, out_dir: str) -> EvalOutput:
    """Score the test split once with the chosen checkpoint; save every prediction."""
    from din_model.io.atomic import atomic_output_file
    from din_model.training import evaluate_checkpoint

    result = evaluate_checkpoint(checkpoint, prepared, split="test")
    predictions = Path(out_dir) / "test_predictions.parquet"
    with atomic_output_file(predictions) as tmp:
        result.predictions.select("user_id", "label", "score").write_parquet(tmp)
    metrics = dict(result.metrics)
    get_run_logger().info(
        "test: AUC %.4f, GAUC %.4f (%s users), LogLoss %.4f",
        metrics.get("auc", float("nan")),
        metrics.get("gauc", float("nan")),
        metrics.get("gauc_users", "?"),
        metrics.get("logloss", float("nan")),
    )
    return EvalOutput(metrics=metrics, predictions=str(predictions))
