"""The data steps inside a flow: cache hits on unchanged files, misses on changed ones, and
bad data stopping the din-train flow at validation with the Great Expectations summary."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from _pipeline_support import PREPARE_MAX_LEN, TINY_CONFIG, copy_movielens
from prefect import flow

from flows.steps import run_data_steps
from tasks.data import resolve_source

pytestmark = pytest.mark.slow


@flow(name="din-data-steps-test")
def data_steps_only(source: str, work: str) -> dict[str, Any]:
    spec = resolve_source("movielens", source)
    outcome = run_data_steps(spec, Path(work), seed=7, max_len=PREPARE_MAX_LEN)
    return {
        "cached": outcome.cached,
        "fingerprint": outcome.data_fingerprint,
        "canonical": outcome.canonical,
        "prepared": outcome.prepared,
    }


def test_cache_hit_on_unchanged_data_and_miss_on_changed_data(
    prefect_server, movielens_100k: Path, tmp_path: Path
) -> None:
    source = copy_movielens(movielens_100k, tmp_path / "ml-100k")
    work = tmp_path / "work"

    first = data_steps_only(str(source), str(work))
    assert first["cached"] == {"ingest": False, "prepare": False}
    assert (Path(first["prepared"]) / "train.parquet").is_file()

    second = data_steps_only(str(source), str(work))
    assert second["cached"] == {"ingest": True, "prepare": True}
    assert second["prepared"] == first["prepared"]

    ratings = source / "u.data"
    ratings.write_bytes(ratings.read_bytes().replace(b"\t3\t", b"\t4\t", 1))
    changed = data_steps_only(str(source), str(work))
    assert changed["cached"] == {"ingest": False, "prepare": False}
    assert changed["fingerprint"] != first["fingerprint"]
    assert changed["canonical"] != first["canonical"]

    # a cached step whose output folder was deleted runs again instead of returning a dead path
    import shutil

    shutil.rmtree(changed["canonical"])
    again = data_steps_only(str(source), str(work))
    assert again["cached"]["ingest"] is False
    assert Path(again["canonical"]).is_dir()


def test_bad_data_fails_the_flow_at_validation(
    prefect_server, mlflow_store: str, movielens_100k: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from din_model.errors import ValidationFailed
    from flows.train_flow import din_train

    source = copy_movielens(movielens_100k, tmp_path / "ml-100k")
    # Every rating a 5 (an export that lost the scale): each line is well-formed and in
    # range, so the readers' own checks pass; only the sample suite sees that every sample
    # is now a click (the spec's positive-rate bounds)
    ratings = source / "u.data"
    rows = [line.split("\t") for line in ratings.read_text().splitlines()]
    ratings.write_text("".join(f"{u}\t{i}\t5\t{t}\n" for u, i, _, t in rows))

    state = din_train(
        dataset="movielens",
        source=str(source),
        model="din",
        config_file=str(TINY_CONFIG),
        max_len=PREPARE_MAX_LEN,
        work_dir=str(tmp_path / "work"),
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(ValidationFailed) as failure:
        state.result()
    summary = failure.value.summary
    assert "label" in summary
    assert summary in state.message  # the flow's failure message carries the GE summary

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        )
    by_name = {run.name.rsplit("-", 1)[0]: run for run in task_runs}
    assert by_name["validate-canonical"].state.is_completed()
    assert by_name["validate-samples"].state.is_failed()
    assert "fit-and-score" not in by_name

    (run,) = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("din-movielens").experiment_id]
    )
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith("ValidationFailed")
    assert uuid.UUID(run.data.tags["prefect_flow_run_id"]) == flow_run.id
