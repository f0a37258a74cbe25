"""``din replay``: the din-replay flow, scheduled retraining replayed over a dataset's history."""

from __future__ import annotations

import argparse

from flows.commands._common import MODELS, REGULARIZERS


def register(subparsers: argparse._SubParsersAction) -> None:
    from din_model.config.overrides import add_override_argument
    from din_model.registry import dataset_names

    parser = subparsers.add_parser(
        "replay",
        help="replay scheduled retraining over a real dataset's timeline (one din-train run per "
        "arrival, champion and challenger head to head, a timeline plot)",
        description="Cut a real dataset's timeline into arrivals (--every 1d|1w|1m), land them "
        "one at a time and run the din-train flow after each, as a scheduled retrain would. "
        "The versions go to their own registered model (din-<dataset>-replay-<id>), never to "
        "din-<dataset>; the timeline and its plot are logged to a parent MLflow run.",
    )
    parser.add_argument("--dataset", required=True, choices=dataset_names())
    parser.add_argument("--source", required=True, help="folder with the owner's raw files")
    parser.add_argument("--every", default="1w", help="arrival period: 1d, 1w or 1m (default 1w)")
    parser.add_argument(
        "--start", help="ISO date: events before it form the first arrival (the initial history)"
    )
    parser.add_argument("--limit", type=int, help="replay only the first N arrivals after it")
    parser.add_argument("--model", default="din", choices=MODELS)
    parser.add_argument(
        "--regularizer", "--reg", dest="regularizer", default="none", choices=REGULARIZERS
    )
    add_override_argument(parser, "config override, as for `din train` (repeatable)")
    parser.add_argument("--config", dest="config_file", help="a YAML config file or preset name")
    parser.add_argument("--seed", type=int, default=None, help="default 2024")
    parser.add_argument("--window", help="train on the last N weeks/days only (8w, 30d)")
    parser.add_argument(
        "--warm-start", action="store_true", help="start each challenger from the champion"
    )
    parser.add_argument("--min-gain", type=float, help="promotion threshold (promotion.yaml)")
    parser.add_argument("--logloss-tolerance", type=float, help="promotion LogLoss tolerance")
    parser.add_argument("--plot", help="also write the timeline plot to this PNG file")
    parser.add_argument("--force", action="store_true", help="replace an existing --plot file")
    parser.add_argument("--work-dir", help="arrivals, caches and runs (default outputs/pipeline)")
    parser.set_defaults(handler=handle)


def timeline_table(result: dict) -> str:
    """The timeline as text: one line per retrain."""
    lines = [f"{'arrival':<14}{'champion':>10}{'challenger':>12}{'diff [95% CI]':>28}  decision"]
    for row in result["rows"]:
        if row["skipped"]:
            lines.append(f"{row['arrival']:<14}{'':>50}  {row['decision']}")
            continue
        interval = (
            f"{row['gauc_diff']:+.4f} [{row['gauc_diff_low']:+.4f}, {row['gauc_diff_high']:+.4f}]"
        )
        mark = "PROMOTED" if row["promoted"] else "kept"
        lines.append(
            f"{row['arrival']:<14}{row['champion_gauc']:>10.4f}{row['challenger_gauc']:>12.4f}"
            f"{interval:>28}  {mark}: {row['decision']}"
        )
    lines.append(
        f"{result['retrains']} retrains, {result['promotions']} promotions; versions in "
        f"{result['registered_model']}; MLflow run {result['run_id']}"
    )
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from din_model.io.output_dir import claim_output_file
    from flows.commands._common import prefect_session

    plot = None
    if args.plot:
        plot = Path(args.plot).expanduser().resolve()
        claim_output_file(plot, force=args.force, sources=[Path(args.source)])
    with prefect_session():
        from flows.replay_flow import din_replay
        from flows.train_flow import DEFAULT_SEED

        result = din_replay(
            dataset=args.dataset,
            source=args.source,
            every=args.every,
            start=args.start,
            limit=args.limit,
            model=args.model,
            regularizer=args.regularizer,
            overrides=args.overrides,
            seed=DEFAULT_SEED if args.seed is None else args.seed,
            config_file=args.config_file,
            window=args.window,
            warm_start=args.warm_start,
            min_gain=args.min_gain,
            logloss_tolerance=args.logloss_tolerance,
            work_dir=args.work_dir,
            plot_out=None if plot is None else str(plot),
        )
    print()
    print(timeline_table(result))
    if plot is not None:
        print(f"timeline plot: {plot}")
    return 0
