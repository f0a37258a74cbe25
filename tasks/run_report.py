"""Link a Prefect flow run and its MLflow run both ways, with a readable report.

A served run is watched in the Prefect UI, its numbers live in MLflow; neither
pointed at the other. :func:`publish_run_report` gives the flow run a markdown
artifact (the metrics table and the MLflow run's address) and gives the MLflow
run the tag ``prefect_flow_run_url``. Outside a flow run it does nothing: a
plain Python call of the pipeline has no Prefect run to link.

Addresses: the Prefect UI's from ``PREFECT_UI_URL`` (Prefect derives it from
``PREFECT_API_URL``); MLflow's from ``DIN_MLFLOW_UI_URL`` when set, else the
tracking URI when it is an http(s) server, else ``din ui``'s
``http://127.0.0.1:5000`` (a sqlite store has no server of its own).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from tasks.store import experiment_url, tracking_uri

MLFLOW_UI_ENV = "DIN_MLFLOW_UI_URL"
DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"
FLOW_RUN_URL_TAG = "prefect_flow_run_url"
_KEY_UNSAFE = re.compile(r"[^a-z0-9-]+")


def mlflow_ui_base() -> str:
    """Where the MLflow UI of the current tracking store is served (see the module doc)."""
    explicit = os.environ.get(MLFLOW_UI_ENV)
    if explicit:
        return explicit.rstrip("/")
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return DEFAULT_MLFLOW_UI


def mlflow_run_url(run_id: str, experiment_id: str | None = None) -> str:
    """The MLflow UI address of a run (its experiment looked up when not given)."""
    if experiment_id is None:
        from tasks.tracking import client

        experiment_id = client().get_run(run_id).info.experiment_id
    return experiment_url(experiment_id, run_id, base=mlflow_ui_base())


def _current_flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = getattr(context, "flow_run", None)
    return None if flow_run is None else str(flow_run.id)


def prefect_flow_run_url() -> str | None:
    """The Prefect UI address of the current flow run; None outside one or without a UI URL."""
    from prefect.settings import PREFECT_UI_URL

    flow_run_id = _current_flow_run_id()
    base = PREFECT_UI_URL.value()
    if flow_run_id is None or not base:
        return None
    # the path prefect.runtime.flow_run.ui_url builds, without its "None/..." when unset
    return f"{str(base).rstrip('/')}/flow-runs/flow-run/{flow_run_id}"


def _cell(value: object) -> str:
    """A markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def report_markdown(
    title: str, rows: Iterable[tuple[str, str]], mlflow_url: str | None, flow_run_url: str | None
) -> str:
    """The artifact's text: a heading, the metrics table, the links."""
    lines = [f"# {_cell(title)}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {_cell(name)} | {_cell(value)} |" for name, value in rows]
    lines.append("")
    if mlflow_url:
        lines.append(f"MLflow run: [{mlflow_url}]({mlflow_url})")
    if flow_run_url:
        lines.append(f"Prefect flow run: [{flow_run_url}]({flow_run_url})")
    return "\n".join(lines) + "\n"


def artifact_key(text: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) made from ``text``."""
    return _KEY_UNSAFE.sub("-", text.lower()).strip("-") or "din-report"


def publish_run_report(
    run_id: str | None,
    title: str,
    rows: Iterable[tuple[str, str]] | Mapping[str, object],
    *,
    key: str | None = None,
) -> str | None:
    """Attach the report to the current flow run and tag the MLflow run with its address.

    Returns the artifact's id, or None outside a flow run (nothing is written then).
    ``run_id`` None: a flow run that opened no MLflow run (a retrain with no new data);
    the report has no MLflow link and no run is tagged.
    ``key`` (cleaned to Prefect's key alphabet) lists the artifact on the UI's
    Artifacts page, with one version per run under the same key.
    """
    if _current_flow_run_id() is None:
        return None
    from prefect.artifacts import create_markdown_artifact

    from tasks.tracking import set_tags

    items = list(rows.items()) if isinstance(rows, Mapping) else list(rows)
    flow_run_url = prefect_flow_run_url()
    mlflow_url = None if run_id is None else mlflow_run_url(run_id)
    markdown = report_markdown(title, items, mlflow_url, flow_run_url)
    artifact_id = create_markdown_artifact(
        markdown,
        key=None if key is None else artifact_key(key),
        description=f"MLflow run {run_id}" if run_id else "no MLflow run",
    )
    if flow_run_url and run_id is not None:
        set_tags(run_id, {FLOW_RUN_URL_TAG: flow_run_url})
    return str(artifact_id)
