"""``din serve``: a Prefect server plus the din-train deployments and their schedules.

It serves ``din-score/<dataset>`` too (batch scoring with the champion, on demand).

With ``PREFECT_API_URL`` set, that server is used, and if it does not answer
the command says how to start one instead of failing later with "deployment
not found" or runs that stay Scheduled. Without it, a server already running
on 127.0.0.1:<port> is reused, or one is started and stopped with this process.

Runs of the deployments read and write only under the roots given by
``--data-root``/``--work-root`` (or ``DIN_DATA_ROOTS``/``DIN_WORK_DIR``), see
:mod:`tasks.allowed_paths`.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from din_model.registry import dataset_names


def register(subparsers: argparse._SubParsersAction) -> None:
    datasets = dataset_names()
    parser = subparsers.add_parser(
        "serve",
        help="serve the din-train and din-score deployments (starts a local Prefect server "
        "if needed)",
        description=f"Serve {', '.join(f'din-train/{d}' for d in datasets)} with a "
        "retraining schedule, so that `prefect deployment run din-train/<dataset> "
        "-p source=...` and the cron schedule execute here, and din-score/<dataset> "
        "(`-p input=FILE -p out=FILE`). Uses PREFECT_API_URL when set, "
        "else starts `prefect server start --host 127.0.0.1`.",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=datasets,
        default=list(datasets),
        help="deployments to serve (default: every registered dataset)",
    )
    parser.add_argument(
        "--cron",
        default=None,
        help="retraining schedule (default: $DIN_RETRAIN_CRON or '0 3 * * *', daily at 03:00)",
    )
    parser.add_argument(
        "--data-root",
        dest="data_roots",
        action="append",
        metavar="DIR",
        help="a folder under which deployment runs may read `source` and `config_file` "
        "(repeatable; default: $DIN_DATA_ROOTS, else the data root data/)",
    )
    parser.add_argument(
        "--work-root",
        metavar="DIR",
        help="the folder under which deployment runs write (`work_dir`; default: "
        "$DIN_WORK_DIR, else outputs/pipeline)",
    )
    parser.add_argument("--port", type=int, default=4200, help="port of a server started here")
    parser.add_argument(
        "--startup-timeout", type=float, default=120.0, help="seconds to wait for the server"
    )
    parser.set_defaults(handler=handle)


def configure_roots(data: list[str] | None, work: str | None) -> str:
    """Put the roots in the environment that the served runs inherit; describe them."""
    from tasks.allowed_paths import DATA_ROOTS_ENV, allowed_work_root, data_roots
    from tasks.paths import WORK_DIR_ENV

    if data:
        resolved = [str(Path(p).expanduser().resolve()) for p in data]
        os.environ[DATA_ROOTS_ENV] = os.pathsep.join(resolved)
    if work:
        os.environ[WORK_DIR_ENV] = str(Path(work).expanduser().resolve())
    readable = ", ".join(str(p) for p in data_roots())
    return f"Runs read data under {readable} and write under {allowed_work_root()}."


def handle(args: argparse.Namespace) -> int:
    from flows.runtime import apply_prefect_defaults
    from flows.server import ServerUnavailable, local_server

    apply_prefect_defaults()
    roots = configure_roots(args.data_roots, args.work_root)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API poll otherwise
    try:
        with local_server(
            os.environ.get("PREFECT_API_URL"), args.port, args.startup_timeout
        ) as url:
            os.environ["PREFECT_API_URL"] = url
            from flows.deployments import retrain_cron, serve_deployments

            names = ", ".join(f"din-train/{d}" for d in args.datasets)
            scoring = ", ".join(f"din-score/{d}" for d in args.datasets)
            print(f"Serving {names} on {url} (schedule '{retrain_cron(args.cron)}').")
            print(f"Serving {scoring} (on demand).")
            print(roots)
            print(f"Trigger a run from another shell:\n    export PREFECT_API_URL={url}")
            print("    prefect deployment run din-train/amazon -p source=auto")
            print("    prefect deployment run din-score/amazon -p input=FILE -p out=FILE")
            print("Ctrl-C stops serving (schedules are paused until served again).")
            serve_deployments(args.datasets, cron=args.cron)
    except ServerUnavailable as exc:
        print(f"din serve: {exc}")
        return 2
    return 0
