"""Activation factory for the MLPs: ``relu``, ``prelu`` (per unit) or ``dice``.

The DIN paper compares PReLU and Dice; ReLU is the common baseline. ``torch.nn.PReLU``
puts its per-channel weights on dimension 1, which for the attention unit's
(B, L, H) activations is the sequence axis, not the unit axis: :class:`PReLU` below
always works on the last dimension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from din_model.errors import ConfigError
from din_model.layers.dice import Dice

ACTIVATIONS = ("relu", "prelu", "dice")
PRELU_INIT = 0.25


class PReLU(nn.Module):
    """PReLU with one learnable slope per unit of the LAST dimension.

    Slopes start at 0.25 (He et al. 2015, PyTorch's default), i.e. leaky from the start,
    so that no unit is dead before it has seen a gradient.
    """

    def __init__(self, num_features: int, init: float = PRELU_INIT) -> None:
        super().__init__()
        self.num_features = num_features
        self.weight = nn.Parameter(torch.full((num_features,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        # F.prelu treats dim 1 of a 2-D input as the channel: fold the leading dims into one.
        return F.prelu(x.reshape(-1, self.num_features), self.weight).view(x.shape)

    def extra_repr(self) -> str:
        return str(self.num_features)


def make_activation(name: str, num_features: int) -> nn.Module:
    """A fresh activation module for ``num_features`` units; ConfigError for an unknown name."""
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return PReLU(num_features)
    if name == "dice":
        return Dice(num_features)
    raise ConfigError(f"unknown activation {name!r}: expected one of {', '.join(ACTIVATIONS)}")


def apply_activation(activation: nn.Module, x: Tensor, mask: Tensor | None) -> Tensor:
    """Call ``activation``, passing the validity mask to the ones whose statistics need it."""
    if isinstance(activation, Dice):
        return activation(x, mask)
    return activation(x)
