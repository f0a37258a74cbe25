"""One trial: its sampled parameters as a config, and its per-epoch reports to the pruner.

:func:`suggest` runs in the process that asks the trial; :func:`trial_config`
turns the stored parameters into the run's config (the same function serves
the best trial after the study, so the tuned file is exactly what the best
trial trained with); :class:`EpochReporter` is the ``on_epoch_end`` callback
of :func:`din_model.pipeline.fit` in the process that trains it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna

from din_model.config import resolve_config
from din_model.tuning.space import SearchSpace
from din_model.tuning.study import OBJECTIVE


def suggest(trial: optuna.trial.Trial, space: SearchSpace) -> dict[str, Any]:
    """Every parameter of ``space`` sampled for ``trial``, as Optuna stores them."""
    return {param.name: param.suggest(trial) for param in space.params}


def trial_config(
    model: str,
    dataset: str,
    base: Mapping[str, Any],
    space: SearchSpace,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """``base`` (the run's resolved config) with the trial's parameters laid over it."""
    return resolve_config(model, dataset, layers=[base, space.layer(params)])


class EpochReporter:
    """``on_epoch_end`` of a trial: report the epoch's validation GAUC; prune when told to.

    Raises :class:`optuna.TrialPruned` out of the training loop, which stops the
    fit after the epoch it has just written. ``seen`` keeps the epochs reported,
    so the caller can log the best value a pruned trial reached.
    """

    def __init__(self, trial: optuna.trial.Trial, metric: str = OBJECTIVE) -> None:
        self.trial = trial
        self.metric = metric
        self.seen: list[dict[str, Any]] = []

    def __call__(self, record: Mapping[str, Any]) -> None:
        self.seen.append(dict(record))
        value = float(record.get(self.metric, math.nan))
        epoch = int(record["epoch"])
        if math.isfinite(value):
            self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} ({self.metric} {value:.4f})")

    @property
    def best(self) -> dict[str, Any] | None:
        """The reported epoch with the highest value (None before the first)."""
        finite = [r for r in self.seen if math.isfinite(float(r.get(self.metric, math.nan)))]
        return max(finite, key=lambda r: float(r[self.metric])) if finite else None
