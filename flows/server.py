"""Prefect servers owned by a ``din`` process, which die with it.

- :func:`local_server`, for ``din serve``: reuse a server that answers, else
  start ``prefect server start --host 127.0.0.1`` (UI, schedules).
- :func:`temporary_server`, for ``din run``/``rerun``/``ablation``: the same
  API server Prefect would start itself for a flow called without
  ``PREFECT_API_URL`` (no UI, ephemeral services), but started here, so that
  it is tied to this process: Prefect's own temporary server survives a
  SIGKILL of its parent.

Both run as children started through :mod:`flows.die_with_parent` (the kernel
kills them when this process dies, even by SIGKILL) and are stopped with
SIGINT (Prefect's processes ignore SIGTERM for a long time) when the ``with``
block ends, also on Ctrl-C. A server's log goes to a fresh private folder
(``mkdtemp``, mode 0700) and is created with ``O_EXCL|O_NOFOLLOW``, never to a
predictable path in the shared temporary folder, where a planted symlink
would make us overwrite whatever it points to.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.die_with_parent import popen_tied_to_parent
from flows.runtime import DEFAULT_HOST, NO_SERVER_HELP, api_url, server_healthy, wait_until

logger = logging.getLogger(__name__)


class ServerUnavailable(RuntimeError):
    """No Prefect API can be reached or started; the message says what to do."""


def prefect_executable() -> str:
    """The ``prefect`` script of this interpreter's environment (the venv's)."""
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else (shutil.which("prefect") or "prefect")


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGINT, then SIGTERM, then SIGKILL, each after ``timeout`` seconds without an exit.

    SIGINT first (Prefect's processes shut down cleanly on it); SIGTERM next,
    because a process started from a non-interactive shell's background job
    inherits an ignored SIGINT.
    """
    for stop in (signal.SIGINT, signal.SIGTERM):
        if process.poll() is not None:
            return
        process.send_signal(stop)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    process.kill()
    process.wait(timeout=10)


LOG_PREFIX = "din-prefect-server-"
LOG_NAME = "server.log"


def private_log_file() -> tuple[Path, int]:
    """A new log file in a new folder only this user can enter: (path, open write fd).

    ``mkdtemp`` creates the folder with mode 0700 under a random name; the
    file is created with ``O_EXCL|O_NOFOLLOW``, so neither an existing file
    nor a symlink is ever opened for writing.
    """
    folder = Path(tempfile.mkdtemp(prefix=LOG_PREFIX))
    path = folder / LOG_NAME
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return path, os.open(path, flags, 0o600)


def _log_tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


UI_API_URL_ENV = ("PREFECT_SERVER_UI_API_URL", "PREFECT_UI_API_URL")


def server_environment(url: str) -> dict[str, str]:
    """The environment of ``prefect server start`` for the API at ``url``.

    Without ``PREFECT_API_URL`` its UI would assume port 4200 ("Can't connect
    to Server API" on any other port), so the UI's API URL is set to ``url``,
    unless the user's environment sets it (e.g. behind a proxy).
    """
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    if not any(env.get(name) for name in UI_API_URL_ENV):
        env[UI_API_URL_ENV[0]] = url
    return env


@contextmanager
def local_server(
    configured_url: str | None, port: int, startup_timeout: float = 120.0
) -> Iterator[str]:
    """Yield the API URL of a healthy server, starting one on 127.0.0.1:``port`` if needed."""
    if configured_url:
        if not server_healthy(configured_url):
            raise ServerUnavailable(NO_SERVER_HELP.format(url=configured_url))
        yield configured_url
        return
    url = api_url(DEFAULT_HOST, port)
    if server_healthy(url):
        logger.info("using the Prefect server already running at %s", url)
        yield url
        return
    command = [prefect_executable(), "server", "start", "--host", DEFAULT_HOST, "--port", str(port)]
    env = server_environment(url)
    log_path, log_fd = private_log_file()
    print(f"Starting a Prefect server on {url} (log: {log_path}) ...")
    try:
        process = popen_tied_to_parent(command, env=env, stdout=log_fd, stderr=subprocess.STDOUT)
    finally:
        os.close(log_fd)
    try:
        healthy = wait_until(
            lambda: process.poll() is None and server_healthy(url), startup_timeout
        )
        if not healthy:
            output = _log_tail(log_path)
            raise ServerUnavailable(
                f"the Prefect server did not become healthy at {url} within "
                f"{startup_timeout:.0f} s"
                + (f"; its output:\n{output}" if output else "")
                + "\n\n"
                + NO_SERVER_HELP.format(url=url)
            )
        yield url
    finally:
        stop_process(process)


TEMPORARY_SERVER_ENV = {
    # what Prefect 3.8 sets for its own temporary server (SubprocessASGIServer):
    # no UI, only the services an ephemeral server runs
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
PORT_IN_USE_EXIT = 3  # uvicorn's exit code when it cannot bind
START_ATTEMPTS = 3


class _PortTaken(ServerUnavailable):
    """Another process bound the free port between our probe and the server's bind."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((DEFAULT_HOST, 0))
        return sock.getsockname()[1]


def _temporary_server_command(port: int) -> list[str]:
    spec = importlib.util.find_spec("prefect")  # located, not imported: settings load on import
    if spec is None or spec.origin is None:
        raise ServerUnavailable("the prefect package is not installed in this environment")
    app_dir = str(Path(spec.origin).parent.parent)
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        app_dir,
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        DEFAULT_HOST,
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def _start_uvicorn(env: dict[str, str], startup_timeout: float) -> tuple[subprocess.Popen, str]:
    """One try: the process and its API URL, healthy, or stopped with ServerUnavailable."""
    port = _free_port()
    url = api_url(DEFAULT_HOST, port)
    process = popen_tied_to_parent(_temporary_server_command(port), env=env)
    wait_until(lambda: process.poll() is not None or server_healthy(url), startup_timeout)
    if process.poll() is None and server_healthy(url):
        return process, url
    stop_process(process, timeout=5)
    error = _PortTaken if process.returncode == PORT_IN_USE_EXIT else ServerUnavailable
    raise error(
        f"Prefect's temporary server did not become healthy at {url} within "
        f"{startup_timeout:.0f} s (exit code {process.returncode}); its errors are above"
    )


@contextmanager
def temporary_server(startup_timeout: float = 120.0) -> Iterator[str]:
    """Yield the API URL of a Prefect server on a free 127.0.0.1 port, owned by this process.

    Its errors go to this process's stderr, as with Prefect's own temporary server.
    """
    env = {**os.environ, **TEMPORARY_SERVER_ENV}
    env.pop("PREFECT_API_URL", None)
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            process, url = _start_uvicorn(env, startup_timeout)
            break
        except _PortTaken:
            if attempt == START_ATTEMPTS:
                raise
    logger.info("temporary Prefect server at %s (pid %d)", url, process.pid)
    try:
        yield url
    finally:
        stop_process(process, timeout=5)
