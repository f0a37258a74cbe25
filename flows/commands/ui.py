"""``din ui``: the MLflow UI on the project's store, bound to 127.0.0.1."""

from __future__ import annotations

import argparse


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

    uri = configure_mlflow()
    command = [sys.executable, "-m", "mlflow", *ui_command(port=args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port}  (store: {uri}); Ctrl-C stops it.")
    sys.stdout.flush()
    os.execv(sys.executable, command)
    return 0  # not reached
