"""Optimizer and learning-rate schedule from the ``train`` config section.

``train.fused_optimizer`` (null = auto | true | false) picks torch's fused
implementation, one kernel over all parameters instead of a loop of small
element-wise operations per parameter: the same update up to float rounding, and
as deterministic. ``null`` (auto) uses it wherever torch has it for the
parameters' device (CPU and CUDA for adam, adagrad and sgd in current torch).
"""

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
    if name not in OPTIMIZERS:
        raise ConfigError(
            f"train.optimizer: unknown '{name}'; choose one of {', '.join(OPTIMIZERS)}"
        )
    fused = _fused(train.get("fused_optimizer"), params)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay, fused=fused)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=decay, fused=fused)
    momentum = float(train.get("momentum") or 0.0)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=decay, fused=fused)


FUSED_DEVICES = ("cpu", "cuda")


def _fused(setting: object, params: list[torch.Tensor]) -> bool | None:
    """``train.fused_optimizer`` -> torch's ``fused`` argument (None: torch's default)."""
    if setting is None or str(setting).lower() == "auto":
        mode = "auto"
    elif isinstance(setting, bool):
        mode = "on" if setting else "off"
    else:
        raise ConfigError(
            f"train.fused_optimizer: expected null (auto), true or false, got {setting!r}"
        )
    if mode == "off":
        return None
    supported = bool(params) and all(
        p.device.type in FUSED_DEVICES and p.is_floating_point() for p in params
    )
    if mode == "on" and not supported:
        raise ConfigError(
            "train.fused_optimizer=true needs float parameters on a CPU or CUDA device"
        )
    return True if supported else None


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
