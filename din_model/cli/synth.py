"""``din synth amazon``: write a synthetic Amazon 2014-format review set.

The full Amazon Electronics files of the DIN paper are not available on every
machine; this command produces files of the same format and (at ``--scale 1``)
the same size, which ``din prepare --dataset amazon --source DIR`` reads like
the real ones and marks as synthetic.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time

from din_model.data.sources.synth.amazon import (
    AmazonSynthParams,
    sizes_for_scale,
    write_synthetic_amazon,
)
from din_model.io.output_dir import FORCE_HELP

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic data in an owner's file format",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument("dataset", choices=["amazon"], help="file format to imitate")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="size relative to Amazon Electronics 5-core (1.0: 192,403 users, 63,001 items, "
        "1,689,188 reviews; default 1.0)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)
    parser.add_argument(
        "--category",
        default="Electronics",
        help="category name in the file names, e.g. reviews_<category>_5.json.gz",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    sizes = sizes_for_scale(args.scale)
    log.info(
        "generating %d users, %d items, %d categories, %d reviews (scale %g, seed %d)",
        sizes.users,
        sizes.items,
        sizes.categories,
        sizes.reviews,
        args.scale,
        args.seed,
    )
    started = time.perf_counter()
    description = write_synthetic_amazon(
        args.out,
        args.scale,
        args.seed,
        category=args.category,
        params=AmazonSynthParams(),
        progress=not args.no_progress and sys.stderr.isatty(),
        force=args.force,
    )
    counts = description["counts"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"wrote {args.out}: {counts['users']:,} users, {counts['items']:,} items, "
        f"{counts['categories']:,} categories, {counts['reviews']:,} reviews "
        f"in {time.perf_counter() - started:.1f} s (peak RSS {peak_mb:,.0f} MB)"
    )
    return 0
