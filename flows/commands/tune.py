"""``din tune``: the din-tune flow (an Optuna study, trials as child MLflow runs)."""

from __future__ import annotations

import argparse

from flows.commands._common import MODELS, add_data_arguments, add_regularizer_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="tune a model's hyper-parameters with Optuna (one parent MLflow run, a child per "
        "trial); writes the best config for `din train --config`",
        description="Run the din-tune flow: an Optuna study (TPE, or a grid) on the validation "
        "GAUC, trials pruned on their per-epoch GAUC, optionally in parallel on Dask. The best "
        "config is trained once more and scored on test, and written to "
        "<work>/tuned/<dataset>/<model>.yaml (and --out).",
    )
    add_data_arguments(parser)
    parser.add_argument("--model", default="din", choices=MODELS)
    add_regularizer_argument(parser)
    parser.add_argument(
        "--space",
        default="default",
        help="search space: default (TPE), recbole (RecBole's DIN grid) or a YAML file of the "
        "same format (din_model/configs/tuning/); default: default",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--trials",
        type=int,
        help="finished trials the study should have, earlier runs of the same study included "
        "(default: the whole grid, or 20)",
    )
    budget.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    parser.add_argument(
        "--workers", type=int, default=1, help="trials at a time (Dask worker processes if > 1)"
    )
    parser.add_argument(
        "--dask-address", help="run the trials on the Dask scheduler at this address"
    )
    parser.add_argument("--seed", type=int, default=None, help="sampler and training seed (2024)")
    parser.add_argument("--out", help="also write the tuned config to this file")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.set_defaults(handler=handle)


def summary_table(result: dict) -> str:
    """The human summary of a study."""
    trials = result["trials"]
    valid, test = result["valid"], result["test"]
    lines = [
        f"study {result['study_name']} ({result['sampler']}; {', '.join(result['params'])})",
        f"trials: {trials['complete']} complete, {trials['pruned']} pruned, "
        f"{trials['fail']} failed ({result['trials_before']} finished before this run)",
        f"best trial {result['best_trial']}: valid GAUC {result['best_value']:.4f}  "
        f"{result['best_params']}",
        f"best config retrained: valid GAUC {valid.get('gauc', float('nan')):.4f}, "
        f"test AUC {test['auc']:.4f} GAUC {test['gauc']:.4f} LogLoss {test['logloss']:.4f}",
        f"tuned config: {result['tuned_config']}"
        + (f" and {result['out']}" if result.get("out") else ""),
        f"MLflow parent run {result['parent_run_id']} in {result['tracking_uri']}",
    ]
    return "\n".join(lines)


def check_space(args: argparse.Namespace) -> None:
    """A bad space file or one that fits nothing of the model fails here, before any server.

    The flow checks the same again (a deployment run has no command line).
    """
    from din_model.config import resolve_config
    from din_model.config.overrides import overrides_to_tree
    from din_model.config.tree import iter_leaves
    from din_model.tuning.space import load_space

    forced = [f"regularizer.name={args.regularizer}"]
    base = resolve_config(
        args.model, args.dataset, config_file=args.config_file, overrides=[*args.overrides, *forced]
    )
    fixed = [key for key, _ in iter_leaves(overrides_to_tree(args.overrides))]
    load_space(args.space).for_run(args.model, args.regularizer, base, fixed)


def handle(args: argparse.Namespace) -> int:
    import logging

    from flows.commands._common import prefect_session

    check_space(args)
    # a LocalCluster logs every worker's start and stop at INFO; trials log their own lines
    logging.getLogger("distributed").setLevel(logging.WARNING)
    with prefect_session():
        from flows.train_flow import DEFAULT_SEED
        from flows.tune_flow import din_tune
        from tasks.data import DEFAULT_SYNTHETIC_SCALE

        result = din_tune(
            dataset=args.dataset,
            source=args.source,
            model=args.model,
            regularizer=args.regularizer,
            space=args.space,
            trials=args.trials,
            timeout=args.timeout,
            workers=args.workers,
            dask_address=args.dask_address,
            overrides=args.overrides,
            config_file=args.config_file,
            seed=DEFAULT_SEED if args.seed is None else args.seed,
            max_len=args.max_len,
            synthetic_scale=args.synthetic_scale or DEFAULT_SYNTHETIC_SCALE,
            work_dir=args.work_dir,
            out=args.out,
            force=args.force,
        )
    print()
    print(summary_table(result))
    print(f"train with it:  din train --data {result['prepared_dir']} --model {args.model} "
          f"--config {result['tuned_config']} --out OUT")  # fmt: skip
    return 0
