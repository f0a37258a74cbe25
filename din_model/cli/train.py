"""``din train``: train one model on a prepared directory and score its test split once.

Writes the run layout of din_model/pipeline/layout.py into ``--out``: metrics.json,
predictions.parquet, attention.json (DIN models), serving/ (raw-request tables),
checkpoints/ (last.pt each epoch, best.pt) and config.yaml (the resolved
configuration); ``din run`` writes the same files into its run folder. Running the
same command again after a kill resumes from checkpoints/last.pt; a finished run
in --out is replaced only with --force, and a folder din did not write never.

Data-parallel training on several processes (gloo on CPU, nccl on GPUs):
  torchrun --standalone --nproc-per-node 2 -m din_model.cli train --data D --model din --out O
train.batch_size stays the global batch; rank 0 writes every output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from din_model.config.overrides import add_override_argument
from din_model.data.specs.feature_map import FEATURE_MAP_FILE, FeatureMap
from din_model.errors import ConfigError, DataError
from din_model.registry import REGULARIZER_NAMES, model_names

if TYPE_CHECKING:  # the layout module imports torch; `din --help` must not
    from din_model.pipeline.layout import RunLayout


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a CTR model on a prepared directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, type=Path, help="output directory of din prepare")
    parser.add_argument(
        "--model", required=True, metavar="|".join(model_names()), help="model to train"
    )
    parser.add_argument(
        "--regularizer",
        "--reg",
        dest="reg",
        default=None,
        metavar="|".join(REGULARIZER_NAMES),
        help="regulariser (default: the config's regularizer.name, none)",
    )
    parser.add_argument(
        "--config", default=None, help="YAML file layered over the defaults, or a preset name"
    )
    add_override_argument(parser, "override one config key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--out", required=True, type=Path, help="directory for the outputs")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="ignore checkpoints already in --out and train from scratch",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a finished earlier run in --out (an unfinished one resumes without it; "
        "a folder din did not write is never replaced)",
    )
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    # imported here so that building the `din` parser does not load torch
    from din_model.config import resolve_config
    from din_model.distributed.group import is_main_process, process_group
    from din_model.pipeline import fit_and_score

    if args.model not in model_names():
        raise ConfigError(
            f"unknown model '{args.model}'; choose one of {', '.join(model_names())}"
        )
    if args.reg is not None and args.reg not in REGULARIZER_NAMES:
        raise ConfigError(
            f"unknown regularizer '{args.reg}'; choose one of {', '.join(REGULARIZER_NAMES)}"
        )
    if not args.data.is_dir():
        raise DataError(args.data, "a directory written by `din prepare`", got="no such directory")
    feature_map = FeatureMap.load(args.data / FEATURE_MAP_FILE)
    config = resolve_config(
        args.model, feature_map.dataset, config_file=args.config, overrides=args.overrides
    )
    # under torchrun (WORLD_SIZE > 1) every process joins the group; alone, nothing changes
    with process_group(config["train"]["device"]):
        result = fit_and_score(
            args.data,
            args.out,
            args.model,
            args.reg,
            config,
            resume=not args.restart,
            force=args.force,
        )
        if not is_main_process():
            return 0
    valid, test = result.metrics["valid"], result.metrics["test"]
    rows = [("valid", valid), ("test", test)]
    print(
        f"{args.model} ({result.fit.regularizer}) on {feature_map.dataset}, "
        f"best epoch {result.fit.best_epoch} of {len(result.fit.history)}"
    )
    print(f"{'split':<6} {'AUC':>7} {'GAUC':>7} {'users':>6} {'LogLoss':>8} {'n':>8}")
    for name, m in rows:
        print(
            f"{name:<6} {m['auc']:>7.4f} {m['gauc']:>7.4f} {m['gauc_users']:>6d} "
            f"{m['logloss']:>8.4f} {m['n']:>8d}"
        )
    print(f"outputs in {args.out}: {', '.join(_written(result.layout))}")
    sys.stdout.flush()
    return 0


def _written(layout: RunLayout) -> list[str]:
    """The files of the run's output layout that exist (attention, item map: DIN models only)."""
    paths = [layout.metrics, layout.predictions, layout.attention, layout.item_map, layout.serving]
    names = [path.name + ("/" if path.is_dir() else "") for path in paths if path.exists()]
    return [*names, layout.config.name, "checkpoints/"]
