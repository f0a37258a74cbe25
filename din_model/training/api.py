"""The public training API (wrapped by the Prefect flow and by ``din train``).

* :func:`fit` trains on ``train``, selects the epoch on ``valid``, writes a
  checkpoint each epoch and resumes a killed run;
* :func:`evaluate_checkpoint` scores one split with a saved model;
* :func:`load_trained_model` rebuilds a saved model for scoring;
* :func:`train_and_evaluate` composes them: fit, then score ``test`` once
  with the model chosen on validation, and write ``metrics.json`` and
  ``predictions.parquet``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from din_model.config import config_hash
from din_model.data.feature_map import FEATURE_MAP_FILE, FeatureMap
from din_model.errors import DataError
from din_model.io.atomic import atomic_output_file, write_json_atomic
from din_model.io.failures import writing
from din_model.io.output_dir import Claim
from din_model.regularizers import build_regularizer
from din_model.training import distributed
from din_model.training.checkpoint import load_checkpoint
from din_model.training.device import resolve_device
from din_model.training.evaluate import EvalResult, predictions_frame
from din_model.training.model_factory import create_model
from din_model.training.session import (
    CONFIG_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    EpochCallback,
    FitResult,
    TrainingRun,
    claim_train_output,
    source_fingerprint,
)
from din_model.training.tensors import load_prepared_split

logger = logging.getLogger(__name__)

__all__ = [
    "FitResult",
    "TrainResult",
    "evaluate_checkpoint",
    "fit",
    "load_trained_model",
    "train_and_evaluate",
]


@dataclass
class TrainResult:
    """Outcome of :func:`train_and_evaluate`."""

    fit: FitResult
    test: EvalResult
    metrics: dict[str, Any]
    metrics_path: Path
    predictions_path: Path
    config_path: Path = field(default_factory=Path)


def fit(
    data_dir: str | Path,
    out_dir: str | Path,
    model: str,
    regularizer: str | None = None,
    config: dict[str, Any] | None = None,
    *,
    on_epoch_end: EpochCallback | None = None,
    resume: bool = True,
    force: bool = False,
) -> FitResult:
    """Train ``model`` on ``data_dir``'s train split, choosing the epoch on valid.

    ``config`` is a (partial or fully resolved) config layered over the
    defaults; ``regularizer`` (a name, or None for ``config``'s
    ``regularizer.name``) picks the regulariser. With ``resume`` a checkpoint
    of the same model, config and data in ``out_dir`` is continued (one of
    another run is refused); without it earlier outputs there are removed.
    ``on_epoch_end`` receives each epoch's record; epochs restored from a
    checkpoint are replayed to it first, so it always sees the whole history.

    ``out_dir`` must be new, empty or our own ``din train`` output: an
    unfinished one resumes, a finished one (with ``metrics.json``) is replaced
    only with ``force``, any other folder (or the data folder) is refused.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    claim = claim_train_output(out_dir, data_dir, force=force)
    run = TrainingRun(data_dir, out_dir, model, regularizer, config)
    if claim is Claim.REPLACE:
        run.clear_outputs(everything=True)
    elif not resume:
        run.clear_outputs()
    elif run.restore() and on_epoch_end is not None:
        for record in run.state.history:
            on_epoch_end(dict(record))
    run.write_config()
    run.run(on_epoch_end)
    return run.result()


def _model_from_payload(
    payload: dict[str, Any], source: str | Path, device: torch.device
) -> tuple[nn.Module, FeatureMap, dict[str, Any]]:
    feature_map = FeatureMap.from_dict(payload["feature_map"], source=source)
    config = payload["config"]
    net = create_model(payload["model_name"], feature_map, config["model"])
    net.load_state_dict(payload["model_state"])
    regularizer = build_regularizer(payload["regularizer_name"], config["regularizer"])
    regularizer.load_state_dict(payload.get("regularizer_state") or {})
    scoring = regularizer.inference_model(net.to(device)).to(device)
    scoring.eval()
    return scoring, feature_map, config


def load_trained_model(
    checkpoint: str | Path, device: str | torch.device | None = None
) -> tuple[nn.Module, FeatureMap, dict[str, Any]]:
    """(model in eval mode, its feature map, its resolved config) from a checkpoint.

    The model applies whatever the regulariser changed about the ids (the
    filter's OOV mapping), so it scores raw prepared batches correctly. It is
    placed on ``device`` (default: the CPU).
    """
    payload = load_checkpoint(checkpoint)
    target = torch.device(device) if device is not None else torch.device("cpu")
    return _model_from_payload(payload, checkpoint, target)


def _same_features(a: FeatureMap, b: FeatureMap) -> bool:
    return a.tables == b.tables and a.features == b.features


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_dir: str | Path,
    split: str = "test",
    *,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> EvalResult:
    """Score ``split`` of ``data_dir`` with the model saved in ``checkpoint``.

    ``device`` defaults to the one the model was trained on (``auto`` when
    that was a GPU, so a GPU-trained checkpoint still scores on a CPU host).
    """
    data_dir = Path(data_dir)
    map_path = data_dir / FEATURE_MAP_FILE
    data_map = FeatureMap.load(map_path)
    payload = load_checkpoint(checkpoint)
    if device is None:
        device = "cpu" if payload["config"]["train"]["device"] == "cpu" else "auto"
    payload_device = distributed.rank_device(resolve_device(device))
    model, feature_map, config = _model_from_payload(payload, checkpoint, payload_device)
    if not _same_features(data_map, feature_map):
        raise DataError(
            map_path,
            f"the tables and features the checkpoint {checkpoint} was trained with",
            got="a different feature map",
        )
    train_cfg = config["train"]
    tensors = load_prepared_split(data_dir, split, feature_map, train_cfg.get("max_len"))
    size = int(batch_size or train_cfg["eval_batch_size"])
    # inside a process group every rank scores a shard and rank 0 computes the metrics
    metrics, scores = distributed.score(model, tensors, size, device=payload_device)
    return EvalResult(
        split=split,
        metrics=metrics,
        predictions=predictions_frame(tensors, scores),
        checkpoint=Path(checkpoint),
    )


def train_and_evaluate(
    data_dir: str | Path,
    out_dir: str | Path,
    model: str,
    regularizer: str | None = None,
    config: dict[str, Any] | None = None,
    *,
    on_epoch_end: EpochCallback | None = None,
    resume: bool = True,
    force: bool = False,
) -> TrainResult:
    """Fit, score test ONCE with the best-on-validation checkpoint, write the outputs.

    Writes ``metrics.json`` (validation of the chosen epoch and test AUC,
    GAUC, LogLoss, GAUC users, best epoch, history) and
    ``predictions.parquet`` (user_id, label, score of every test sample).
    Under torchrun (a process group) only rank 0 writes; every rank returns
    the same metrics. ``resume`` and ``force``: see :func:`fit`.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not (data_dir / "test.parquet").is_file():
        raise DataError(
            data_dir / "test.parquet", "the test split of `din prepare`", got="no such file"
        )
    result = fit(
        data_dir,
        out_dir,
        model,
        regularizer,
        config,
        on_epoch_end=on_epoch_end,
        resume=resume,
        force=force,
    )
    device = result.config["train"]["device"]
    test = evaluate_checkpoint(result.best_checkpoint, data_dir, "test", device=device)
    predictions_path = out_dir / PREDICTIONS_FILE
    if distributed.is_main_process():
        with writing(predictions_path), atomic_output_file(predictions_path) as tmp:
            test.predictions.write_parquet(tmp)
    speeds = [r["samples_per_s"] for r in result.history]
    metrics = {
        "dataset": result.dataset,
        "model": model,
        "regularizer": result.regularizer,
        "seed": result.config["train"]["seed"],
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "valid": result.valid_metrics,
        "test": test.metrics,
        "train_samples_per_s": sum(speeds) / len(speeds),
        "history": result.history,
        "config_hash": config_hash(result.config),
        "prepared_fingerprint": result.prepared_fingerprint,
        "data_fingerprint": source_fingerprint(data_dir),
        "checkpoint": str(result.best_checkpoint),
    }
    group = distributed.describe()
    if group is not None:
        metrics["distributed"] = group
    metrics_path = out_dir / METRICS_FILE
    if distributed.is_main_process():
        with writing(metrics_path):
            write_json_atomic(metrics_path, metrics)
    distributed.barrier()  # the outputs exist when any rank returns
    logger.info(
        "test (epoch %d model): AUC %.4f GAUC %.4f (%d users) LogLoss %.4f",
        result.best_epoch,
        test.metrics["auc"],
        test.metrics["gauc"],
        test.metrics["gauc_users"],
        test.metrics["logloss"],
    )
    return TrainResult(
        fit=result,
        test=test,
        metrics=metrics,
        metrics_path=metrics_path,
        predictions_path=predictions_path,
        config_path=out_dir / CONFIG_FILE,
    )
