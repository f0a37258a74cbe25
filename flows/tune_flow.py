"""The ``din-tune`` flow: an Optuna study over one model's config, one parent MLflow run.

data steps (as din-train) -> open or resume the study -> trials, ``workers`` at a
time, on the task runner of :func:`flows.task_runners.make_task_runner` (a
Dask LocalCluster of worker processes when ``workers`` > 1, or the cluster at
``dask_address``) -> the best trial's config trained once with
``fit_and_score``, the only time test is scored -> the tuned config written to
``tuned_config_path(work, dataset, model)`` (and ``out``).

The flow process asks each trial (seeded sampler, so the order of the
parameters tried does not depend on the workers) and tells its outcome; a
trial's process trains it with ``fit`` (validation only), reports every
epoch's validation GAUC to the study's storage for the pruner, and logs a
child run of this invocation's parent run. The task runner is entered in the
flow body, so a deployment run takes ``workers`` and ``dask_address`` as
parameters like any other.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from din_model.config import config_hash
from din_model.config.overrides import overrides_to_tree
from din_model.config.tree import iter_leaves
from din_model.config.tuned import tuned_config_path
from din_model.errors import ConfigError
from din_model.io.output_dir import claim_output_file
from din_model.registry import dataset_names
from din_model.tuning.objective import trial_config
from din_model.tuning.space import SPACES_DIR, load_space, space_path
from din_model.tuning.study import finished_trials, study_name, target_trials
from flows.runtime import install_run_logging
from flows.steps import run_data_steps, run_training_steps
from flows.task_runners import make_task_runner
from flows.train_flow import DEFAULT_SEED, run_tags
from tasks.allowed_paths import (
    allowed_work_root,
    check_inside,
    data_roots,
    guard_deployment_paths,
    running_from_deployment,
)
from tasks.config import check_choice, resolve_run_config
from tasks.data import DEFAULT_SYNTHETIC_SCALE, resolve_source
from tasks.paths import work_root
from tasks.run_lifecycle import tracked_run
from tasks.run_logging import log_inputs, tag_run
from tasks.run_report import publish_run_report
from tasks.store import tracking_uri
from tasks.tuning import TrialRequest, run_trial
from tasks.tuning_results import log_study_results, log_study_settings, write_tuned_config
from tasks.tuning_storage import storage_url
from tasks.tuning_study import AskedTrial, TrialLoop, ask, start_study


def _guard_paths(source: str, work_dir: str | None, config_file: str | None, space: str,
                 out: str | None) -> None:  # fmt: skip
    """In a deployment run, every path parameter must lie under the serving roots."""
    guard_deployment_paths(source, work_dir, config_file)
    if not running_from_deployment():
        return
    roots = [*data_roots(), allowed_work_root()]
    hint = "set DIN_DATA_ROOTS / DIN_WORK_DIR or `din serve --data-root/--work-root`"
    path = space_path(space)
    if path.resolve().parent != SPACES_DIR.resolve():  # a file, not a packaged space
        check_inside("space", str(path), roots, hint)
    if out:
        check_inside("out", out, [allowed_work_root()], hint)


def _header(name: str, best: dict[str, Any], model: str, regularizer: str) -> str:
    return (
        f"din tune: best of study {name}\n"
        f"trial {best['best_trial']}: valid GAUC {best['best_value']:.6f}, "
        f"params {best['best_params']}\n"
        f"model {model}, regularizer {regularizer}; use with din train/run --config THIS_FILE"
    )


@flow(name="din-tune", flow_run_name="{dataset}-{model}-tune")
def din_tune(
    dataset: str = "amazon",
    source: str = "auto",
    model: str = "din",
    regularizer: str = "none",
    space: str = "default",
    trials: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
    dask_address: str | None = None,
    overrides: list[str] | None = None,
    config_file: str | None = None,
    seed: int = DEFAULT_SEED,
    max_len: int | None = None,
    synthetic_scale: float = DEFAULT_SYNTHETIC_SCALE,
    synthetic_seed: int = 0,
    work_dir: str | None = None,
    out: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Tune ``model`` on ``dataset``; returns the study's summary and the tuned config's path.

    Args:
        space: ``default`` (TPE), ``recbole`` (RecBole's DIN grid) or a space YAML file.
        trials: finished (complete or pruned) trials the study should have, earlier
            invocations' included; default: the whole grid, or 20 for a sampled space.
        timeout: seconds after which no new trial starts (running ones finish).
        workers: trials at a time (Dask worker processes when > 1).
        dask_address: an existing Dask scheduler to run the trials on.
        overrides, config_file, seed, max_len: as ``din run``; they are the base of
            every trial (a key set with ``--set`` is not tuned).
        out: also write the tuned config here (an existing file only with ``force``).
    """
    install_run_logging()
    _guard_paths(source, work_dir, config_file, space, out)
    logger = get_run_logger()
    check_choice("dataset", dataset, dataset_names())
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout must be > 0 seconds, got {timeout}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    overrides = list(overrides or [])
    work = work_root(work_dir)
    base = resolve_run_config(model, dataset, regularizer, seed, overrides, config_file)
    fixed = [key for key, _ in iter_leaves(overrides_to_tree(overrides))]
    search = load_space(space).for_run(model, regularizer, base, fixed)
    for name, why in search.dropped:
        logger.info("space %s: %s left out (%s)", search.name, name, why)
    target = target_trials(search, trials, timeout)
    spec = resolve_source(dataset, source, synthetic_scale, synthetic_seed)
    sources = [] if source in ("auto", "synthetic") else [Path(spec.path)]
    if out:
        claim_output_file(Path(out).expanduser().resolve(), force=force, sources=sources)
    name = study_name(
        dataset, model, regularizer, search, spec.fingerprint, config_hash(base), max_len
    )
    storage = storage_url(work)
    base_tags = {
        **run_tags(dataset, model, regularizer, seed, spec),
        "optuna.study_name": name,
        "tune.space": search.name,
    }
    parent_tags = {**base_tags, "tuning": "true", "optuna.storage": storage}
    parent_name = f"tune-{model}{'' if regularizer == 'none' else '+' + regularizer}-{search.name}"
    with tracked_run(dataset, parent_name, parent_tags) as parent:
        logger.info("study %s in %s (parent run %s)", name, storage, parent)
        data = run_data_steps(spec, work, seed=seed, max_len=max_len)
        tag_run(parent, data.tags())
        study = start_study(
            storage, name, search, seed,
            {"dataset": dataset, "model": model, "regularizer": regularizer,
             "space": str(search.path), "seed": seed},
        )  # fmt: skip
        done_before = len(finished_trials(study))
        log_study_settings(parent, {
            "tune.study": name, "tune.space": search.name, "tune.space_file": search.path,
            "tune.sampler": search.sampler, "tune.pruner": search.pruner.name,
            "tune.params": ", ".join(p.name for p in search.params),
            "tune.left_out": ", ".join(n for n, _ in search.dropped) or "-",
            "tune.trials": "null" if trials is None else trials,
            "tune.target_trials": "null" if target is None else target,
            "tune.timeout_s": "null" if timeout is None else timeout,
            "tune.workers": workers, "tune.dask_address": dask_address or "local",
            "tune.trials_before": done_before, "pipeline.source": source,
            "pipeline.max_len": "null" if max_len is None else max_len,
        })  # fmt: skip
        logger.info(
            "%d finished trial(s) already in the study; target %s", done_before,
            target if target is not None else f"until {timeout} s",
        )  # fmt: skip

        def new_request(asked: AskedTrial) -> TrialRequest:
            return TrialRequest(
                study_name=name,
                storage_url=storage,
                trial_id=asked.trial._trial_id,  # Optuna's id for Trial(study, trial_id)
                number=asked.number,
                params=asked.params,
                config=asked.config,
                pruner=search.pruner,
                dataset=dataset,
                model=model,
                regularizer=regularizer,
                prepared=data.prepared,
                source=spec,
                parent_run_id=parent,
                tags={**base_tags, **data.tags(), "optuna.trial_number": asked.number},
                out_dir=str(work / "tune" / name.replace("/", "_") / f"trial-{asked.number}"),
                tracking_uri=tracking_uri(),
            )

        deadline = None if timeout is None else time.monotonic() + timeout
        with make_task_runner(workers, dask_address) as runner:
            loop = TrialLoop(study, search, target, deadline, done_before)
            loop.run(
                lambda: ask(study, search, model, dataset, base),
                lambda asked: runner.submit(run_trial, {"request": new_request(asked)}),
                workers,
                logger,
            )
        loop.check(name)

        best = log_study_results(parent, storage, name, seed)
        best_config = trial_config(model, dataset, base, search, best["best_params"])
        params = {
            "pipeline.dataset": dataset,
            "pipeline.model": model,
            "pipeline.regularizer": regularizer,
            "pipeline.seed": seed,
        }
        log_inputs(parent, best_config, params, spec)
        run_dir = work / "runs" / dataset / parent
        outcome = run_training_steps(
            parent, dataset, data, model, regularizer, best_config, run_dir, seed,
            register=False, log_model=False,
        )  # fmt: skip
        targets = [str(tuned_config_path(work, dataset, model))]
        if out:
            targets.append(str(Path(out).expanduser().resolve()))
        written = write_tuned_config(
            parent, best_config, _header(name, best, model, regularizer), targets
        )
    test = outcome["test"]
    publish_run_report(
        parent, f"din-tune {dataset}: {name}",
        [("best trial", best["best_trial"]), ("best valid GAUC", f"{best['best_value']:.4f}"),
         ("best params", best["best_params"]), ("test GAUC", f"{test['gauc']:.4f}"),
         ("test AUC", f"{test['auc']:.4f}"), ("test LogLoss", f"{test['logloss']:.4f}"),
         ("tuned config", written[0])],
        key=f"din-tune-{dataset}",
    )  # fmt: skip
    logger.info(
        "best config (trial %d, valid GAUC %.4f): test AUC %.4f GAUC %.4f LogLoss %.4f; "
        "written to %s", best["best_trial"], best["best_value"], test["auc"], test["gauc"],
        test["logloss"], ", ".join(written),
    )  # fmt: skip
    return {
        "parent_run_id": parent,
        "child_run_ids": loop.children,
        "study_name": name,
        "storage": storage,
        "space": search.name,
        "sampler": search.sampler,
        "params": [p.name for p in search.params],
        "left_out": dict(search.dropped),
        "trials_before": done_before,
        "trials_finished": loop.done,
        "target_trials": target,
        **best,
        "valid": outcome["valid"],
        "test": test,
        "tuned_config": written[0],
        "out": written[1] if len(written) > 1 else None,
        "run_dir": str(run_dir),
        "prepared_dir": data.prepared,
        "tracking_uri": tracking_uri(),
    }
