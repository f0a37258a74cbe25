"""``din bench``: speed and memory figures of prepare, training and inference."""

from __future__ import annotations

import argparse

from bench.cli import __doc__ as BENCH_DOC
from bench.cli import add_arguments, run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark prepare, training and inference (JSON + markdown table)",
        description=BENCH_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)
