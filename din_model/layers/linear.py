"""First-order (logistic-regression) term: a bias plus one scalar weight per id.

Used by LR and as the "wide" / first-order part of Wide&Deep and DeepFM. The weights
come from the extra column of :class:`~din_model.layers.embedding.FeatureEmbedding`.

A behaviour sequence enters through the MEAN of its ids' weights, not the sum. A sum
would make a user's constant offset grow with the length of the history (up to
``max_len`` weights), so long histories would dominate the logit for reasons unrelated
to the candidate; the mean is the usual normalised bag-of-ids input of a linear model
and keeps every sequence feature on the scale of one sparse feature. ``sum`` remains
available (``linear_pooling``) to match implementations that count ids.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from din_model.errors import ConfigError
from din_model.layers.embedding import EmbeddedBatch
from din_model.layers.pooling import masked_mean, masked_sum

LINEAR_POOLING_MODES = ("mean", "sum")


class LinearTerm(nn.Module):
    """bias + sum of sparse weights + pooled sequence weights -> (B,) logits."""

    def __init__(self, sequence_pooling: str = "mean") -> None:
        super().__init__()
        if sequence_pooling not in LINEAR_POOLING_MODES:
            raise ConfigError(
                f"unknown linear pooling {sequence_pooling!r}: "
                f"expected one of {', '.join(LINEAR_POOLING_MODES)}"
            )
        self.sequence_pooling = sequence_pooling
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, embedded: EmbeddedBatch) -> Tensor:
        terms = list(embedded.sparse_weights.values())
        if embedded.sequence_weights:
            pool = masked_mean if self.sequence_pooling == "mean" else masked_sum
            for weights in embedded.sequence_weights.values():
                terms.append(pool(weights.unsqueeze(-1), embedded.mask).squeeze(-1))
        return torch.stack(terms, dim=1).sum(1) + self.bias

    def extra_repr(self) -> str:
        return f"sequence_pooling={self.sequence_pooling}"
