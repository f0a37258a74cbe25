"""Data steps of the benchmark, each run in a child process of its own.

``python -m bench.steps synth|prepare ...`` does one step and prints one JSON
line (wall seconds, the child's peak RSS, what it produced). A child of its own
gives ``din prepare`` a peak RSS that is its own, not the harness's, and keeps
the harness's memory free of the raw data.

Prepare runs the same step functions as ``din prepare``. Where Great
Expectations is not installed (a bare GPU machine), the two validation steps
are skipped and the result says ``validated: false``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _has_great_expectations() -> bool:
    try:
        import great_expectations  # noqa: F401
    except ImportError:
        return False
    return True


def synth(out: Path, scale: float, seed: int) -> dict[str, Any]:
    from din_model.data.sources.synth.amazon import write_synthetic_amazon

    description = write_synthetic_amazon(out, scale, seed, force=True)  # bench owns its --work
    return {"counts": description["counts"]}


def prepare(dataset: str, source: Path, out: Path, seed: int) -> dict[str, Any]:
    """``din prepare`` (validated when Great Expectations is there); the report's figures."""
    from din_model.pipeline.prepare import load_prepared_report

    if _has_great_expectations():
        from din_model.pipeline.prepare import prepare_dataset

        prepare_dataset(dataset, source, out, seed=seed, force=True)
        validated = True
    else:
        from din_model.data.adapters import ingest
        from din_model.pipeline.prepare import build_samples, write_prepared

        skipped = {"skipped": "great_expectations is not installed"}
        data = ingest(dataset, source)
        prepared = build_samples(data, seed=seed)
        write_prepared(prepared, out, {"canonical": skipped, "samples": skipped}, force=True)
        validated = False
    report = load_prepared_report(out)
    return {
        "validated": validated,
        "samples": report["samples"],
        "interactions": report["interactions"],
        "timings": report.get("timings", {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one benchmark data step (child process)")
    sub = parser.add_subparsers(dest="step", required=True)
    s = sub.add_parser("synth")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--scale", type=float, required=True)
    s.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("prepare")
    p.add_argument("--dataset", required=True)
    p.add_argument("--source", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.step == "synth":
        result = synth(args.out, args.scale, args.seed)
    else:
        result = prepare(args.dataset, args.source, args.out, args.seed)
    result.update(seconds=time.perf_counter() - started, peak_rss_mb=_peak_rss_mb())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
