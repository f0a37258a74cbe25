"""``din score``: score a file of raw impressions with a registered model (no Prefect).

Examples::

    din score --model models:/din-amazon@champion --input impressions.parquet --out scored.parquet
    din score --dataset movielens --input ratings.csv --out scored.csv --interactions data/ml-100k
    din score --model 0f3c...e1 --input rows.jsonl --out scored.jsonl --on-bad-lines skip

The input is parquet, CSV or JSON lines (by extension) with the model's raw request
columns: ``item_id``, ``timestamp`` (unix seconds), the profile columns of the model
(MovieLens: age, gender, occupation) and ``history_item_id``. In CSV a history is the
item ids separated by spaces, oldest first (or a JSON list). With ``--interactions DIR``
(the dataset's raw files) each row's history is built from the user's events strictly
before the row's timestamp, and left-out profile columns are looked up by ``user_id``.
The output is the input rows plus ``score``, written atomically. See
din_model/serving/batch.py for the row and output rules.
"""

from __future__ import annotations

import argparse
import os

from din_model.registry import dataset_names

CHUNK_ROWS = 50_000  # din_model.serving.batch.CHUNK_ROWS, without importing torch here


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score a file of raw impressions with a registered model (MLflow)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        help="models:/<name>@<alias>, models:/<name>/<version>, runs:/<run id>/<path> or an "
        "MLflow run id (default: models:/din-<dataset>@champion of --dataset)",
    )
    parser.add_argument("--input", required=True, metavar="FILE", help=".parquet, .csv or .jsonl")
    parser.add_argument(
        "--out", required=True, metavar="FILE", help="output file (.parquet, .csv or .jsonl)"
    )
    parser.add_argument(
        "--interactions",
        metavar="DIR",
        help="raw data folder of the model's dataset: build histories from each user's "
        "earlier events there (and look up left-out profile columns)",
    )
    parser.add_argument(
        "--dataset",
        choices=dataset_names(),
        help="the model's dataset (checked against the model; picks the default --model)",
    )
    parser.add_argument(
        "--on-bad-lines",
        choices=("error", "skip"),
        default="error",
        help="error: stop at the first bad row (default); skip: write bad rows to "
        "OUT.rejects.jsonl and score the rest",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    parser.add_argument(
        "--chunk-rows", type=int, default=CHUNK_ROWS, help=f"rows per chunk (default {CHUNK_ROWS})"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from din_model.errors import ConfigError

    if args.model is None and args.dataset is None:
        raise ConfigError("pass --model, or --dataset to score with models:/din-<dataset>@champion")
    # MLflow's own download bars would interleave with ours
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from tasks.model_source import default_model_uri
    from tasks.scoring import score_with_model

    result, resolved = score_with_model(
        args.model or default_model_uri(args.dataset),
        args.input,
        args.out,
        interactions=args.interactions,
        dataset=args.dataset,
        on_bad_lines=args.on_bad_lines,
        force=args.force,
        progress="none" if args.no_progress else "auto",
        chunk_rows=args.chunk_rows,
    )
    print(f"din score: {resolved.describe()}: {result.summary()}")
    return 0
