"""One training case: the real trainer's epoch, then inference and GAUC on validation.

Throughput is what :meth:`din_model.training.trainer.Trainer.train_epoch`
reports for an epoch over the case's rows (the loop ``din train`` runs: batches
cut by index, the regulariser hook, forward, loss, backward, optimizer step),
after a warm-up epoch over a few batches (allocations, kernel selection,
compilation, CUDA graph recording). Inference is
:func:`din_model.training.evaluate.predict` over the validation rows, after a
warm-up pass, and the GAUC is computed from those scores.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from bench.cases import TrainCase
from bench.memory import PeakMemory
from din_model.config import resolve_config
from din_model.data.specs.feature_map import FeatureMap
from din_model.metrics import evaluate_scores
from din_model.models import build_model
from din_model.regularizers import build_regularizer
from din_model.tensors.batches import max_batch_positions
from din_model.tensors.split import SplitTensors
from din_model.training.device import configure_cpu
from din_model.training.evaluate import predict
from din_model.training.optim import make_optimizer
from din_model.training.seed import make_deterministic, seed_everything
from din_model.training.trainer import Trainer

logger = logging.getLogger(__name__)


def head(split: SplitTensors, rows: int | None) -> SplitTensors:
    """The first ``rows`` rows of a split (all of them for None)."""
    if rows is None or rows >= len(split):
        return split
    return split.rows(0, rows)


def case_config(
    case: TrainCase, feature_map: FeatureMap, device: torch.device, extra: list[str]
) -> dict[str, Any]:
    """The resolved config of a case: defaults, dataset, preset, case and run overrides."""
    overrides = [
        f"train.batch_size={case.batch}",
        "train.epochs=1",
        f"train.device={device.type}",
        "train.progress=log",
        *case.overrides,
        *extra,
    ]
    return resolve_config(
        case.model, feature_map.dataset, config_file=case.preset, overrides=overrides
    )


def run_case(
    case: TrainCase,
    data_dir: Path,
    feature_map: FeatureMap,
    train: SplitTensors,
    valid: SplitTensors,
    device: torch.device,
    extra: list[str],
) -> dict[str, Any]:
    """Train one epoch of ``case`` and score the validation rows; the result entry."""
    config = case_config(case, feature_map, device, extra)
    train_cfg = config["train"]
    configure_cpu(train_cfg, device)  # as a training run does: threads, allocator
    train = head(train, case.train_rows)
    valid = head(valid, case.infer_rows)
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with PeakMemory(device) as peak:
        seed_everything(int(train_cfg["seed"]))
        make_deterministic(device)
        model = build_model(case.model, feature_map, config["model"]).to(device)
        regularizer = build_regularizer("none", config["regularizer"])
        optimizer = make_optimizer(model, train_cfg)
        trainer = Trainer(model, regularizer, optimizer, train_cfg, device)
        if trainer.graphs is not None:
            # Record the graph at the capacity the measured epoch needs, during warm-up.
            trainer.graphs.prepare_epoch(
                max_batch_positions(
                    train.lengths, case.batch, shuffle=True, seed=trainer.seed, epoch=1
                )
            )
        warm_rows = min(len(train), case.warmup_batches * case.batch)
        started = time.perf_counter()
        trainer.train_epoch(head(train, warm_rows), 0, 1)
        warmup_seconds = time.perf_counter() - started
        stats = trainer.train_epoch(train, 1, 1)

        batch = int(train_cfg["eval_batch_size"])
        predict(model, head(valid, min(len(valid), 4 * batch)), batch, amp=trainer.amp)
        _sync(device)
        started = time.perf_counter()
        scores = predict(model, valid, batch, amp=trainer.amp)
        infer_seconds = time.perf_counter() - started
    metrics = evaluate_scores(valid.label.cpu().numpy(), scores, valid.user.cpu().numpy())
    peak_mb = peak.gpu_mb if device.type == "cuda" else peak.rss_mb
    return {
        "name": case.name,
        "kind": "train",
        "dataset": case.dataset,
        "model": case.model,
        "device": device.type,
        "batch": case.batch,
        "emb": int(config["model"]["embedding_dim"]),
        "max_len": train.width,
        "train_samples_per_s": stats["samples_per_s"],
        "infer_samples_per_s": len(valid) / infer_seconds,
        "gauc": metrics["gauc"],
        "peak_mem_mb": peak_mb,
        "peak_rss_mb": peak.rss_mb,
        "peak_gpu_mem_mb": peak.gpu_mb,
        "auc": metrics["auc"],
        "logloss": metrics["logloss"],
        "gauc_users": metrics["gauc_users"],
        "train_rows": len(train),
        "infer_rows": len(valid),
        "mean_history": float(train.lengths.float().mean()),
        "train_seconds": stats["train_seconds"],
        "train_loss": stats["train_loss"],
        "infer_seconds": infer_seconds,
        "warmup_seconds": warmup_seconds,
        "eval_batch": batch,
        "preset": case.preset,
        "options": {
            key: train_cfg.get(key)
            for key in ("amp", "compile", "cuda_graphs", "tf32", "fused_optimizer", "num_threads")
        },
        "attention_packed": config["model"].get("attention_packed"),
        "load_avg": [load_start, os.getloadavg()[0] if hasattr(os, "getloadavg") else None],
    }


def error_result(case: TrainCase, device: torch.device, exc: BaseException) -> dict[str, Any]:
    """The entry of a case that failed: its identity, the error, null figures."""
    return {
        "name": case.name,
        "kind": "train",
        "dataset": case.dataset,
        "model": case.model,
        "device": device.type,
        "batch": case.batch,
        "emb": None,
        "max_len": None,
        "train_samples_per_s": None,
        "infer_samples_per_s": None,
        "gauc": None,
        "peak_mem_mb": None,
        "error": f"{type(exc).__name__}: {exc}"[:2000],
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_end_to_end(
    case: TrainCase, data_dir: Path, out_dir: Path, device: torch.device, extra: list[str]
) -> dict[str, Any]:
    """The one fit, select and score path (``fit_and_score``, what ``din train`` runs) on a
    prepared dataset, with ``case``'s model and config for one epoch: its wall time and
    test metrics, so the benchmark times what users run, next to the epoch throughput."""
    from din_model.pipeline import fit_and_score

    feature_map = FeatureMap.load(data_dir / "feature_map.json")
    config = case_config(case, feature_map, device, extra)
    started = time.perf_counter()
    with PeakMemory(device) as peak:
        # force: a --work folder reused by a later bench run holds our own earlier run
        result = fit_and_score(data_dir, out_dir, case.model, "none", config, force=True)
    seconds = time.perf_counter() - started
    metrics = result.metrics
    return {
        "name": f"{case.dataset}/{case.model}/fit_and_score",
        "kind": "run",
        "dataset": case.dataset,
        "model": case.model,
        "device": device.type,
        "batch": case.batch,
        "emb": int(config["model"].get("embedding_dim", 0)) or None,
        "max_len": None,
        "train_samples_per_s": metrics["train_samples_per_s"],
        "infer_samples_per_s": None,
        "gauc": metrics["test"]["gauc"],
        "peak_mem_mb": peak.gpu_mb if device.type == "cuda" else peak.rss_mb,
        "seconds": seconds,
        "epochs_run": metrics["epochs_run"],
        "test": metrics["test"],
    }
