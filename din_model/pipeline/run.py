"""The one fit, select and score path: ``din train``, ``din run``, ablation cells, ``din rerun``.

* :func:`fit` trains on ``train``, selects the epoch on ``valid``, writes a
  checkpoint each epoch and resumes a killed run;
* :func:`evaluate_checkpoint` scores one split with a saved model;
* :func:`fit_and_score` composes them: fit, then score ``test`` once with the
  model chosen on validation, and write the whole output layout of
  :mod:`din_model.pipeline.layout` (metrics, predictions, attention examples,
  an input example). Whatever logs a run reads that layout; nothing rebuilds
  the model or re-reads a split after this.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from din_model.config import config_hash
from din_model.data.encoding.vocabulary import VOCAB_DIR
from din_model.data.specs.feature_map import FEATURE_MAP_FILE, FeatureMap
from din_model.distributed import group as distributed
from din_model.errors import DataError
from din_model.io.atomic import atomic_output_dir, atomic_output_file, write_json_atomic
from din_model.io.failures import writing
from din_model.io.output_dir import Claim
from din_model.pipeline.attention_examples import examples_from_model, write_attention_examples
from din_model.pipeline.item_map import write_run_item_map
from din_model.pipeline.layout import SERVING_DIR, RunLayout, source_fingerprint
from din_model.pipeline.session import EpochCallback, FitResult, TrainingRun, claim_train_output
from din_model.serving.loading import load_trained_model, model_from_payload
from din_model.tensors.split import SplitTensors, load_prepared_split
from din_model.training.batch_rule import settle_batch_size
from din_model.training.checkpoint import load_checkpoint
from din_model.training.device import resolve_device
from din_model.training.evaluate import EvalResult, predictions_frame
from din_model.training.warm_start import WarmStartSource

logger = logging.getLogger(__name__)

__all__ = [
    "FitResult",
    "TrainResult",
    "evaluate_checkpoint",
    "fit",
    "load_trained_model",
    "fit_and_score",
]


@dataclass
class TrainResult:
    """Outcome of :func:`fit_and_score`: the fit, the test scoring and the layout written."""

    fit: FitResult
    test: EvalResult
    metrics: dict[str, Any]
    layout: RunLayout

    @property
    def metrics_path(self) -> Path:
        return self.layout.metrics

    @property
    def predictions_path(self) -> Path:
        return self.layout.predictions

    @property
    def config_path(self) -> Path:
        return self.layout.config


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
    warm_start_from: WarmStartSource | None = None,
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

    ``warm_start_from`` (a champion) starts the model from its weights, matched by raw
    value (:mod:`din_model.training.warm_start`), before epoch 1; a resumed run continues
    from its checkpoint instead, where the warm start already is.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    claim = claim_train_output(out_dir, data_dir, force=force)
    # train.batch_size_rule: auto becomes a number here, before the config is recorded
    config = settle_batch_size(data_dir, model, config)
    run = TrainingRun(
        data_dir, out_dir, model, regularizer, config, warm_start_from=warm_start_from
    )
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


def _same_features(a: FeatureMap, b: FeatureMap) -> bool:
    return a.tables == b.tables and a.features == b.features


@dataclass
class ScoredSplit:
    """A split scored by a checkpoint, with the model and tensors that produced the scores."""

    result: EvalResult
    model: nn.Module
    tensors: SplitTensors
    feature_map: FeatureMap
    device: torch.device


def score_checkpoint(
    checkpoint: str | Path,
    data_dir: str | Path,
    split: str = "test",
    *,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> ScoredSplit:
    """Score ``split`` of ``data_dir`` with ``checkpoint``, keeping the model and the tensors.

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
    model, feature_map, config = model_from_payload(payload, checkpoint, payload_device)
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
    result = EvalResult(
        split=split,
        metrics=metrics,
        predictions=predictions_frame(tensors, scores),
        checkpoint=Path(checkpoint),
    )
    return ScoredSplit(result, model, tensors, feature_map, payload_device)


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_dir: str | Path,
    split: str = "test",
    *,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> EvalResult:
    """Score ``split`` of ``data_dir`` with the model saved in ``checkpoint``."""
    return score_checkpoint(
        checkpoint, data_dir, split, device=device, batch_size=batch_size
    ).result


def fit_and_score(
    data_dir: str | Path,
    out_dir: str | Path,
    model: str,
    regularizer: str | None = None,
    config: dict[str, Any] | None = None,
    *,
    on_epoch_end: EpochCallback | None = None,
    resume: bool = True,
    force: bool = False,
    warm_start_from: WarmStartSource | None = None,
) -> TrainResult:
    """Fit, score test ONCE with the best-on-validation checkpoint, write the layout.

    Writes the files of :mod:`din_model.pipeline.layout`: ``metrics.json``
    (validation of the chosen epoch and test AUC, GAUC, LogLoss, GAUC users,
    best epoch, history), ``predictions.parquet`` (user_id, label, score of
    every test sample), ``attention.json`` and ``item_map.parquet`` (models with an
    activation unit: Fig. 5's examples, Fig. 6's t-SNE) and ``serving/`` (what the
    model needs to take raw requests). Under torchrun (a process group) only rank 0
    writes; every rank returns the same metrics.
    ``resume``, ``force`` and ``warm_start_from``: see :func:`fit`; a warm start's
    report is ``metrics.json``'s ``warm_start``.
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
        warm_start_from=warm_start_from,
    )
    layout = RunLayout(out_dir)
    device = result.config["train"]["device"]
    scored = score_checkpoint(result.best_checkpoint, data_dir, "test", device=device)
    test = scored.result
    if distributed.is_main_process():
        _write_scoring_outputs(layout, scored)
        write_run_item_map(layout.item_map, scored.model, scored.tensors, scored.feature_map,
                           scored.device, data_dir, result.config["train"])  # fmt: skip
        _copy_serving_tables(data_dir, layout)
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
    if result.warm_start is not None:
        metrics["warm_start"] = result.warm_start
    group = distributed.describe()
    if group is not None:
        metrics["distributed"] = group
    if distributed.is_main_process():
        # metrics.json last: its presence marks a finished run (see session.is_unfinished)
        with writing(layout.metrics):
            write_json_atomic(layout.metrics, metrics)
    distributed.barrier()  # the outputs exist when any rank returns
    logger.info(
        "test (epoch %d model): AUC %.4f GAUC %.4f (%d users) LogLoss %.4f",
        result.best_epoch,
        test.metrics["auc"],
        test.metrics["gauc"],
        test.metrics["gauc_users"],
        test.metrics["logloss"],
    )
    return TrainResult(fit=result, test=test, metrics=metrics, layout=layout)


def _write_scoring_outputs(layout: RunLayout, scored: ScoredSplit) -> None:
    """Predictions and the attention examples (models with an activation unit)."""
    with writing(layout.predictions), atomic_output_file(layout.predictions) as tmp:
        scored.result.predictions.write_parquet(tmp)
    examples = examples_from_model(scored.model, scored.tensors, scored.feature_map, scored.device)
    if examples is not None:
        with writing(layout.attention):
            write_attention_examples(layout.attention, examples)

def _copy_serving_tables(data_dir: Path, layout: RunLayout) -> None:
    """The prepared folder's serving tables and vocabularies, so the run serves on its own.

    A prepared folder written before raw serving existed has none: the run is
    complete without them, only its model cannot take raw requests.
    """
    source = data_dir / SERVING_DIR
    if not source.is_dir():
        logger.warning("%s has no %s/: rerun `din prepare` to serve raw requests", data_dir,
                       SERVING_DIR)  # fmt: skip
        return
    with writing(layout.serving), atomic_output_dir(layout.serving) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        shutil.copytree(data_dir / VOCAB_DIR, tmp / VOCAB_DIR)
