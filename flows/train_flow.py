"""The ``din-train`` flow: ingest -> feature groups -> validate -> train -> evaluate -> log.

One run of the flow is one MLflow run in the dataset's experiment
(``din-<dataset>``), opened before the data steps so that a run that stops
on bad data is recorded too. Data steps are cached on the fingerprints of
their inputs (see :mod:`tasks.data`); bad data fails the run at a validation
step with the Great Expectations summary as the failure message.

It is also the scheduled retrain (:mod:`flows.deployments`):

- an **arriving source** (a folder with ``arrivals/``, :mod:`tasks.arrivals`) is
  parsed one new arrival at a time; the newest arrival is held back, the
  challenger trains on the older ones (``window``: the last N weeks only);
- a run whose data, config and seed a finished run already trained on ends early,
  registers nothing and says "no new data since run X" (always for an arriving
  source, with ``skip_unchanged`` for others; :mod:`tasks.retrain_guard`);
- a successful run registers its model as ``din-<dataset>`` and judges it head to
  head with the champion on the held-back slice (:mod:`tasks.champion`); the
  alias moves only if the promotion rule says so;
- ``warm_start`` starts the challenger from the champion's weights.

Every run is named ``<dataset>:<source>:<model>+<reg>:seed<n>:<trigger>:<date>`` in
Prefect and MLflow, and leaves a markdown artifact with its metrics and the MLflow
run's link (:mod:`tasks.retrain`).

Run it with ``din run`` (in-process, on Prefect's temporary server) or as a
deployment served by ``din serve`` or a ``prefect worker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from din_model.data.sources.arrivals import ARRIVALS_DIR, is_arriving_source, parse_window
from din_model.errors import ConfigError
from din_model.pipeline.promotion import load_policy
from din_model.registry import dataset_names
from flows.runtime import install_run_logging
from flows.steps import run_data_steps, run_training_steps
from tasks import run_names
from tasks.allowed_paths import guard_deployment_paths
from tasks.arrivals import assemble_arrival_data
from tasks.champion_weights import champion_weights
from tasks.config import check_choice, resolve_run_config
from tasks.data import DEFAULT_SYNTHETIC_SCALE, SourceSpec, resolve_source
from tasks.git_info import git_info
from tasks.paths import work_root
from tasks.registry import registered_model_name
from tasks.reproduce import DataChanged
from tasks.retrain import (
    log_arrivals,
    make_challenge,
    publish_summary_report,
    skipped_summary,
)
from tasks.retrain_guard import RETRAIN_KEY_TAG, previous_run_with_key, retrain_key
from tasks.run_lifecycle import tracked_run
from tasks.run_logging import log_inputs, tag_run
from tasks.run_names import source_label
from tasks.store import ensure_experiment, tracking_uri

DEFAULT_SEED = 2024


def run_name(
    model: str,
    regularizer: str,
    seed: int,
    *,
    dataset: str | None = None,
    source_label: str | None = None,
) -> str:
    """Kept for callers of the old ``(model, regularizer, seed)`` form; see :mod:`tasks.run_names`.

    Without ``dataset``/``source_label`` the name is ``<model>+<regulariser>:seed<seed>``.
    """
    return run_names.run_name(dataset, source_label, model, regularizer, seed)


def flow_run_name() -> str:
    """The Prefect flow run's name: the MLflow run's, from the flow's parameters.

    Prefect 3 calls this (no arguments) before the flow body runs, so the source's
    label is planned from the parameters (:func:`tasks.run_names.planned_source_label`).
    Naming never fails a run: on a parameter the flow itself will reject, the
    name falls back to the raw values.
    """
    import inspect

    from prefect.runtime import flow_run

    defaults = {
        name: p.default
        for name, p in inspect.signature(din_train.fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    params = {**defaults, **flow_run.parameters}
    dataset = str(params["dataset"])
    try:
        label = run_names.planned_source_label(
            dataset,
            str(params["source"]),
            float(params["synthetic_scale"]),
            int(params["synthetic_seed"]),
        )
    except (OSError, ValueError, TypeError, KeyError):
        label = str(params["source"])
    trigger = run_names.current_trigger(params.get("trigger"))
    return run_names.run_name(
        dataset, label, str(params["model"]), str(params["regularizer"]), params["seed"],
        trigger=trigger, date=run_names.today(),
    )  # fmt: skip


def run_tags(
    dataset: str, model: str, regularizer: str, seed: int, spec: SourceSpec
) -> dict[str, Any]:
    """The tags every training-like run carries (din-train, din-tune): what, on which data, code."""
    return {
        "dataset": dataset,
        "model": model,
        "regularizer": regularizer,
        "seed": seed,
        "source": spec.path,
        "source_fingerprint": spec.fingerprint,
        "data_source": "synthetic" if spec.synthetic else "real",
        "prefect_flow_run_id": flow_run_id(),
        **git_info().as_tags(),
    }


def flow_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or "")


@flow(name="din-train", flow_run_name=flow_run_name)
def din_train(
    dataset: str = "amazon",
    source: str = "auto",
    model: str = "din",
    regularizer: str = "none",
    overrides: list[str] | None = None,
    seed: int = DEFAULT_SEED,
    config_file: str | None = None,
    max_len: int | None = None,
    on_bad_lines: str = "error",
    synthetic_scale: float = DEFAULT_SYNTHETIC_SCALE,
    synthetic_seed: int = 0,
    register_model: bool = True,
    work_dir: str | None = None,
    rerun_of: str | None = None,
    refresh_cache: bool = False,
    expected_fingerprint: str | None = None,
    window: str | None = None,
    warm_start: bool = False,
    skip_unchanged: bool = False,
    min_gain: float | None = None,
    logloss_tolerance: float | None = None,
    trigger: str | None = None,
    registered_name: str | None = None,
) -> dict[str, Any]:
    """Train one model on one dataset and record everything in MLflow.

    Args:
        dataset: amazon | movielens | taobao.
        source: a folder with the owner's raw files, ``synthetic`` (Amazon-format
            data from ``din synth``) or ``auto`` (``data/raw/<dataset>`` if it holds
            files, else synthetic).
        model: lr | base | wide_deep | pnn | deepfm | din | din_dice.
        regularizer: none | l2 | dropout | filter | difacto | mba.
        overrides: ``section.key=value`` strings, as ``din train --set``.
        seed: seeds the negative sampling / user split and the training.
        config_file: a YAML file or preset name layered under the overrides.
        max_len: history length of the prepared samples (default: the dataset spec's).
        register_model: register the model as ``din-<dataset>`` and apply the champion rule.
        work_dir: where caches and run folders go (default ``outputs/pipeline``).
            In a deployment run, ``source``, ``work_dir`` and ``config_file`` must lie
            under the configured roots (:mod:`tasks.allowed_paths`).
        rerun_of: the MLflow run this one re-executes (``din rerun``), recorded as a tag.
        refresh_cache: re-run the data steps even when their cache is valid.
        expected_fingerprint: refuse to run unless the raw data has this fingerprint.
        window: train on the last N weeks/days of an arriving source (``8w``, ``30d``).
        warm_start: start from the champion's weights for every id both vocabularies share.
        skip_unchanged: end early, registering nothing, when a finished run already trained
            on the same data with the same config and seed (an arriving source always does).
        min_gain: the GAUC gain over the champion whose 95% interval must lie above it
            (default: ``din_model/configs/promotion.yaml``).
        logloss_tolerance: how much worse than the champion's the LogLoss may be.
        trigger: manual | schedule | replay (default: schedule for a scheduled run, else manual).
        registered_name: the registered model (default ``din-<dataset>``; a replay uses its own).
    """
    install_run_logging()  # epoch lines in the run's Prefect log; user errors in one line
    guard_deployment_paths(source, work_dir, config_file)
    logger = get_run_logger()
    check_choice("dataset", dataset, dataset_names())
    check_choice("on_bad_lines", on_bad_lines, ("error", "skip"))
    window_seconds = parse_window(window)  # a bad window fails before any work
    policy = {"min_gain": min_gain, "logloss_tolerance": logloss_tolerance}
    load_policy(policy)  # and so do bad thresholds
    overrides = list(overrides or [])
    work = work_root(work_dir)
    config = resolve_run_config(model, dataset, regularizer, seed, overrides, config_file)
    spec = resolve_source(dataset, source, synthetic_scale, synthetic_seed)
    if expected_fingerprint and spec.fingerprint != expected_fingerprint:
        raise DataChanged(
            f"{spec.path}: the raw data has fingerprint {spec.fingerprint}, "
            f"expected {expected_fingerprint}"
        )
    arriving = not spec.synthetic and is_arriving_source(Path(spec.path))
    if window_seconds is not None and not arriving:
        raise ConfigError(
            f"window: applies to an arriving source (a folder with {ARRIVALS_DIR}/), "
            f"not to {spec.path}"
        )
    how = run_names.current_trigger(trigger)
    registered = registered_name or registered_model_name(dataset)
    key = retrain_key(
        dataset=dataset,
        source_fingerprint=spec.fingerprint,
        model=model,
        regularizer=regularizer,
        seed=seed,
        config=config,
        window=window,
        warm_start=warm_start,
        registered_name=registered,
    )
    label = source_label(spec)
    day = run_names.today()
    name = run_names.run_name(dataset, label, model, regularizer, seed, trigger=how, date=day)
    if (skip_unchanged or arriving) and not rerun_of:
        previous = previous_run_with_key(ensure_experiment(dataset), key)
        if previous is not None:
            return skipped_summary(dataset, model, regularizer, seed, spec, previous, name)

    tags = run_tags(dataset, model, regularizer, seed, spec)
    tags.update({"trigger": how, RETRAIN_KEY_TAG: key, "source_label": label})
    if window:
        tags["window"] = window
    if warm_start:
        tags["warm_start"] = "requested"
    if spec.synth:
        tags["synthetic_scale"] = spec.synth["scale"]
        tags["synthetic_seed"] = spec.synth["seed"]
    if rerun_of:
        tags["rerun_of"] = rerun_of
    with tracked_run(dataset, name, tags) as run_id:
        logger.info("MLflow run %s on %s", run_id, tracking_uri())
        pipeline_params = {
            "pipeline.dataset": dataset,
            "pipeline.source": source,
            "pipeline.model": model,
            "pipeline.regularizer": regularizer,
            "pipeline.seed": seed,
            "pipeline.max_len": "null" if max_len is None else max_len,
            "pipeline.on_bad_lines": on_bad_lines,
            "pipeline.window": window or "null",
            "pipeline.warm_start": warm_start,
        }
        log_inputs(run_id, config, pipeline_params, spec)
        arrivals = None
        if arriving:
            arrivals = assemble_arrival_data(
                spec, str(work), seed=seed, max_len=max_len, window=window,
                on_bad_lines=on_bad_lines,
            )  # fmt: skip
            log_arrivals(run_id, arrivals)
        data = run_data_steps(
            spec, work, seed=seed, max_len=max_len, on_bad_lines=on_bad_lines,
            refresh=refresh_cache, canonical=arrivals.train_canonical if arrivals else None,
        )  # fmt: skip
        tag_run(run_id, data.tags())
        run_dir = work / "runs" / dataset / run_id
        challenge = make_challenge(
            dataset, data.report, data.canonical, data.synthetic, arrivals, seed, policy
        )
        tag_run(run_id, {"data_family": challenge.family})
        weights = None
        if warm_start and register_model:
            # beside the run folder, which the training step must find empty
            weights = champion_weights(registered, str(work / "champions" / run_id))
            tag_run(run_id, {"warm_start": "from the champion" if weights else "cold: no champion"})
        outcome = run_training_steps(
            run_id, dataset, data, model, regularizer, config, run_dir, seed, register_model,
            warm_start=weights, challenge=challenge, registered_name=registered,
        )  # fmt: skip
    summary = {
        "run_id": run_id,
        "run_name": name,
        "trigger": how,
        "dataset": dataset,
        "model": model,
        "regularizer": regularizer,
        "seed": seed,
        "source": spec.path,
        "data_source": "synthetic" if data.synthetic else "real",
        "data_fingerprint": data.data_fingerprint,
        "data_family": challenge.family,
        "cached": data.cached,
        "prepared_dir": data.prepared,
        "run_dir": str(run_dir),
        "flow_run_id": tags["prefect_flow_run_id"],
        "tracking_uri": tracking_uri(),
        "experiment_id": ensure_experiment(dataset),
        **{k: outcome[k] for k in ("valid", "test", "best_epoch")},
        "registry": outcome["registry"],
        "arrivals": None if arrivals is None else {
            "newest": arrivals.newest, "used": [a["label"] for a in arrivals.used],
        },
    }  # fmt: skip
    logger.info(
        "done: test AUC %.4f GAUC %.4f LogLoss %.4f (run %s)",
        summary["test"]["auc"],
        summary["test"]["gauc"],
        summary["test"]["logloss"],
        run_id,
    )
    publish_summary_report(summary)
    return summary
