"""Run a benchmark plan: prepare the datasets, run the cases, write the report.

Each dataset is prepared in a child process (:mod:`bench.steps`); the timed
one (Amazon-scale synthetic data) becomes a ``prepare`` result with its wall
time and the child's peak RSS. Training cases then run one after another in
this process on splits loaded once per dataset and history length.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.cases import DataSpec, Plan, TrainCase
from bench.machine import machine_info
from bench.report import write_report
from din_model.data.specs.feature_map import FEATURE_MAP_FILE, FeatureMap
from din_model.errors import ConfigError, DinError
from din_model.tensors.split import SplitTensors, load_prepared_split

logger = logging.getLogger(__name__)


def run_step(*args: str) -> dict[str, Any]:
    """``python -m bench.steps ARGS`` in a child process; its JSON line."""
    command = [sys.executable, "-m", "bench.steps", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise DinError(f"benchmark step {' '.join(args[:1])} failed:\n" + "\n".join(tail))
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare_data(spec: DataSpec, work: Path) -> tuple[Path, dict[str, Any] | None]:
    """The prepared directory of ``spec`` and, for a timed one, its ``prepare`` result."""
    out = work / spec.key
    source = Path(spec.source) if spec.source else work / f"{spec.key}-raw"
    if spec.scale is not None:
        logger.info("synthesising %s (din synth amazon --scale %g)", spec.key, spec.scale)
        made = run_step("synth", "--out", str(source), "--scale", str(spec.scale))
        logger.info("  %s in %.1f s", made["counts"], made["seconds"])
    logger.info("preparing %s", spec.key)
    step = run_step(
        "prepare", "--dataset", spec.dataset, "--source", str(source), "--out", str(out)
    )
    logger.info(
        "  prepared in %.1f s, peak RSS %.0f MB, samples %s, validated %s",
        step["seconds"],
        step["peak_rss_mb"],
        step["samples"],
        step["validated"],
    )
    if not spec.timed:
        return out, None
    return out, {
        "name": f"{spec.key}/prepare",
        "kind": "prepare",
        "dataset": spec.key,
        "model": None,
        "device": "cpu",
        "batch": None,
        "emb": None,
        "max_len": None,
        "train_samples_per_s": None,
        "infer_samples_per_s": None,
        "gauc": None,
        "peak_mem_mb": step["peak_rss_mb"],
        "peak_rss_mb": step["peak_rss_mb"],
        "seconds": step["seconds"],
        "validated": step["validated"],
        "train_rows": step["samples"]["train"],
        "samples": step["samples"],
        "interactions": step["interactions"],
        "timings": step["timings"],
    }


class SplitCache:
    """Train/valid tensors per (dataset, history length), loaded once, on the device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.loaded: dict[tuple[str, int], tuple[SplitTensors, SplitTensors]] = {}

    def get(
        self, data_dir: Path, feature_map: FeatureMap, max_len: int
    ) -> tuple[SplitTensors, SplitTensors]:
        key = (str(data_dir), max_len)
        if key not in self.loaded:
            self.loaded.clear()  # one dataset on the device at a time
            splits = tuple(
                load_prepared_split(data_dir, name, feature_map, max_len).to(self.device)
                for name in ("train", "valid")
            )
            self.loaded[key] = splits  # type: ignore[assignment]
        return self.loaded[key]


def run_plan(
    plan: Plan,
    *,
    device: torch.device,
    out: Path,
    work: Path | None,
    extra: list[str],
    header: dict[str, Any],
) -> dict[str, Any]:
    """Run every dataset step and case of ``plan``; write and return the report."""
    from bench.training import error_result, run_case, run_end_to_end

    started = time.perf_counter()
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix="din-bench-")) if work is None else work
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        **header,
        "machine": machine_info(torch.get_num_threads()),
        "results": [],
    }
    results: list[dict[str, Any]] = report["results"]
    try:
        prepared: dict[str, Path] = {}
        for spec in plan.datasets:
            prepared[spec.key], result = prepare_data(spec, work)
            if result is not None:
                results.append(result)
        cache = SplitCache(device)
        for number, case in enumerate(plan.cases, start=1):
            data_dir = prepared[case.dataset]
            feature_map = FeatureMap.load(data_dir / FEATURE_MAP_FILE)
            max_len = _max_len(case, feature_map, device, extra)
            train, valid = cache.get(data_dir, feature_map, max_len)
            logger.info(
                "[%d/%d] %s: %s on %s, batch %d",
                number,
                len(plan.cases),
                case.name,
                case.model,
                device,
                case.batch,
            )
            try:
                result = run_case(case, data_dir, feature_map, train, valid, device, extra)
            except (RuntimeError, DinError) as exc:  # one broken case must not lose the others
                logger.exception("case %s failed", case.name)
                results.append(error_result(case, device, exc))
                continue
            logger.info(
                "  train %.0f samples/s, infer %.0f samples/s, GAUC %.4f, peak %.0f MB",
                result["train_samples_per_s"],
                result["infer_samples_per_s"],
                result["gauc"],
                result["peak_mem_mb"],
            )
            results.append(result)
            report["seconds"] = time.perf_counter() - started
            write_report(report, out)  # a run stopped later still leaves its results
        # the one path users run, once per dataset, with that dataset's first case
        for key in dict.fromkeys(case.dataset for case in plan.cases):
            case = next(c for c in plan.cases if c.dataset == key)
            logger.info("%s: fit, select and score (fit_and_score, 1 epoch)", key)
            run = run_end_to_end(case, prepared[key], work / f"{key}-run", device, extra)
            logger.info("  %.1f s, test GAUC %.4f", run["seconds"], run["gauc"])
            results.append(run)
            write_report(report, out)
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    report["seconds"] = time.perf_counter() - started
    table = write_report(report, out)
    logger.info("wrote %s and %s", out, table)
    return report


def _max_len(
    case: TrainCase, feature_map: FeatureMap, device: torch.device, extra: list[str]
) -> int:
    from bench.training import case_config

    config = case_config(case, feature_map, device, extra)
    value = config["train"].get("max_len")
    if value is None:
        return feature_map.max_len
    if int(value) < 1:
        raise ConfigError(f"train.max_len must be positive, got {value}")
    return min(int(value), feature_map.max_len)
