"""``din run``: the din-train flow once, in this process, on a temporary Prefect server."""

from __future__ import annotations

import argparse

from flows.commands._common import MODELS, add_data_arguments, add_regularizer_argument


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
    add_regularizer_argument(parser)
    parser.add_argument("--seed", type=int, default=None, help="default 2024")
    parser.add_argument(
        "--no-register",
        dest="register",
        action="store_false",
        help="do not register the model as din-<dataset> (no champion decision)",
    )
    add_retrain_arguments(parser)
    parser.set_defaults(handler=handle)


def add_retrain_arguments(parser: argparse.ArgumentParser) -> None:
    """The scheduled-retraining options of din-train, as ``din run`` flags."""
    parser.add_argument(
        "--window", help="arriving source: train on its last N weeks or days only (8w, 30d)"
    )
    parser.add_argument(
        "--warm-start",
        action="store_true",
        help="start from the champion's weights for every id both vocabularies share",
    )
    parser.add_argument(
        "--skip-unchanged",
        action="store_true",
        help="end early, registering nothing, if a finished run already trained on the same "
        "data with the same config and seed (always on for an arriving source)",
    )
    parser.add_argument(
        "--min-gain",
        type=float,
        help="promotion: the GAUC gain over the champion whose 95%% interval must lie above "
        "it (default: din_model/configs/promotion.yaml)",
    )
    parser.add_argument(
        "--logloss-tolerance",
        type=float,
        help="promotion: how much worse than the champion's the LogLoss may be",
    )


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
            window=args.window,
            warm_start=args.warm_start,
            skip_unchanged=args.skip_unchanged,
            min_gain=args.min_gain,
            logloss_tolerance=args.logloss_tolerance,
        )
    print()
    if summary.get("skipped"):
        print(f"din-train {summary['dataset']}: {summary['reason']}; nothing trained or registered")
        return 0
    print(results_table(summary))
    print(ui_hint(summary))
    return 0
