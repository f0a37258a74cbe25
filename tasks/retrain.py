"""The retrain-specific steps of ``din-train``: the challenge, arrivals, skips and the report.

Kept apart from the flow so that the flow stays a list of steps:

- :func:`make_challenge`: what the new version is judged on (the newest arrival of
  an arriving source, else the test split) and the identity of its data;
- :func:`log_arrivals`: which arrival files a run trained on and which it held back;
- :func:`skipped_summary`: the outcome of a run that found no new data;
- :func:`publish_summary_report`: the flow run's markdown artifact (metrics, the
  champion decision, the MLflow run's URL).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger

from din_model.data.sources.family import data_family
from tasks import tracking
from tasks.challenge import Challenge

if TYPE_CHECKING:
    from tasks.arrivals import ArrivalData
    from tasks.data import SourceSpec
    from tasks.retrain_guard import PreviousRun

ARRIVALS_ARTIFACT = "arrivals.json"


def make_challenge(
    dataset: str,
    report: Mapping[str, Any],
    canonical: str,
    synthetic: bool,
    arrivals: ArrivalData | None,
    seed: int,
    policy: Mapping[str, Any],
) -> Challenge:
    """The slice and data identity a new version is judged on (see :mod:`tasks.challenge`)."""
    max_len = report.get("max_len")
    if arrivals is not None:
        return Challenge(
            slice_label=f"arrival {arrivals.newest}",
            family=arrivals.family,
            synthetic=False,
            canonical=canonical,
            seed=seed,
            max_len=max_len,
            slice_rows=arrivals.slice_rows,
            policy=dict(policy),
        )
    family = data_family(
        dataset, str(report.get("layout", "")), list(report.get("source_files", [])), synthetic
    )
    return Challenge(
        slice_label="test split",
        family=family,
        synthetic=synthetic,
        canonical=canonical,
        seed=seed,
        max_len=max_len,
        policy=dict(policy),
    )


def log_arrivals(run_id: str, arrivals: ArrivalData) -> None:
    """Tags and ``arrivals.json``: the files the run trained on and the one it held back."""
    tracking.set_tags(
        run_id,
        {
            "arrivals_newest": arrivals.newest,
            "arrivals_used": len(arrivals.used),
            "arrivals_fingerprint": arrivals.arrivals_fingerprint,
        },
    )
    record = {"trained_on": arrivals.used, "held_back": arrivals.held_back}
    tracking.log_text(run_id, json.dumps(record, indent=2, default=str), ARRIVALS_ARTIFACT)
    get_run_logger().info(
        "arrivals: trained on %d (%s .. %s), held back %s",
        len(arrivals.used),
        arrivals.used[0]["label"] if arrivals.used else "-",
        arrivals.used[-1]["label"] if arrivals.used else "-",
        arrivals.newest,
    )


def skipped_summary(
    dataset: str,
    model: str,
    regularizer: str,
    seed: int,
    spec: SourceSpec,
    previous: PreviousRun,
    name: str,
) -> dict[str, Any]:
    """The flow's result when nothing changed: said in the log and the run's artifact."""
    message = previous.message()
    get_run_logger().info("%s: nothing trained, nothing registered", message)
    summary = {
        "skipped": True,
        "reason": message,
        "previous_run_id": previous.run_id,
        "run_id": None,
        "run_name": name,
        "dataset": dataset,
        "model": model,
        "regularizer": regularizer,
        "seed": seed,
        "source": spec.path,
        "data_source": "synthetic" if spec.synthetic else "real",
        "data_fingerprint": spec.fingerprint,
        "registry": {},
    }
    publish_summary_report(summary)
    return summary


def _number(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{float(value):.4f}"
    return "n/a" if value is None else str(value)


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The report's table: what ran, on what, its scores, and the champion decision."""
    rows = [
        ("run", str(summary.get("run_name"))),
        ("data", f"{summary.get('source')} ({summary.get('data_source')})"),
    ]
    if summary.get("skipped"):
        rows.append(("outcome", str(summary["reason"])))
        return rows
    for split in ("valid", "test"):
        scores = summary.get(split) or {}
        for metric in ("auc", "gauc", "logloss"):
            rows.append((f"{split} {metric}", _number(scores.get(metric))))
    registry = summary.get("registry") or {}
    if registry.get("registered_model"):
        rows.append(("model version", f"{registry['registered_model']} v{registry.get('version')}"))
        rows.append(("promoted", str(registry.get("promoted"))))
        rows.append(("decision", str(registry.get("decision"))))
        for key, value in (registry.get("h2h") or {}).items():
            rows.append((key, _number(value)))
    return rows


def publish_summary_report(summary: Mapping[str, Any]) -> None:
    """The flow run's markdown artifact and the MLflow run's link back to it."""
    from tasks.run_report import publish_run_report

    title = f"din-train {summary.get('dataset')}: {summary.get('run_name')}"
    key = f"din-train-{summary.get('dataset')}"
    publish_run_report(summary.get("run_id"), title, summary_rows(summary), key=key)
