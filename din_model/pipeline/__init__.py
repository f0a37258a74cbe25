"""The composed stages, the one path every command takes.

``prepare``: raw -> validated samples; ``fit_and_score``: samples -> model -> metrics.
See the README's layout table.
"""

from din_model.pipeline.run import (
    FitResult,
    TrainResult,
    evaluate_checkpoint,
    fit,
    fit_and_score,
)
from din_model.serving.loading import load_trained_model

__all__ = [
    "FitResult",
    "TrainResult",
    "evaluate_checkpoint",
    "fit",
    "fit_and_score",
    "load_trained_model",
]
