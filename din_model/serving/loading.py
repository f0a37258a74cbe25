"""Rebuild a trained model from its checkpoint, ready to score.

The checkpoint carries everything (model name, resolved config, feature map,
weights, the regulariser's id state), so scoring needs no prepared folder and
no config files: the same code serves ``din train``'s test scoring, the
attention examples and the registered model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from din_model.data.specs.feature_map import FeatureMap
from din_model.models import build_model
from din_model.regularizers import build_regularizer
from din_model.training.checkpoint import load_checkpoint


def model_from_payload(
    payload: dict[str, Any], source: str | Path, device: torch.device
) -> tuple[nn.Module, FeatureMap, dict[str, Any]]:
    """(scoring model in eval mode on ``device``, feature map, resolved config) of a checkpoint."""
    feature_map = FeatureMap.from_dict(payload["feature_map"], source=source)
    config = payload["config"]
    net = build_model(payload["model_name"], feature_map, config["model"])
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
    return model_from_payload(payload, checkpoint, target)
