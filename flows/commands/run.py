"""``din run``: the din-train flow once, in this process, on a temporary Prefect server."""

from __future__ import annotations

import argparse

from flows.commands._common import MODELS, REGULARIZERS, add_data_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the din-train flow once (ingest, validate, train, evaluate, log to MLflow)",
        description="Run the din-train Prefect flow in this process (on a temporary local "
        "Prefect server that stops with this command, unless PREFECT_API_URL is set) and log "
        "the run to MLflow.",
    )
    add_data_arguments(parser)
    parser.add_argument("--model", default="din", choices=MODELS)
    parser.add_argument("--reg", dest="regularizer", default="none", choices=REGULARIZERS)
    parser.add_argument("--seed", type=int, default=None, help="default 2024")
    parser.add_argument(
        "--no-register",
        dest="register",
        action="store_false",
        help="do not register the model as din-<dataset> (no champion decision)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from flows.commands._common import prefect_session, results_table, ui_hint

    with prefect_session():
        from flows.train_flow import DEFAULT_SEED, din_train
        from tasks.data import DEFAULT_SYNTHETIC_SCALE

        summary = din_train(
            dataset=args.dataset,
            source=args.source,
            model=args.model,
            regularizer=args.regularizer,
            overrides=args.overrides,
            seed=DEFAULT_SEED if args.seed is None else args.seed,
            config_file=args.config_file,
            max_len=args.max_len,
            synthetic_scale=args.synthetic_scale or DEFAULT_SYNTHETIC_SCALE,
            register_model=args.register,
            work_dir=args.work_dir,
        )
    print()
    print(results_table(summary))
    print(ui_hint(summary))
    return 0
