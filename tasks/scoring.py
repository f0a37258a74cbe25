"""Batch scoring with a registered model: find it in MLflow, fetch its files, score a file.

The model is found and fetched by :mod:`tasks.model_source` (only its ``checkpoint``
and ``serving`` artifacts, to a temporary folder removed afterwards) and scored with
:class:`~din_model.serving.raw_scorer.RawScorer`, the core the pyfunc wraps, through
:func:`din_model.serving.batch.score_file`. Not ``mlflow.pyfunc.load_model``: that would
import the model's copy of the code and could not show progress or set bad rows aside.

The plain functions serve ``din score``; the tasks at the bottom are the steps of the
``din-score`` flow. A deployment run may read ``input`` and ``interactions`` and write
``out`` only under the roots of the serving process (:mod:`tasks.allowed_paths`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.allowed_paths import (
    DATA_ROOTS_ENV,
    allowed_work_root,
    check_inside,
    data_roots,
    running_from_deployment,
)
from tasks.model_source import (
    ResolvedModel,
    download_model,
    resolve_model,
)

if TYPE_CHECKING:
    from din_model.serving.batch import BatchResult
    from din_model.serving.raw_scorer import RawScorer

logger = logging.getLogger(__name__)


@contextmanager
def opened_scorer(resolved: ResolvedModel) -> Iterator[RawScorer]:
    """The model's scorer, its files in a temporary folder for as long as it is open."""
    from din_model.serving.raw_scorer import RawScorer

    with tempfile.TemporaryDirectory(prefix="din-score-model-") as folder:
        checkpoint, serving = download_model(resolved, Path(folder))
        yield RawScorer.from_checkpoint(checkpoint, serving)


def score_with_model(
    model: str,
    input_path: str | Path,
    out: str | Path,
    **options: Any,
) -> tuple[BatchResult, ResolvedModel]:
    """Resolve ``model``, fetch it and score ``input_path`` into ``out`` (``din score``).

    ``options`` go to :func:`din_model.serving.batch.score_file` (interactions,
    dataset, on_bad_lines, force, progress, chunk_rows).
    """
    from din_model.serving.batch import check_paths, score_file

    paths = ("interactions", "on_bad_lines", "force", "progress")
    check_paths(input_path, out, **{k: v for k, v in options.items() if k in paths})
    resolved = resolve_model(model)
    logger.info("scoring with %s", resolved.describe())
    with opened_scorer(resolved) as scorer:
        result = score_file(scorer, input_path, out, **options)
    return result, resolved


def guard_score_paths(input_path: str, out: str, interactions: str | None) -> None:
    """In a deployment run: ``input``/``interactions`` under the data roots, ``out`` under work.

    ``input`` may also lie under the work root (a file an earlier run wrote); the rejects
    file is written next to ``out``. Outside a deployment run nothing is restricted.
    """
    if not running_from_deployment():
        return
    data, work = data_roots(), allowed_work_root()
    data_hint = f"set {DATA_ROOTS_ENV} or `din serve --data-root`"
    work_hint = "set DIN_WORK_DIR or `din serve --work-root`"
    check_inside("input", input_path, [*data, work], f"{data_hint}, or {work_hint}")
    if interactions is not None:
        check_inside("interactions", interactions, data, data_hint)
    check_inside("out", out, [work], work_hint)


# -- the steps of the din-score flow ---------------------------------------------------------
@task(name="resolve-model", cache_policy=NO_CACHE)
def resolve_model_step(model: str) -> ResolvedModel:
    """Pin the model reference (an alias moves with every promotion)."""
    resolved = resolve_model(model)
    get_run_logger().info("model %s", resolved.describe())
    return resolved


@task(name="score-file", cache_policy=NO_CACHE, persist_result=False)
def score_file_step(
    resolved: ResolvedModel,
    input_path: str,
    out: str,
    dataset: str,
    interactions: str | None = None,
    on_bad_lines: str = "error",
    force: bool = False,
) -> dict[str, Any]:
    """Fetch the model and score the file; returns the counts (see BatchResult.as_dict)."""
    from din_model.serving.batch import check_paths, score_file

    # a served run has no terminal: a few log lines
    options = {"on_bad_lines": on_bad_lines, "force": force, "progress": "log"}
    check_paths(input_path, out, interactions=interactions, **options)  # before the download
    with opened_scorer(resolved) as scorer:
        result = score_file(
            scorer, input_path, out, interactions=interactions, dataset=dataset, **options
        )
    get_run_logger().info(result.summary())
    return {**result.as_dict(), "timings": result.timings}
