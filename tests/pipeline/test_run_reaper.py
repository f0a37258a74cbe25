"""Opening the store marks KILLED exactly the RUNNING runs whose process is gone.

Real store, real processes: runs are tagged with the pid of this test process
(alive), of a process that has exited, of an exited child not yet reaped (a
zombie), and with this process's pid but another start time (the pid was
reused by a different process). Only runs of this host are judged.
"""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from tasks.process_identity import HOST_TAG, PID_START_TAG, PID_TAG, process_tags


def _exited_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def _zombie() -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return child


def test_runs_of_dead_processes_of_this_host_are_marked_killed(mlflow_store: str) -> None:
    from mlflow import MlflowClient

    from tasks.store import configure_mlflow

    client = MlflowClient(tracking_uri=mlflow_store)
    experiment = client.create_experiment("din-movielens")
    me = process_tags()
    host, started = me[HOST_TAG], float(me[PID_START_TAG])
    dead, zombie = _exited_pid(), _zombie()
    try:
        cases = {
            "alive": (me, "RUNNING"),
            "pid reused": ({**me, PID_START_TAG: repr(started - 3600)}, "KILLED"),
            "exited": ({HOST_TAG: host, PID_TAG: str(dead), PID_START_TAG: "1.0"}, "KILLED"),
            "zombie": ({HOST_TAG: host, PID_TAG: str(zombie.pid)}, "KILLED"),
            "other host": ({HOST_TAG: "elsewhere.invalid", PID_TAG: str(dead)}, "RUNNING"),
            "untagged": ({}, "RUNNING"),
        }
        ids = {
            name: client.create_run(experiment, run_name=name, tags=tags).info.run_id
            for name, (tags, _) in cases.items()
        }
        finished = client.create_run(experiment, tags={HOST_TAG: host, PID_TAG: str(dead)})
        client.set_terminated(finished.info.run_id, "FINISHED")

        configure_mlflow()  # the first use of this store in this process sweeps it

        for name, (_, expected) in cases.items():
            run = client.get_run(ids[name])
            assert run.info.status == expected, name
            assert ("din.failure" in run.data.tags) == (expected == "KILLED"), name
        assert client.get_run(finished.info.run_id).info.status == "FINISHED"
        reason = client.get_run(ids["exited"]).data.tags["din.failure"]
        assert f"process {dead} on {host}" in reason
    finally:
        zombie.wait(timeout=10)
