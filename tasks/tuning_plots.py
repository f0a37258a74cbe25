"""The study's figures on the tuning parent run: optimisation history and parameter importances.

Drawn with ``optuna.visualization.matplotlib`` on the headless Agg backend
(flows run in servers and workers without a display). Importances need at
least two complete trials with varying parameters; otherwise that figure is
skipped and the reason logged.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from tasks.plots import save_figure  # noqa: E402

logger = logging.getLogger(__name__)

MIN_TRIALS_FOR_IMPORTANCE = 2


def _save(axes, path: Path) -> Path:
    figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
    figure.set_size_inches(7, 4.5)
    return save_figure(figure, path)


def history_plot(study: optuna.study.Study, path: Path) -> Path:
    """Each trial's validation GAUC and the best so far."""
    from optuna.visualization.matplotlib import plot_optimization_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        axes = plot_optimization_history(study, target_name="valid GAUC")
    return _save(axes, path)


def importance_plot(study: optuna.study.Study, path: Path, seed: int) -> Path | None:
    """fANOVA importances of the parameters (seeded), or None with a log line why not."""
    from optuna.visualization.matplotlib import plot_param_importances

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        logger.info(
            "parameter importances skipped: %d complete trial(s), %d needed",
            len(complete),
            MIN_TRIALS_FOR_IMPORTANCE,
        )
        return None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = plot_param_importances(study, evaluator=evaluator, target_name="valid GAUC")
    except (ValueError, RuntimeError) as exc:  # e.g. no parameter varied across the trials
        logger.info("parameter importances skipped: %s", exc)
        return None
    return _save(axes, path)
