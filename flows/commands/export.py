"""``din export``: a logged model's network as ONNX or TorchScript, with its raw-request encoder.

The folder holds ``model.onnx`` (or ``model.pt``), ``export.json`` (inputs, history
length, source), ``feature_map.json`` and ``serving/``; batch and history length are
dynamic. The file is also logged to the model's run (``export/<format>/``), so the
MLflow UI shows it next to the model. Score raw requests with it in Python::

    RawScorer.from_export("DIR").score(frame)      # din_model.serving.raw_scorer
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a logged model to ONNX or TorchScript",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        required=True,
        help="models:/din-<dataset>@champion, models:/<name>/<version> or an MLflow run id",
    )
    parser.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    parser.add_argument("--out", required=True, type=Path, help="a new or empty folder")
    parser.add_argument(
        "--force", action="store_true", help="replace an earlier export in --out (only ours)"
    )
    parser.add_argument(
        "--no-log", action="store_true", help="do not log the exported file to the model's run"
    )
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from din_model.serving.export import export_checkpoint
    from din_model.serving.export_manifest import MANIFEST
    from tasks import tracking
    from tasks.model_source import download_model, resolve_model

    resolved = resolve_model(args.model)
    with tempfile.TemporaryDirectory(prefix="din-export-model-") as scratch:
        checkpoint, serving = download_model(resolved, Path(scratch))
        path = export_checkpoint(
            checkpoint, args.out, args.format, force=args.force, serving_dir=serving
        )
    if resolved.run_id and not args.no_log:
        folder = f"export/{args.format}"
        tracking.log_files(resolved.run_id, [path, path.with_name(MANIFEST)], folder)
        print(f"logged {path.name} to run {resolved.run_id} ({folder}/)")
    print(f"exported {resolved.describe()} to {path}")
    return 0
