"""Scoring a split with a model: probabilities, metrics and the predictions frame.

Scores are ``sigmoid`` of the logits computed in float64, so that very
confident predictions do not round to exactly 0 or 1 before LogLoss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from din_model.metrics import evaluate_scores
from din_model.tensors.batches import iterate_batches
from din_model.tensors.split import SplitTensors
from din_model.training.acceleration import autocast

BatchTransform = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass
class EvalResult:
    """Metrics of one scored split and its per-sample predictions."""

    split: str
    metrics: dict[str, Any]
    predictions: pl.DataFrame  # user_id (Int32), label (Int8), score (Float64)
    checkpoint: Path | None = None


@torch.inference_mode()
def predict(
    model: nn.Module,
    split: SplitTensors,
    batch_size: int,
    *,
    device: torch.device | None = None,
    transform: BatchTransform | None = None,
    amp: torch.dtype | None = None,
) -> np.ndarray:
    """Click probabilities for every row of ``split``, in row order, as float64.

    ``amp``: an autocast dtype (``train.amp``) for the forward passes.
    """
    was_training = model.training
    model.eval()
    outputs = []
    target = device if device is not None else split.device
    batches = iterate_batches(
        split,
        batch_size,
        shuffle=False,
        trim=True,
        device=device,
        packed_rows=target.type == "cuda",  # DIN's packed size without a GPU read-back
    )
    try:
        for batch in batches:
            if transform is not None:
                batch = transform(batch)
            with autocast(target, amp):
                logits = model(batch)
            outputs.append(torch.sigmoid(logits.double()))
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros(0, dtype=np.float64)
    return torch.cat(outputs).cpu().numpy()


def score_split(
    model: nn.Module,
    split: SplitTensors,
    batch_size: int,
    *,
    device: torch.device | None = None,
    transform: BatchTransform | None = None,
    amp: torch.dtype | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """(metrics, scores) of ``split``: AUC, GAUC + users, LogLoss, n."""
    scores = predict(model, split, batch_size, device=device, transform=transform, amp=amp)
    labels = split.label.cpu().numpy()
    users = split.user.cpu().numpy()
    return evaluate_scores(labels, scores, users), scores


def predictions_frame(split: SplitTensors, scores: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": pl.Series(split.user.cpu().numpy(), dtype=pl.Int32),
            "label": pl.Series(split.label.cpu().numpy(), dtype=pl.Int8),
            "score": pl.Series(scores, dtype=pl.Float64),
        }
    )
