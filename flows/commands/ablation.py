"""``din ablation``: the din-ablation flow (models x regularisers x seeds as nested runs)."""

from __future__ import annotations

import argparse

from din_model.registry import ablation_grid
from flows.commands._common import MODELS, REGULARIZERS, add_data_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    grid = ablation_grid()
    regularized = [r for r in grid.regularizers if r != "none"]
    parser = subparsers.add_parser(
        "ablation",
        help="compare models and regularisers over seeds (one parent MLflow run)",
        description="Run the din-ablation flow. Default grid: the paper's comparison "
        f"({', '.join(grid.models)}; {grid.regularized_model} with {', '.join(regularized)}). "
        "The parent run holds the comparison table and a bar chart.",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--models", nargs="+", choices=MODELS, help=f"default: {' '.join(grid.models)}"
    )
    parser.add_argument(
        "--regs",
        dest="regularizers",
        nargs="+",
        choices=REGULARIZERS,
        help=f"regularisers applied to --reg-model (default: {' '.join(grid.regularizers)})",
    )
    parser.add_argument("--reg-model", default=grid.regularized_model, choices=MODELS)
    parser.add_argument("--cross", action="store_true", help="every model with every regulariser")
    parser.add_argument("--seeds", nargs="+", type=int, help="training seeds (default 2024)")
    parser.add_argument("--data-seed", type=int, default=2024, help="seed of the data sampling")
    parser.add_argument(
        "--parallel", type=int, default=1, help="cells at a time (>1 loses reproducibility)"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from flows.commands._common import prefect_session

    with prefect_session():
        from prefect.task_runners import ThreadPoolTaskRunner

        from flows.ablation_flow import din_ablation
        from tasks.data import DEFAULT_SYNTHETIC_SCALE

        flow = din_ablation.with_options(
            task_runner=ThreadPoolTaskRunner(max_workers=max(1, args.parallel))
        )
        result = flow(
            dataset=args.dataset,
            source=args.source,
            models=args.models,
            regularizers=args.regularizers,
            seeds=args.seeds,
            cross=args.cross,
            regularized_model=args.reg_model,
            overrides=args.overrides,
            config_file=args.config_file,
            data_seed=args.data_seed,
            max_len=args.max_len,
            synthetic_scale=args.synthetic_scale or DEFAULT_SYNTHETIC_SCALE,
            work_dir=args.work_dir,
            parallel=args.parallel,
        )
    from tasks.store import ensure_experiment

    print()
    print(result["markdown"])
    experiment = ensure_experiment(args.dataset)
    print(
        f"Parent run {result['parent_run_id']} ({len(result['child_run_ids'])} child runs). "
        f"Open the MLflow UI: .venv/bin/din ui, then http://127.0.0.1:5000/#/experiments/"
        f"{experiment}/runs/{result['parent_run_id']}"
    )
    return 0
