"""The MLflow runs this process has open, so that its termination can end every one of them.

When SIGTERM or SIGINT reaches a ``din`` process, only the main thread sees
the exception; an ablation cell training in a Prefect worker thread does not.
The run that catches the signal therefore ends all runs still open in this
process (``terminate_all``), and the threads still working for those runs
find out at their next progress report (``raise_if_terminated``, called per
epoch) instead of finishing minutes of training into a run already closed.
Plain sets under a lock: no Prefect or MLflow here, so it imports anywhere.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_open: set[str] = set()
_terminated: dict[str, str] = {}  # run id -> why it was ended


class RunTerminated(BaseException):
    """Work for a run that this process already ended because it is being terminated.

    A BaseException, like KeyboardInterrupt: ``except Exception`` handlers and
    Prefect's retries must not swallow it.
    """


def opened(run_id: str) -> None:
    with _lock:
        _open.add(run_id)


def closed(run_id: str) -> None:
    with _lock:
        _open.discard(run_id)


def terminate_all(reason: str) -> list[str]:
    """Record ``reason`` for every open run not yet terminated; returns those run ids."""
    with _lock:
        newly = sorted(_open - _terminated.keys())
        for run_id in newly:
            _terminated[run_id] = reason
    return newly


def termination_reason(run_id: str) -> str | None:
    with _lock:
        return _terminated.get(run_id)


def raise_if_terminated(run_id: str) -> None:
    reason = termination_reason(run_id)
    if reason is not None:
        raise RunTerminated(f"run {run_id} was ended: {reason}")
