"""``din prepare``: raw data files -> validated DIN samples in four feature groups.

Reads the owner's files in SOURCE, validates the canonical tables, samples
train/valid/test with the dataset's protocol, encodes ids with vocabularies
learned on train, validates the samples and writes OUT atomically: a failed
run leaves no OUT and no partial files.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
from pathlib import Path

from din_model.data.encoding.hashing import DEFAULT_HASH_SEED, parse_hash_buckets
from din_model.io.output_dir import FORCE_HELP
from din_model.pipeline.prepare import ON_BAD_LINES, prepare_dataset
from din_model.registry import dataset_names

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="raw files -> validated train/valid/test parquet + feature_map.json",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument("--dataset", required=True, choices=dataset_names())
    parser.add_argument("--source", required=True, type=Path, help="folder of the owner's files")
    parser.add_argument("--out", required=True, type=Path, help="prepared folder to write")
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)
    parser.add_argument("--seed", type=int, default=42, help="negative sampling / user split seed")
    parser.add_argument(
        "--max-len", type=int, default=None, help="history length (default: the dataset's spec)"
    )
    parser.add_argument(
        "--on-bad-lines",
        choices=ON_BAD_LINES,
        default="error",
        help="error: stop at the first bad line; skip: move bad lines to OUT/rejects/",
    )
    parser.add_argument(
        "--hash-buckets",
        action="append",
        default=[],
        metavar="TABLE=BUCKETS",
        help="hash the ids of TABLE (e.g. item or item_id) into BUCKETS embedding rows instead "
        "of a vocabulary learned on train; for huge vocabularies (repeatable)",
    )
    parser.add_argument(
        "--hash-seed",
        type=int,
        default=DEFAULT_HASH_SEED,
        help="key of the id hash (recorded in feature_map.json)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    report = prepare_dataset(
        args.dataset,
        args.source,
        args.out,
        seed=args.seed,
        max_len=args.max_len,
        on_bad_lines=args.on_bad_lines,
        hash_buckets=parse_hash_buckets(args.hash_buckets),
        hash_seed=args.hash_seed,
        force=args.force,
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    samples = report["samples"]
    rates = report["positive_rate"]
    print(
        f"prepared {report['dataset']} ({report['layout']}, {report['protocol']}"
        f"{', synthetic' if report['synthetic'] else ''}) into {args.out}"
    )
    print(
        f"  {report['interactions']:,} interactions, {report['users']:,} users "
        f"({report.get('dropped_users', 0):,} dropped), "
        f"{report['unknown_categories']:,} items of unknown category, "
        f"{report['rejected_lines']:,} rejected lines"
    )
    for split in ("train", "valid", "test"):
        rate = rates.get(split)
        shown = f"{rate:.3f}" if rate is not None else "-"
        print(f"  {split:5s} {samples[split]:>10,} samples, positive rate {shown}")
    for table, stats in report.get("hashing", {}).items():
        seen = stats["train_values"]
        print(
            f"  {table} hashed into {stats['buckets']:,} buckets: {seen['values']:,} train values, "
            f"{seen['collisions']:,} collide ({stats['all_values']['collisions']:,} of "
            f"{stats['all_values']['values']:,} over all values)"
        )
    print(
        f"  max_len {report['max_len']}, seed {report['seed']}, {report['fingerprint'][:19]}..., "
        f"{time.perf_counter() - started:.1f} s, peak RSS {peak_mb:,.0f} MB"
    )
    return 0
