"""``din serve``: a Prefect server plus the din-train deployments and their schedules.

It serves ``din-score/<dataset>`` too (batch scoring with the champion, on demand).

With ``PREFECT_API_URL`` set, that server is used, and if it does not answer
the command says how to start one instead of failing later with "deployment
not found" or runs that stay Scheduled. Without it, a server already running
on 127.0.0.1:<port> is reused, or one is started and stopped with this process.

Each din-train deployment's parameters come from ``--deployments FILE``
(:func:`flows.deployments.load_deployments_file`), then ``--source
DATASET=PATH`` and ``--param DATASET.NAME=VALUE`` (which win); the banner
prints what each deployment runs with. A source outside the data roots is
refused here, before anything is served.

``--port`` also tells the UI of a server started here where its API is
(``PREFECT_UI_API_URL``), so the UI at :N talks to :N/api.

Runs of the deployments read and write only under the roots given by
``--data-root``/``--work-root`` (or ``DIN_DATA_ROOTS``/``DIN_WORK_DIR``), see
:mod:`tasks.allowed_paths`.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from din_model.errors import ConfigError
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
        help="retraining schedule (default: the deployments file's cron:, else "
        "$DIN_RETRAIN_CRON, else '0 3 * * *', daily at 03:00)",
    )
    parser.add_argument(
        "--source",
        dest="sources",
        action="append",
        metavar="DATASET=PATH",
        help="the folder din-train/DATASET retrains on (repeatable), e.g. "
        "movielens=../shared/data/movielens/ml-100k",
    )
    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        metavar="DATASET.NAME=VALUE",
        help="a din-train parameter of one deployment (repeatable; NAME as in `din run`, "
        "e.g. movielens.regularizer=mba, movielens.window=8w, amazon.warm_start=true; "
        "VALUE is read as a YAML scalar)",
    )
    parser.add_argument(
        "--deployments",
        metavar="FILE",
        help="a YAML file: `deployments: {DATASET: {source: PATH, NAME: VALUE, ...}}` and an "
        "optional `cron:`; --source/--param override it",
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


def deployment_settings(
    args: argparse.Namespace,
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The parameters per dataset (file, then flags) and the cron (flag, then file)."""
    from flows.deployments import (
        load_deployments_file,
        merge_parameters,
        parse_param_flags,
        parse_source_flags,
    )

    from_file, file_cron = ({}, None)
    if args.deployments:
        from_file, file_cron = load_deployments_file(args.deployments)
    parameters = merge_parameters(
        from_file, parse_source_flags(args.sources), parse_param_flags(args.params)
    )
    return parameters, args.cron or file_cron


def check_parameters(datasets: list[str], parameters: dict[str, dict[str, Any]]) -> None:
    """Refuse, before serving, a deployment whose paths lie outside the roots of its runs."""
    from flows.deployments import effective_parameters
    from tasks.allowed_paths import check_run_paths

    for dataset in datasets:
        params = effective_parameters(dataset, parameters)
        try:
            check_run_paths(
                str(params["source"]), params.get("work_dir"), params.get("config_file")
            )
        except ConfigError as exc:
            raise ConfigError(f"din-train/{dataset}: {exc}") from exc


def banner(url: str, datasets: list[str], parameters: dict[str, dict[str, Any]], cron: str) -> str:
    """What is served, with each din-train deployment's effective parameters."""
    from flows.deployments import effective_parameters

    lines = [f"Serving on {url} (schedule '{cron}'):"]
    for dataset in datasets:
        params = effective_parameters(dataset, parameters)
        shown = " ".join(f"{k}={v}" for k, v in params.items() if k != "dataset")
        lines.append(f"  din-train/{dataset}: {shown}")
    lines.append(f"  {', '.join(f'din-score/{d}' for d in datasets)} (on demand)")
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    from flows.runtime import apply_prefect_defaults
    from flows.server import ServerUnavailable, local_server

    apply_prefect_defaults()
    roots = configure_roots(args.data_roots, args.work_root)
    parameters, cron = deployment_settings(args)
    check_parameters(args.datasets, parameters)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API poll otherwise
    try:
        with local_server(
            os.environ.get("PREFECT_API_URL"), args.port, args.startup_timeout
        ) as url:
            os.environ["PREFECT_API_URL"] = url
            from flows.deployments import retrain_cron, serve_deployments

            print(banner(url, args.datasets, parameters, retrain_cron(cron)))
            print(roots)
            example = args.datasets[0]
            print(f"Trigger a run from another shell:\n    export PREFECT_API_URL={url}")
            print(f"    prefect deployment run din-train/{example}")
            print(f"    prefect deployment run din-score/{example} -p input=FILE -p out=FILE")
            print("Ctrl-C stops serving (schedules are paused until served again).")
            serve_deployments(args.datasets, cron=cron, parameters=parameters)
    except ServerUnavailable as exc:
        print(f"din serve: {exc}")
        return 2
    return 0
