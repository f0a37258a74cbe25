"""Prefect steps that record a run in MLflow: open, tag, log results, register, close.

The run is opened before the data steps, so a run that fails on bad data is
in the experiment too (status FAILED, with the error as a tag). Flows do not
call ``open_run``/``close_run`` themselves: :func:`tasks.run_lifecycle.tracked_run`
does, and records failures, signals and kills. The
tracking steps retry on store I/O errors; registration does not (a retry
after a half-done registration would create a second version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from din_model.pipeline.layout import RunLayout
from tasks import tracking
from tasks.comparison import CellResult
from tasks.data import SourceSpec

PREDICTION_SAMPLE_ROWS = 1000
MANIFEST_ARTIFACT = "data_manifest.json"
TRACKING_RETRIES = 2


def retry_on_store_error(task, task_run, state) -> bool:
    """Retry when the tracking store was unreachable or busy, not on programming errors."""
    from mlflow.exceptions import MlflowException

    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError | MlflowException)


_TRACKING = {
    "cache_policy": NO_CACHE,
    "retries": TRACKING_RETRIES,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": retry_on_store_error,
}


@task(name="open-run", **_TRACKING)
def open_run(
    dataset: str, run_name: str, tags: Mapping[str, Any], parent_run_id: str | None = None
) -> str:
    return tracking.open_run(dataset, run_name, {k: str(v) for k, v in tags.items()}, parent_run_id)


@task(name="log-inputs", **_TRACKING)
def log_inputs(
    run_id: str, config: Mapping[str, Any], params: Mapping[str, Any], source: SourceSpec
) -> None:
    """The resolved config (params + ``config.yaml``) and ``data_manifest.json``.

    The manifest lists every raw file with its size and sha256: ``din rerun``
    compares it with the files on disk and names those that changed.
    """
    tracking.log_config(run_id, config, params)
    manifest = {
        "dataset": source.dataset,
        "path": source.path,
        "fingerprint": source.fingerprint,
        "synthetic": source.synthetic,
        "synth": source.synth,
        "files": source.manifest,
    }
    tracking.log_text(run_id, json.dumps(manifest, indent=2, sort_keys=True), MANIFEST_ARTIFACT)


@task(name="tag-run", **_TRACKING)
def tag_run(run_id: str, tags: Mapping[str, Any]) -> None:
    tracking.set_tags(run_id, tags)


def _attention_plot(layout: RunLayout, path: Path) -> Path | None:
    """Fig. 5-style weights of the test samples that ``fit_and_score`` chose (if any)."""
    from din_model.pipeline.attention_examples import read_attention_examples
    from tasks.plots import attention_plot

    if not layout.attention.is_file():
        return None  # a model without an activation unit
    examples = read_attention_examples(layout.attention)
    if not examples:
        return None
    return attention_plot(examples, path, "DIN activation weights (test positives)")


def _prediction_sample(predictions: Path, out: Path, seed: int) -> Path:
    import polars as pl

    frame = pl.read_parquet(predictions, glob=False)
    if frame.height > PREDICTION_SAMPLE_ROWS:
        frame = frame.sample(PREDICTION_SAMPLE_ROWS, seed=seed, shuffle=False)
    frame.write_csv(out)
    return out


def final_metrics(run: dict[str, Any]) -> dict[str, float]:
    """Test metrics, the chosen epoch's validation metrics and the epoch, from ``metrics.json``."""
    metrics: dict[str, float] = {}
    for key, value in run["test"].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[f"test_{key}"] = float(value)
    for key, value in run["valid"].items():
        if isinstance(value, int | float) and not isinstance(value, bool) and key != "n":
            metrics[f"best_valid_{key}"] = float(value)
    metrics["best_epoch"] = float(run["best_epoch"])
    return metrics


@task(name="log-results", **_TRACKING)
def log_results(run_id: str, prepared: str, layout: RunLayout, seed: int) -> dict[str, float]:
    """Log a run's output layout: final metrics, data records, plots and a prediction sample.

    Everything comes from the files :func:`din_model.pipeline.fit_and_score`
    wrote; models with an activation unit also get ``plots/attention.png``.
    """
    import numpy as np
    import polars as pl

    from tasks.plots import calibration_plot, roc_plot

    run = layout.read_metrics()
    metrics = final_metrics(run)
    tracking.log_metrics(run_id, metrics)
    prepared_dir = Path(prepared)
    tracking.log_files(
        run_id,
        [
            prepared_dir / name
            for name in ("feature_map.json", "validation.json", "prepare_report.json")
            if (prepared_dir / name).is_file()
        ],
    )
    with tracking.scratch_dir() as scratch:
        folder = Path(scratch)
        (folder / "history.json").write_text(json.dumps(run["history"], indent=2, default=str))
        frame = pl.read_parquet(layout.predictions, columns=["label", "score"], glob=False)
        labels, scores = frame["label"].to_numpy().astype(np.int64), frame["score"].to_numpy()
        plots = []
        if np.unique(labels).size == 2:
            plots.append(roc_plot(labels, scores, folder / "roc.png", "test ROC"))
            plots.append(
                calibration_plot(labels, scores, folder / "calibration.png", "test calibration")
            )
        plots.append(_attention_plot(layout, folder / "attention.png"))
        tracking.log_files(run_id, [p for p in plots if p is not None], "plots")
        sample_path = folder / "test_predictions_sample.csv"
        sample = _prediction_sample(layout.predictions, sample_path, seed)
        tracking.log_files(run_id, [folder / "history.json", sample])
    get_run_logger().info("logged metrics, plots and artifacts to run %s", run_id)
    return metrics


@task(name="register-model", cache_policy=NO_CACHE)
def register_model(
    run_id: str, dataset: str, layout: RunLayout, register: bool = True
) -> dict[str, Any]:
    """Log the pyfunc model; register it as ``din-<dataset>`` and apply the champion rule."""
    from tasks.model_logging import log_pyfunc_model
    from tasks.registry import promote_if_better, registered_model_name

    logger = get_run_logger()
    name = registered_model_name(dataset) if register else None
    info = log_pyfunc_model(run_id, layout.best_checkpoint, layout.serving, name)
    outcome: dict[str, Any] = {"model_uri": info.model_uri, "registered_model": name}
    if name is None:
        return outcome
    version = str(info.registered_model_version)
    valid_gauc = float(layout.read_metrics()["valid"].get("gauc", float("nan")))
    decision = promote_if_better(name, version, valid_gauc, run_id)
    logger.info("%s v%s: %s", name, version, decision.reason)
    outcome.update(version=version, promoted=decision.promoted, decision=decision.reason)
    return outcome


@task(name="close-run", **_TRACKING)
def close_run(run_id: str) -> None:
    """End a run that completed (FINISHED); failures are recorded by :mod:`tasks.run_lifecycle`."""
    tracking.finish_run(run_id)


@task(name="log-comparison", **_TRACKING)
def log_comparison(parent_run_id: str, dataset: str, results: list[CellResult]) -> dict[str, Any]:
    """The ablation table (CSV + markdown) and a GAUC bar chart, on the parent run."""
    from tasks.comparison import comparison_markdown, comparison_table
    from tasks.plots import comparison_bar_chart

    table = comparison_table(results)
    with tracking.scratch_dir() as scratch:
        folder = Path(scratch)
        table.write_csv(folder / "comparison.csv")
        markdown = comparison_markdown(table, title=f"din-ablation on {dataset}")
        (folder / "comparison.md").write_text(markdown)
        chart = comparison_bar_chart(
            table["cell"].to_list(),
            table["gauc_mean"].to_list(),
            table["gauc_std"].to_list(),
            folder / "comparison_gauc.png",
        )
        tracking.log_files(
            parent_run_id, [folder / "comparison.csv", folder / "comparison.md", chart]
        )
    tracking.set_tags(parent_run_id, {"cells_completed": len(results)})
    get_run_logger().info(
        "comparison of %d child runs logged to run %s", len(results), parent_run_id
    )
    return {"rows": table.to_dicts(), "markdown": markdown}
