"""Which process opened an MLflow run, recorded on the run so that others can tell if it lives.

A process killed with SIGKILL (or by the OOM killer, or a power cut) cannot
close its run, which would then stay RUNNING forever. Every run therefore
carries the host, pid and start time of the process that opened it
(``din.host``, ``din.pid``, ``din.pid_start``); a later process on the same
host checks whether that process still exists (:mod:`tasks.run_reaper`). The
start time guards against pid reuse: a live process with the recorded pid but
another start time is a different process.
"""

from __future__ import annotations

import os
import socket

HOST_TAG = "din.host"
PID_TAG = "din.pid"
PID_START_TAG = "din.pid_start"
START_TOLERANCE_S = 1.0  # start times are derived from the boot time, which can shift by ~1 s


def host_name() -> str:
    return socket.gethostname()


def start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if it is gone."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def process_tags() -> dict[str, str]:
    """The tags that identify this process: host, pid and start time."""
    pid = os.getpid()
    started = start_time(pid)
    return {
        HOST_TAG: host_name(),
        PID_TAG: str(pid),
        PID_START_TAG: "" if started is None else repr(started),
    }


def is_alive(pid: int, started: float | None) -> bool:
    """Whether the process that recorded (``pid``, ``started``) still runs on this host.

    A zombie (exited, not yet reaped by its parent) counts as dead; a process
    we may not inspect counts as alive (when in doubt, leave its runs alone).
    """
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
    return started is None or abs(created - started) <= START_TOLERANCE_S
