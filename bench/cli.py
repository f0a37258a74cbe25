"""``din bench`` / ``python -m bench``: the speed and memory benchmark.

Measures ``din prepare`` on Amazon-scale synthetic data (wall time, peak RSS),
then DIN (paper preset) and BaseModel training and inference throughput at
batch 1024 and 4096, GAUC after one epoch and peak memory; and the same
throughput on MovieLens 100K (embeddings 64, history 50). ``--quick`` measures
MovieLens 100K and a small synthetic set only. Writes FILE.json and FILE.md.

On a GPU (``--device cuda``) the cases train with the options of
``--gpu-options`` (default: CUDA graphs, TF32, scoring batches of 65,536);
``--set`` adds any ``train.``/``model.`` override to every case.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from din_model.config.overrides import add_override_argument

logger = logging.getLogger(__name__)

DEFAULT_MOVIELENS = Path(__file__).resolve().parents[1].parent / "shared/data/movielens/ml-100k"
# Measured on an H100 (python -m bench.variants): CUDA graphs with TF32 were the fastest;
# bf16 autocast added cast kernels to a step that is launch-bound, not FLOP-bound.
# A larger scoring batch amortises the launches of inference.
GPU_OPTIONS = ("train.cuda_graphs=true", "train.tf32=true", "train.eval_batch_size=65536")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="result file (JSON); FILE.md too")
    parser.add_argument("--quick", action="store_true", help="MovieLens 100K + a small set")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--movielens",
        type=Path,
        default=DEFAULT_MOVIELENS,
        help="MovieLens 100K directory (u.data, u.item, u.user); skipped when missing",
    )
    parser.add_argument("--work", type=Path, default=None, help="keep the data here")
    add_override_argument(parser, "config override for every case, e.g. --set train.compile=true")
    parser.add_argument(
        "--gpu-options",
        default=" ".join(GPU_OPTIONS),
        help="overrides of the cuda cases (space separated; '' for plain eager)",
    )
    parser.add_argument("--cases", default=None, help="run only the cases whose name has this")


def run(args: argparse.Namespace) -> int:
    import torch

    from bench.cases import build_plan
    from bench.harness import run_plan
    from din_model.errors import ConfigError

    if args.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("din bench --device cuda: CUDA is not available on this machine")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    movielens = args.movielens if (args.movielens / "u.data").is_file() else None
    if movielens is None:
        logger.warning("MovieLens 100K not found at %s: its cases are skipped", args.movielens)
    plan = build_plan(quick=args.quick, gpu=device.type == "cuda", movielens_source=movielens)
    if args.cases:
        plan.cases = [case for case in plan.cases if args.cases in case.name]
    extra = list(args.overrides)
    if device.type == "cuda":
        extra = shlex.split(args.gpu_options) + extra
    header = {
        "mode": "quick" if args.quick else "full",
        "device": device.type,
        "overrides": extra,
        "command": " ".join(shlex.quote(a) for a in sys.argv),
    }
    run_plan(plan, device=device, out=args.out, work=args.work, extra=extra, header=header)
    return 0


def main(argv: list[str] | None = None) -> int:
    from din_model.cli._main import run as run_cli

    return run_cli(["bench", *(sys.argv[1:] if argv is None else argv)], ("bench.commands",))
