"""Step sequences shared by the din-train and din-ablation flows.

``run_data_steps``: source -> ingest -> validate (canonical) -> feature groups
-> validate (samples) -> prepared folder, with the cache hits recorded.
``run_training_steps``: log the splits as the run's datasets -> fit-and-score -> log
the layout (-> register). Both are called from inside a flow (or a task), so every
step is a Prefect task run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger
from prefect.states import State

from din_model.pipeline.layout import PREPARE_REPORT, read_prepare_report
from tasks.data import (
    SourceSpec,
    ingest_source,
    output_missing,
    prepare_samples,
    validate_canonical_tables,
)
from tasks.run_logging import log_datasets, log_results, register_model
from tasks.training import fit_and_score

if TYPE_CHECKING:
    from din_model.training.warm_start import WarmStartSource
    from tasks.challenge import Challenge


@dataclass
class DataOutcome:
    """The prepared folder of a run and how it was obtained."""

    source: SourceSpec
    canonical: str
    prepared: str
    cached: dict[str, bool] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return bool(self.report.get("synthetic", self.source.synthetic))

    @property
    def data_fingerprint(self) -> str:
        report = self.report
        return str(
            report.get("data_fingerprint") or report.get("fingerprint") or self.source.fingerprint
        )

    def tags(self) -> dict[str, str]:
        return {
            "data_fingerprint": self.data_fingerprint,
            "data_source": "synthetic" if self.synthetic else "real",
            "ingest_cached": str(self.cached.get("ingest", False)).lower(),
            "prepare_cached": str(self.cached.get("prepare", False)).lower(),
            "prepared_dir": self.prepared,
        }


def _run_cached(
    task, marker: str | None, refresh: bool, *args: Any, **kwargs: Any
) -> tuple[str, bool]:
    """Call a cached step; if its cached folder was deleted since, run it again for real."""
    if refresh:
        task = task.with_options(refresh_cache=True)
    state: State = task(*args, return_state=True, **kwargs)
    path = state.result()
    cached = state.name == "Cached"
    if cached and output_missing(path, marker):
        get_run_logger().warning("cached output %s is gone: running %s again", path, task.name)
        state = task.with_options(refresh_cache=True)(*args, return_state=True, **kwargs)
        path, cached = state.result(), False
    return path, cached


def run_data_steps(
    source: SourceSpec,
    work: Path,
    *,
    seed: int,
    max_len: int | None = None,
    on_bad_lines: str = "error",
    refresh: bool = False,
    canonical: str | None = None,
) -> DataOutcome:
    """The prepared folder for ``source``; ``refresh`` re-executes cached steps.

    ``canonical``: canonical tables already assembled (an arriving source's training
    arrivals, :mod:`tasks.arrivals`); the ingest step is then skipped.
    """
    if canonical is None:
        canonical, ingest_cached = _run_cached(
            ingest_source, "canonical.json", refresh, source, str(work), on_bad_lines=on_bad_lines
        )
    else:
        ingest_cached = True  # parsed per arrival, each cached on its own
    canonical_validation = validate_canonical_tables(canonical)
    prepared, prepare_cached = _run_cached(
        prepare_samples,
        PREPARE_REPORT,
        refresh,
        canonical,
        str(work),
        seed,
        max_len,
        canonical_validation,
    )
    report = read_prepare_report(prepared)
    logger = get_run_logger()
    logger.info(
        "data ready: %s (ingest %s, samples %s)",
        prepared,
        "cached" if ingest_cached else "ran",
        "cached" if prepare_cached else "ran",
    )
    return DataOutcome(
        source=source,
        canonical=canonical,
        prepared=prepared,
        cached={"ingest": ingest_cached, "prepare": prepare_cached},
        report=report,
    )


def run_training_steps(
    run_id: str,
    dataset: str,
    data: DataOutcome,
    model: str,
    regularizer: str,
    config: dict[str, Any],
    run_dir: Path,
    seed: int,
    register: bool = True,
    log_model: bool = True,
    *,
    warm_start: WarmStartSource | None = None,
    challenge: Challenge | None = None,
    registered_name: str | None = None,
) -> dict[str, Any]:
    """Log the data inputs, fit and score, log the output layout.

    Returns ``metrics.json`` plus the registry outcome. The din-train flow and
    every ablation cell pass through here, so every training run has its three
    dataset inputs (:func:`tasks.run_logging.log_datasets`).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    log_datasets(run_id, dataset, data.prepared, data.data_fingerprint)
    layout = fit_and_score(
        data.prepared, str(run_dir), model, regularizer, config, run_id, warm_start=warm_start
    )
    log_results(run_id, data.prepared, layout, seed)
    outcome: dict[str, Any] = {}
    if log_model:
        outcome = register_model(run_id, dataset, layout, register, challenge, registered_name)
    return {**layout.read_metrics(), "registry": outcome}
