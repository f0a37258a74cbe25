"""The Optuna side of ``din tune``: storage, study identity, sampler, pruner, trial bookkeeping.

The flow process asks every trial (so the seeded sampler decides the order,
whatever the number of workers) and tells its outcome; the process that
trains a trial only reports per-epoch values through a :class:`optuna.trial.Trial`
re-opened from the shared storage (:mod:`din_model.tuning.objective`).

``--trials N`` counts the study's *finished* trials (complete or pruned), those
of earlier invocations included: a study interrupted after 2 of 4 trials
runs 2 more when the same command is run again. Failed trials do not count;
trials left RUNNING by a dead process are marked FAIL when the study is
opened again (:func:`fail_stale_trials`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.samplers import BaseSampler, GridSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

from din_model.tuning.space import PrunerSpec, SearchSpace

DIRECTION = "maximize"  # validation GAUC
OBJECTIVE = "valid_gauc"
DEFAULT_TRIALS = 20  # a TPE study without --trials or --timeout
SQLITE_TIMEOUT_S = 60  # trial processes write to one sqlite file; wait for its lock
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def study_name(
    dataset: str,
    model: str,
    regularizer: str,
    space: SearchSpace,
    source_fingerprint: str,
    base_config_hash: str,
    max_len: int | None = None,
) -> str:
    """``din-tune/<dataset>/<model>+<reg>/<space>/<hash>``, readable and unique per setting.

    The hash covers the space's parameters, the raw data's fingerprint, the
    base config (every ``--config`` and ``--set`` value and the seed) and the
    history length: trials of one study are only ever comparable runs.
    """
    identity = json.dumps(
        [space.digest(), source_fingerprint, base_config_hash, max_len], sort_keys=True
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"din-tune/{dataset}/{model}+{regularizer}/{space.name}/{digest}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage; sqlite waits for a busy database instead of failing at once."""
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


class AskAndTellGridSampler(GridSampler):
    """GridSampler without its ``study.stop()`` after the last grid point.

    ``stop`` only works inside ``study.optimize``; with ask-and-tell it raises
    (Optuna's documented caveat). The flow stops asking when the grid has no
    point left (:func:`grid_points_left`).
    """

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        return None


def make_sampler(space: SearchSpace, seed: int, trials_so_far: int = 0) -> BaseSampler:
    """TPE seeded with ``seed`` (plus the trials already in the study, so a resumed
    study does not replay its first random points), or the grid for a grid space."""
    if space.is_grid:
        return AskAndTellGridSampler(space.grid(), seed=seed)
    return TPESampler(seed=seed + trials_so_far)


def make_pruner(spec: PrunerSpec) -> optuna.pruners.BasePruner:
    """Pruning on the per-epoch validation GAUC (steps are epochs, 1-based).

    ``warmup_epochs`` N: epochs 1..N are never pruned (Optuna's
    ``n_warmup_steps`` is the first step that may be, hence N + 1).
    """
    warmup = spec.warmup_epochs + 1
    if spec.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.startup_trials, n_warmup_steps=warmup
        )
    if spec.name == "threshold":
        return optuna.pruners.ThresholdPruner(lower=spec.lower, n_warmup_steps=warmup)
    return optuna.pruners.NopPruner()


def open_study(storage_url: str, name: str, space: SearchSpace, seed: int) -> optuna.study.Study:
    """Create the study, or load it with everything it has (``load_if_exists``)."""
    storage = open_storage(storage_url)
    existing = 0
    try:
        found = optuna.load_study(study_name=name, storage=storage)
        existing = len(found.get_trials(deepcopy=False))
    except KeyError:
        pass
    return optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=make_sampler(space, seed, existing),
        pruner=make_pruner(space.pruner),
        direction=DIRECTION,
        load_if_exists=True,
    )


def load_for_reporting(storage_url: str, name: str, pruner: PrunerSpec) -> optuna.study.Study:
    """The study as a trial process sees it: it reports and asks the pruner, never samples."""
    return optuna.load_study(
        study_name=name,
        storage=open_storage(storage_url),
        sampler=optuna.samplers.RandomSampler(),
        pruner=make_pruner(pruner),
    )


def finished_trials(study: optuna.study.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


def grid_points_left(study: optuna.study.Study, space: SearchSpace) -> int | None:
    """Grid points no trial has taken yet (None for a sampled space).

    A point taken by a failed or killed trial counts as taken: GridSampler
    treats it as visited, and it shows as FAIL in the study.
    """
    if not space.is_grid:
        return None
    taken = {
        t.system_attrs["grid_id"]
        for t in study.get_trials(deepcopy=False)
        if "grid_id" in t.system_attrs
    }
    return space.grid_size - len(taken)


def target_trials(space: SearchSpace, trials: int | None, timeout: float | None) -> int | None:
    """How many finished trials the study should have; None: until the timeout."""
    if trials is not None:
        return min(trials, space.grid_size) if space.is_grid else trials
    if space.is_grid:
        return space.grid_size
    return None if timeout is not None else DEFAULT_TRIALS


def fail_stale_trials(
    study: optuna.study.Study, is_dead: Callable[[Mapping[str, Any]], bool]
) -> list[int]:
    """Mark FAIL the RUNNING trials whose owner (``is_dead(user_attrs)``) is gone."""
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_dead(trial.user_attrs):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            stale.append(trial.number)
    return stale


def best_so_far(study: optuna.study.Study) -> FrozenTrial | None:
    """The best complete trial, or None while there is none."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def counts(study: optuna.study.Study) -> dict[str, int]:
    """Trials of the study by state (lower-case names)."""
    result = {state.name.lower(): 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        result[trial.state.name.lower()] += 1
    return result
