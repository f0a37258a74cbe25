"""Deployment runs read and write only under their configured roots.

The flow runs here are real deployment runs: the ``din-train/movielens``
deployment of :func:`flows.deployments.build_deployments` is registered with
Prefect's temporary server, a flow run is created from it with the API (as
``prefect deployment run`` does) and executed by Prefect's flow engine, as the
process that ``din serve`` spawns would. Paths outside the roots (plain,
through ``..``, through a symlink) are refused at the first step with a
one-line error naming the parameter, the path and the allowed roots, before
any MLflow run is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _pipeline_support import TINY_CONFIG

from tasks.allowed_paths import PathNotAllowed, check_run_paths


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    data, work, outside = tmp_path / "data-root", tmp_path / "work-root", tmp_path / "outside"
    for folder in (data, work, outside):
        folder.mkdir()
    monkeypatch.setenv("DIN_DATA_ROOTS", str(data))
    monkeypatch.setenv("DIN_WORK_DIR", str(work))
    return {"data": data, "work": work, "outside": outside}


def test_paths_inside_the_roots_pass(roots: dict[str, Path]) -> None:
    (roots["data"] / "ml").mkdir()
    (roots["data"] / "my.yaml").write_text("train: {epochs: 1}\n")
    check_run_paths(str(roots["data"] / "ml"), str(roots["work"] / "sub"), "paper")
    check_run_paths("auto", None, str(roots["data"] / "my.yaml"))
    check_run_paths("synthetic", str(roots["work"]), None)


@pytest.mark.parametrize(
    ("parameter", "where"),
    [
        ("source", "outside"),
        ("source", "dotdot"),
        ("source", "symlink"),
        ("work_dir", "outside"),
        ("work_dir", "symlink"),
        ("config_file", "outside"),
    ],
)
def test_paths_leaving_the_roots_are_refused(
    roots: dict[str, Path], parameter: str, where: str
) -> None:
    base = roots["work"] if parameter == "work_dir" else roots["data"]
    target = roots["outside"] / "secret.yaml"
    target.write_text("x: 1\n")
    if where == "outside":
        path = str(target)
    elif where == "dotdot":
        path = f"{base}/../outside"
    else:
        link = base / "link"
        link.symlink_to(roots["outside"])
        path = str(link / "secret.yaml")
    params: dict[str, Any] = {"source": "auto", "work_dir": None, "config_file": None}
    params[parameter] = path
    with pytest.raises(PathNotAllowed) as refused:
        check_run_paths(**params)
    message = str(refused.value)
    assert "\n" not in message
    assert f"parameter {parameter} = '{path}'" in message
    assert str(base) in message


def _deployment_run(parameters: dict[str, Any]):
    """Execute a flow run created from the din-train/movielens deployment; its final state."""
    from prefect import get_client
    from prefect.flow_engine import run_flow

    from flows.deployments import build_deployments
    from flows.train_flow import din_train

    deployment_id = build_deployments(["movielens"], paused=True)[0].apply()
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
        state = run_flow(din_train, flow_run=flow_run, return_type="state")
        recorded = client.read_flow_run(flow_run.id)
    assert recorded.deployment_id == deployment_id
    return state, recorded


def _mlflow_runs(uri: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments) if experiments else []


@pytest.mark.slow
def test_deployment_run_refuses_paths_outside_the_roots(
    prefect_server, mlflow_store: str, roots: dict[str, Path], movielens_100k: Path
) -> None:
    link = roots["data"] / "escape"
    link.symlink_to(movielens_100k)  # a real data set, but reached through a link out
    for parameters, name, shown in [
        ({"source": str(movielens_100k)}, "source", str(movielens_100k)),
        ({"source": str(link)}, "source", str(link)),
        ({"work_dir": f"{roots['work']}/../outside"}, "work_dir", str(roots["outside"])),
        ({"config_file": str(TINY_CONFIG)}, "config_file", str(TINY_CONFIG)),
    ]:
        state, recorded = _deployment_run(parameters)
        assert state.is_failed(), (parameters, state)
        assert recorded.state.is_failed()
        with pytest.raises(PathNotAllowed) as refused:
            state.result()
        message = str(refused.value)
        assert f"parameter {name} = " in message and shown in message
        assert "outside the allowed roots" in message
        assert str(roots["data"] if name != "work_dir" else roots["work"]) in message
    assert _mlflow_runs(mlflow_store) == []  # refused before any MLflow run was opened


@pytest.mark.slow
def test_deployment_run_accepts_paths_under_the_roots(
    prefect_server, mlflow_store: str, roots: dict[str, Path]
) -> None:
    empty = roots["data"] / "movielens-to-come"
    empty.mkdir()
    state, _ = _deployment_run({"source": str(empty), "work_dir": str(roots["work"] / "w")})
    assert state.is_failed()
    with pytest.raises(Exception) as failed:
        state.result()
    assert not isinstance(failed.value, PathNotAllowed)
    assert str(empty) in str(failed.value)  # got past the guard, to the data: no raw files there


def test_outside_a_deployment_run_nothing_is_restricted(
    roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``din run`` passes the user's own paths; only deployment runs are confined."""
    from tasks.allowed_paths import guard_deployment_paths

    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)
    guard_deployment_paths(str(roots["outside"]), str(roots["outside"]), None)
