"""The tuning parent run's records: study settings, the best trial, the figures, the tuned file.

The parent run of a ``din tune`` invocation carries:

- params: the study's settings (``tune.*``), the best trial's parameters
  (``best.<name>``, as Optuna stores them) and, from the final fit, the best
  config flattened like every other run's;
- metrics: ``best_trial``, ``best_trial_valid_gauc`` (the study's best value)
  and the best trial's other validation metrics, the study's trial counts,
  and the test metrics of the one ``fit_and_score`` of the best config;
- artifacts: ``plots/optimization_history.png``, ``plots/param_importances.png``
  (skipped, with a log line, below two complete trials) and ``tuned_config.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from din_model.config import dump_config
from din_model.io.atomic import atomic_output_file
from din_model.io.failures import writing
from tasks import tracking
from tasks.run_logging import retry_on_store_error

TUNED_ARTIFACT = "tuned_config.yaml"
BEST_PREFIX = "best."
_TRACKING = {
    "cache_policy": NO_CACHE,
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": retry_on_store_error,
}


def log_params(run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[: tracking.MAX_PARAM_VALUE]) for k, v in sorted(params.items())]
    for start in range(0, len(items), tracking.BATCH_LIMIT):
        tracking.client().log_batch(run_id, params=items[start : start + tracking.BATCH_LIMIT])


@task(name="log-study-settings", **_TRACKING)
def log_study_settings(run_id: str, settings: Mapping[str, Any]) -> None:
    log_params(run_id, settings)


@task(name="log-study", **_TRACKING)
def log_study_results(run_id: str, storage_url: str, study_name: str, seed: int) -> dict[str, Any]:
    """Best trial (params, metrics), trial counts and the two figures, on the parent run."""
    import optuna

    from din_model.tuning.study import counts, open_storage
    from tasks.tuning_plots import history_plot, importance_plot

    study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url))
    best = study.best_trial
    log_params(run_id, {f"{BEST_PREFIX}{k}": v for k, v in best.params.items()})
    by_state = counts(study)
    metrics = {
        "best_trial": best.number,
        "best_trial_valid_gauc": best.value,
        **{f"trials_{state}": n for state, n in by_state.items() if state != "waiting"},
    }
    for key, value in best.user_attrs.items():
        if key.startswith("best_valid_") and key != "best_valid_gauc":
            metrics[f"best_trial_valid_{key[len('best_valid_') :]}"] = value
    tracking.log_metrics(run_id, metrics)
    tags = {"optuna.best_trial": best.number}
    if "mlflow_run_id" in best.user_attrs:
        tags["optuna.best_trial_run_id"] = best.user_attrs["mlflow_run_id"]
    tracking.set_tags(run_id, tags)
    with tracking.scratch_dir() as scratch:
        folder = Path(scratch)
        plots = [
            history_plot(study, folder / "optimization_history.png"),
            importance_plot(study, folder / "param_importances.png", seed),
        ]
        tracking.log_files(run_id, [p for p in plots if p is not None], "plots")
    get_run_logger().info("best trial %d: valid GAUC %.4f %s", best.number, best.value, best.params)
    return {
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": dict(best.params),
        "best_run_id": best.user_attrs.get("mlflow_run_id"),
        "trials": by_state,
    }


@task(name="write-tuned-config", cache_policy=NO_CACHE)
def write_tuned_config(
    run_id: str, config: Mapping[str, Any], header: str, targets: Sequence[str]
) -> list[str]:
    """The best config as YAML (``din train --config FILE``), each target written atomically."""
    text = dump_config(config, header=header)
    written = []
    for target in targets:
        path = Path(target)
        with writing(path), atomic_output_file(path) as tmp:
            tmp.write_text(text)
        written.append(str(path))
    tracking.log_text(run_id, text, TUNED_ARTIFACT)
    return written
