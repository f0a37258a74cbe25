"""``din serve``: a Prefect server plus the din-train deployments and their schedules.

With ``PREFECT_API_URL`` set, that server is used, and if it does not answer
the command says how to start one instead of failing later with "deployment
not found" or runs that stay Scheduled. Without it, a server already running
on 127.0.0.1:<port> is reused, or one is started and stopped with this process.
"""

from __future__ import annotations

import argparse
import logging
import os

from din_model.names import DATASETS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the din-train deployments (starts a local Prefect server if needed)",
        description="Serve din-train/amazon, din-train/movielens and din-train/taobao with a "
        "retraining schedule, so that `prefect deployment run din-train/<dataset> "
        "-p source=...` and the cron schedule execute here. Uses PREFECT_API_URL when set, "
        "else starts `prefect server start --host 127.0.0.1`.",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=DATASETS,
        default=list(DATASETS),
        help="deployments to serve (default: all three)",
    )
    parser.add_argument(
        "--cron",
        default=None,
        help="retraining schedule (default: $DIN_RETRAIN_CRON or '0 3 * * *', daily at 03:00)",
    )
    parser.add_argument("--port", type=int, default=4200, help="port of a server started here")
    parser.add_argument(
        "--startup-timeout", type=float, default=120.0, help="seconds to wait for the server"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from flows.runtime import apply_prefect_defaults
    from flows.server import ServerUnavailable, local_server

    apply_prefect_defaults()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API poll otherwise
    try:
        with local_server(
            os.environ.get("PREFECT_API_URL"), args.port, args.startup_timeout
        ) as url:
            os.environ["PREFECT_API_URL"] = url
            from flows.deployments import retrain_cron, serve_deployments

            names = ", ".join(f"din-train/{d}" for d in args.datasets)
            print(f"Serving {names} on {url} (schedule '{retrain_cron(args.cron)}').")
            print(f"Trigger a run from another shell:\n    export PREFECT_API_URL={url}")
            print("    prefect deployment run din-train/amazon -p source=auto")
            print("Ctrl-C stops serving (schedules are paused until served again).")
            serve_deployments(args.datasets, cron=args.cron)
    except ServerUnavailable as exc:
        print(f"din serve: {exc}")
        return 2
    return 0
