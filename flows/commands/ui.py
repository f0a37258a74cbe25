"""``din ui``: the MLflow UI on the project's store, bound to 127.0.0.1.

The port is checked before ``mlflow ui`` replaces this process: on a busy port
mlflow's server would print a traceback and keep running without serving, so
``din ui`` stops at once with one line naming the port instead.
"""

from __future__ import annotations

import argparse
import errno
import socket

from din_model.errors import ConfigError

HOST = "127.0.0.1"


def check_port_free(port: int, host: str = HOST) -> None:
    """ConfigError (one line) when ``host:port`` cannot be bound: in use, or not allowed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as a server binds: a port left in TIME_WAIT is free, only a listener makes it busy
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (another `din ui` or MLflow "
                    "server?); stop it or pick another with --port"
                ) from exc
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ui",
        help="open the MLflow UI on the project's tracking store (127.0.0.1)",
        description="Start `mlflow ui` on the project's store (sqlite:///mlflow/mlflow.db "
        "unless MLFLOW_TRACKING_URI says otherwise), bound to 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Replace this process with ``mlflow ui`` so Ctrl-C and SIGTERM reach it directly."""
    import os
    import sys

    from tasks.store import configure_mlflow, ui_command

    check_port_free(args.port)
    uri = configure_mlflow()
    command = [sys.executable, "-m", "mlflow", *ui_command(port=args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port}  (store: {uri}); Ctrl-C stops it.")
    sys.stdout.flush()
    os.execv(sys.executable, command)
    return 0  # not reached
