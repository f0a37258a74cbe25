"""Visible runs on a real Prefect server and MLflow store: report artifact, links, names, logs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from _pipeline_support import TINY_CONFIG


def _mlflow_run(name: str = "report-test") -> str:
    from tasks.store import ensure_experiment
    from tasks.tracking import client

    return client().create_run(ensure_experiment("amazon"), run_name=name).info.run_id


def _flow_logs(flow_run_id: str) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10, at_exit=False)  # the handler sends in the background
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(flow_run_id)]))
        )
    return [log.message for log in logs]


def test_outside_a_flow_run_nothing_is_published(mlflow_store: str) -> None:
    from tasks.run_names import current_trigger
    from tasks.run_report import FLOW_RUN_URL_TAG, prefect_flow_run_url, publish_run_report
    from tasks.tracking import client

    run_id = _mlflow_run()
    assert prefect_flow_run_url() is None
    assert publish_run_report(run_id, "title", {"gauc": "0.7"}) is None
    assert FLOW_RUN_URL_TAG not in client().get_run(run_id).data.tags
    assert current_trigger() == "manual"
    assert current_trigger("replay") == "replay"


def test_flow_run_gets_the_report_and_the_mlflow_run_its_url(
    prefect_server, mlflow_store: str
) -> None:
    from prefect import flow, get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from tasks.run_names import current_trigger
    from tasks.run_report import FLOW_RUN_URL_TAG, prefect_flow_run_url, publish_run_report
    from tasks.tracking import client

    run_id = _mlflow_run()

    @flow(name="report-test")
    def report(run_id: str) -> tuple[str | None, str | None, str, str]:
        artifact = publish_run_report(
            run_id,
            "amazon:magazine:din+none:seed1",
            [("test GAUC", "0.7213"), ("decision", "a|b")],
            key="Din Report_amazon",
        )
        return artifact, prefect_flow_run_url(), current_trigger(), current_trigger("replay")

    state = report(run_id, return_state=True)
    artifact_id, url, trigger, explicit = state.result()
    flow_run_id = str(state.state_details.flow_run_id)
    assert artifact_id is not None and url is not None
    assert url.endswith(f"/flow-runs/flow-run/{flow_run_id}")
    assert (trigger, explicit) == ("manual", "replay")  # a direct call is not a schedule

    with get_client(sync_client=True) as prefect:
        (artifact,) = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(flow_run_id)])
            )
        )
    assert str(artifact.id) == artifact_id
    assert artifact.type == "markdown"
    assert artifact.key == "din-report-amazon"  # cleaned to Prefect's key alphabet
    experiment_id = client().get_run(run_id).info.experiment_id
    assert f"#/experiments/{experiment_id}/runs/{run_id}" in artifact.data
    assert "| test GAUC | 0.7213 |" in artifact.data
    assert "| decision | a\\|b |" in artifact.data  # a pipe would split the cell
    assert client().get_run(run_id).data.tags[FLOW_RUN_URL_TAG] == url


def test_run_names_carry_trigger_and_date() -> None:
    from tasks.run_names import run_name

    assert run_name("movielens", "ml-100k", "din", "none", 7) == "movielens:ml-100k:din+none:seed7"
    assert (
        run_name("movielens", "ml-100k", "din", "none", 7, trigger="schedule", date="2026-05-04")
        == "movielens:ml-100k:din+none:seed7:schedule:2026-05-04"
    )


@pytest.mark.slow
def test_epoch_lines_and_a_one_line_user_error_reach_the_flow_run_log(
    prefect_server, amazon_magazine: Path, tmp_path: Path
) -> None:
    """The library's epoch line and a user's error, as a served flow run logs them.

    The flow calls what din-train calls: :func:`install_run_logging` first, then the
    library's training (its ``din_model.pipeline.session`` logger writes the epoch
    line) or :func:`tasks.data.resolve_source` (a missing folder is a DataError).
    """
    import subprocess
    import sys

    import yaml
    from prefect import flow

    from flows.runtime import install_run_logging

    prepared = tmp_path / "prepared"
    din = Path(sys.executable).with_name("din")
    subprocess.run(
        [str(din), "prepare", "--dataset", "amazon", "--source", str(amazon_magazine),
         "--out", str(prepared), "--max-len", "10"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    config = yaml.safe_load(TINY_CONFIG.read_text())

    @flow(name="log-test")
    def train(source: str) -> None:
        from din_model.pipeline import fit_and_score
        from tasks.data import resolve_source

        install_run_logging()
        resolve_source("amazon", source)
        fit_and_score(prepared, tmp_path / "run", "din", config=config, resume=False)

    state = train(str(amazon_magazine), return_state=True)
    assert state.is_completed(), state
    messages = _flow_logs(str(state.state_details.flow_run_id))
    assert any(m.startswith("epoch 1/1: loss") for m in messages), messages

    missing = tmp_path / "no-such-source"
    state = train(str(missing), return_state=True)
    assert state.is_failed()
    messages = _flow_logs(str(state.state_details.flow_run_id))
    failures = [m for m in messages if "DataError" in m]
    assert failures, messages
    assert all("Traceback" not in m and "\n" not in m for m in failures), failures
    assert any(str(missing) in m and "no such directory" in m for m in failures), failures
