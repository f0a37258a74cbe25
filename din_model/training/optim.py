"""Optimizer and learning-rate schedule from the ``train`` config section."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from din_model.errors import ConfigError

OPTIMIZERS = ("adam", "adagrad", "sgd")
SCHEDULES = ("none", "step", "cosine")


def make_optimizer(model: nn.Module, train: dict[str, Any]) -> torch.optim.Optimizer:
    name = str(train["optimizer"]).lower()
    params = [p for p in model.parameters() if p.requires_grad]
    lr = float(train["learning_rate"])
    decay = float(train.get("weight_decay") or 0.0)
    if lr <= 0:
        raise ConfigError(f"train.learning_rate must be positive, got {lr}")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=decay)
    if name == "sgd":
        momentum = float(train.get("momentum") or 0.0)
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=decay)
    raise ConfigError(f"train.optimizer: unknown '{name}'; choose one of {', '.join(OPTIMIZERS)}")


def make_scheduler(
    optimizer: torch.optim.Optimizer, train: dict[str, Any]
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-epoch schedule, or None for a constant learning rate."""
    name = str(train.get("lr_schedule") or "none").lower()
    if name == "none":
        return None
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=int(train["lr_step_epochs"]), gamma=float(train["lr_gamma"])
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, int(train["epochs"])), eta_min=float(train["lr_min"])
        )
    raise ConfigError(f"train.lr_schedule: unknown '{name}'; choose one of {', '.join(SCHEDULES)}")
