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
from tasks.challenge import Challenge
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


#: The prepared splits a run reads, with MLflow's ``mlflow.data.context`` for each.
SPLIT_CONTEXTS = (("train", "training"), ("valid", "validation"), ("test", "testing"))
#: Hex characters of a split's fingerprint shown as its MLflow digest (MLflow stores
#: at most 36; 12 hex digits are 48 bits, ample to tell a dataset's versions apart).
DIGEST_CHARS = 12


def split_digest(fingerprint: str) -> str:
    """The MLflow digest of a ``sha256:<hex>`` fingerprint: its first hex digits."""
    return fingerprint.removeprefix("sha256:")[:DIGEST_CHARS]


def _parquet_schema(path: Path) -> Any:
    """The MLflow column schema of a parquet file, read from its footer (no rows loaded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mlflow.types.schema import Array, ColSpec, DataType, Schema

    def mlflow_type(kind: pa.DataType) -> Any:
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return Array(mlflow_type(kind.value_type))
        if pa.types.is_boolean(kind):
            return DataType.boolean
        if pa.types.is_integer(kind):
            return DataType.integer if kind.bit_width <= 32 else DataType.long
        if pa.types.is_floating(kind):
            return DataType.float if kind.bit_width <= 32 else DataType.double
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            return DataType.datetime
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            return DataType.binary
        return DataType.string

    return Schema([ColSpec(mlflow_type(f.type), f.name) for f in pq.read_schema(path)])


def split_dataset_input(dataset: str, prepared: Path, split: str, context: str, raw: str) -> Any:
    """One prepared split as an MLflow dataset input: schema, digest and path, no rows.

    The digest is the split's prepared fingerprint (feature map + split file, as
    :func:`din_model.pipeline.session.prepared_fingerprint` computes it for training);
    the profile holds the row count (parquet footer) and the full fingerprints.
    """
    import pyarrow.parquet as pq
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from din_model.pipeline.session import prepared_fingerprint

    path = prepared / f"{split}.parquet"
    fingerprint = prepared_fingerprint(prepared, (split,))
    source = get_dataset_source_from_json(json.dumps({"uri": path.resolve().as_uri()}), "local")
    meta = MetaDataset(
        source,
        name=f"{dataset}-{split}",
        digest=split_digest(fingerprint),
        schema=_parquet_schema(path),
    )
    profile = {
        "num_rows": pq.read_metadata(path).num_rows,
        "split_fingerprint": fingerprint,
        "data_fingerprint": raw,
    }
    entity = Dataset(**meta.to_dict(), profile=json.dumps(profile))
    return DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])


@task(name="log-datasets", **_TRACKING)
def log_datasets(run_id: str, dataset: str, prepared: str, data_fingerprint: str) -> list[str]:
    """The train/valid/test splits as the run's dataset inputs (the run table's Dataset column).

    Named ``<dataset>-train|valid|test`` with context ``training``/``validation``/
    ``testing``; only metadata is logged (:func:`split_dataset_input`), never the rows.
    Returns ``name (digest)`` of each, as the MLflow UI shows them.
    """
    folder = Path(prepared)
    inputs = [
        split_dataset_input(dataset, folder, split, context, data_fingerprint)
        for split, context in SPLIT_CONTEXTS
    ]
    tracking.client().log_inputs(run_id, datasets=inputs)
    return [f"{i.dataset.name} ({i.dataset.digest})" for i in inputs]


@task(name="tag-run", **_TRACKING)
def tag_run(run_id: str, tags: Mapping[str, Any]) -> None:
    tracking.set_tags(run_id, tags)


def _attention_plot(layout: RunLayout, path: Path) -> Path | None:
    """Fig. 5-style weights of the test samples that ``fit_and_score`` chose (if any)."""
    from din_model.data.encoding.vocabulary import USER_KEY_TABLE, VOCAB_DIR
    from din_model.pipeline.attention_examples import read_attention_examples
    from din_model.pipeline.item_map import feature_value_names, raw_names
    from tasks.plots import attention_plot

    if not layout.attention.is_file():
        return None  # a model without an activation unit
    examples = read_attention_examples(layout.attention)
    if not examples:
        return None
    # category names for the titles, from the run's own serving/ copy of the vocabularies
    target = examples[0].targets.get("hist_cate_id", next(iter(examples[0].targets.values())))
    names = feature_value_names(layout.serving, target)
    users = raw_names(layout.serving / VOCAB_DIR, USER_KEY_TABLE, [e.user_id for e in examples])
    title = "DIN activation weights (test positives whose histories mix categories)"
    return attention_plot(examples, path, title, names, users)


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
    wrote; models with an activation unit also get ``plots/attention.png`` and
    ``plots/item_embeddings.png`` (the paper's Fig. 5 and Fig. 6).
    """
    import numpy as np
    import polars as pl

    from tasks.embedding_plots import run_item_embedding_plot
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
        plots.append(run_item_embedding_plot(layout, folder / "item_embeddings.png"))
        tracking.log_files(run_id, [p for p in plots if p is not None], "plots")
        sample_path = folder / "test_predictions_sample.csv"
        sample = _prediction_sample(layout.predictions, sample_path, seed)
        tracking.log_files(run_id, [folder / "history.json", sample])
    # the config as trained: rules resolved at fit time (train.batch_size under
    # batch_size_rule auto) hold the numbers used, where config.yaml has the requested ones
    tracking.log_files(run_id, [layout.config], "trained")
    get_run_logger().info("logged metrics, plots and artifacts to run %s", run_id)
    return metrics


@task(name="register-model", cache_policy=NO_CACHE)
def register_model(
    run_id: str,
    dataset: str,
    layout: RunLayout,
    register: bool = True,
    challenge: Challenge | None = None,
    registered_name: str | None = None,
) -> dict[str, Any]:
    """Log the pyfunc model; register it and judge it against the champion.

    The version is registered as ``registered_name`` (default ``din-<dataset>``);
    :func:`tasks.champion.judge_and_promote` tags it with its data's family and origin,
    scores it and the champion on ``challenge``'s slice and moves the alias only if
    the promotion rule says so.
    """
    from din_model.pipeline.promotion import ModelIdentity, load_policy
    from tasks.champion import judge_and_promote
    from tasks.model_logging import log_pyfunc_model
    from tasks.registry import registered_model_name

    logger = get_run_logger()
    name = (registered_name or registered_model_name(dataset)) if register else None
    info = log_pyfunc_model(run_id, layout.best_checkpoint, layout.serving, name)
    outcome: dict[str, Any] = {"model_uri": info.model_uri, "registered_model": name}
    if name is None:
        return outcome
    if challenge is None:
        raise ValueError("a registered model needs the challenge it is judged on")
    version = str(info.registered_model_version)
    identity = ModelIdentity(version, challenge.family, challenge.synthetic)
    judged = judge_and_promote(
        name,
        version,
        run_id,
        challenge.slice_frame(),
        challenge.slice_label,
        identity,
        load_policy(challenge.policy),
    )
    logger.info("%s v%s: %s", name, version, judged["decision"])
    outcome.update(judged)
    outcome.update(version=version)
    return outcome


@task(name="close-run", **_TRACKING)
def close_run(run_id: str) -> None:
    """End a run that completed (FINISHED); failures are recorded by :mod:`tasks.run_lifecycle`."""
    tracking.finish_run(run_id)


@task(name="log-comparison", **_TRACKING)
def log_comparison(
    parent_run_id: str,
    dataset: str,
    results: list[CellResult],
    significance: list[dict[str, Any]] | None = None,
    title: str = "",
) -> dict[str, Any]:
    """The ablation table on the parent run: CSV + markdown, a GAUC bar chart, and metrics.

    ``significance`` holds the paired ΔGAUC rows of :mod:`tasks.significance`;
    the table's values also go to the parent run as metrics (``gauc_<cell>``,
    ``gauc_diff_<cell>_vs_base`` ...), so parent runs sort in the MLflow UI.
    """
    from tasks.comparison import (
        comparison_markdown,
        comparison_table,
        table_metrics,
        with_significance,
    )
    from tasks.plots import comparison_bar_chart

    table = with_significance(comparison_table(results), significance or [])
    single = table["seeds"] < 2
    with tracking.scratch_dir() as scratch:
        folder = Path(scratch)
        table.write_csv(folder / "comparison.csv")
        markdown = comparison_markdown(table, title=title or f"din-ablation on {dataset}")
        (folder / "comparison.md").write_text(markdown)
        marked = None
        if "vs_base_low" in table.columns:
            low, high = table["vs_base_low"].fill_null(0.0), table["vs_base_high"].fill_null(0.0)
            marked = ((low > 0) | (high < 0)).to_list()
        chart = comparison_bar_chart(
            table["cell"].to_list(),
            table["gauc_mean"].to_list(),
            [None if one else std for one, std in zip(single, table["gauc_std"], strict=True)],
            folder / "comparison_gauc.png",
            marked=marked,
        )
        tracking.log_files(
            parent_run_id, [folder / "comparison.csv", folder / "comparison.md", chart]
        )
    tracking.log_metrics(parent_run_id, table_metrics(table))
    tracking.set_tags(parent_run_id, {"cells_completed": len(results)})
    get_run_logger().info(
        "comparison of %d child runs logged to run %s", len(results), parent_run_id
    )
    return {"rows": table.to_dicts(), "markdown": markdown}
