"""``din ablation``: the din-ablation flow (models x regularisers x seeds as nested runs).

``--workers N`` runs N cells at a time on Dask worker processes (``--parallel``
is its old, deprecated name), ``--dask-address`` on an existing cluster;
``--tuned`` trains each model from its ``din tune`` config.
"""

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
        "The parent run holds the comparison table (with the paired GAUC difference of each "
        "row and its 95% bootstrap interval over test users) and a bar chart.",
    )
    add_data_arguments(parser)
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        help=f"default: {' '.join(grid.models)}; given alone, no regularised cells",
    )
    parser.add_argument(
        "--regs",
        dest="regularizers",
        nargs="+",
        choices=REGULARIZERS,
        help="regularisers applied to --reg-model (default: "
        f"{' '.join(grid.regularizers)} with the default models, none with --models)",
    )
    parser.add_argument("--reg-model", default=grid.regularized_model, choices=MODELS)
    parser.add_argument("--cross", action="store_true", help="every model with every regulariser")
    parser.add_argument("--seeds", nargs="+", type=int, help="training seeds (default 2024)")
    parser.add_argument("--data-seed", type=int, default=2024, help="seed of the data sampling")
    parser.add_argument(
        "--tuned",
        action="store_true",
        help="train each model from its tuned config (written by `din tune` under "
        "<work-dir>/tuned/<dataset>/<model>.yaml); --set still applies on top",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="cells at a time, each in its own Dask worker process (default 1: one at a time, "
        "in this process); a cell gives the same metrics alone or in parallel",
    )
    parser.add_argument(
        "--parallel", dest="workers", type=_positive, help="deprecated: use --workers"
    )
    parser.add_argument(
        "--dask-address",
        metavar="ADDR",
        help="run the cells on an existing Dask cluster (scheduler address, e.g. "
        "tcp://10.0.0.5:8786); its workers must see the same files and MLflow store",
    )
    parser.set_defaults(handler=handle)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def handle(args: argparse.Namespace) -> int:
    from din_model.errors import ConfigError
    from flows.commands._common import prefect_session

    if args.tuned and args.config_file:
        raise ConfigError("--config and --tuned: choose one (--tuned uses each model's tuned file)")
    with prefect_session():
        from flows.ablation_flow import din_ablation
        from tasks.data import DEFAULT_SYNTHETIC_SCALE

        result = din_ablation(
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
            workers=args.workers,
            dask_address=args.dask_address,
            tuned=args.tuned,
        )
    from tasks.store import ensure_experiment, experiment_url

    print()
    print(result["markdown"])
    experiment = ensure_experiment(args.dataset)
    print(
        f"Parent run {result['parent_run_name']} ({result['parent_run_id']}, "
        f"{len(result['child_run_ids'])} child runs). "
        f"Open the MLflow UI: .venv/bin/din ui, then "
        f"{experiment_url(experiment, result['parent_run_id'])}"
    )
    return 0
