"""Compare the speed options on one case: ``python -m bench.variants --device cuda --out F``.

Trains the same case (default: DIN paper preset, batch 4096, synthetic
Amazon-scale data) once per option set (eager, bf16, CUDA graphs, compile,
...) and writes the table as JSON and markdown, like ``din bench``. It is the
tool for choosing ``din bench``'s GPU options; a failing variant is recorded
with its error and the others still run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from bench.cases import PAPER_PRESET, DataSpec, TrainCase
from bench.harness import SplitCache, prepare_data
from bench.machine import machine_info
from bench.report import write_report
from bench.training import error_result, run_case
from din_model.config.overrides import add_override_argument
from din_model.data.specs.feature_map import FEATURE_MAP_FILE, FeatureMap

logger = logging.getLogger(__name__)

VARIANTS = {
    "eager": (),
    "eager-bf16": ("train.amp=bf16", "train.tf32=true"),
    "graphs": ("train.cuda_graphs=true", "train.tf32=true"),
    "graphs-bf16": ("train.cuda_graphs=true", "train.amp=bf16", "train.tf32=true"),
    "compile-bf16": ("train.compile=true", "train.amp=bf16", "train.tf32=true"),
    "graphs-compile-bf16": (
        "train.cuda_graphs=true",
        "train.compile=true",
        "train.amp=bf16",
        "train.tf32=true",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--model", default="din_dice")
    parser.add_argument("--batch", type=int, nargs="+", default=[4096])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--rows", type=int, default=None, help="train rows (default: all)")
    add_override_argument(parser, "config override for every variant (repeatable)")
    parser.add_argument("--budget", type=float, default=None, help="stop starting variants after")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    started = time.perf_counter()
    device = torch.device(args.device)
    work = args.work or Path(tempfile.mkdtemp(prefix="din-variants-"))
    spec = DataSpec(f"amazon-synth-{args.scale:g}", "amazon", scale=args.scale, timed=True)
    data_dir, prepare_result = prepare_data(spec, work)
    feature_map = FeatureMap.load(data_dir / FEATURE_MAP_FILE)
    train, valid = SplitCache(device).get(data_dir, feature_map, feature_map.max_len)
    results = [prepare_result] if prepare_result else []
    for batch in args.batch:
        for name in args.variants:
            if args.budget and time.perf_counter() - started > args.budget:
                logger.warning("budget spent: skipping %s", name)
                continue
            case = TrainCase(
                name=f"{name}/b{batch}",
                dataset=spec.key,
                model=args.model,
                batch=batch,
                preset=PAPER_PRESET,
                train_rows=args.rows,
                warmup_batches=30,
            )
            extra = [*VARIANTS[name], *args.overrides]
            logger.info("variant %s: %s", case.name, " ".join(extra) or "eager")
            try:
                result = run_case(case, data_dir, feature_map, train, valid, device, extra)
            except Exception as exc:  # a variant may fail (compile, graphs): keep the others
                logger.error("variant %s failed: %s", case.name, exc)
                traceback.print_exc()
                result = error_result(case, device, exc)
            result["variant"] = name
            results.append(result)
            logger.info(
                "  %s: train %s, infer %s, GAUC %s",
                case.name,
                result["train_samples_per_s"],
                result["infer_samples_per_s"],
                result["gauc"],
            )
            if device.type == "cuda":
                torch.cuda.empty_cache()
    report = {
        "mode": "variants",
        "device": device.type,
        "command": " ".join(sys.argv),
        "machine": machine_info(torch.get_num_threads()),
        "results": results,
        "seconds": time.perf_counter() - started,
    }
    write_report(report, args.out)
    print(Path(args.out).with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
