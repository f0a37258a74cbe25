"""``din fetch``: download a data set's files from its owner into ``data/raw/<dataset>/``.

Downloads resume after an interruption, are checked (published checksum or
announced size) and renamed into place only when complete. Offline, the
command says which files to download by hand and exactly where to put them.
"""

from __future__ import annotations

import argparse
import sys

from din_model.data.sources.catalog import DEFAULT_DEST, MOVIELENS_ARCHIVES, get_source
from din_model.data.sources.download import BASE_URL_ENV, fetch
from din_model.registry import fetchable_datasets


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fetch",
        help="download a data set from its owner into data/raw/<dataset>/",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument("dataset", choices=fetchable_datasets())
    parser.add_argument(
        "--dest", default=str(DEFAULT_DEST), help=f"root folder (default {DEFAULT_DEST})"
    )
    parser.add_argument(
        "--category", default=None, help="amazon: category, e.g. Electronics (default)"
    )
    parser.add_argument(
        "--edition",
        choices=["2014", "2018"],
        default=None,
        help="amazon: 2014 (the DIN paper's files, default) or 2018",
    )
    parser.add_argument(
        "--version",
        choices=list(MOVIELENS_ARCHIVES),
        default=None,
        help="movielens: archive (default ml-1m; the DIN paper used ml-20m)",
    )
    parser.add_argument(
        "--variant",
        choices=["user-behavior", "display-ad"],
        default=None,
        help="taobao: UserBehavior (default) or the display-ad click set",
    )
    parser.add_argument(
        "--base-url",
        default=None,
        help=f"fetch every file from BASE_URL/<file name> (a mirror); default ${BASE_URL_ENV}",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per network wait")
    parser.add_argument(
        "--retries", type=int, default=3, help="resumed attempts after an interruption"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    source = get_source(
        args.dataset,
        category=args.category,
        edition=args.edition,
        version=args.version,
        variant=args.variant,
    )
    result = fetch(
        source,
        args.dest,
        base_url=args.base_url,
        timeout=args.timeout,
        retries=args.retries,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    for path in result.downloaded:
        print(f"downloaded  {path}")
    for path in result.already_present:
        print(f"present     {path}")
    for path in result.extracted:
        print(f"extracted   {path}")
    print(f"next: din prepare --dataset {source.dataset} --source {result.prepare_dir}")
    return 0
