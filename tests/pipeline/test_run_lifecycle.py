"""A ``din`` command that is terminated or killed leaves no RUNNING MLflow run and no server.

Real processes: ``din run`` / ``din ablation`` on real MovieLens 100K in a
subprocess, with a real MLflow sqlite store and the temporary Prefect server
that the command starts. Each test waits until the run has logged its first
epoch (so the signal lands in the middle of training), records the
command's child processes, signals it, and checks:

- SIGKILL: the server child is gone, the run stays RUNNING until the next
  command opens the store (``din rerun``), which marks it KILLED;
- SIGTERM / SIGINT: the run is FAILED with ``din.failure`` = ``terminated by
  SIGTERM`` / ``SIGINT``, the server is gone, the command exits with 143 / 130;
- SIGTERM of an ablation: parent and the cell in training both FAILED, no
  further cell started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from _pipeline_support import PREPARE_MAX_LEN, TINY_CONFIG

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 180  # command start + server start + data steps + one epoch, on 2 busy cores
EXIT_TIMEOUT_S = 90
LONG_TRAINING = ["--set", "train.epochs=60", "--set", "train.early_stopping_patience=60"]


@pytest.fixture(scope="module")
def shared_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """PREFECT_HOME and work folder shared by the module: later servers and data steps are warm."""
    root = tmp_path_factory.mktemp("lifecycle")
    return {"prefect_home": root / "prefect-home", "work": root / "work", "data": root / "data"}


@pytest.fixture
def command_env(mlflow_store: str, shared_dirs: dict[str, Path]) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PREFECT_API_URL", "PREFECT_LOCAL_STORAGE_PATH"):
        env.pop(key, None)
    env.update(
        MLFLOW_TRACKING_URI=mlflow_store,
        PREFECT_HOME=str(shared_dirs["prefect_home"]),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        DIN_WORK_DIR=str(shared_dirs["work"]),
        DIN_DATA_DIR=str(shared_dirs["data"]),
    )
    return env


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _runs(uri: str) -> list:
    """Every run in the test's own store (only the command under test writes there)."""
    client = _client(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments) if experiments else []


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _wait_for_training(uri: str, process: subprocess.Popen, log: Path, count: int = 1) -> list:
    """The process's runs once ``count`` of them have logged an epoch (fails on timeout or exit)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the command ended early:\n{_tail(log)}"
        runs = _runs(uri)
        if sum("train_loss" in r.data.metrics for r in runs) >= count:
            return runs
        time.sleep(0.5)
    pytest.fail(f"no run logged an epoch within {START_TIMEOUT_S} s:\n{_tail(log)}")


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(_gone(p) for p in processes):
        time.sleep(0.2)
    return [p for p in processes if not _gone(p)]


def _kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


@pytest.fixture
def started() -> Iterator[list[tuple[subprocess.Popen, list[psutil.Process]]]]:
    """Commands a test starts, with their children; all killed at the end whatever happened."""
    commands: list[tuple[subprocess.Popen, list[psutil.Process]]] = []
    yield commands
    for process, children in commands:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        _kill_all(children)


def _start(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(BIN / "din"), *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )


def _din_run_in_training(
    movielens_100k: Path, env: dict[str, str], mlflow_store: str, log: Path, started: list
) -> tuple[subprocess.Popen, Any, list[psutil.Process]]:
    """Start a real `din run`; return it, its MLflow run and its children once it trains."""
    process = _start(["run", *_run_args(movielens_100k), "--no-register"], env, log, log.parent)
    started.append((process, []))
    (run,) = _wait_for_training(mlflow_store, process, log)
    children = _children(process)
    started[-1] = (process, children)
    return process, run, children


def _run_args(movielens_100k: Path) -> list[str]:
    return [
        "--dataset",
        "movielens",
        "--source",
        str(movielens_100k),
        "--config",
        str(TINY_CONFIG),
        "--max-len",
        str(PREPARE_MAX_LEN),
        *LONG_TRAINING,
    ]


def _children(process: subprocess.Popen) -> list[psutil.Process]:
    children = psutil.Process(process.pid).children(recursive=True)
    assert children, "the command has no child process (its temporary Prefect server)"
    return children


def test_sigkill_kills_the_server_and_the_next_command_marks_the_run_killed(
    movielens_100k: Path,
    command_env: dict[str, str],
    mlflow_store: str,
    tmp_path: Path,
    started: list,
) -> None:
    log = tmp_path / "run.log"
    process, run, children = _din_run_in_training(
        movielens_100k, command_env, mlflow_store, log, started
    )
    process_started = psutil.Process(process.pid).create_time()

    process.send_signal(signal.SIGKILL)
    process.wait(timeout=EXIT_TIMEOUT_S)
    survivors = _wait_gone(children, timeout=15)
    assert not survivors, f"children outlived a SIGKILLed din run: {survivors}"
    assert _client(mlflow_store).get_run(run.info.run_id).info.status == "RUNNING"
    assert run.data.tags["din.host"] == socket.gethostname()
    assert run.data.tags["din.pid"] == str(process.pid)
    # both sides are psutil's create_time of one process (boot time + start ticks, the same
    # float); the tag holds its decimal text, so only that text's rounding can differ
    assert float(run.data.tags["din.pid_start"]) == pytest.approx(process_started, abs=1.0)

    rerun = subprocess.run(
        [str(BIN / "din"), "rerun", run.info.run_id],
        env=command_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert rerun.returncode == 2, rerun.stdout + rerun.stderr
    assert f"run {run.info.run_id} is KILLED" in rerun.stdout
    killed = _client(mlflow_store).get_run(run.info.run_id)
    assert killed.info.status == "KILLED"
    assert killed.info.end_time is not None
    assert f"process {process.pid}" in killed.data.tags["din.failure"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_fails_the_run_with_its_name_and_stops_the_server(
    signum: signal.Signals,
    movielens_100k: Path,
    command_env: dict[str, str],
    mlflow_store: str,
    tmp_path: Path,
    started: list,
) -> None:
    log = tmp_path / "run.log"
    process, run, children = _din_run_in_training(
        movielens_100k, command_env, mlflow_store, log, started
    )

    process.send_signal(signum)
    code = process.wait(timeout=EXIT_TIMEOUT_S)
    assert code == 128 + signum, _tail(log)  # exited through its cleanup, not killed
    assert not _wait_gone(children, timeout=15)
    ended = _client(mlflow_store).get_run(run.info.run_id)
    assert ended.info.status == "FAILED"
    assert ended.data.tags["din.failure"] == f"terminated by {signum.name}"


def test_sigterm_of_an_ablation_fails_parent_and_running_cell(
    movielens_100k: Path,
    command_env: dict[str, str],
    mlflow_store: str,
    tmp_path: Path,
    started: list,
) -> None:
    log = tmp_path / "ablation.log"
    args = ["ablation", *_run_args(movielens_100k), "--models", "din", "base"]
    process = _start([*args, "--regs", "none", "--cross"], command_env, log, tmp_path)
    started.append((process, []))
    _wait_for_training(mlflow_store, process, log)
    children = _children(process)
    started[-1] = (process, children)

    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=EXIT_TIMEOUT_S)
    assert code == 128 + signal.SIGTERM, _tail(log)
    assert not _wait_gone(children, timeout=15)
    runs = _runs(mlflow_store)
    parents = [r for r in runs if r.data.tags.get("ablation") == "true"]
    cells = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(cells) == 1, [r.info.run_name for r in runs]
    assert cells[0].data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    for run in runs:
        assert run.info.status == "FAILED", run.info.run_name
        assert run.data.tags["din.failure"] == "terminated by SIGTERM", run.info.run_name


def test_a_user_error_in_a_flow_prints_one_line_and_no_traceback(
    command_env: dict[str, str], mlflow_store: str, tmp_path: Path
) -> None:
    """Prefect's engine logs a failed flow's exception with its traceback; for a user error
    the real `din run` shows the message only (and `--debug` brings the traceback back)."""
    missing = tmp_path / "nowhere"
    args = ["run", "--dataset", "movielens", "--source", str(missing), "--no-register"]

    def din(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "din"), *argv],
            env=command_env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )

    plain = din(*args)
    assert plain.returncode == 2, plain.stdout + plain.stderr
    assert "Traceback" not in plain.stdout + plain.stderr
    assert plain.stderr.rstrip().splitlines()[-1] == (
        f"din run: error: {missing}: expected a directory with the raw files of movielens, "
        "got no such directory"
    )
    assert not [r for r in _runs(mlflow_store) if r.info.status == "RUNNING"]

    debug = din("--debug", *args)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
