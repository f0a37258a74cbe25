"""Training, checkpointing and evaluation of the CTR models (no Prefect, no MLflow).

Public API (the Prefect flow and ``din train`` call these):
:func:`fit`, :func:`evaluate_checkpoint`, :func:`load_trained_model`,
:func:`train_and_evaluate`.
"""

from din_model.training.api import (
    FitResult,
    TrainResult,
    evaluate_checkpoint,
    fit,
    load_trained_model,
    train_and_evaluate,
)
from din_model.training.evaluate import EvalResult

__all__ = [
    "EvalResult",
    "FitResult",
    "TrainResult",
    "evaluate_checkpoint",
    "fit",
    "load_trained_model",
    "train_and_evaluate",
]
