"""The ``din-score`` flow: score a file of raw impressions with a registered model.

Two steps: pin the model (``models:/din-<dataset>@champion`` unless ``model`` names
another) and score the file into ``out`` (:mod:`tasks.scoring`, which runs
:func:`din_model.serving.batch.score_file`). Nothing is logged to MLflow: a scoring run
reads the registry, it trains nothing. The flow run's log says which version scored how
many rows and how many bad rows were set aside.

Run it as the ``din-score/<dataset>`` deployment served by ``din serve``::

    prefect deployment run din-score/amazon -p input=/data/impressions.parquet \\
        -p out=/work/scores.parquet

or in-process from Python; ``din score`` runs the same steps without Prefect.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from din_model.registry import dataset_names
from flows.runtime import install_run_logging
from tasks.config import check_choice
from tasks.model_source import default_model_uri
from tasks.run_report import publish_run_report
from tasks.scoring import guard_score_paths, resolve_model_step, score_file_step


@flow(name="din-score", flow_run_name="{dataset}-score")
def din_score(
    input: str,
    out: str,
    dataset: str = "amazon",
    model: str | None = None,
    interactions: str | None = None,
    on_bad_lines: str = "error",
    force: bool = False,
) -> dict[str, Any]:
    """Score the raw impressions in ``input`` into ``out`` (the rows plus ``score``).

    Args:
        input: a parquet, CSV or JSON-lines file of raw requests (see
            :mod:`din_model.serving.batch` for the columns and the CSV history format).
        out: the output file (same formats, by extension); an existing file is
            replaced only with ``force``.
        dataset: the dataset of the model (amazon | movielens | taobao ...).
        model: a ``models:/`` URI, ``runs:/`` URI or MLflow run id; default
            ``models:/din-<dataset>@champion``.
        interactions: a raw data folder of the dataset: build every row's history
            from the user's earlier events there instead of reading it from ``input``.
        on_bad_lines: ``error`` stops at the first bad row; ``skip`` writes bad rows to
            ``<out>.rejects.jsonl`` and scores the rest.
        force: replace an existing ``out``.

    In a deployment run ``input`` and ``interactions`` must lie under the data roots
    and ``out`` under the work root (:mod:`tasks.allowed_paths`).
    """
    install_run_logging()
    guard_score_paths(input, out, interactions)
    logger = get_run_logger()
    check_choice("dataset", dataset, dataset_names())
    check_choice("on_bad_lines", on_bad_lines, ("error", "skip"))
    resolved = resolve_model_step(model or default_model_uri(dataset))
    summary = score_file_step(resolved, input, out, dataset, interactions, on_bad_lines, force)
    logger.info(
        "done: %d rows scored, %d skipped%s, with %s -> %s",
        summary["scored"],
        summary["skipped"],
        f" (rejects in {summary['rejects']})" if summary["skipped"] else "",
        resolved.describe(),
        summary["out"],
    )
    publish_run_report(
        None, f"din-score {dataset}: {resolved.describe()}",
        [("model", resolved.describe()), ("input", input), ("out", summary["out"]),
         ("rows scored", summary["scored"]), ("rows skipped", summary["skipped"])],
        key=f"din-score-{dataset}",
    )  # fmt: skip
    return {**summary, "model": resolved.uri, "model_version": resolved.version}
