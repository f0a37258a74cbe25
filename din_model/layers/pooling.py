"""Masked pooling of right-padded sequences: (B, L, D) values and a (B, L) mask -> (B, D).

The mask (``ids != 0``) decides, not the padding row's content: even if an embedding's
padding row were ever non-zero, padding would still contribute nothing. A row without a
valid position pools to zeros in every mode (max included: no -inf leaks out).
Sums are matrix products (B, 1, L) x (B, L, D), which reduce without writing a masked
copy of the values.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from din_model.data.specs.feature_map import PADDING_ID
from din_model.errors import ConfigError

POOLING_MODES = ("sum", "mean", "max")


def sequence_mask(ids: Tensor, padding_id: int = PADDING_ID) -> Tensor:
    """Valid positions of a right-padded id sequence: (B, L) bool."""
    return ids != padding_id


def weighted_sum(values: Tensor, weights: Tensor) -> Tensor:
    """sum_j weights[b, j] * values[b, j, :] -> (B, D); weights must already be 0 at padding."""
    return torch.bmm(weights.unsqueeze(1).to(values.dtype), values).squeeze(1)


def masked_sum(values: Tensor, mask: Tensor) -> Tensor:
    return weighted_sum(values, mask)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over valid positions; rows with none give zeros (the count is clamped to 1)."""
    count = mask.sum(1, keepdim=True).clamp_min(1).to(values.dtype)
    return masked_sum(values, mask) / count


def masked_max(values: Tensor, mask: Tensor) -> Tensor:
    """Element-wise max over valid positions; rows with none give zeros, not -inf."""
    filled = values.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    pooled = filled.amax(1)
    has_valid = mask.any(1, keepdim=True)
    return torch.where(has_valid, pooled, torch.zeros_like(pooled))


_POOLERS = {"sum": masked_sum, "mean": masked_mean, "max": masked_max}


class SequencePooling(nn.Module):
    """Masked ``sum`` | ``mean`` | ``max`` pooling (BaseModel's behaviour pooling)."""

    def __init__(self, mode: str = "sum") -> None:
        super().__init__()
        if mode not in _POOLERS:
            raise ConfigError(
                f"unknown pooling mode {mode!r}: expected one of {', '.join(POOLING_MODES)}"
            )
        self.mode = mode
        self._pool = _POOLERS[mode]

    def forward(self, values: Tensor, mask: Tensor) -> Tensor:
        return self._pool(values, mask)

    def extra_repr(self) -> str:
        return self.mode
