"""The flow's side of a study: open it, ask trials, tell their outcomes, say how it goes.

These run in the flow process of ``flows/tune_flow.py`` (each ask or tell is a
few database statements, not a step worth a task run): the flow process is
the only one that asks and tells, so the seeded sampler sees the trials in
one order however many workers train them. :class:`TrialLoop` keeps
``workers`` trial tasks in flight on the flow's task runner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from prefect.futures import as_completed

from din_model.errors import DinError
from din_model.tuning.objective import suggest, trial_config
from din_model.tuning.space import SearchSpace
from din_model.tuning.study import (
    best_so_far,
    counts,
    fail_stale_trials,
    grid_points_left,
    open_study,
)
from tasks.tuning import TrialOutcome
from tasks.tuning_storage import owner_attrs, owner_is_dead, prepare_storage

logger = logging.getLogger(__name__)

FAILURE_ATTR = "din.failure"
MAX_FAILURES_IN_A_ROW = 3  # then the study stops asking: something is wrong beyond one config


@dataclass
class AskedTrial:
    """A trial the flow has asked: its sampled parameters and the config they give."""

    trial: optuna.trial.Trial
    params: dict[str, Any]
    config: dict[str, Any]

    @property
    def number(self) -> int:
        return self.trial.number


def start_study(
    storage_url: str, name: str, space: SearchSpace, seed: int, attrs: Mapping[str, Any]
) -> optuna.study.Study:
    """Create or resume the study; trials left RUNNING by a dead process become FAIL."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the flow logs one line per trial
    prepare_storage(storage_url)
    study = open_study(storage_url, name, space, seed)
    for key, value in attrs.items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
    stale = fail_stale_trials(study, owner_is_dead)
    if stale:
        logger.warning("trials %s of %s were left running by a dead process: marked FAIL",
                       stale, name)  # fmt: skip
    return study


def ask(
    study: optuna.study.Study,
    space: SearchSpace,
    model: str,
    dataset: str,
    base_config: Mapping[str, Any],
) -> AskedTrial:
    """A new trial with its parameters sampled and its config resolved (FAIL if that fails)."""
    trial = study.ask()
    try:
        for key, value in owner_attrs().items():
            trial.set_user_attr(key, value)
        params = suggest(trial, space)
        config = trial_config(model, dataset, base_config, space, params)
    except Exception as exc:
        fail(study, trial, f"{type(exc).__name__}: {exc}")
        raise
    return AskedTrial(trial=trial, params=params, config=config)


def fail(study: optuna.study.Study, trial: optuna.trial.Trial, reason: str) -> FrozenTrial:
    trial.set_user_attr(FAILURE_ATTR, reason[:2000])
    return study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)


def tell(study: optuna.study.Study, outcome: TrialOutcome) -> FrozenTrial:
    """Record a trial's outcome: COMPLETE with its validation GAUC, or PRUNED."""
    if outcome.state == "pruned":
        return study.tell(outcome.number, state=TrialState.PRUNED, skip_if_finished=True)
    return study.tell(outcome.number, outcome.value, skip_if_finished=True)


def progress_line(
    study: optuna.study.Study,
    frozen: FrozenTrial,
    done: int,
    target: int | None,
) -> str:
    """``trial 3 COMPLETE 0.6512 {params} | best 0.6601 (trial 1) | 4/20``."""
    value = "" if frozen.value is None else f" {frozen.value:.4f}"
    best = best_so_far(study)
    best_text = "none yet" if best is None else f"{best.value:.4f} (trial {best.number})"
    of = f"/{target}" if target is not None else ""
    return (
        f"trial {frozen.number} {frozen.state.name}{value} {frozen.params} | best {best_text} | "
        f"{done}{of} finished"
    )


class TuningFailed(DinError):
    """No trial of the study completed, so there is no config to select."""


class TrialLoop:
    """Keep ``workers`` trials in flight until the target, the deadline or the grid's end.

    ``done`` counts the study's finished trials (complete or pruned), earlier
    invocations' included; failed trials do not count, and after
    ``MAX_FAILURES_IN_A_ROW`` of them no new trial is asked.
    """

    def __init__(self, study, space: SearchSpace, target: int | None, deadline: float | None,
                 done: int) -> None:  # fmt: skip
        self.study, self.space, self.target, self.deadline = study, space, target, deadline
        self.done = done
        self.children: list[str] = []
        self.failures_in_a_row = 0
        self.last_error = ""
        self.in_flight: dict[Any, AskedTrial] = {}

    def may_ask(self) -> bool:
        if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        if self.target is not None and self.done + len(self.in_flight) >= self.target:
            return False
        left = grid_points_left(self.study, self.space)
        return left is None or left > 0

    def run(self, ask_one, submit, workers: int, logger) -> None:
        """Ask and submit while allowed; tell each outcome as it arrives.

        If this loop is left by an exception (a signal, a lost cluster), the
        trials still in flight are told FAIL with that reason, so none stays
        RUNNING in the study.
        """
        try:
            while True:
                while len(self.in_flight) < workers and self.may_ask():
                    asked = ask_one()
                    self.in_flight[submit(asked)] = asked
                if not self.in_flight:
                    return
                future = next(as_completed(list(self.in_flight)))
                asked = self.in_flight.pop(future)
                logger.info(progress_line(self.study, self._record(future, asked), self.done,
                                          self.target))  # fmt: skip
        except BaseException as exc:
            for asked in self.in_flight.values():
                fail(self.study, asked.trial, f"interrupted: {type(exc).__name__}: {exc}")
            raise

    def _record(self, future, asked: AskedTrial):
        """Tell the study how the trial of ``future`` ended; returns the frozen trial."""
        future.wait()
        state = future.state
        if state.is_completed():
            outcome: TrialOutcome = future.result()
            self.children.append(outcome.run_id)
            self.done += 1
            self.failures_in_a_row = 0
            return tell(self.study, outcome)
        self.last_error = state.message or "the trial's task failed"
        self.failures_in_a_row += 1
        return fail(self.study, asked.trial, self.last_error)

    def check(self, name: str) -> None:
        """TuningFailed when the study stopped on failures or has no complete trial."""
        if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise TuningFailed(
                f"study {name}: {self.failures_in_a_row} trials failed in a row, stopping; "
                f"last: {self.last_error}"
            )
        by_state = counts(self.study)
        if not by_state["complete"]:
            raise TuningFailed(
                f"study {name}: no trial completed ({by_state['pruned']} pruned, "
                f"{by_state['fail']} failed); nothing to select. Relax the pruner or add trials."
            )
