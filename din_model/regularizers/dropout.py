"""Feature-id dropout, the DIN paper's "Dropout" comparison.

In training, each goods id of a sample (the candidate and every history
position) is discarded with probability ``rate`` (0.5 in the paper):
discarded ids become the padding id 0, so a history position disappears from
every pooling and a discarded candidate looks up the all-zero padding row.
Evaluation sees all ids. There is no rescaling: ids are not activations, and
the paper does not rescale either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from din_model.data.specs.feature_map import PADDING_ID, FeatureMap
from din_model.errors import ConfigError
from din_model.regularizers.base import Regularizer, features_of_table, resolve_tables

if TYPE_CHECKING:  # the training package imports the regularisers
    from din_model.tensors.split import SplitTensors


class FeatureIdDropout(Regularizer):
    name = "dropout"

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.rate = float(self.setting("rate"))
        if not 0.0 <= self.rate < 1.0:
            raise ConfigError(f"regularizer.dropout.rate must be in [0, 1), got {self.rate}")
        self.features: list[str] = []

    def prepare(self, train: SplitTensors, feature_map: FeatureMap, model: nn.Module) -> None:
        tables = resolve_tables(self.setting("tables"), feature_map)
        self.features = [name for t in tables for name in features_of_table(feature_map, t)]

    def transform_batch(
        self, batch: dict[str, torch.Tensor], training: bool
    ) -> dict[str, torch.Tensor]:
        if not training or self.rate == 0.0:
            return batch
        out = dict(batch)
        for name in self.features:
            ids = batch[name]
            drop = torch.rand(ids.shape, device=ids.device) < self.rate
            out[name] = ids.masked_fill(drop, PADDING_ID)
        return out

    def describe(self) -> str:
        return f"dropout(rate={self.rate:g}, features={self.features})"
