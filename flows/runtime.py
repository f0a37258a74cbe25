"""Process setup shared by the pipeline commands, done before Prefect is imported.

Prefect reads its settings from the environment when it is first imported, so
the defaults the project relies on are set here, as defaults only (a user's
own environment wins):

- ``PREFECT_SERVER_ANALYTICS_ENABLED=false``: the machines are offline; the
  telemetry call would log an error on every server start.
- ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120``: the temporary
  server of an in-process flow run takes ~22 s to start on a fresh database on
  2 cores, past Prefect's default of 20 s.
- ``PREFECT_LOGGING_EXTRA_LOGGERS=din_model,tasks``: the library's own log
  lines (epochs, counts) reach the Prefect run logs, not only the console.
  Prefect only gives those loggers its API handler, not a level, so they
  would still drop INFO (the root logger's level is WARNING):
  :func:`install_run_logging`, called at the start of a flow run, sets it.
- ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false``: no progress bars in logs.

A run that fails on the user's input (a :class:`din_model.errors.DinError`:
a missing source, a bad parameter) is logged by Prefect with the whole
traceback ("Encountered exception during execution" and again by the
engine); :class:`OneLineUserErrors`, installed on Prefect's handlers by
:func:`install_run_logging`, turns those records into one line
``DataError: <message>``. Other exceptions keep their traceback.

The health check uses the standard library so that ``din serve`` can say
"no server" without importing Prefect.

:func:`exit_on_sigterm` turns SIGTERM into ``SystemExit(143)`` for a command's
duration, so ``finally`` blocks (stopping the servers it started) run.
During a flow run Prefect has its own SIGTERM handler, which raises
``TerminationSignal`` (the run is then recorded as terminated) and, once
the flow is torn down, sends SIGTERM again to the handler installed here.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "din_model,tasks",
    # MLflow draws a progress bar for every artifact it downloads while logging a model
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
RUN_LOGGERS = ("din_model", "tasks")
# loggers whose handlers see Prefect's failure records (flow and task engines, the engine
# process's own logger); the filter on a handler rewrites the record for every later one
FAILURE_LOGGERS = ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.engine")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200


def apply_prefect_defaults() -> None:
    """Set the defaults above where the environment does not set them.

    A ``PREFECT_HOME`` whose parent folders do not exist yet is created here:
    Prefect creates only the last level and its temporary server then fails
    with "unable to open database file".
    """
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    home = os.environ.get("PREFECT_HOME")
    if home:
        Path(home).expanduser().mkdir(parents=True, exist_ok=True)


def _user_error(exc_info: object) -> BaseException | None:
    """The exception of a record when it is the user's to fix (as the ``din`` CLI judges it)."""
    from din_model.cli._main import is_user_error

    exc = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
    return exc if isinstance(exc, BaseException) and is_user_error(exc) else None


class OneLineUserErrors(logging.Filter):
    """Log a user's error (a :class:`~din_model.errors.DinError`, a missing file) as one line.

    The ``din`` CLI hides these tracebacks in its own process
    (:class:`din_model.cli._main.HideUserErrorTracebacks`); a served or worker
    flow run runs in Prefect's engine process, where this filter does it.

    The record keeps its level and logger; its message becomes
    ``<Prefect's message up to the exception>: <ErrorType>: <message>``, e.g.
    ``Encountered exception during execution: DataError: data/raw/movielens: expected ...``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = _user_error(record.exc_info)
        if exc is None:
            return True
        message = record.getMessage()
        shown = f"{type(exc).__name__}: {exc}"
        for form in (repr(exc), str(exc)):
            if form and form in message:
                message = message.replace(form, shown)
                break
        else:
            message = f"{message.rstrip(': ')}: {shown}"
        record.msg, record.args = message, None
        record.exc_info, record.exc_text = None, None
        return True


def install_run_logging(level: int = logging.INFO) -> None:
    """Make a flow run's log show the library's progress and users' errors in one line.

    Call it at the start of a flow (it is idempotent and cheap): it runs in the
    flow run's own process however that was started (``din run``, ``din serve``,
    a ``prefect worker``), after Prefect has configured logging there.

    - ``din_model`` and ``tasks`` get ``level`` (where they have none) and
      Prefect's API handler (where ``PREFECT_LOGGING_EXTRA_LOGGERS`` did not
      already add it), so epoch lines reach the run's logs in the Prefect UI;
    - every handler of Prefect's loggers gets :class:`OneLineUserErrors`.
    """
    from prefect.logging.handlers import APILogHandler

    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:  # a level the user chose stays
            logger.setLevel(level)
        if not any(isinstance(h, APILogHandler) for h in logger.handlers):
            logger.addHandler(APILogHandler())
    for name in FAILURE_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, OneLineUserErrors) for f in handler.filters):
                handler.addFilter(OneLineUserErrors())


def _exit_on_signal(number: int, frame: object) -> None:
    raise SystemExit(128 + number)


@contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """SIGTERM raises ``SystemExit(143)`` inside the block (main thread only; else no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def api_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    return f"http://{host}:{port}/api"


def server_healthy(url: str, timeout: float = 2.0) -> bool:
    """True when a Prefect API answers ``GET <url>/health`` with 200."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


NO_SERVER_HELP = """\
No Prefect server answers at {url}.
Start one in another terminal:
    PREFECT_SERVER_ANALYTICS_ENABLED=false .venv/bin/prefect server start --host 127.0.0.1
and point the pipeline at it:
    export PREFECT_API_URL=http://127.0.0.1:4200/api
or unset PREFECT_API_URL and let `din serve` start one for you."""
