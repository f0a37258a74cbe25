"""Dense L2 over every parameter: (lambda / 2) * sum of squares.

The textbook regulariser, kept as the comparison point the DIN paper argues
against: on a large embedding table it touches every row at every step.
"""

from __future__ import annotations

import torch
from torch import nn

from din_model.regularizers.base import Regularizer


class DenseL2(Regularizer):
    name = "l2"

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.weight = float(self.setting("weight"))

    def penalty(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        squares = [p.pow(2).sum() for p in model.parameters() if p.requires_grad]
        return 0.5 * self.weight * torch.stack(squares).sum()

    def describe(self) -> str:
        return f"l2(weight={self.weight:g})"
