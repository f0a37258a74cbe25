"""Two processes opening a fresh MLflow sqlite store at the same moment both succeed.

Without serialisation both see an empty database, both run MLflow's schema
creation, and one dies with ``table ... already exists`` before any run is
recorded. The processes here are real interpreters started together (they
import first, then wait on a shared "go" file), and each does what a
``din run`` does first: open the store, get-or-create the dataset's
experiment, create a run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROCESSES = 2
ROUNDS = 2
TIMEOUT_S = 120

WORKER = """
import os, sys, time
from pathlib import Path
from tasks.store import ensure_experiment
from tasks.tracking import finish_run, open_run
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.005)
experiment = ensure_experiment("movielens")
run_id = open_run("movielens", f"concurrent-{os.getpid()}", {"probe": "1"})
finish_run(run_id)
print(experiment, run_id)
"""


def _start_together(store: Path, tmp: Path) -> list[subprocess.CompletedProcess]:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{store / 'mlflow.db'}")
    go = tmp / "go"
    processes, ready_files, logs = [], [], []
    try:
        for index in range(PROCESSES):
            ready = tmp / f"ready-{index}"
            log = (tmp / f"worker-{index}.log").open("w+")
            logs.append(log)
            ready_files.append(ready)
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(ready), str(go)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        deadline = time.monotonic() + TIMEOUT_S
        while not all(r.exists() for r in ready_files):
            assert time.monotonic() < deadline, "workers did not start"
            assert all(p.poll() is None for p in processes), "a worker died while importing"
            time.sleep(0.05)
        go.touch()
        results = []
        for process, log in zip(processes, logs, strict=True):
            process.wait(timeout=TIMEOUT_S)
            log.seek(0)
            results.append(
                subprocess.CompletedProcess(process.args, process.returncode, log.read())
            )
        return results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for log in logs:
            log.close()


def test_concurrent_first_use_of_a_fresh_store(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    for round_ in range(ROUNDS):
        store = tmp_path / f"store-{round_}"
        scratch = tmp_path / f"scratch-{round_}"
        scratch.mkdir()
        results = _start_together(store, scratch)
        for result in results:
            assert result.returncode == 0, f"round {round_}:\n{result.stdout[-3000:]}"
        client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
        (experiment,) = [e for e in client.search_experiments() if e.name == "din-movielens"]
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == PROCESSES
        assert {r.info.status for r in runs} == {"FINISHED"}
        experiment_ids = {result.stdout.split()[-2] for result in results}
        assert experiment_ids == {experiment.experiment_id}
