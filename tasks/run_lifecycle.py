"""The life of one MLflow run, written once: open, then FINISHED, or FAILED with the reason.

Every flow that records a run (``din-train``, the ``din-ablation`` parent and
each of its cells) goes through :func:`tracked_run`, so no run stays RUNNING
after an error or a termination signal:

- success: the run ends FINISHED;
- an exception: FAILED, with ``error`` (type and message) and ``din.failure``;
- SIGTERM (Prefect turns it into ``TerminationSignal``) or SIGINT
  (``KeyboardInterrupt``): FAILED with ``din.failure`` = ``terminated by
  SIGTERM`` / ``terminated by SIGINT``, and so is every other run this process
  still has open (ablation cells in worker threads, see :mod:`tasks.open_runs`);
- SIGKILL cannot be caught: the run keeps the ``din.host``/``din.pid`` tags of
  its process and the next process that opens the store marks it KILLED
  (:mod:`tasks.run_reaper`).

Failures are recorded with direct store calls, not Prefect tasks: the process
may be going down, and recording why must not depend on the orchestrator.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tasks import open_runs, tracking

logger = logging.getLogger(__name__)

ERROR_TAG = "error"
MAX_ERROR_CHARS = 5000


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def termination_reason(exc: BaseException) -> str | None:
    """``terminated by SIG...`` when ``exc`` stands for a termination signal, else None."""
    from prefect.exceptions import TerminationSignal

    if isinstance(exc, TerminationSignal):
        return f"terminated by {signal_name(exc.signal)}"
    if isinstance(exc, KeyboardInterrupt):
        return "terminated by SIGINT"
    if isinstance(exc, open_runs.RunTerminated):
        return str(exc)
    return None


def failure_reason(exc: BaseException) -> str:
    return termination_reason(exc) or f"{type(exc).__name__}: {exc}"


def _end_failed(run_id: str, reason: str, error: str | None = None) -> None:
    """Mark ``run_id`` FAILED with its reason; never raises (the original error matters more)."""
    tags = {tracking.FAILURE_TAG: reason[:MAX_ERROR_CHARS]}
    if error:
        tags[ERROR_TAG] = error[:MAX_ERROR_CHARS]
    try:
        tracking.set_tags(run_id, tags)
        tracking.finish_run(run_id, failed=True)
    except Exception:
        logger.exception("could not mark MLflow run %s FAILED (%s)", run_id, reason)


def _record_failure(run_id: str, exc: BaseException) -> None:
    termination = termination_reason(exc)
    if termination is not None and not isinstance(exc, open_runs.RunTerminated):
        # The process is going down: end every run it has open, this one included.
        for other in open_runs.terminate_all(termination):
            _end_failed(other, termination, termination)
        return
    if open_runs.termination_reason(run_id) is not None:
        return  # already ended as terminated; a follow-up error does not replace the reason
    reason = failure_reason(exc)
    _end_failed(run_id, reason, f"{type(exc).__name__}: {exc}")


@contextmanager
def tracked_run(
    dataset: str,
    run_name: str,
    tags: Mapping[str, Any],
    parent_run_id: str | None = None,
) -> Iterator[str]:
    """Open a run in the dataset's experiment, yield its id, and end it whatever happens."""
    from tasks.run_logging import close_run, open_run

    run_id = open_run(dataset, run_name, tags, parent_run_id)
    open_runs.opened(run_id)
    try:
        yield run_id
    except BaseException as exc:
        _record_failure(run_id, exc)
        raise
    else:
        reason = open_runs.termination_reason(run_id)
        if reason is None:
            close_run(run_id)
        else:
            _end_failed(run_id, reason)
    finally:
        open_runs.closed(run_id)
