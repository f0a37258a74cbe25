"""A real Prefect server, ``din serve`` for one deployment, ``prefect deployment run``, Completed.

Also: with ``PREFECT_API_URL`` pointing at nothing, ``din serve`` says how to
start a server instead of printing a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _pipeline_support import PREPARE_MAX_LEN, TINY_CONFIG, free_port, stop_process

from flows.runtime import server_healthy, wait_until

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@pytest.mark.slow
def test_serve_and_trigger_a_deployment(
    movielens_100k: Path, mlflow_store: str, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        MLFLOW_TRACKING_URI=mlflow_store,
        DIN_WORK_DIR=str(tmp_path / "work"),
        DIN_DATA_DIR=str(tmp_path / "data"),
    )
    env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={k: v for k, v in env.items() if k != "PREFECT_API_URL"},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    serve = None
    try:
        assert wait_until(lambda: server_healthy(url), 120), _tail(server_log)
        with serve_log.open("wb") as log:
            serve = subprocess.Popen(
                [
                    str(BIN / "din"),
                    "serve",
                    "--datasets",
                    "movielens",
                    "--cron",
                    "0 4 * * *",
                    # the run reads the shared data set and the test's config file
                    "--data-root",
                    str(movielens_100k),
                    "--data-root",
                    str(TINY_CONFIG.parent),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

        def listed() -> bool:
            shown = subprocess.run(
                [str(BIN / "prefect"), "deployment", "ls"], env=env, capture_output=True
            )
            return b"din-train/movielens" in shown.stdout

        assert wait_until(listed, 120, interval=2), _tail(serve_log)

        params = {
            "source": str(movielens_100k),
            "config_file": str(TINY_CONFIG),
            "max_len": PREPARE_MAX_LEN,
            "seed": 5,
        }
        triggered = subprocess.run(
            [
                str(BIN / "prefect"),
                "deployment",
                "run",
                "din-train/movielens",
                "--params",
                json.dumps(params),
                "--watch",
                "--watch-timeout",
                "300",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=330,
        )
        output = triggered.stdout + triggered.stderr
        assert triggered.returncode == 0, output + _tail(serve_log)
        assert "Completed" in output, output  # --watch-timeout already bounds the wait

        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=mlflow_store)
        experiment = client.get_experiment_by_name("din-movielens")
        (run,) = client.search_runs([experiment.experiment_id])
        assert run.info.status == "FINISHED"
        assert run.data.tags["seed"] == "5"
        assert client.get_model_version_by_alias("din-movielens", "champion").run_id == (
            run.info.run_id
        )
        deployment = subprocess.run(
            [str(BIN / "prefect"), "deployment", "inspect", "din-train/movielens"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout
        assert "0 4 * * *" in deployment
    finally:
        if serve is not None:
            assert stop_process(serve) is not None
        stop_process(server)
    assert serve.returncode in (0, -signal.SIGINT, 130), _tail(serve_log)


def test_serve_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = dict(os.environ, PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
    done = subprocess.run(
        [str(BIN / "din"), "serve", "--datasets", "amazon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "No Prefect server answers" in done.stdout
    assert "prefect server start --host 127.0.0.1" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
def test_prefect_yaml_deploys_to_a_process_work_pool(prefect_server) -> None:
    """``prefect deploy --all`` from the repository root creates what ``din serve`` serves."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL

    from din_model.registry import dataset_names
    from flows.deployments import deployment_parameters, train_parameter_names
    from tasks.model_source import default_model_uri

    env = dict(os.environ, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    for command in (
        ["work-pool", "create", "din", "--type", "process", "--overwrite"],
        ["--no-prompt", "deploy", "--all"],
    ):
        done = subprocess.run(
            [str(BIN / "prefect"), *command],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    with get_client(sync_client=True) as client:
        for dataset in dataset_names():
            train = client.read_deployment_by_name(f"din-train/{dataset}")
            assert train.work_pool_name == "din"
            assert train.parameters == deployment_parameters(dataset)
            # the names users pass with -p are the flow's own (the CLI's)
            assert set(train.parameters) <= set(train_parameter_names())
            assert set(train.parameter_openapi_schema["properties"]) == set(
                train_parameter_names()
            )
            assert [s.schedule.cron for s in train.schedules] == ["0 3 * * *"]
            score = client.read_deployment_by_name(f"din-score/{dataset}")
            assert score.work_pool_name == "din"
            assert score.parameters == {"dataset": dataset, "model": default_model_uri(dataset)}
            assert score.schedules == []
