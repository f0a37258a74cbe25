"""Plain training machinery: the epoch loop, scoring a split, checkpoints, optimizers, seeding.

No Prefect, no MLflow and no process groups here: data-parallel training wraps
these modules in :mod:`din_model.distributed`, and :mod:`din_model.pipeline`
composes them into the one fit-and-score path.
"""

from din_model.training.evaluate import EvalResult

__all__ = ["EvalResult"]
