"""A Prefect server for ``din serve``: reuse one that answers, else start and own one.

The server runs as a child process (``prefect server start --host 127.0.0.1``)
and is stopped with SIGINT (Prefect's processes ignore SIGTERM for a long
time) when the ``with`` block ends, also on Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    log_path = Path(tempfile.gettempdir()) / f"din-prefect-server-{port}.log"
    print(f"Starting a Prefect server on {url} (log: {log_path}) ...")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        healthy = wait_until(
            lambda: process.poll() is None and server_healthy(url), startup_timeout
        )
        if not healthy:
            output = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
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
