"""Hyper-parameter search for ``din tune``: search spaces, Optuna study, trial objective.

Plain Python and Optuna only (no Prefect, no MLflow): :mod:`.space` reads the
space files of ``din_model/configs/tuning/``, :mod:`.study` chooses sampler and
pruner and keeps the study's books, :mod:`.objective` maps a trial's
parameters to a config and reports its epochs. ``tasks/tuning*.py`` run trials
as Prefect tasks and log them to MLflow; ``flows/tune_flow.py`` composes them.
"""

from din_model.tuning.space import (
    Param,
    PrunerSpec,
    SearchSpace,
    available_spaces,
    load_space,
)

__all__ = ["Param", "PrunerSpec", "SearchSpace", "available_spaces", "load_space"]
