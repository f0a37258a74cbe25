"""Profile DIN training on CPU: where an epoch's time goes, operator by operator.

Run: ``.venv/bin/python -m bench.profile --data PREPARED [--batch 256] [--batches 60]``
with PREPARED from ``din prepare`` (e.g. MovieLens 100K). It trains a few warm-up
batches, then profiles ``--batches`` more with ``torch.profiler`` and prints the
samples/s and the operators sorted by their own CPU time. This is the measurement
behind "profile before optimising": the table says which kernels are worth work.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from bench.cases import MOVIELENS_OVERRIDES
from bench.training import head
from din_model.config import resolve_config
from din_model.data.specs.feature_map import FEATURE_MAP_FILE, FeatureMap
from din_model.models import build_model
from din_model.regularizers import build_regularizer
from din_model.tensors.split import load_prepared_split
from din_model.training.device import configure_cpu
from din_model.training.optim import make_optimizer
from din_model.training.seed import make_deterministic, seed_everything
from din_model.training.trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a `din prepare` folder")
    parser.add_argument("--model", default="din")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=60, help="profiled batches")
    parser.add_argument("--rows", type=int, default=25, help="operators shown")
    args = parser.parse_args(argv)

    feature_map = FeatureMap.load(args.data / FEATURE_MAP_FILE)
    overrides = [f"train.batch_size={args.batch}", "train.progress=none", *MOVIELENS_OVERRIDES]
    config = resolve_config(args.model, feature_map.dataset, overrides=overrides)
    train_cfg, device = config["train"], torch.device("cpu")
    configure_cpu(train_cfg, device)
    split = load_prepared_split(args.data, "train", feature_map, train_cfg["max_len"])
    seed_everything(int(train_cfg["seed"]))
    make_deterministic(device)
    model = build_model(args.model, feature_map, config["model"])
    regularizer = build_regularizer("none", config["regularizer"])
    trainer = Trainer(model, regularizer, make_optimizer(model, train_cfg), train_cfg, device)
    trainer.train_epoch(head(split, 10 * args.batch), 0, 1)  # warm-up
    profiled = head(split, args.batches * args.batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        trainer.train_epoch(profiled, 1, 1)
        seconds = time.perf_counter() - started
    print(
        f"{args.model}, batch {args.batch}: {len(profiled) / seconds:,.0f} samples/s "
        f"under the profiler ({torch.get_num_threads()} threads)"
    )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
